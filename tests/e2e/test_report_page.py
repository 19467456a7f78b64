"""The report renders offline in a real headless Chromium: every section, every figure, no network request."""
from pathlib import Path

import pytest

from digitrec.apps import cli

CHROMIUM = "/usr/bin/chromium"
HEADINGS = ["Data (EDA)", "Training", "Scores", "Model comparison", "Errors", "ROC and calibration",
            "Real-world input"]
FIGURES = {"class-counts", "pixel-histogram", "mean-images", "embedding", "training-curves", "per-class",
           "confusion", "confident-errors-0", "roc", "reliability", "preprocessing-before-after", "robustness"}

pytestmark = [pytest.mark.browser, pytest.mark.slow,  # renders a report first
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")]


@pytest.fixture(scope="module")
def page_file(small_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("report-page")
    assert cli.main(["report", "--model", str(small_model), "--out", str(root / "out"),
                     "--limit", "300", "--sample", "200", "--robust-n", "50"]) == 0
    return root / "out" / "report.html"


def test_report_renders_offline_in_chromium(page_file):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests, failed = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")

            assert page.locator("section > h2").all_inner_texts() == HEADINGS
            for section in page.locator("section").all():
                box = section.bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0

            figures = page.eval_on_selector_all("figure[data-figure] img", """imgs => imgs.map(img => {
                const r = img.getBoundingClientRect();
                return {name: img.closest('figure').dataset.figure, loaded: img.complete,
                        natural: img.naturalWidth * img.naturalHeight, shown: r.width * r.height};
            })""")
            assert {f["name"] for f in figures} == FIGURES
            for f in figures:
                assert f["loaded"] and f["natural"] > 0 and f["shown"] > 0, f["name"]

            assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
            assert failed == []
        finally:
            browser.close()
