"""Multi-digit reading: whole-string and per-digit accuracy on synthetic number fields, and read time.

Each field is a string of MNIST digits (the *test* split unless ``--split train``, which is what the
reader's constants were tuned on) pasted left to right on white paper: every digit scaled to a random
height, shifted off a common baseline, with a random horizontal gap between neighbouring ink boxes; a
negative gap makes neighbours touch or overlap. Fixed seeds: the same command builds the same fields.

Conditions (H = the field's nominal digit height, 110 px on 200 px tall canvases):
  spaced-5    5 digits on 800x200, gaps +0.05..+0.40 H
  touching-5  5 digits on 800x200, gaps -0.12..0 H (every pair touches or overlaps, by at most a quarter
              of the narrower digit's width)
  mixed-3-10  3-10 digits, gaps -0.12..+0.40 H, the line sloping up to 3 degrees, canvas as wide as needed

Run:  PYTHONPATH=src python benchmarks/sequence.py [--model PATH] [--strings 200] [--split test] [--threads N]
Fit the reader's segment scoring (constants in digitrec/sequence.py), on train digits only:
      PYTHONPATH=src python benchmarks/sequence.py --fit
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

import digitrec
from digitrec import data


@dataclass(frozen=True)
class Condition:
    name: str
    digits: tuple[int, int]        # string length range, inclusive
    gap: tuple[float, float]       # gap between neighbouring ink boxes, in units of the digit height
    slope_deg: float = 0.0         # baseline slope range, degrees either way
    canvas: tuple[int, int] | None = (800, 200)  # (width, height); None: 200 high, as wide as the string


CONDITIONS = (
    Condition("spaced-5", (5, 5), (0.05, 0.40)),
    Condition("touching-5", (5, 5), (-0.12, 0.0)),
    Condition("mixed-3-10", (3, 10), (-0.12, 0.40), slope_deg=3.0, canvas=None),
)
HEIGHT = 110          # nominal digit ink height, px
SCALE_JITTER = 0.15   # each digit's height varies this much either way
BASELINE_JITTER = 0.08  # each digit's bottom moves this share of HEIGHT up or down
MAX_OVERLAP = 0.25    # neighbours overlap by at most this share of the narrower one's width
MARGIN = 40           # px of paper left and right of the string when the canvas is sized to it


def _ink_crop(digit28: np.ndarray, height: int) -> np.ndarray:
    """The digit's ink box, scaled so that its ink is ``height`` px tall (float ink in [0, 1])."""
    rows, cols = np.flatnonzero(digit28.any(1)), np.flatnonzero(digit28.any(0))
    crop = digit28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
    k = height / crop.shape[0]
    w = max(1, round(crop.shape[1] * k))
    return np.asarray(Image.fromarray(crop).resize((w, height), Image.Resampling.BILINEAR)).clip(0, 1)


@dataclass
class Field:
    image: np.ndarray              # uint8 HxW, dark ink on white paper
    text: str                      # the digits, left to right
    boxes: list                    # each digit's ink box (x, y, width, height) in the image
    owner: np.ndarray | None = None  # int16 HxW: index of the digit whose ink is strongest there, -1 on paper


def make_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, owner: bool = False) -> Field:
    """One synthetic field; ``owner=True`` also records which digit each pixel's ink belongs to."""
    n = int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    idx = rng.choice(len(x), n, replace=False)
    crops = [_ink_crop(x[i], round(HEIGHT * rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER))) for i in idx]
    widths = np.array([c.shape[1] for c in crops])
    # nobody writes a digit far into its neighbour: a "1" inside a "0" is unreadable to a person too
    gaps = np.maximum(rng.uniform(*cond.gap, n - 1) * HEIGHT, -MAX_OVERLAP * np.minimum(widths[:-1], widths[1:]))
    lefts = np.concatenate([[0.0], np.cumsum(widths[:-1] + gaps)]).round().astype(int)
    width = int(lefts[-1] + crops[-1].shape[1] - lefts.min())
    lefts -= lefts.min()
    slope = math.tan(math.radians(rng.uniform(-cond.slope_deg, cond.slope_deg)))
    if cond.canvas is None:
        cw, ch = width + 2 * MARGIN, 200
    else:
        cw, ch = cond.canvas
    rise = abs(slope) * width
    x0 = int(rng.integers(0, max(1, cw - width)))
    base = ch / 2 + HEIGHT / 2 + (rise / 2 if slope > 0 else -rise / 2)  # centre the sloping line vertically
    canvas = np.zeros((ch, cw), np.float32)
    who = np.full((ch, cw), -1, np.int16) if owner else None
    boxes = []
    for k, (c, left) in enumerate(zip(crops, lefts)):
        bottom = base - slope * (left + c.shape[1] / 2) + rng.uniform(-1, 1) * BASELINE_JITTER * HEIGHT
        top = int(round(min(max(bottom - c.shape[0], 0), ch - c.shape[0])))
        l0 = x0 + left
        region = canvas[top:top + c.shape[0], l0:l0 + c.shape[1]]
        c = c[:region.shape[0], :region.shape[1]]
        if who is not None:
            who[top:top + c.shape[0], l0:l0 + c.shape[1]][c > region] = k
        np.maximum(region, c, out=region)
        boxes.append((int(l0), top, c.shape[1], c.shape[0]))
    return Field((255 - canvas * 255).round().astype(np.uint8), "".join(str(int(y[i])) for i in idx), boxes, who)


