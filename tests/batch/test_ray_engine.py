"""The Ray Data engine on a local Ray started by the test: the same pages read to the same rows as locally."""
from __future__ import annotations

import csv
import json

import pytest
from conftest import draw_digit
from PIL import Image

from digitrec import data
from digitrec.batch.bulk import bulk, review_path
from digitrec.data.render.form_pages import FORM_TEMPLATE, make_form_pages
from digitrec.forms import load_template

pytest.importorskip("ray", reason="the ray extra (bin/install --test installs it)")
pytestmark = pytest.mark.slow  # starts a local Ray


@pytest.fixture(scope="module")
def fifty(tmp_path_factory):
    """50 pages: 44 MNIST test digits as PNGs, a 3-page PDF, a 2-page TIFF and a broken file, in folders."""
    folder = tmp_path_factory.mktemp("fifty")
    x, _ = data.load_mnist("test")
    (folder / "digits").mkdir()
    for i in range(44):
        Image.fromarray(255 - x[i]).resize((84, 84)).save(folder / "digits" / f"{i:02d}.png")
    pages = [draw_digit(d).convert("RGB") for d in (7, 1, 0, 7, 1)]
    pages[0].save(folder / "a.pdf", save_all=True, append_images=pages[1:3])
    pages[3].save(folder / "b.tif", save_all=True, append_images=[pages[4]])
    (folder / "broken.png").write_text("not a picture")
    return folder


def test_ray_reads_fifty_pages_to_the_rows_of_the_local_engine(fifty, tmp_path):
    local = bulk([fifty], tmp_path / "local.csv", workers=2, progress=False)
    on_ray = bulk([fifty], tmp_path / "ray.csv", workers=2, engine="ray", progress=False)
    assert (local.pages, on_ray.pages) == (50, 50)
    assert (tmp_path / "ray.csv").read_text() == (tmp_path / "local.csv").read_text()


def test_a_missing_file_is_an_error_row_at_its_place_in_the_input(fifty, tmp_path):
    paths = [fifty / "a.pdf", tmp_path / "gone.png", fifty / "b.tif"]
    bulk(paths, tmp_path / "local.csv", workers=2, progress=False)
    bulk(paths, tmp_path / "ray.csv", workers=2, engine="ray", progress=False)
    with open(tmp_path / "ray.csv", newline="") as f:
        rows = [(r["file"].split("/")[-1], r["page"], bool(r["error"])) for r in csv.DictReader(f)]
    assert rows == [("a.pdf", "1", False), ("a.pdf", "2", False), ("a.pdf", "3", False), ("gone.png", "0", True),
                    ("b.tif", "1", False), ("b.tif", "2", False)]
    assert (tmp_path / "ray.csv").read_text() == (tmp_path / "local.csv").read_text()


def test_ray_reads_forms_with_their_template_and_resumes(tmp_path):
    x, y = data.load_mnist("test")
    for i, p in enumerate(make_form_pages(x[:1000], y[:1000], 3, seed=9)):
        (tmp_path / f"f{i}.jpg").write_bytes(p.jpeg)
    template = load_template(FORM_TEMPLATE)
    bulk([tmp_path], tmp_path / "local.jsonl", template=template, workers=1, progress=False)
    lines = (tmp_path / "local.jsonl").read_text().splitlines()
    (tmp_path / "ray.jsonl").write_text(lines[0] + "\n")  # one page done before
    s = bulk([tmp_path], tmp_path / "ray.jsonl", template=template, workers=2, engine="ray", progress=False)
    assert (s.skipped, s.pages) == (1, 2)
    assert (tmp_path / "ray.jsonl").read_text().splitlines() == lines
    local_review = [json.loads(line) for line in review_path(tmp_path / "local.jsonl").read_text().splitlines()]
    ray_review = [json.loads(line) for line in review_path(tmp_path / "ray.jsonl").read_text().splitlines()]
    assert ray_review == [i for i in local_review if i["file"] != json.loads(lines[0])["file"]]
