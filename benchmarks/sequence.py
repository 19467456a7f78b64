"""Multi-digit reading: whole-string and per-digit accuracy on synthetic number fields, and read time.

Each field is a string of MNIST digits (the *test* split unless ``--split train``, the digits the line
model was trained on) drawn by ``digitrec.fields``: pasted left to right on white paper, every digit
scaled to a random height, shifted off a common baseline, with a random horizontal gap between
neighbouring ink boxes; a negative gap makes neighbours touch or overlap. Fixed seeds: the same command
builds the same fields.

Conditions (H = the field's nominal digit height, 110 px on 200 px tall canvases):
  spaced-5    5 digits on 800x200, gaps +0.05..+0.40 H
  touching-5  5 digits on 800x200, gaps -0.12..0 H (every pair touches or overlaps, by at most a quarter
              of the narrower digit's width)
  mixed-3-10  3-10 digits, gaps -0.12..+0.40 H, the line sloping up to 3 degrees, canvas as wide as needed

Run:  PYTHONPATH=src python benchmarks/sequence.py [--model PATH] [--line-model PATH] [--strings 200]
      [--split test] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

import digitrec
from digitrec import data
from digitrec.data.synthetic import Condition, Field, make_field
from digitrec.inference import reader

HEIGHT = 110  # nominal digit ink height, px
CONDITIONS = (
    Condition("spaced-5", (5, 5), (0.05, 0.40), canvas=(800 / HEIGHT, 200 / HEIGHT)),
    Condition("touching-5", (5, 5), (-0.12, 0.0), canvas=(800 / HEIGHT, 200 / HEIGHT)),
    Condition("mixed-3-10", (3, 10), (-0.12, 0.40), slope_deg=3.0),
)


def make_fields(split: str, cond: Condition, count: int, seed: int) -> list[Field]:
    """``count`` fields for one condition, the same ones for the same arguments."""
    x, y = data.load_mnist(split)
    rng = np.random.default_rng([seed, CONDITIONS.index(cond)])
    return [make_field(x, y, cond, rng, HEIGHT) for _ in range(count)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the bundled model)")
    ap.add_argument("--line-model", help="line model made by `python -m digitrec.sequence_train` "
                                         "(default: the bundled one)")
    ap.add_argument("--strings", type=int, default=200, help="fields per condition (default: 200)")
    ap.add_argument("--split", choices=["test", "train"], default="test", help="digits drawn from (default: test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice); on a busy machine 1 "
                                                "is faster, the model calls being small")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    r = digitrec.load(args.model)
    line_model = reader.load_line_model(args.line_model)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}; "
          f"model {args.model or 'bundled default'}, line model {args.line_model or 'bundled'}")
    print(f"digits from MNIST {args.split}; box ok: a correctly read digit's box overlaps its ink box by IoU >= 0.5")
    print(f"{'condition':<12} {'strings':>7} {'whole-string':>12} {'per-digit':>9} {'length ok':>9} {'box ok':>7} "
          f"{'ms/field':>8}")
    five_digit_ms = []
    for cond in CONDITIONS:
        fields = make_fields(args.split, cond, args.strings, args.seed)
        reader.read_number(r, fields[0].image, line_model)  # warm-up: the first call pays for lazy initialisation
        right = digits_right = digits_total = length_ok = boxes_ok = boxes_total = 0
        times = []
        for f in fields:
            t = time.perf_counter()
            reading = reader.read_number(r, f.image, line_model)
            times.append(time.perf_counter() - t)
            right += reading.text == f.text
            length_ok += len(reading.text) == len(f.text)
            digits_right += _aligned_matches(reading.text, f.text)
            digits_total += len(f.text)
            if reading.text == f.text:
                boxes_ok += sum(_iou(p.box, b) >= 0.5 for p, b in zip(reading.digits, f.boxes))
                boxes_total += len(f.boxes)
        if cond.canvas is not None and cond.digits == (5, 5):
            five_digit_ms += times
        n = len(fields)
        print(f"{cond.name:<12} {n:>7} {right / n:>12.4f} {digits_right / digits_total:>9.4f} "
              f"{length_ok / n:>9.4f} {boxes_ok / max(boxes_total, 1):>7.4f} {1000 * float(np.median(times)):>8.1f}")
    ms = 1000 * np.array(five_digit_ms)
    print(f"read time, 5-digit 800x200 field (uint8 array in, NumberReading out; {len(ms)} fields): "
          f"median {np.median(ms):.1f} ms, p10 {np.percentile(ms, 10):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms")
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def _aligned_matches(text: str, truth: str) -> int:
    """Digits of ``truth`` read correctly: edit-distance alignment, so one missed digit costs one, not the rest."""
    # longest common subsequence: the matches of the best alignment when substitutions cost as much as a gap
    prev = [0] * (len(truth) + 1)
    for a in text:
        cur = [0]
        for j, b in enumerate(truth):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


if __name__ == "__main__":
    main()
