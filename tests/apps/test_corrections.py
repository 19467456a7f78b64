"""Corrections in and out: the REST API stores them, the CLI counts, exports, imports, purges and fine-tunes."""
from __future__ import annotations

import base64
import csv
import io
import time

import httpx
import numpy as np
import pytest
from conftest import live_server
from PIL import Image

from digitrec import data
from digitrec.apps import cli
from digitrec.apps.store import open_store
from digitrec.data.readers import read_idx


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def digits():
    """60 MNIST test digits: 12 from each of 5 'writers'."""
    x, y = data.load_mnist("test")
    return x[:60], y[:60], [f"w{i % 5}" for i in range(60)]


@pytest.fixture
def filled(tmp_path, digits):
    """A SQLite store holding the 60 digits as corrections (the model read each as the next digit)."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = open_store(url)
    for a, label, writer in zip(*digits):
        store.add(a, str(label), read=str((label + 1) % 10), writer=writer)
    store.close()
    return url


@pytest.mark.network
def test_the_api_stores_a_correction_sent_as_json(server, digits):
    body = {"image": "data:image/png;base64," + base64.b64encode(_png(digits[0][0])).decode(), "correct": "7",
            "read": "1", "writer": "ann"}
    r = httpx.post(f"{server.url}/api/v1/corrections", json=body, timeout=30)
    assert r.status_code == 201, r.text
    row = next(c for c in open_store(server.db).rows() if c.id == r.json()["id"])
    assert (row.correct, row.read, row.kind, row.source, row.writer) == ("7", "1", "digit", "api", "ann")
    assert row.model_checksum == httpx.get(f"{server.url}/api/v1/health", timeout=10).json()["model"]["checksum"]


@pytest.mark.network
def test_the_api_stores_a_number_sent_as_multipart(server, digits):
    r = httpx.post(f"{server.url}/api/v1/corrections", files={"image": ("f.png", _png(digits[0][1]), "image/png")},
                   data={"correct": "90210", "read": "90216", "kind": "number", "source": "review"}, timeout=30)
    assert r.status_code == 201, r.text
    row = next(c for c in open_store(server.db).rows() if c.id == r.json()["id"])
    assert (row.correct, row.kind, row.source) == ("90210", "number", "review")


@pytest.mark.network
@pytest.mark.parametrize("body, words", [({"image": "aGVsbG8=", "correct": "7"}, "image"),
                                         ({"image": "", "correct": "7"}, "empty"),
                                         ({"correct": "7"}, "image"),
                                         ({"image": "aGVsbG8=", "correct": "77"}, "0-9")])
def test_a_bad_correction_is_a_json_400_and_nothing_is_stored(server, digits, body, words):
    if body.get("image") == "aGVsbG8=" and words == "0-9":
        body["image"] = base64.b64encode(_png(digits[0][2])).decode()
    before = open_store(server.db).count()
    r = httpx.post(f"{server.url}/api/v1/corrections", json=body, timeout=30)
    assert r.status_code == 400 and words in r.json()["error"]
    assert open_store(server.db).count() == before


@pytest.mark.network
def test_a_server_told_not_to_store_refuses_corrections(tmp_path, digits):
    with live_server(tmp_path, "--no-store-corrections") as s:
        assert httpx.get(f"{s.url}/api/v1/health", timeout=10).json()["stores_corrections"] is False
        r = httpx.post(f"{s.url}/api/v1/corrections", json={"image": base64.b64encode(_png(digits[0][0])).decode(),
                                                            "correct": "7"}, timeout=30)
        assert r.status_code == 403 and "--store-corrections" in r.json()["error"]
    assert open_store(s.db).count() == 0


def test_stats_print_counts_and_the_commonest_confusion(filled, capsys):
    assert cli.main(["corrections", "stats", "--db", filled]) == 0
    out = capsys.readouterr().out
    assert "60 corrections and 0 confirmations" in out and "read 8 -> was 7: " in out


@pytest.mark.parametrize("fmt", ["npz", "idx", "csv"])
def test_export_writes_the_digits_as_the_model_reads_them(filled, digits, tmp_path, capsys, fmt):
    out = tmp_path / ("digits" if fmt == "idx" else f"digits.{fmt}")
    assert cli.main(["corrections", "export", "--db", filled, "--format", fmt, "--out", str(out)]) == 0
    assert "60 digits written" in capsys.readouterr().out
    if fmt == "npz":
        got = np.load(out)
        x, y = got["x"], got["y"]
        assert list(got["group"][:5]) == ["w0", "w1", "w2", "w3", "w4"]
    elif fmt == "idx":
        x, y = read_idx(out / "train-images-idx3-ubyte"), read_idx(out / "train-labels-idx1-ubyte")
    else:
        rows = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.int64)
        x, y = rows[:, 1:].reshape(-1, 28, 28), rows[:, 0]
    assert x.shape == (60, 28, 28) and list(y) == list(digits[1])
    assert x.max() > 200 and np.median(x) < 30, "bright ink on black, as MNIST"


def test_import_stores_the_rows_of_a_reviewed_csv(tmp_path, digits, capsys):
    for i in range(3):
        Image.fromarray(digits[0][i]).save(tmp_path / f"{i}.png")
    with open(tmp_path / "reviewed.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "read", "correct", "writer"])
        w.writerows([f"{i}.png", "", str(digits[1][i]), "bob"] for i in range(3))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli.main(["corrections", "import", str(tmp_path / "reviewed.csv"), "--db", url]) == 0
    assert "3 corrections stored" in capsys.readouterr().out
    rows = open_store(url).rows()
    assert [r.correct for r in rows] == [str(d) for d in digits[1][:3]] and rows[0].source == "import:reviewed.csv"


def test_import_names_the_bad_line_and_exits_2(tmp_path, digits, capsys):
    Image.fromarray(digits[0][0]).save(tmp_path / "0.png")
    (tmp_path / "r.csv").write_text("image,correct\n0.png,7\nmissing.png,3\n")
    assert cli.main(["corrections", "import", str(tmp_path / "r.csv"), "--db", f"sqlite:///{tmp_path / 'c.db'}"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "1 rows before it were stored" in err and "Traceback" not in err


def test_purge_wants_to_be_told_what_and_then_deletes(filled, capsys):
    assert cli.main(["corrections", "purge", "--db", filled]) == 2
    assert "--before DATE, or --all" in capsys.readouterr().err
    assert cli.main(["corrections", "purge", "--before", "2000-01-01", "--db", filled]) == 0
    assert cli.main(["corrections", "purge", "--all", "--db", filled]) == 0
    assert "60 corrections deleted" in capsys.readouterr().out and open_store(filled).count() == 0


@pytest.mark.slow
def test_finetune_writes_a_model_that_reads_and_says_before_and_after(filled, tmp_path, capsys):
    assert cli.main(["finetune", "--db", filled, "--steps", "5", "--out", str(tmp_path / "ft")]) == 0
    out = capsys.readouterr().out
    assert "held-out corrections" in out and "MNIST test" in out and "->" in out
    seven = tmp_path / "seven.png"
    Image.fromarray(255 - data.load_mnist("test")[0][0]).save(seven)
    assert cli.main(["predict", str(seven), "--model", str(tmp_path / "ft" / "model.pt")]) == 0
    assert "7" in capsys.readouterr().out


@pytest.mark.slow
def test_finetune_keeps_the_old_model_when_mnist_falls(filled, tmp_path, capsys, monkeypatch):
    from digitrec.training import finetune

    monkeypatch.setattr(finetune, "MAX_MNIST_DROP", -1.0)  # no model can pass: the refusal path
    assert cli.main(["finetune", "--db", filled, "--steps", "5", "--out", str(tmp_path / "ft")]) == 1
    assert "not written" in capsys.readouterr().out
    assert not (tmp_path / "ft" / "model.pt").exists()


@pytest.mark.network
def test_a_broken_database_is_a_503_that_names_no_server_path(tmp_path, digits):
    with live_server(tmp_path) as s:
        body = {"image": base64.b64encode(_png(digits[0][0])).decode(), "correct": "7"}
        assert httpx.post(f"{s.url}/api/v1/corrections", json=body, timeout=30).status_code == 201
        db_file = tmp_path / "corrections.db"
        db_file.write_bytes(b"this is no database any more " * 1000)
        r = httpx.post(f"{s.url}/api/v1/corrections", json=body, timeout=30)
        assert r.status_code == 503 and "database failed" in r.json()["error"]
        assert str(tmp_path) not in r.text and "sqlite" not in r.text
        assert httpx.get(f"{s.url}/api/v1/health", timeout=10).status_code == 200, "still serving"


@pytest.mark.parametrize("correct, kind", [("²", "digit"), ("٤", "digit"), ("9٤1", "number"), ("12a", "number")])
def test_a_correction_of_other_than_ascii_digits_is_a_400_and_nothing_is_stored(server, digits, correct, kind):
    before = open_store(server.db).count()
    body = {"image": base64.b64encode(_png(digits[0][3])).decode(), "correct": correct, "kind": kind}
    r = httpx.post(f"{server.url}/api/v1/corrections", json=body, timeout=30)
    assert r.status_code == 400 and "0-9" in r.json()["error"]
    assert open_store(server.db).count() == before


@pytest.mark.parametrize("field", ["read", "writer"])
def test_control_characters_in_read_or_writer_are_a_400(server, digits, field):
    body = {"image": base64.b64encode(_png(digits[0][3])).decode(), "correct": "7", field: "\x1b[2J\x1b]0;owned\x07"}
    r = httpx.post(f"{server.url}/api/v1/corrections", json=body, timeout=30)
    assert r.status_code == 400 and "control characters" in r.json()["error"] and field in r.json()["error"]


def test_import_refuses_a_superscript_digit_by_line(tmp_path, digits, capsys):
    Image.fromarray(digits[0][0]).save(tmp_path / "0.png")
    (tmp_path / "r.csv").write_text("image,correct\n0.png,7\n0.png,\u00b2\n", encoding="utf-8")
    assert cli.main(["corrections", "import", str(tmp_path / "r.csv"), "--db", f"sqlite:///{tmp_path / 'c.db'}"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "0-9" in err and "Traceback" not in err


def _store_raw(url: str, kind: str, correct: str, read: str = "") -> None:
    """A row as an older digitrec (no checks) could have stored it, written past the store's checks."""
    import sqlite3

    png = open_store(url).rows()[0].image_png
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("INSERT INTO corrections (created_at, kind, image_png, read, correct, source) VALUES "
                   "('2026-01-01 00:00:00', ?, ?, ?, ?, 'api')", (kind, png, read, correct))


