"""Synthetic number fields: strings of MNIST digits written on one line, for training and benchmarking the reader.

Each digit's ink box is scaled to a random height around the nominal one, shifted off a common (optionally
sloping) baseline, with a random horizontal gap between neighbouring ink boxes; a negative gap makes
neighbours touch or overlap. Optionally a hyphen or a decimal point sits between two digits, as in ZIP+4
codes and amounts, and a digit-sized mark that is not a digit (a letter, a scribble, a shape) stands
among them: marks that are not part of the number's text. The same generator and seed give the same
fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Condition", "Field", "make_field"]

SCALE_JITTER = 0.15     # each digit's height varies this much either way
BASELINE_JITTER = 0.08  # each digit's bottom moves this share of the height up or down
MAX_OVERLAP = 0.25      # neighbours overlap by at most this share of the narrower one's width
MARGIN = 0.36           # paper left and right of the string, in digit heights, when the canvas is sized to it


@dataclass(frozen=True)
class Condition:
    """How fields are drawn; lengths and gaps are in units of the nominal digit height."""
    name: str
    digits: tuple[int, int]        # string length range, inclusive
    gap: tuple[float, float]       # gap between neighbouring ink boxes
    slope_deg: float = 0.0         # baseline slope range, degrees either way
    canvas: tuple[float, float] | None = None  # (width, height) in digit heights; None: as wide as the string
    marks: float = 0.0             # chance that a field has a hyphen or a decimal point between two digits
    others: float = 0.0            # chance that a field has a digit-sized mark that is not a digit


@dataclass
class Field:
    image: np.ndarray              # uint8 HxW, dark ink on white paper
    text: str                      # the digits, left to right
    boxes: list                    # each digit's ink box (x, y, width, height) in the image


def _ink_crop(digit28: np.ndarray, height: int) -> np.ndarray:
    """The digit's ink box scaled so that its ink is ``height`` px tall (float ink in [0, 1])."""
    rows, cols = np.flatnonzero(digit28.any(1)), np.flatnonzero(digit28.any(0))
    crop = digit28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
    w = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((w, height), Image.Resampling.BILINEAR)).clip(0, 1)


def _mark(rng: np.random.Generator, height: float, stroke: float) -> tuple[np.ndarray, float]:
    """A hyphen (at mid-height) or a decimal point (on the baseline): its ink and its bottom above the baseline."""
    t = max(2, round(stroke))
    if rng.random() < 0.5:
        w = max(t + 1, round(height * rng.uniform(0.25, 0.6)))
        return np.ones((t, w), np.float32), height * rng.uniform(0.35, 0.6)
    d = max(2, round(stroke * rng.uniform(1.0, 1.6)))
    yy, xx = np.mgrid[:d, :d] - (d - 1) / 2
    return (yy ** 2 + xx ** 2 <= (d / 2) ** 2).astype(np.float32), height * rng.uniform(-0.02, 0.05)


def make_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, height: int = 110,
               others: np.ndarray | None = None) -> Field:
    """One field of digits drawn from ``x``/``y`` (uint8 28x28 images, labels); a digit is about ``height`` px tall.

    ``others``: uint8 28x28 images of non-digits, one of which joins the string, as a digit would, with
    ``cond.others``' chance.
    """
    n = int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    idx = rng.choice(len(x), n, replace=False)
    images, labels = list(x[idx]), [int(y[i]) for i in idx]
    if others is not None and cond.others and rng.random() < cond.others:
        at = int(rng.integers(0, n + 1))
        images.insert(at, others[rng.integers(len(others))])
        labels.insert(at, -1)
        n += 1
    crops = [_ink_crop(im, round(height * rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER))) for im in images]
    widths = np.array([c.shape[1] for c in crops])
    # nobody writes a digit far into its neighbour: a "1" inside a "0" is unreadable to a person too
    gaps = np.maximum(rng.uniform(*cond.gap, n - 1) * height, -MAX_OVERLAP * np.minimum(widths[:-1], widths[1:]))
    pieces = [(c, 0.0, label >= 0) for c, label in zip(crops, labels)]  # (ink, bottom above the baseline, a digit?)
    if n > 1 and cond.marks and rng.random() < cond.marks:
        at = int(rng.integers(1, n))
        room = height * rng.uniform(0.15, 0.3)
        pieces.insert(at, (*_mark(rng, height, stroke=height * 0.12), False))
        gaps = np.insert(gaps, at, room)
        gaps[at - 1] = room
    widths = np.array([p[0].shape[1] for p in pieces])
    lefts = np.concatenate([[0.0], np.cumsum(widths[:-1] + gaps)]).round().astype(int)
    lefts -= lefts.min()
    width = int(max(lft + w for lft, w in zip(lefts, widths)))
    slope = math.tan(math.radians(rng.uniform(-cond.slope_deg, cond.slope_deg)))
    margin = round(MARGIN * height)
    if cond.canvas is None:
        cw, ch = width + 2 * margin, round(height * 200 / 110)
    else:
        cw, ch = round(cond.canvas[0] * height), round(cond.canvas[1] * height)
    rise = abs(slope) * width
    x0 = int(rng.integers(0, max(1, cw - width)))
    base = ch / 2 + height / 2 + (rise / 2 if slope > 0 else -rise / 2)  # centre the sloping line vertically
    canvas = np.zeros((ch, cw), np.float32)
    boxes = []
    for (c, lift, digit), left in zip(pieces, lefts):
        bottom = base - slope * (left + c.shape[1] / 2) - lift
        if digit:
            bottom += rng.uniform(-1, 1) * BASELINE_JITTER * height
        top = int(round(min(max(bottom - c.shape[0], 0), ch - c.shape[0])))
        l0 = x0 + left
        region = canvas[top:top + c.shape[0], l0:l0 + c.shape[1]]
        c = c[:region.shape[0], :region.shape[1]]
        np.maximum(region, c, out=region)
        if digit:
            boxes.append((int(l0), top, c.shape[1], c.shape[0]))
    text = "".join(str(d) for d in labels if d >= 0)
    return Field((255 - canvas * 255).round().astype(np.uint8), text, boxes)
