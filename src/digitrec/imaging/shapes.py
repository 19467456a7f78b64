"""Two more readings of a picture for the recognizer to weigh: the inside of a printed box (a form's cell),
and strokes drawn as outlines, filled. Each works on light-path ink ``[N,H,W]`` and gives blank ink
where its shape is not there, so that only the pictures it fits compete with the other readings."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .boxes import line_runs
from .light import MARK_LEVEL
from .marks import enclosed

__all__ = ["box_inside", "outlines_filled"]

LINE_SHARE = 0.6                # a box side: a row (column) marked over this share of the marks' width (height)
SIDE_BAND = 0.3                 # a side lies within this share of the marks' extent from their edge
FILL_GAIN = 1.3                 # outlines: filling must add this much ink (a factor), or there were none
MIN_EXTENT = 8                  # px: marks smaller than this across hold no box and no outline
GAP_SHARE = 0.2                 # outlines: a stroke's inside is no deeper than this share of the digit's height
ELONGATION = 3.0                # outlines: ... and its area is over this many times a disk of its depth's


def box_inside(ink: np.ndarray) -> np.ndarray:
    """The ink inside a box drawn around it: all four sides found as long straight rows and columns, the
    ink between their innermost lines kept (a digit that runs into a side loses only what overlaps it)."""
    out = np.zeros_like(ink)
    for i, m in enumerate(ink > MARK_LEVEL):
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size < MIN_EXTENT or cols.size < MIN_EXTENT:
            continue
        inside = [_inside(m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].sum(axis)) for axis in (1, 0)]
        if None in inside:
            continue
        (r0, r1), (c0, c1) = inside
        out[i, rows[0] + r0:rows[0] + r1, cols[0] + c0:cols[0] + c1] = \
            ink[i, rows[0] + r0:rows[0] + r1, cols[0] + c0:cols[0] + c1]
    return out


def _inside(counts: np.ndarray) -> tuple[int, int] | None:
    """Given the marked pixels per row (or column) of the marks' extent, the span between the innermost
    line of the first side and of the last side, one pixel in from each; None without both sides."""
    n = len(counts)
    long = counts > LINE_SHARE * (counts.max() if counts.max() > 0 else 1)
    band = max(2, int(SIDE_BAND * n))
    first, last = np.flatnonzero(long[:band]), np.flatnonzero(long[n - band:]) + n - band
    if first.size == 0 or last.size == 0:
        return None
    # a side is a run of long lines from its edge; the inside starts where the run ends
    runs = line_runs(np.flatnonzero(long))
    start = next(b for a, b in runs if a <= first[0] < b) - 1
    stop = max(next(a for a, b in reversed(runs) if a <= last[-1] < b), start + 1)
    return (start + 2, stop - 1) if stop - start > 4 else None


def outlines_filled(ink: np.ndarray) -> np.ndarray:
    """Ink whose strokes were drawn as outlines (a hollow pen, an edge-detected picture), with the inside
    of each stroke filled: the enclosed gaps that are long and narrow, as a stroke is (their area
    ``ELONGATION`` times a disk as deep as they are, or more), and no deeper than ``GAP_SHARE`` of the
    digit's height. A digit's own loops (0, 6, 8, 9) are round and stay open, whatever the pen's width;
    pictures with little to fill give blank ink."""
    out = np.zeros_like(ink)
    for i, m in enumerate(ink > MARK_LEVEL):
        rows = np.flatnonzero(m.any(1))
        if rows.size < MIN_EXTENT:
            continue
        m = ndimage.binary_closing(np.pad(m, 2))[2:-2, 2:-2] | m  # an outline broken by a pixel still encloses
        labels = enclosed(m[None])[0]
        holes = labels > 0
        index = np.unique(labels[holes])
        if index.size == 0:
            continue
        depth = np.asarray(ndimage.maximum(ndimage.distance_transform_edt(holes), labels, index))
        area = np.bincount(labels.ravel())[index]
        stroke = (depth <= GAP_SHARE * rows.size) & (area >= ELONGATION * np.pi * depth ** 2)
        filled = m | np.isin(labels, index[stroke])
        if filled.sum() > FILL_GAIN * m.sum():
            out[i] = filled
    return out
