"""The review page in a real Chromium: a bulk run's unsure field is corrected with the keyboard alone, and
the results file and the corrections store show it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import live_server
from playwright.sync_api import expect, sync_playwright

from digitrec import data
from digitrec.apps.store import open_store
from digitrec.batch.bulk import bulk
from digitrec.data.render.form_pages import FORM_TEMPLATE, make_form_pages
from digitrec.forms import load_template

CHROMIUM = "/usr/bin/chromium"
ANSWER_MS = 60_000

pytestmark = [pytest.mark.browser, pytest.mark.network, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]


@pytest.fixture
def results(tmp_path):
    """One scanned form read by bulk, with a check on code_a that no value passes: it is always unsure."""
    x, y = data.load_mnist("test")
    [form] = make_form_pages(x[:500], y[:500], 1, seed=2)
    (tmp_path / "form.jpg").write_bytes(form.jpeg)
    template = json.loads(json.dumps(FORM_TEMPLATE))
    template["fields"][4]["validate"] = {"regex": "x"}
    bulk([tmp_path / "form.jpg"], tmp_path / "results.csv", template=load_template(template), workers=1,
         progress=False)
    return tmp_path / "results.csv"


def test_an_unsure_field_is_corrected_with_the_keyboard_and_the_csv_shows_it(results, tmp_path):
    with live_server(tmp_path, "--review", str(results)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        page.goto(server.url + "/review")
        where = page.locator("#where")
        expect(where).to_be_visible(timeout=ANSWER_MS)
        value = page.get_by_label("Right value")
        while "code_a" not in where.text_content():  # other doubtful fields: confirmed as read, by Enter
            before = where.text_content()
            value.press("Enter")
            expect(where).not_to_have_text(before, timeout=ANSWER_MS)
        assert page.locator("#picture").get_attribute("src").startswith("data:image/png;base64,")
        expect(page.locator("#problem")).to_contain_text("does not match")
        value.fill("5")
        value.press("Enter")
        expect(page.locator("#left")).to_contain_text("fields are checked", timeout=ANSWER_MS)
        browser.close()
    with open(results, newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["code_a"], row["code_a_unsure"]) == ("5", "False")
    stored = [r for r in open_store(server.db).rows() if r.source == "review"]
    assert stored and stored[-1].correct == "5" and stored[-1].kind == "digit"
