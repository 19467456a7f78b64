"""The review queue's write-back into a bulk run's results file."""
from __future__ import annotations

import csv
import json
import os
import stat

import pytest

from digitrec.apps.review import ReviewQueue
from digitrec.batch.bulk import review_path
from digitrec.batch.rows import columns

FORMULA = "=cmd|' -C calc'!A0.png"


def _results(tmp_path, file: str = FORMULA):
    """A results CSV of one unsure page named ``file``, written as bulk writes it, and its review file."""
    out = tmp_path / "results.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, columns(None))
        w.writeheader()
        w.writerow({"file": "'" + file if file.startswith("=") else file, "page": 1, "value": "1",
                    "value_confidence": 0.4, "value_unsure": True, "error": ""})
    review_path(out).write_text(json.dumps({"file": file, "page": 1, "field": "value", "value": "1",
                                            "alternatives": ["7"], "problem": None, "picture": None}) + "\n")
    return out


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_an_answer_is_written_back_and_a_file_name_stays_text_a_spreadsheet_cannot_run(tmp_path):
    out = _results(tmp_path)
    ReviewQueue(out).answer(0, "7")
    [row] = _rows(out)
    assert (row["file"], row["value"], row["value_unsure"]) == ("'" + FORMULA, "7", "False")


def test_an_answer_of_other_than_ascii_digits_is_a_400_and_nothing_is_written(tmp_path):
    from digitrec.apps.limits import ApiError

    out = _results(tmp_path, "a.png")
    before = out.read_text()
    for value in ("\u00b2", "\u0664"):
        with pytest.raises(ApiError) as e:
            ReviewQueue(out).answer(0, value)
        assert e.value.status == 400 and "0-9" in str(e.value)
    assert out.read_text() == before


def test_the_rewritten_results_file_is_its_owners_only(tmp_path):
    old = os.umask(0o022)
    try:
        out = _results(tmp_path, "a.png")
        ReviewQueue(out).answer(0, "7")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def _many_results(tmp_path, rows: int, unsure: int):
    """A results CSV of ``rows`` pages, the first ``unsure`` of them in the review file."""
    out = tmp_path / "results.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, columns(None))
        w.writeheader()
        w.writerows({"file": f"p{i}.png", "page": 1, "value": "1", "value_confidence": 0.4,
                     "value_unsure": i < unsure, "error": ""} for i in range(rows))
    review_path(out).write_text("".join(json.dumps({"file": f"p{i}.png", "page": 1, "field": "value", "value": "1",
                                                    "alternatives": [], "problem": None, "picture": None}) + "\n"
                                        for i in range(unsure)))
    return out


def test_an_answer_costs_the_same_however_large_the_results_file(tmp_path):
    import time

    out = _many_results(tmp_path, 200_000, 3)
    queue = ReviewQueue(out)
    t0 = time.perf_counter()
    queue.answer(0, "7")
    assert time.perf_counter() - t0 < 0.1  # the 200,000 rows are not rewritten for one answer


def test_answers_given_twice_merge_into_one_value_and_a_restart_resumes_them(tmp_path):
    out = _many_results(tmp_path, 5, 3)
    queue = ReviewQueue(out)
    for value in ("4", "5", "6"):
        queue.answer(0, value)
    queue.answer(1, "9")
    assert ReviewQueue(out).items[0]["reviewed"] == "6"  # a server stopped here resumes, and merges on opening
    assert [r["value"] for r in _rows(out)] == ["6", "9", "1", "1", "1"]
    assert [r["value_unsure"] for r in _rows(out)][:3] == ["False", "False", "True"]
    assert ReviewQueue(out).merge() == 2
    lines = [json.loads(line) for line in review_path(out).read_text().splitlines()]
    assert [line.get("reviewed") for line in lines] == [None, None, None, "6", "9"]  # one answer line per item
