"""Number fields: strings of MNIST digits on one line, for training and benchmarking the reader. Each digit's ink box is
scaled to a random height around the nominal one, shifted off a common (optionally sloping) baseline,
with a random gap between neighbouring ink boxes; a negative gap makes neighbours touch or overlap.
Optionally a hyphen or a decimal point sits between two digits, not part of the text, and a digit-sized
mark that is not a digit stands among them. A pattern ("#,###.##", "##/##/##") writes separators that are
part of the text, as amounts and dates have them. Restyled digits are thickened or thinned, slanted and
stretched: other writers' hands. A boxed field is a row of printed boxes, a digit in each or none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = ["Condition", "Field", "make_field", "ink_crop"]


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
    patterns: tuple[str, ...] = ()  # each field follows one: "#" a digit, any other character a separator between two
    restyled: bool = False         # digits thickened or thinned, slanted up to 20 degrees, stretched
    heavy: bool = False            # restyled as a heavy, broad hand instead: every stroke thick, 1.1-1.4 times as wide
    boxed: bool = False            # a row of printed boxes, one digit or none in each ("digits": how many boxes)
    empty: float = 0.0             # boxed: chance that a box is left empty


@dataclass
class Field:
    image: np.ndarray              # uint8 HxW, dark ink on white paper
    text: str                      # the digits and separators, left to right; a boxed field: a space per empty box
    boxes: list                    # each digit's ink box (x, y, width, height) in the image


def ink_crop(digit28: np.ndarray, height: int) -> np.ndarray:
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


# paper either side of a separator, in digit heights
_ROOM = {".": (0.05, 0.2), ",": (0.05, 0.2), "-": (0.1, 0.3), "/": (0.02, 0.15)}


def _separator(ch: str, rng: np.random.Generator, height: float, stroke: float) -> tuple[np.ndarray, float]:
    """A separator of the text as a hand writes it: its ink and its bottom above the baseline."""
    t = max(2, round(stroke))
    if ch in ".-":
        while True:  # _mark draws either; keep the one asked for
            ink, lift = _mark(rng, height, stroke)
            if (ink.shape[1] > ink.shape[0] + 1) == (ch == "-"):
                return ink, lift
    if ch == ",":
        h, w = round(height * rng.uniform(0.25, 0.4)), round(height * rng.uniform(0.08, 0.18))
        path = [(w + t / 2, t / 2), (t / 2, h + t / 2)]
        lift = -h * rng.uniform(0.6, 0.8)
    else:  # "/"
        h = round(height * rng.uniform(0.85, 1.15))
        w = round(h * math.tan(math.radians(rng.uniform(15, 35))))
        path = [(t / 2, h + t / 2), (w + t / 2, t / 2)]
        lift = -height * rng.uniform(0.0, 0.12)
    img = Image.new("L", (w + t + 1, h + t + 1))
    ImageDraw.Draw(img).line(path, fill=255, width=t)
    return np.asarray(img, np.float32) / 255, lift


def _in_hand(crop: np.ndarray, rng: np.random.Generator, cond: Condition) -> np.ndarray:
    """A digit's ink as the field's writer has it: as drawn, restyled, or in a heavy, broad hand."""
    if not cond.restyled:
        return crop
    return _broad(crop, rng) if cond.heavy else _restyle(crop, rng)


def _broad(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit's ink written with a broad pen: strokes thickened by 0.06-0.09 of the height, 1.1-1.4 times as
    wide, upright; still as tall."""
    h = crop.shape[0]
    k = max(2, round(h * rng.uniform(0.06, 0.09)))
    return _to_height(ndimage.grey_dilation(np.pad(crop, k), size=(k, k)), h, rng.uniform(1.1, 1.4))


