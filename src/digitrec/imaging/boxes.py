"""A row of printed boxes, one digit to a box (a form's account number, a date in cells): where the inside
of each box is. Lines are found as rows and columns of ink that run the row's length and the boxes' height;
a digit that runs into a line keeps everything but the line's own pixels."""
from __future__ import annotations

import numpy as np

from .light import MARK_LEVEL

__all__ = ["box_row", "line_runs"]

ROW_SHARE = 0.5                 # the row's top and bottom lines: marked over this share of the marks' width
SIDE_SHARE = 0.95               # a side: marked over this share of the height between those lines (a printed line
                                # is solid; an upright 1 beside it seldom is so tall and straight)
TOP_COVER = 0.9                 # between two sides is a box where the top line covers this share of the span
MIN_BOX_SIDE = 8                # px: boxes smaller than this across hold no digit
MERGE = 1.15                    # two neighbouring spans as wide as this share of the widest box are one box
CLEAR = 2                       # px kept clear of each line: its blurred edge is no part of the digit


def box_row(ink: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The inside ``(top, bottom, left, right)`` of each box of a row of printed boxes in ``ink`` (bright on
    0), left to right; an empty list when there is no such row."""
    m = ink > MARK_LEVEL
    cols = np.flatnonzero(m.any(0))
    if cols.size < MIN_BOX_SIDE:
        return []
    long = np.flatnonzero(m.sum(1) > ROW_SHARE * (cols[-1] - cols[0] + 1))
    if long.size < 2:
        return []
    lines = line_runs(long)
    (t0, t1), (b0, _) = lines[0], lines[-1]
    if b0 - t1 < MIN_BOX_SIDE:
        return []
    sides = line_runs(np.flatnonzero(m[t1:b0].mean(0) > SIDE_SHARE))
    spans = [(a, b) for (_, a), (b, _) in zip(sides, sides[1:])
             if b - a >= MIN_BOX_SIDE and m[t0:t1, a:b].any(0).mean() >= TOP_COVER]
    if not spans:
        return []
    # the boxes of a row are alike: a tall stroke (a 1) that splits one into two narrower spans is no side
    width = max(b - a for a, b in spans)
    merged = [spans[0]]
    for a, b in spans[1:]:
        if b - merged[-1][0] <= MERGE * width:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return [(t1 + CLEAR, b0 - CLEAR, a + CLEAR, b - CLEAR) for a, b in merged]


def line_runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive indices as ``(first, last + 1)``: the printed lines among the rows (or columns) of
    ink long enough to be one, which every box finder here reads (a box's sides, a row's, a frame's cells)."""
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist()))
