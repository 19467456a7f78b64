"""Ink -> the geometry a model reads: a digit in MNIST's 28x28 frame, a line of digits as a strip for the
line model. Batched: one pair of matrix products crops and resizes every digit of a batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["to_mnist", "to_mnist_batch", "field_strip", "Strip", "BLANK_CONTRAST", "INK_FRACTION",
           "STRIP_HEIGHT", "STRIP_DIGIT", "FRAME"]

BLANK_CONTRAST = 0.12           # ink must stand this far (0-1) above the paper to count as a mark
INK_FRACTION = 0.25             # pixels above this share of the peak ink belong to the bounding box
_MIN_INK_PIXELS = 2             # fewer marked pixels than this is a blank (dust, a stray click)
STRIP_HEIGHT = 40               # px: the line model's input height
STRIP_DIGIT = 24                # px: a digit's height in the strip
STRIP_PAD = 6                   # px of paper left and right of the ink in the strip
FRAME = 2                       # strip px per output frame of the line model
_COARSE_HEIGHT = 64             # px: the ink is scaled to this height to measure its digits


def to_mnist(ink: np.ndarray) -> np.ndarray | None:
    """Return a 28x28 float32 array in MNIST's convention, or ``None`` when there is no mark to read.

    Crops to the ink, scales the longer side to 20 pixels keeping the aspect ratio, and places
    the centre of mass at the centre of the 28x28 frame, as MNIST was made. One image is a batch
    of one: see ``to_mnist_batch``.
    """
    x28, found = to_mnist_batch(ink[None])
    return x28[0] if found[0] else None


def to_mnist_batch(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x28 [N,28,28] float32, found [N] bool)`` for ink maps ``[N,H,W]`` of one size; blanks are zeros.

    Vectorised over the batch: bounding boxes and centres of mass are array reductions, and the
    crop-and-resize of every image is one pair of batched matrix products with per-image
    resampling matrices (PIL's filters: Lanczos-3 widened by the scale factor when shrinking, so
    large canvases are anti-aliased; bilinear when enlarging).
    """
    ink = np.asarray(ink, dtype=np.float32)
    n, h, w = ink.shape
    peak = ink.max(axis=(1, 2))
    level = (peak * INK_FRACTION)[:, None]
    found = (peak >= BLANK_CONTRAST) & (np.count_nonzero(ink > level[:, :, None], axis=(1, 2)) >= _MIN_INK_PIXELS)
    r0, r1 = _extent(ink.max(2) > level)
    c0, c1 = _extent(ink.max(1) > level)
    bh, bw = r1 - r0 + 1, c1 - c0 + 1
    k = _BOX / np.maximum(bh, bw)
    nh, nw = np.maximum(1, np.round(bh * k)).astype(np.int64), np.maximum(1, np.round(bw * k)).astype(np.int64)
    lanczos = k < 1
    rows = _resample_matrix(r0, bh, nh, h, lanczos) / np.maximum(peak, 1e-12)[:, None, None]  # ink / peak, folded in
    small = rows @ ink @ _resample_matrix(c0, bw, nw, w, lanczos).transpose(0, 2, 1)
    np.clip(small, 0, None, out=small)
    small /= np.maximum(small.max(axis=(1, 2)), 1e-6)[:, None, None]
    mass = np.maximum(small.sum(axis=(1, 2)), 1e-12)
    grid = np.arange(_BOX, dtype=np.float64)
    # symmetric digits put the centre exactly half-way between pixels; rounding off float32 summation noise
    # makes the shift the same whatever else shares the batch
    cy, cx = np.round(small.sum(2) @ grid / mass, 4), np.round(small.sum(1) @ grid / mass, 4)
    top = np.clip(np.round(_CENTRE - cy).astype(np.int64), 0, 28 - nh)
    left = np.clip(np.round(_CENTRE - cx).astype(np.int64), 0, 28 - nw)
    out = _shift_matrix(top) @ small @ _shift_matrix(left).transpose(0, 2, 1)
    out[~found] = 0
    return out.astype(np.float32, copy=False), found


_BOX = 20  # MNIST fits each digit's longer side into 20 pixels of the 28x28 frame
# MNIST puts the centre of mass on pixel (14, 14), not the grid centre 13.5: the test set's mean is 13.99, 14.01
_CENTRE = 14.0