def make_fields(split: str, cond: Condition, count: int, seed: int, owner: bool = False) -> list[Field]:
    """``count`` fields for one condition, the same ones for the same arguments."""
    x, y = data.load_mnist(split)
    rng = np.random.default_rng([seed, CONDITIONS.index(cond)])
    return [make_field(x, y, cond, rng, owner) for _ in range(count)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the bundled model)")
    ap.add_argument("--strings", type=int, default=200, help="fields per condition (default: 200)")
    ap.add_argument("--split", choices=["test", "train"], default="test", help="digits drawn from (default: test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice); on a busy machine 1 "
                                                "is faster, the model call being small")
    ap.add_argument("--fit", action="store_true", help="instead: fit the reader's segment scoring on train digits "
                                                       "and print the constants for digitrec/sequence.py")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    r = digitrec.load(args.model)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}; "
          f"model {args.model or 'bundled default'}")
    if args.fit:
        fit_scoring(r, args.strings, args.seed)
        return
    print(f"digits from MNIST {args.split}; box ok: a correctly read digit's box overlaps its ink box by IoU >= 0.5")
    print(f"{'condition':<12} {'strings':>7} {'whole-string':>12} {'per-digit':>9} {'length ok':>9} {'box ok':>7} "
          f"{'ms/field':>8}")
    five_digit_ms = []
    for cond in CONDITIONS:
        fields = make_fields(args.split, cond, args.strings, args.seed)
        r.read_number(fields[0].image)  # warm-up: the first call pays for lazy initialisation
        right = digits_right = digits_total = length_ok = boxes_ok = boxes_total = 0
        times = []
        for f in fields:
            t = time.perf_counter()
            reading = r.read_number(f.image)
            times.append(time.perf_counter() - t)
            right += reading.text == f.text
            length_ok += len(reading.text) == len(f.text)
            digits_right += _aligned_matches(reading.text, f.text)
            digits_total += len(f.text)
            if reading.text == f.text:
                boxes_ok += sum(_iou(p.box, b) >= 0.5 for p, b in zip(reading.digits, f.boxes))
                boxes_total += len(f.boxes)
        if cond.canvas == (800, 200) and cond.digits == (5, 5):
            five_digit_ms += times
        n = len(fields)
        print(f"{cond.name:<12} {n:>7} {right / n:>12.4f} {digits_right / digits_total:>9.4f} "
              f"{length_ok / n:>9.4f} {boxes_ok / max(boxes_total, 1):>7.4f} {1000 * float(np.median(times)):>8.1f}")
    ms = 1000 * np.array(five_digit_ms)
    print(f"read time, 5-digit 800x200 field (uint8 array in, NumberReading out; {len(ms)} fields): "
          f"median {np.median(ms):.1f} ms, p10 {np.percentile(ms, 10):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms")
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def fit_scoring(r, count: int, seed: int) -> None:
    """Fit ``digitrec.sequence``'s segment scoring on fields of MNIST train digits and print the constants.

    A candidate is labelled a whole digit when at least 80 % of its ink belongs to one digit and it holds at
    least 80 % of that digit's ink; the logistic regression learns that from the candidate's features, then
    the per-digit bonus is the one that reads the most fields right.
    """
    from sklearn.linear_model import LogisticRegression

    from digitrec import sequence as sq  # the reader's internals: this fits its private constants
    from digitrec.preprocess import load_image

    fields = [f for cond in CONDITIONS for f in make_fields("train", cond, count, seed, owner=True)]
    segs = [sq._segment(r, load_image(f.image)) for f in fields]
    x = np.concatenate([sq._features(s) for s in segs])
    y = np.concatenate([_whole_digits(s, f) for s, f in zip(segs, fields)])
    clf = LogisticRegression(max_iter=50_000).fit(x[:, 1:], y)
    sq._VERIFIER = (float(clf.intercept_[0]), *map(float, clf.coef_[0]))
    print(f"{len(y)} candidates from {len(fields)} fields, {y.mean():.3f} whole digits; "
          f"classified right: {clf.score(x[:, 1:], y):.4f}")
    best = None
    for bonus in np.arange(-1.0, 3.01, 0.5):
        sq._DIGIT_BONUS = float(bonus)
        right = np.mean([_text(s) == f.text for s, f in zip(segs, fields)])
        print(f"  digit bonus {bonus:+.1f}: {right:.4f} of fields read right")
        if best is None or right > best[0]:
            best = (right, float(bonus))
    print(f"_VERIFIER = ({', '.join(f'{w:.3f}' for w in sq._VERIFIER)})\n_DIGIT_BONUS = {best[1]}")


def _whole_digits(seg, f: Field) -> np.ndarray:
    """For each candidate of ``seg``: is it one whole digit of ``f``? (by the ink each digit left in the field)"""
    h, w = seg.work.shape
    rows = np.minimum(((np.arange(h) + 0.5) / seg.scale).astype(int), f.owner.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) / seg.scale).astype(int), f.owner.shape[1] - 1)
    owner = f.owner[rows][:, cols]
    ink = np.array([np.bincount(owner[p[0], p[1]] + 1, weights=seg.work[p[0], p[1]], minlength=len(f.text) + 1)[1:]
                    for p in seg.pieces])
    total = ink.sum(0)
    out = []
    for i, j in seg.spans:
        mine = ink[i:j].sum(0)
        d = mine.argmax()
        out.append(mine[d] >= 0.8 * mine.sum() and mine[d] >= 0.8 * total[d])
    return np.array(out, bool)


def _text(seg) -> str:
    from digitrec import sequence as sq

    return "".join(str(int(seg.probs[k].argmax())) for _, _, k in sq._best_partition(seg) if k is not None)


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
