"""Accuracy on realistic classes of input ("wild" contexts), and rejection of pictures with no digit.

Each context of ``digitrec.data.render.contexts`` turns MNIST test digits into what users hand in (a
canvas drawing, a tight crop from another OCR tool, a boxed form cell, a small digit on a photographed
sheet, squared or ruled paper, coloured ink, chalk, a low-quality JPEG ...); every picture goes through
``Recognizer.predict_batch`` as a user's would. Per context it prints the accuracy (a ``None`` answer
counts wrong), the share answered ``None`` and the seconds spent reading (rendering excluded); then the
minimum and mean accuracy over the contexts; then, for each set of non-digits (blank paper photos, dots,
letters, scribbles, marks, lines), the share answered ``None``. When predictions carry ``unsure`` it
also prints how many errors and correct answers are flagged for a person to check.

Digits come from a fixed half of the MNIST test set: ``--split tuning`` (even indices) is the one to
tune thresholds on, ``--split report`` (odd indices) the one to quote. The pictures depend only on the
seed, so two runs (or two models) read the same pictures.

    python benchmarks/wild.py [--split report|tuning] [--n 1000] [--n-large 200] [--contexts a,b,...]
                              [--json out.json] [--model PATH] [--seed 0]
    python benchmarks/wild.py --mnist-only      # all of MNIST test: accuracy and the unsure flag
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _machine import header
from tqdm import tqdm

import digitrec
from digitrec import data
from digitrec.data.render.contexts import CONTEXTS
from digitrec.data.render.non_digits import NON_DIGITS
from digitrec.data.render.seeds import split

CHUNK = 100  # pictures rendered and read at once: big enough to batch, small enough for 1600x1200 photos


def _read(r, render, n: int, desc: str) -> tuple[list, float]:
    """Predictions for ``render(start, stop)`` over ``range(n)`` in chunks, and the seconds spent reading."""
    preds, seconds = [], 0.0
    with tqdm(total=n, desc=desc, unit="img", leave=False) as bar:
        for start in range(0, n, CHUNK):
            pictures = render(start, min(n, start + CHUNK))
            t0 = time.perf_counter()
            preds += r.predict_batch(pictures)
            seconds += time.perf_counter() - t0
            bar.update(len(pictures))
    return preds, seconds


def _digit_row(preds: list, labels: np.ndarray, seconds: float, with_unsure: bool) -> dict:
    digits = np.array([-1 if p.digit is None else p.digit for p in preds])
    correct = digits == labels
    row = {"images": len(preds), "accuracy": float(correct.mean()), "none": float((digits == -1).mean()),
           "seconds": seconds}
    if with_unsure:
        unsure = np.array([bool(p.unsure) for p in preds])
        wrong = ~correct & (digits != -1)  # a None is already rejected; the question is the confident misreads
        row["errors_flagged"] = float(unsure[wrong].mean()) if wrong.any() else float("nan")
        row["correct_flagged"] = float(unsure[correct].mean()) if correct.any() else float("nan")
        accepted = ~unsure & (digits != -1)
        row["accepted"] = float(accepted.mean())
        row["accuracy_accepted"] = float(correct[accepted].mean()) if accepted.any() else float("nan")
    return row


def _non_digit_row(preds: list, seconds: float, with_unsure: bool) -> dict:
    none = np.array([p.digit is None for p in preds])
    row = {"images": len(preds), "none": float(none.mean()), "seconds": seconds}
    if with_unsure:
        row["rejected_or_flagged"] = float((none | np.array([bool(p.unsure) for p in preds])).mean())
    return row


def _mnist_all(r) -> None:
    x, y = data.load_mnist("test")
    preds = r.predict_batch(x)
    right = np.array([p.digit == t for p, t in zip(preds, y)])
    unsure = np.array([bool(getattr(p, "unsure", False)) for p in preds])
    print(f"MNIST test, all {len(y)} through predict_batch: accuracy {right.mean():.4f} ({(~right).sum()} errors); "
          f"unsure: {unsure[right].mean():.4f} of the right reads, {unsure[~right].mean():.3f} of the errors; "
          f"accuracy on the {(~unsure).mean():.3f} accepted: {right[~unsure].mean():.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("report", "tuning"), default="report", help="half of the MNIST test set")
    p.add_argument("--n", type=int, default=1000, help="digits per context (the first N of the split)")
    p.add_argument("--n-large", type=int, default=200, help="digits per big-picture context and blank photos")
    p.add_argument("--contexts", help="comma-separated contexts and non-digit sets (default: all)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pictures")
    p.add_argument("--mnist-only", action="store_true",
                   help="only read all 10,000 MNIST test digits: accuracy, and the unsure flag on right and wrong reads")
    a = p.parse_args()
    names = a.contexts.split(",") if a.contexts else list(CONTEXTS) + list(NON_DIGITS)
    unknown = [n for n in names if n not in CONTEXTS and n not in NON_DIGITS]
    if unknown:
        p.error(f"unknown context {', '.join(unknown)}; known: {', '.join(list(CONTEXTS) + list(NON_DIGITS))}")

    print(header())
    r = digitrec.load(a.model)
    if a.mnist_only:
        _mnist_all(r)
        return
    x, y = split(*data.load_mnist("test"), a.split)
    print(f"# model {a.model or 'bundled'}, split {a.split} ({len(x)} digits), seed {a.seed}")
    with_unsure = None
    contexts, non_digits = {}, {}
    for name in (n for n in names if n in CONTEXTS):
        ctx = CONTEXTS[name]
        n = min(a.n_large if ctx.large else a.n, len(x))
        preds, seconds = _read(r, lambda s, e: ctx.render(x[s:e], a.seed, start=s), n, name)
        with_unsure = hasattr(preds[0], "unsure") if with_unsure is None else with_unsure
        contexts[name] = _digit_row(preds, y[:n], seconds, with_unsure)
    for name in (n for n in names if n in NON_DIGITS):
        nd = NON_DIGITS[name]
        preds, seconds = _read(r, lambda s, e: nd.render(e - s, a.seed, start=s), a.n_large if nd.large else a.n,
                               name)
        with_unsure = hasattr(preds[0], "unsure") if with_unsure is None else with_unsure
        non_digits[name] = _non_digit_row(preds, seconds, with_unsure)

    flags = f" {'err_unsure':>10s} {'ok_unsure':>9s}" if with_unsure else ""
    print(f"\n{'context':20s} {'images':>6s} {'accuracy':>8s} {'none':>6s} {'seconds':>7s}{flags}")
    for name, c in contexts.items():
        flags = f" {c['errors_flagged']:10.3f} {c['correct_flagged']:9.3f}" if with_unsure else ""
        print(f"{name:20s} {c['images']:6d} {c['accuracy']:8.4f} {c['none']:6.3f} {c['seconds']:7.1f}{flags}")
    summary = {}
    for label, keep in (("excluding clean", lambda n: n != "clean"), ("including clean", lambda n: True)):
        accs = {n: c["accuracy"] for n, c in contexts.items() if keep(n)}
        if accs:
            worst = min(accs, key=accs.get)
            summary[label] = {"min": accs[worst], "min_context": worst, "mean": float(np.mean(list(accs.values())))}
            print(f"{'min, mean ' + label:26s} {accs[worst]:.4f} ({worst}), {summary[label]['mean']:.4f}")
    if non_digits:
        flags = f" {'rejected_or_unsure':>18s}" if with_unsure else ""
        print(f"\n{'not a digit':20s} {'images':>6s} {'none':>6s}{flags}")
        for name, s in non_digits.items():
            flags = f" {s['rejected_or_flagged']:18.3f}" if with_unsure else ""
            print(f"{name:20s} {s['images']:6d} {s['none']:6.3f}{flags}")
    if not with_unsure:
        print("\nunsure: n/a")
    elif "clean" in contexts:
        c = contexts["clean"]
        print(f"\nMNIST accuracy on accepted (not unsure) digits: {c['accuracy_accepted']:.4f}"
              f" ({c['accepted']:.3f} of them accepted)")
    if a.json:
        Path(a.json).write_text(json.dumps({"split": a.split, "seed": a.seed, "model": a.model, "contexts": contexts,
                                            "non_digits": non_digits, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