def _extent(any_ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index along axis 1 where ``any_ink [N,L]`` is true (0 and L-1 when none is)."""
    length = any_ink.shape[1]
    first = any_ink.argmax(1)
    last = length - 1 - any_ink[:, ::-1].argmax(1)
    return first, np.maximum(last, first)


def _lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0)


def _resample_matrix(start: np.ndarray, size: np.ndarray, out_size: np.ndarray, length: int,
                     lanczos: np.ndarray) -> np.ndarray:
    """``[N,20,length]`` weights mapping a row (or column) of length ``length`` to ``out_size`` samples of
    its window ``[start, start+size)``, as PIL's resize does: output pixel ``i`` is centred at
    ``(i + 0.5) / scale`` in the window, and the filter is widened by ``1/scale`` when shrinking.
    Rows ``i >= out_size`` are zero.
    """
    # a batch holds few distinct windows (MNIST's 10,000 test digits: a few hundred), so each is built once
    if len(start) > 1:
        key = ((start * (length + 1) + size) * (_BOX + 1) + out_size) * 2 + lanczos
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # one picture (a canvas): the sort of np.unique costs as much as the weights
        first = inverse = np.zeros(1, np.int64)
    start, size, out_size, lanczos = (v[first][:, None, None] for v in (start, size, out_size, lanczos))
    scale = out_size / size
    stretch = np.maximum(1 / scale, 1)
    i = np.arange(_BOX)[None, :, None]
    u = np.arange(length)[None, None, :] - start
    x = (u + 0.5 - (i + 0.5) / scale) / stretch
    # each filter only where some window needs it: Lanczos is two sincs over the whole window
    if lanczos.all():
        wts = _lanczos3(x)
    elif not lanczos.any():
        wts = np.clip(1 - np.abs(x), 0, None)
    else:
        wts = np.where(lanczos, _lanczos3(x), np.clip(1 - np.abs(x), 0, None))
    wts *= (u >= 0) & (u < size) & (i < out_size)
    total = wts.sum(2, keepdims=True)
    return (wts / np.where(total == 0, 1, total)).astype(np.float32)[inverse.ravel()]


def _shift_matrix(offset: np.ndarray) -> np.ndarray:
    """``[N,28,20]`` one-hot matrices that move row ``i`` of a 20-pixel box to row ``i + offset`` of 28."""
    return (np.arange(28)[None, :, None] == np.arange(_BOX)[None, None, :] + offset[:, None, None]).astype(np.float32)



@dataclass
class Strip:
    """A field's ink cut to its line and scaled for the line model, with the mapping back to ink columns."""
    image: np.ndarray   # float32 [STRIP_HEIGHT, W], the field's ink cut to its line
    scale: float        # strip px per ink px, across
    left: float         # ink column of the strip's column 0
    digit_h: float      # a digit's height in ink px


def field_strip(ink: np.ndarray) -> Strip | None:
    """The line model's input for a field's ink map; None when the field has no mark."""
    peak = float(ink.max(initial=0))
    if peak < BLANK_CONTRAST:
        return None
    mask = ink > peak * INK_FRACTION
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    digit_h = _digit_height(ink[r0:r1, c0:c1], peak)
    # the whole line must fit in the strip, a sloping one too: then its digits are drawn smaller
    scale = min(STRIP_DIGIT / digit_h, (STRIP_HEIGHT - 4) / (r1 - r0))
    crop = _resize(ink[r0:r1, c0:c1], scale)
    h, w = crop.shape
    out = np.zeros((STRIP_HEIGHT, -(-(w + 2 * STRIP_PAD) // FRAME) * FRAME), np.float32)
    top = (STRIP_HEIGHT - h) // 2
    out[top:top + h, STRIP_PAD:STRIP_PAD + w] = crop
    return Strip(out, w / (c1 - c0), c0 - STRIP_PAD * (c1 - c0) / w, digit_h)


def _resize(a: np.ndarray, scale: float) -> np.ndarray:
    h, w = a.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a).resize(size, method))


def _digit_height(ink: np.ndarray, peak: float) -> float:
    """A digit's height in ``ink`` (px): the area-weighted median height of its connected marks.

    Specks and hyphens weigh little; touching digits keep one digit's height. Measured on a copy at
    most ``_COARSE_HEIGHT`` px tall, which is plenty to tell a digit's height and much cheaper.
    """
    coarse = min(1.0, _COARSE_HEIGHT / ink.shape[0])
    small = _resize(ink, coarse) if coarse < 1 else ink
    marks = small > peak * INK_FRACTION
    if not marks.any():  # thin, scattered marks averaged away in the copy: measured against its own peak
        marks = small > small.max() * INK_FRACTION
    labels, n = ndimage.label(marks, structure=np.ones((3, 3), bool))
    if n == 0:  # nothing left even so: the marks' whole height is the best guess
        return float(ink.shape[0])
    heights = np.array([s[0].stop - s[0].start for s in ndimage.find_objects(labels)])
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    order = np.argsort(heights)
    cum = np.cumsum(areas[order])
    return float(heights[order][np.searchsorted(cum, cum[-1] / 2)]) / coarse
