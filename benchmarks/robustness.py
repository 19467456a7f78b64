"""Robustness of a model: MNIST-C-style corruptions of the MNIST test set and "not a digit" rejection.

Prints accuracy per corruption (through the full preprocessing, rejected images counted wrong),
their mean, and for each not-a-digit set (Fashion-MNIST test, synthetic letters in other fonts
than training used, doodles, shapes, noise) the share rejected and the AUROC of the digit score
against clean MNIST test digits. ``--json`` also writes the table to a file. ``digitrec report``
shows the same table (same seed and sets), on its first 1,000 test images by default.

    python benchmarks/robustness.py [--model PATH] [--n 10000] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

import digitrec
from digitrec import data
from digitrec.evaluation.robustness import not_a_digit_sets, robustness


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint (default: the bundled model)")
    p.add_argument("--n", type=int, default=10000, help="MNIST test images (the first N) and images per non-digit set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table to this file")
    a = p.parse_args()
    print("command: python " + " ".join(sys.argv))
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}; model {a.model or 'bundled'}")
    r = digitrec.load(a.model)
    x, y = data.load_mnist("test")
    t0 = time.perf_counter()
    table = robustness(r, x[:a.n], y[:a.n], not_a_digit_sets(a.n, a.seed), seed=a.seed)
    print(f"{table['n']} test images, {time.perf_counter() - t0:.0f} s; reject threshold {table['reject_threshold']:.3f}")
    print(f"{'condition':16s} {'accuracy':>8s} {'rejected':>8s}")
    print(f"{'clean':16s} {table['clean']['accuracy']:8.4f} {table['clean']['rejected']:8.4f}")
    for name, c in table["corruptions"].items():
        print(f"{name:16s} {c['accuracy']:8.4f} {c['rejected']:8.4f}")
    print(f"{'mean corruption':16s} {table['mean_corruption_accuracy']:8.4f}")
    print(f"\n{'not a digit':20s} {'images':>6s} {'rejected':>8s} {'AUROC':>7s}")
    for name, s in table["not_a_digit"].items():
        print(f"{name:20s} {s['n']:6d} {s['rejected']:8.4f} {s['auroc']:7.4f}")
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