def test_export_leaves_out_and_counts_a_stored_row_of_other_digits(filled, tmp_path, capsys):
    _store_raw(filled, "digit", "\u00b2")
    _store_raw(filled, "number", "9\u00b21")
    out = tmp_path / "d.npz"
    assert cli.main(["corrections", "export", "--db", filled, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "60 digits written" in said and "2 corrections left out" in said


def test_stats_escape_control_characters_a_stored_row_holds(filled, capsys):
    _store_raw(filled, "digit", "3", read="\x1b[2J")
    assert cli.main(["corrections", "stats", "--db", filled]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "read \\x1b[2J -> was 3: 1" in out


def _canvas_png(side: int) -> bytes:
    """A transparent canvas of side x side-1 pixels holding one stroke: a few tens of kB, heavy to decode."""
    alpha = np.zeros((side - 1, side), np.uint8)
    for i in range(side // 3, 2 * side // 3):
        alpha[i, i - side // 60:i + side // 60] = 255
    rgba = np.dstack([np.zeros_like(alpha)] * 3 + [alpha])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def test_large_corrections_wait_in_the_slow_lane_and_one_answered_503_is_not_stored(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    png = _canvas_png(1999)  # under the test server's 4,000,000-pixel limit; ~150 MB to decode
    with live_server(tmp_path) as s:
        rss0 = _rss_mb(s.pid, "VmRSS")

        def send(i):
            return httpx.post(f"{s.url}/api/v1/corrections", files={"image": ("c.png", png, "image/png")},
                              data={"correct": "7", "writer": f"lane-{i}"}, timeout=60).status_code
        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(send, range(12)))
        time.sleep(4)  # whatever a worker still had in hand when its request was answered
        grown = _rss_mb(s.pid, "VmHWM") - rss0
        stored = sum(1 for c in open_store(s.db).rows() if (c.writer or "").startswith("lane-"))
    assert set(statuses) <= {201, 429, 503}  # 429: past the client's share of large work
    assert stored == statuses.count(201)  # what was answered 503 is not in the store
    assert grown < 600, f"{grown:.0f} MB: the decodes ran side by side"


def _rss_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024
