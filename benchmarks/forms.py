"""Forms at volume: ``digitrec bulk`` over scanned form pages, field by field, locally and on Ray Data.

The pages are ``data.form_pages.make_form_pages`` of MNIST *test* digits (seeded): six fields each (a ZIP
code, an amount, a date, 8 boxed digits with a Luhn check digit, two single digits), every page turned up
to 3 degrees, scaled by up to 10 %, shifted, saved as a JPEG of quality 60-90, a third printed in grey on
coloured paper. Amounts and dates are scored on their digits (the reader leaves separators out).

Prints: field accuracy per field, page accuracy (every field right), the share of fields flagged unsure
and the accuracy of the rest, and pages/s of the whole command (decode, register, read, write) for the
local engine and, with ``--ray``, for Ray Data on a local Ray of the same number of workers.

    PYTHONPATH=src python benchmarks/forms.py [--pages 200] [--workers 2] [--ray] [--seed 0]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import header

from digitrec import data
from digitrec.batch.bulk import bulk
from digitrec.data.render.form_pages import FORM_TEMPLATE, make_form_pages
from digitrec.forms import load_template


def _score(out: Path, truth: dict[str, dict]) -> dict:
    with open(out, newline="") as f:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(f)}
    names = [f["name"] for f in FORM_TEMPLATE["fields"]]
    right = {n: [rows[p][n] == t[n] for p, t in truth.items()] for n in names}
    sure = [rows[p][n] == t[n] for p, t in truth.items() for n in names if rows[p][f"{n}_unsure"] == "False"]
    flagged = sum(rows[p][f"{n}_unsure"] == "True" for p in truth for n in names)
    return {"per_field": {n: float(np.mean(v)) for n, v in right.items()},
            "fields": float(np.mean([v for vs in right.values() for v in vs])),
            "pages": float(np.mean([all(right[n][i] for n in names) for i in range(len(truth))])),
            "flagged": flagged / (len(truth) * len(names)), "sure_accuracy": float(np.mean(sure)) if sure else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="also run the Ray Data engine on the same pages")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(header())
    x, y = data.load_mnist("test")
    pages = make_form_pages(x, y, args.pages, seed=args.seed)
    template = load_template(FORM_TEMPLATE)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pages"
        folder.mkdir()
        truth = {}
        for i, p in enumerate(pages):
            (folder / f"page{i:04d}.jpg").write_bytes(p.jpeg)
            truth[f"page{i:04d}.jpg"] = p.values
        engines = ["local", "ray"] if args.ray else ["local"]
        for engine in engines:
            out = Path(tmp) / f"{engine}.csv"
            t0 = time.perf_counter()
            bulk([folder], out, template=template, workers=args.workers, engine=engine, progress=False)
            seconds = time.perf_counter() - t0
            s = _score(out, truth)
            print(f"{engine:5s} {args.pages} pages, {args.workers} workers: {args.pages / seconds:.1f} pages/s "
                  f"({seconds:.1f} s, start-up included)")
            print(f"      fields right {s['fields']:.2%}, pages right {s['pages']:.2%}; flagged unsure "
                  f"{s['flagged']:.2%}, not flagged right {s['sure_accuracy']:.2%}")
            print("      " + ", ".join(f"{n} {a:.1%}" for n, a in s["per_field"].items()))


if __name__ == "__main__":
    main()
