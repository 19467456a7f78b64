"""The README's table of headline figures, measured in one run of the bundled model, so the README never drifts.

Measured here: MNIST test accuracy through ``predict_batch``; the mean over the MNIST-C-style corruptions and
the not-a-digit AUROC against Fashion-MNIST (``evaluation.robustness``); every wild context's accuracy, the
misreads flagged over them and MNIST's right reads flagged (``wild.py --json``, run here unless ``--wild``
names its output); 28x28 digits end to end, a canvas PNG's p50 and a 12-MP phone photo's p50 (the helpers of
``inference.py``). The rows for training time, number fields, forms, the page and fine-tuning come from their
own scripts (named in the table); this one does not rerun them.

    python benchmarks/headline.py [--wild wild.json] [--n 1000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _machine import header
from inference import best_rate, canvas_pngs, p50_ms, photo_jpeg, photo_times

import digitrec
from digitrec import data
from digitrec.evaluation.robustness import not_a_digit_sets, robustness

HERE = Path(__file__).parent


def _wild(path: str | None) -> dict:
    """The wild benchmark's JSON: ``path``, or a run of its report split made now."""
    if path:
        return json.loads(Path(path).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "wild.json"
        subprocess.run([sys.executable, str(HERE / "wild.py"), "--split", "report", "--n", "500", "--n-large", "100",
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wild", help="the JSON that `wild.py --split report --n 500 --n-large 100 --json` wrote")
    ap.add_argument("--n", type=int, default=1000, help="MNIST test images for the corruptions (default: 1000)")
    a = ap.parse_args()
    print(header())
    r = digitrec.load()
    x, y = data.load_mnist("test")
    preds = r.predict_batch(x)
    right = np.array([p.digit == t for p, t in zip(preds, y)])
    accuracy, right_flagged = float(right.mean()), float(np.mean([p.unsure for p, ok in zip(preds, right) if ok]))
    table = robustness(r, x[:a.n], y[:a.n], not_a_digit_sets(a.n))
    wild = _wild(a.wild)
    contexts = {k: v for k, v in wild["contexts"].items() if k != "clean"}
    errors = sum(round(v["images"] * (1 - v["accuracy"])) for v in contexts.values())
    caught = sum(round(v["images"] * (1 - v["accuracy"]) * v["errors_flagged"]) for v in contexts.values())
    low = min(contexts, key=lambda k: contexts[k]["accuracy"])
    batch_rate = best_rate(lambda: r.predict_batch(x[:10000]), 10000, 3)
    pngs = canvas_pngs(x[:50])
    canvas = p50_ms(lambda: r.predict(pngs[0]), 200)
    photo, decode = photo_times(r, photo_jpeg(x[0]), 10)
    fashion = table["not_a_digit"].get("fashion-mnist", {}).get("auroc")
    rows = [
        ("MNIST test accuracy, bundled model through `predict_batch`", f"{100 * accuracy:.2f} %"),
        (f"mean accuracy over {len(table['corruptions'])} MNIST-C-style corruptions (first {a.n:,} test digits)",
         f"{100 * table['mean_corruption_accuracy']:.2f} %"),
        (f"mean accuracy over {len(contexts)} realistic classes of input (`benchmarks/wild.py`)",
         f"{100 * np.mean([v['accuracy'] for v in contexts.values()]):.1f} % (lowest: {low}, "
         f"{100 * contexts[low]['accuracy']:.0f} %)"),
        ("misreads flagged `unsure` over those classes / right MNIST reads flagged",
         f"{100 * caught / max(errors, 1):.0f} % / {100 * right_flagged:.1f} %"),
        (f"not-a-digit AUROC against Fashion-MNIST (first {a.n:,})", "not installed" if fashion is None else f"{fashion:.3f}"),
        ("batch of 28x28 digits, end to end (PyTorch) / a 280x280 canvas PNG, p50",
         f"{batch_rate:,.0f} images/s / {canvas:.2f} ms"),
        ("a 12-megapixel phone photo of a digit, bytes to answer (PIL's decode alone)", f"{photo:.0f} ms ({decode:.0f} ms)"),
        ("`fast` preset: time to 99 % test accuracy", "`benchmarks/time_to_accuracy.py`"),
        ("number fields, amounts, dates, boxes", "`benchmarks/sequence.py`"),
        ("scanned form pages", "`benchmarks/forms.py`"),
        ("the page: pen lifted to answer", "`benchmarks/page_latency.py`"),
        ("fine-tuning on one writer's corrections", "`benchmarks/finetune.py`"),
    ]
    print("\n| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")


if __name__ == "__main__":
    main()
