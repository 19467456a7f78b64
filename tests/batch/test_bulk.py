"""Bulk reading of real files made here: PDFs, multi-page TIFFs, folders with a broken file, form pages."""
from __future__ import annotations

import csv
import json
import os
import stat
import struct

import numpy as np
import pytest
import torch
from conftest import draw_digit
from PIL import Image

from digitrec import data
from digitrec.apps import cli
from digitrec.batch.bulk import bulk, review_path
from digitrec.batch.rows import columns
from digitrec.data.render.form_pages import FORM_TEMPLATE, make_form_pages
from digitrec.forms import load_template

DIGITS = [7, 1, 0, 7, 1]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A folder: a 3-page PDF, a 2-page TIFF, a PNG and a file that is no picture, in a subfolder too."""
    folder = tmp_path_factory.mktemp("scans")
    pages = [draw_digit(d).convert("RGB") for d in DIGITS]
    pages[0].save(folder / "a.pdf", save_all=True, append_images=pages[1:3], resolution=72)
    pages[3].save(folder / "b.tif", save_all=True, append_images=[pages[4]])
    (folder / "sub").mkdir()
    draw_digit(0).save(folder / "sub" / "c.png")
    (folder / "sub" / "d.png").write_bytes(b"these are notes, not a picture")
    return folder


def test_a_folder_of_pdf_tiff_and_png_gives_a_row_per_page_in_order(scans, tmp_path):
    s = bulk([scans], tmp_path / "out.csv", workers=1, progress=False)
    rows = _rows(tmp_path / "out.csv")
    assert [(r["file"].split("/")[-1], r["page"]) for r in rows] == [
        ("a.pdf", "1"), ("a.pdf", "2"), ("a.pdf", "3"), ("b.tif", "1"), ("b.tif", "2"), ("c.png", "1"), ("d.png", "0")]
    assert [r["value"] for r in rows[:6]] == [str(d) for d in DIGITS + [0]]
    assert list(rows[0]) == columns(None)
    assert (s.pages, s.errors) == (7, 1)


def test_a_broken_file_is_a_row_with_its_error_and_the_run_goes_on(scans, tmp_path):
    bulk([scans], tmp_path / "out.csv", workers=1, progress=False)
    broken = [r for r in _rows(tmp_path / "out.csv") if r["error"]]
    assert len(broken) == 1 and "d.png" in broken[0]["error"] and "not an image" in broken[0]["error"]
    assert broken[0]["value"] == ""


def test_an_interrupted_run_resumes_where_it_stopped(scans, tmp_path):
    out = tmp_path / "out.jsonl"
    bulk([scans], out, workers=1, progress=False)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n")  # as if stopped after three pages
    s = bulk([scans], out, workers=1, progress=False)
    assert (s.skipped, s.pages) == (3, 4)
    assert out.read_text().splitlines() == lines, "the same rows, each once"
    assert bulk([scans], out, workers=1, progress=False).pages == 0


def test_reading_in_this_process_leaves_its_torch_threads_as_they_were(tmp_path):
    draw_digit(7).save(tmp_path / "seven.png")
    before = torch.get_num_threads()
    torch.set_num_threads(2 if before == 1 else before)  # so that a change to one thread shows
    threads = torch.get_num_threads()
    try:
        bulk([tmp_path / "seven.png"], tmp_path / "out.csv", workers=1, progress=False)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_two_worker_processes_give_the_rows_of_one(scans, tmp_path):
    bulk([scans], tmp_path / "one.csv", workers=1, progress=False)
    bulk([scans], tmp_path / "two.csv", workers=2, progress=False)
    assert _rows(tmp_path / "one.csv") == _rows(tmp_path / "two.csv")


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """Six scanned form pages (turned, scaled, JPEG'd) of MNIST test digits, and their true values."""
    folder = tmp_path_factory.mktemp("forms")
    x, y = data.load_mnist("test")
    pages = make_form_pages(x[:2000], y[:2000], 6, seed=5)
    for i, p in enumerate(pages):
        (folder / f"form{i}.jpg").write_bytes(p.jpeg)
    (folder / "template.json").write_text(json.dumps(FORM_TEMPLATE))
    return folder, [p.values for p in pages]


def test_form_pages_are_read_field_by_field_through_their_template(forms, tmp_path):
    folder, truth = forms
    bulk([folder], tmp_path / "out.csv", template=load_template(folder / "template.json"), workers=1, progress=False)
    rows = _rows(tmp_path / "out.csv")
    names = [f["name"] for f in FORM_TEMPLATE["fields"]]
    right = [r[n] == t[n] for r, t in zip(rows, truth) for n in names]
    assert len(rows) == 6 and np.mean(right) >= 0.9
    unsure_right = [r[n] == t[n] for r, t in zip(rows, truth) for n in names if r[f"{n}_unsure"] == "False"]
    assert np.mean(unsure_right) >= np.mean(right), "what is not flagged is read at least as well"


def test_a_field_failing_its_check_is_unsure_and_goes_to_review_with_its_picture(forms, tmp_path):
    folder, _ = forms
    template = json.loads((folder / "template.json").read_text())
    template["fields"][4]["validate"] = {"regex": "x"}  # code_a can never pass
    bulk([folder / "form0.jpg"], tmp_path / "out.csv", template=load_template(template), workers=1, progress=False)
    [row] = _rows(tmp_path / "out.csv")
    assert row["code_a_unsure"] == "True"
    items = [json.loads(line) for line in review_path(tmp_path / "out.csv").read_text().splitlines()]
    item = next(i for i in items if i["field"] == "code_a")
    assert item["value"] == row["code_a"] and "does not match" in item["problem"] and item["picture"]
    assert len(item["alternatives"]) == 1 and item["alternatives"][0] != item["value"]


def test_the_command_reads_a_folder_and_says_what_it_did(scans, tmp_path, capsys):
    assert cli.main(["bulk", str(scans), "--out", str(tmp_path / "r.csv"), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "7 pages read into" in out and "1 could not be read" in out


@pytest.mark.parametrize("args, words", [(["--out", "r.txt"], ".csv or .jsonl"),
                                         (["--out", "r.csv", "--template", "missing.json"], "no such file"),
                                         (["--out", "r.csv", "--workers", "0"], "at least 1"),
                                         (["--out", "r.csv", "--model", "missing.pt"], "missing.pt")])
def test_the_command_refuses_bad_arguments_in_one_line(scans, tmp_path, capsys, args, words):
    args = [a if not a.startswith(("r.", "missing")) else str(tmp_path / a) for a in args]
    assert cli.main(["bulk", str(scans), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_results_written_with_another_template_are_not_appended_to(scans, forms, tmp_path, capsys):
    bulk([scans], tmp_path / "r.csv", workers=1, progress=False)
    assert cli.main(["bulk", str(forms[0]), "--out", str(tmp_path / "r.csv"), "--template",
                     str(forms[0] / "template.json"), "--quiet"]) == 2
    assert "other columns" in capsys.readouterr().err


def test_a_page_without_a_template_can_be_read_as_a_number(tmp_path):
    Image.fromarray(np.hstack([np.asarray(draw_digit(d)) for d in (1, 7, 0)])).save(tmp_path / "n.png")
    bulk([tmp_path / "n.png"], tmp_path / "r.csv", kind="number", workers=1, progress=False)
    assert _rows(tmp_path / "r.csv")[0]["value"] == "170"


def test_a_file_name_or_error_a_spreadsheet_would_run_is_written_as_text_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    draw_digit(7).save("=cmd|' -C calc'!A0.png")
    (tmp_path / "@SUM(A1).png").write_bytes(b"these are notes, not a picture")
    names = ["=cmd|' -C calc'!A0.png", "@SUM(A1).png"]
    bulk(names, "out.csv", workers=1, progress=False)
    rows = _rows("out.csv")
    assert [r["file"] for r in rows] == ["'=cmd|' -C calc'!A0.png", "'@SUM(A1).png"]
    assert rows[1]["error"].startswith("'@SUM(A1).png: ")
    assert rows[0]["value"] == "7"
    again = bulk(names, "out.csv", workers=1, progress=False)
    assert (again.pages, again.skipped) == (0, 2)


def test_an_eps_page_is_an_error_row_naming_its_format(tmp_path):
    (tmp_path / "scan.tif").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n")
    bulk([tmp_path / "scan.tif"], tmp_path / "out.csv", workers=1, progress=False)
    [row] = _rows(tmp_path / "out.csv")
    assert "EPS images are not read" in row["error"]


def test_results_and_review_files_are_their_owners_only(tmp_path):
    old = os.umask(0o022)
    try:
        draw_digit(7).save(tmp_path / "a.png")
        s = bulk([tmp_path / "a.png"], tmp_path / "new" / "out.csv", workers=1, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(s.out.stat().st_mode) == 0o600 and stat.S_IMODE(s.review.stat().st_mode) == 0o600
    assert stat.S_IMODE(s.out.parent.stat().st_mode) == 0o700


def test_a_file_of_more_pages_than_max_pages_gives_those_and_one_error_row(tmp_path, capsys):
    frames = [draw_digit(d).convert("P") for d in [7, 1] * 15]
    frames[0].save(tmp_path / "many.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out.csv"
    assert cli.main(["bulk", str(tmp_path / "many.gif"), "--out", str(out), "--max-pages", "4", "--workers", "1",
                     "--quiet"]) == 0
    rows = _rows(out)
    assert [r["page"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert "more than 4 pages; the rest are not read" in rows[-1]["error"] and not rows[0]["error"]


def _zip_of(path, members: list[tuple[str, bytes]]):
    import warnings
    import zipfile

    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns of a name written twice, and writes it
        for name, data in members:
            z.writestr(name, data)


def _png_bytes(digit: int) -> bytes:
    import io

    buf = io.BytesIO()
    draw_digit(digit).save(buf, "PNG")
    return buf.getvalue()


def test_an_archive_with_a_name_twice_is_one_error_row(tmp_path):
    _zip_of(tmp_path / "a.zip", [("x.png", _png_bytes(7)), ("x.png", _png_bytes(1))])
    bulk([tmp_path / "a.zip"], tmp_path / "out.csv", workers=1, progress=False)
    [row] = _rows(tmp_path / "out.csv")
    assert row["page"] == "0" and "appears twice" in row["error"]


def test_an_archive_whose_entries_share_bytes_is_one_error_row(tmp_path):
    png = _png_bytes(7)
    _zip_of(tmp_path / "a.zip", [("a.png", png), ("b.png", png)])
    raw = bytearray((tmp_path / "a.zip").read_bytes())
    entry = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 4)  # b.png's central directory entry
    raw[entry + 42:entry + 46] = struct.pack("<I", 0)  # now pointing at a.png's bytes, as a zip bomb's entries do
    (tmp_path / "a.zip").write_bytes(bytes(raw))
    bulk([tmp_path / "a.zip"], tmp_path / "out.csv", workers=1, progress=False)
    [row] = _rows(tmp_path / "out.csv")
    assert row["page"] == "0" and "overlap" in row["error"]


def test_an_archive_of_more_entries_than_allowed_is_one_error_row(tmp_path, monkeypatch):
    from digitrec.data import readers

    monkeypatch.setattr(readers, "MAX_MEMBERS", 3, raising=False)
    _zip_of(tmp_path / "a.zip", [(f"{i}.png", _png_bytes(7)) for i in range(5)])
    bulk([tmp_path / "a.zip"], tmp_path / "out.csv", workers=1, progress=False)
    [row] = _rows(tmp_path / "out.csv")
    assert "5 entries, over the 3" in row["error"]


def test_an_archive_member_whose_entry_lies_about_its_size_is_an_error_row_in_little_memory(tmp_path):
    import tracemalloc
    import zipfile

    from digitrec.data.readers import file_pages

    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", bytes(200 * 2 ** 20))  # 200 MB of zeros: 200 KB deflated
    raw = bytearray((tmp_path / "a.zip").read_bytes())
    entry = raw.index(b"PK\x01\x02")
    raw[entry + 24:entry + 28] = struct.pack("<I", 1000)  # the central directory says 1,000 bytes unpacked
    (tmp_path / "a.zip").write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        [page] = list(file_pages("a.zip", tmp_path / "a.zip"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert page.error and "a.png" in page.error
    assert peak < 20 * 2 ** 20
