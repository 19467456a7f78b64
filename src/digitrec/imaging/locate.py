"""Where a digit may be in a large picture: marks of a digit's size and shape found at low resolution, each
cropped with paper around it, for the recognizer to read like any picture and weigh by the model's score.

A small digit on a photographed sheet is a few hundredths of the picture: read whole, the light and
shadows of the sheet outweigh it. Found first and read alone, it fills the 20-pixel frame as MNIST does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .decode import box_average
from .ink import dark_ink, median_mad

__all__ = ["digit_boxes", "Search", "LOCATE_PX"]

LOCATE_PX = 200                 # px: marks are looked for on the picture brought down to about this, longer side


@dataclass(frozen=True)
class Search:
    """The values that decide a search, set for a model in its read policy (``inference.policy``)."""
    searched_from: int          # px: a picture whose longer side is shorter is read whole, never searched
    min_height: float           # a candidate is at least this share of the picture's shorter side tall (or wide)
    max_height: float           # ... and at most this share: a digit filling most of a photo is cropped too, for
                                # read whole, the shadows on its sheet are read with it
    max_wide: float             # a digit is at most this many times as wide as tall
    noise_sigmas: float         # a mark stands this many robust standard deviations above the paper's noise
    crop_margin: float          # paper kept around a candidate, as a share of its longer side
    candidates: int             # the most contrasted candidates are read, at most this many
    ring_ink: float             # a candidate whose paper around it is over this share ink is a piece of a digit
    ring_tone: float            # ... ink there: at least this share of the mark's contrast above the paper


def digit_boxes(grey: np.ndarray, s: Search) -> list[tuple[slice, slice]]:
    """Where to crop ``grey [H,W]`` around the marks that may be a digit (``grey[box]``), most contrasted
    first; an empty list for a small picture or one with no such mark."""
    h, w = grey.shape
    if max(h, w) < s.searched_from:
        return []
    k = max(1, -(-max(h, w) // LOCATE_PX))
    small = box_average(grey, k) if k > 1 else grey
    pos = 1 - small if dark_ink(small[None])[0] else small
    # the sheet's light and shadows change over many strokes' widths: an opening wider than a stroke is the paper
    window = max(5, min(small.shape) // 8)
    ink = pos - ndimage.grey_opening(pos, size=(window, window))
    flat = ink.reshape(1, -1)
    med, mad = (float(v[0]) for v in median_mad(flat, np.ones(flat.shape, bool)))
    noise = 1.4826 * mad + 1e-3
    marks = ink > med + s.noise_sigmas * noise
    # a digit's strokes, broken by blur or a faint pen, are one mark
    labels, n = ndimage.label(ndimage.binary_closing(marks, iterations=1) | marks, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    side = min(small.shape)
    mass = ndimage.sum(ink, labels, np.arange(1, n + 1))
    found = []
    for j, box in enumerate(ndimage.find_objects(labels)):
        bh, bw = box[0].stop - box[0].start, box[1].stop - box[1].start
        if max(bh, bw) < s.min_height * side or max(bh, bw) > s.max_height * side or bw > s.max_wide * bh:
            continue
        # a mark that runs off the picture is the edge of the sheet or of a shadow, or a digit cut off
        if box[0].start == 0 or box[1].start == 0 or box[0].stop == small.shape[0] or box[1].stop == small.shape[1]:
            continue
        if _inked_ring(pos, box, pos[box][labels[box] == j + 1], s.noise_sigmas * noise, s) > s.ring_ink:
            continue
        found.append((mass[j], box))
    found.sort(key=lambda f: -f[0])
    return [_crop(grey.shape, box, k, s.crop_margin) for _, box in found[:s.candidates]]


def _inked_ring(pos: np.ndarray, box: tuple[slice, slice], mark: np.ndarray, least: float, s: Search) -> float:
    """The share of the paper kept around a candidate (``crop_margin``) that is about as dark as the mark itself
    (``mark``: the tones of its pixels).

    A bold digit's strokes are wider than the opening that finds marks: what is left of them are pieces of
    the digit, each with the rest of the digit around it, where a digit found alone has paper. Light and
    shadows change the paper's tone by less than ink does. A mark less than ``least`` above the paper around
    it is no piece of a stroke (0): on a sheet mostly blank the polarity vote can take the paper between a
    small digit's strokes for the marks."""
    pad = round(s.crop_margin * max(box[0].stop - box[0].start, box[1].stop - box[1].start))
    outer = tuple(slice(max(0, b.start - pad), b.stop + pad) for b in box)
    ring = np.ones(pos[outer].shape, bool)  # the window around the box, less the box
    ring[tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(box, outer))] = False
    around = pos[outer][ring]
    paper = float(np.median(around))
    tone = float(np.percentile(mark, 90))
    if tone - paper < least:
        return 0.0
    return float((around >= paper + s.ring_tone * (tone - paper)).mean())


def _crop(shape: tuple[int, int], box: tuple[slice, slice], k: int, margin: float) -> tuple[slice, slice]:
    """A square around ``box`` (found in the picture brought down by ``k``) with ``margin`` of paper,
    within a picture of ``shape``."""
    r0, r1, c0, c1 = box[0].start * k, box[0].stop * k, box[1].start * k, box[1].stop * k
    side = round(max(r1 - r0, c1 - c0) * (1 + 2 * margin))
    cy, cx = (r0 + r1) // 2, (c0 + c1) // 2
    top, left = max(0, cy - side // 2), max(0, cx - side // 2)
    return slice(top, min(shape[0], top + side)), slice(left, min(shape[1], left + side))
