"""CSV cells that a spreadsheet cannot run as formulas, the same in Python and in the page's JavaScript."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from digitrec.apps.page import SCRIPT
from digitrec.data.csvcell import JS_TEXT_CELL, restore, text_cell

CASES = ["=cmd|' -C calc'!A0.png", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted", "plain.png", "-12.50", "+3",
         "-1,250.00", "7", "", "-", "=1"]


@pytest.mark.parametrize("text", ["=cmd|' -C calc'!A0.png", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1", "-"])
def test_a_text_a_spreadsheet_would_run_is_written_with_a_leading_quote(text):
    assert text_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-12.50", "+3", "-1,250.00", "plain.png", "", 7, -1.5, True, None])
def test_numbers_and_plain_text_are_written_as_they_are(value):
    assert text_cell(value) == value


@pytest.mark.parametrize("text", CASES)
def test_restore_gives_back_what_was_written(text):
    assert restore(text_cell(text)) == text


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_page_writes_its_csv_cells_by_the_same_rule():
    assert JS_TEXT_CELL in SCRIPT
    values = [*CASES, 7, -1.5, None, True]
    js = f"const f = {JS_TEXT_CELL}; console.log(JSON.stringify({json.dumps(values)}.map(f)));"
    out = subprocess.run(["node", "-e", js], capture_output=True, text=True, timeout=60, check=True).stdout
    expected = [("" if v is None else str(text_cell(v)).replace("True", "true")) for v in values]
    assert json.loads(out) == expected
