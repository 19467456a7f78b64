"""The page in Chromium: milliseconds from the pen lifting to the answer on screen, one digit and a number.

Starts ``digitrec serve`` on loopback, opens the page in Debian's headless Chromium (Playwright), draws a
"1" on the Draw pad (``--runs`` times, clearing between) and "17" on the number pad, and times each in
the browser: from the ``pointerup`` event to the answer's digits in the page.

    PYTHONPATH=src python benchmarks/page_latency.py [--runs 20]
"""
from __future__ import annotations

import argparse
import statistics

from _machine import header
from _server import start_server
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# a pointerup on the pad arms the clock; the first answer with digits in the result stops it
WATCH = """([pad, result]) => { window.__lift = null; window.__answer = null;
  document.querySelector(pad).addEventListener('pointerup', () => { window.__lift = performance.now(); },
                                              {capture: true, once: true});
  const out = document.querySelector(result);
  new MutationObserver((_, o) => { if (window.__lift !== null && out.querySelector('.digit')) {
    window.__answer = performance.now(); o.disconnect(); } }).observe(out, {childList: true, subtree: true}); }"""


def _stroke(page, pad: str, points) -> None:
    box = page.locator(pad).bounding_box()
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
    page.mouse.up()


def _timed(page, pad: str, result: str, strokes) -> float:
    for s in strokes[:-1]:
        _stroke(page, pad, s)
    page.wait_for_timeout(300)  # the earlier strokes' answers are in: time the last stroke's alone
    page.evaluate(WATCH, [pad, result])
    _stroke(page, pad, strokes[-1])
    page.wait_for_function("window.__answer !== null", timeout=30_000)
    return page.evaluate("window.__answer - window.__lift")


def _summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return f"{name:22s} n={len(ms):3d}  p50 {statistics.median(ms):6.1f} ms  p90 {q[-1]:6.1f} ms  max {max(ms):6.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    print(header())
    proc, url = start_server()
    one = [[(0.5, 0.15), (0.48, 0.85)]]
    number = [[(0.3, 0.15), (0.29, 0.85)], [(0.4, 0.2), (0.52, 0.2), (0.44, 0.85)]]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(url + "/")
            page.wait_for_selector("#sketchpad")
            digit_ms, number_ms = [], []
            for _ in range(args.runs):
                digit_ms.append(_timed(page, "#sketchpad", "#draw-result", one))
                page.get_by_role("button", name="Clear").first.click()
            page.get_by_role("tab", name="Write a number").click()
            page.wait_for_selector("#numberpad")
            for _ in range(args.runs):
                number_ms.append(_timed(page, "#numberpad", "#number-result", number))
                page.locator("[data-clear=numberpad]").click()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    print(_summary("one digit (Draw)", digit_ms))
    print(_summary("two digits (number)", number_ms))


if __name__ == "__main__":
    main()