def _restyle(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit's ink as another hand writes it: thicker or thinner strokes, slanted up to 20 degrees either
    way, 0.7-1.4 times as wide; still as tall."""
    h = crop.shape[0]
    k = int(rng.integers(2, max(3, round(0.07 * h))))
    stroke = rng.random()
    if stroke < 0.4:
        crop = ndimage.grey_dilation(np.pad(crop, k), size=(k, k))
    elif stroke < 0.7:
        thin = ndimage.grey_erosion(crop, size=(k // 2 + 1, k // 2 + 1))
        crop = thin if thin.max() > 0.5 else crop
    shear = math.tan(math.radians(rng.uniform(-20, 20)))
    grow = int(math.ceil(abs(shear) * crop.shape[0]))
    wide = np.pad(crop, ((0, 0), (grow, grow)))
    centre = crop.shape[0] / 2
    wide = ndimage.affine_transform(wide, [[1, 0], [-shear, 1]], offset=[0, shear * centre], order=1)
    return _to_height(wide, h, rng.uniform(0.7, 1.4))


def _to_height(ink: np.ndarray, height: int, widen: float) -> np.ndarray:
    """``ink`` cut to its ink box and resized to ``height`` px tall and ``widen`` times its width."""
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    w = max(1, round(ink.shape[1] * widen))
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize((w, height), Image.Resampling.BILINEAR)).clip(0, 1)


def make_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, height: int = 110,
               others: np.ndarray | None = None) -> Field:
    """One field of digits drawn from ``x``/``y`` (uint8 28x28 images, labels); a digit is about ``height`` px tall.

    ``others``: uint8 28x28 images of non-digits, one of which joins the string, as a digit would, with
    ``cond.others``' chance.
    """
    if cond.boxed:
        return _boxed_field(x, y, cond, rng, height)
    pattern = str(rng.choice(cond.patterns)) if cond.patterns else ""
    pieces, gaps, labels = _pieces(x, y, cond, rng, height, others, pattern)
    canvas, boxes = _laid_out(pieces, gaps, cond, rng, height)
    digits = iter(str(d) for d in labels if d >= 0)
    text = "".join(next(digits) if ch == "#" else ch for ch in pattern) if pattern else "".join(digits)
    return Field((255 - canvas * 255).round().astype(np.uint8), text, boxes)


def _pieces(x, y, cond: Condition, rng: np.random.Generator, height: int, others, pattern: str):
    """What a field is written with, left to right: ``(ink, bottom above the baseline, a digit?)`` per piece,
    the gaps between neighbours in px, and the labels of the digits (-1: a non-digit among them)."""
    n = pattern.count("#") or int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    idx = rng.choice(len(x), n, replace=False)
    images, labels = list(x[idx]), [int(y[i]) for i in idx]
    if others is not None and cond.others and rng.random() < cond.others:
        at = int(rng.integers(0, n + 1))
        images.insert(at, others[rng.integers(len(others))])
        labels.insert(at, -1)
        n += 1
    crops = [ink_crop(im, round(height * rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER))) for im in images]
    crops = [_in_hand(c, rng, cond) for c in crops]
    widths = np.array([c.shape[1] for c in crops])
    # nobody writes a digit far into its neighbour: a "1" inside a "0" is unreadable to a person too
    gaps = np.maximum(rng.uniform(*cond.gap, n - 1) * height, -MAX_OVERLAP * np.minimum(widths[:-1], widths[1:]))
    pieces = [(c, 0.0, label >= 0) for c, label in zip(crops, labels)]
    stroke = height * 0.12
    for at, ch in enumerate(pattern):
        if ch != "#":
            pieces.insert(at, (*_separator(ch, rng, height, stroke * rng.uniform(0.7, 1.1)), False))
            room = height * rng.uniform(*_ROOM[ch])
            gaps = np.insert(gaps, at, room)
            gaps[at - 1] = room
    if n > 1 and cond.marks and rng.random() < cond.marks:
        at = int(rng.integers(1, n))
        room = height * rng.uniform(0.15, 0.3)
        pieces.insert(at, (*_mark(rng, height, stroke=stroke), False))
        gaps = np.insert(gaps, at, room)
        gaps[at - 1] = room
    return pieces, gaps, labels


def _laid_out(pieces: list, gaps: np.ndarray, cond: Condition, rng: np.random.Generator, height: int):
    """The pieces drawn on one (sloping) line of a canvas: the ink ``[H,W]`` in [0, 1] and each digit's box."""
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
    return canvas, boxes


def _boxed_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, height: int) -> Field:
    """A row of printed boxes, side by side or apart, a digit written in each (some left empty), the digits as
    large as the box allows: some run into its lines."""
    n = int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    filled = rng.random(n) >= cond.empty
    filled[rng.integers(n)] = True
    side = round(height * rng.uniform(1.15, 1.35))  # from a box's outer edge to its neighbour's
    line = int(rng.integers(2, 5))
    apart = 0 if rng.random() < 0.5 else round(side * rng.uniform(0.1, 0.3))
    margin = round(MARGIN * height)
    canvas = np.zeros((round(side * 1.6), 2 * margin + n * (side + apart) + line), np.float32)
    top = (canvas.shape[0] - side) // 2
    idx = iter(rng.choice(len(x), n, replace=False))
    text, boxes = "", []
    for i in range(n):
        x0 = margin + i * (side + apart)
        for rows, cols in ((slice(top, top + line), slice(x0, x0 + side + line)),
                           (slice(top + side, top + side + line), slice(x0, x0 + side + line)),
                           (slice(top, top + side + line), slice(x0, x0 + line)),
                           (slice(top, top + side + line), slice(x0 + side, x0 + side + line))):
            canvas[rows, cols] = 0.9
        if not filled[i]:
            text += " "
            continue
        j = next(idx)
        crop = ink_crop(x[j], round(side * rng.uniform(0.65, 0.95)))
        crop = _in_hand(crop, rng, cond)[:, :side]
        h, w = crop.shape
        # anywhere in the box, a little past its lines at times
        left = int(np.clip(x0 + line + rng.uniform(-0.05, 1.05) * (side - line - w), x0, x0 + side + line - w))
        up = int(np.clip(top + line + rng.uniform(-0.05, 1.05) * (side - line - h), top, top + side + line - h))
        region = canvas[up:up + h, left:left + w]
        np.maximum(region, crop, out=region)
        text += str(int(y[j]))
        boxes.append((left, up, w, h))
    return Field((255 - canvas * 255).round().astype(np.uint8), text, boxes)
