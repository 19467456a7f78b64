"""The light path: a picture's ink by its polarity and its paper's tone alone, with no rule on marks.

A drawing, a scan of clean paper or a tight crop needs nothing more; the ink stage (``ink``) is for the
pictures this leaves unreadable (uneven light, ruled lines, boxes, noise), and the recognizer reads it
only where this path's reading is doubtful.
"""
from __future__ import annotations

import numpy as np

from .ink import dark_ink

__all__ = ["light_maps", "with_margin", "margin"]

MARGIN_SHARE = 0.15             # paper added on each side by ``with_margin``, as a share of the longer side


def light_maps(grey: np.ndarray) -> np.ndarray:
    """Ink in [0, 1] (bright on 0) of pictures ``[N,H,W]`` of one size: the distance from the paper's tone
    (the median) on the ink's side of it, scaled to its peak."""
    grey = np.asarray(grey, dtype=np.float32)
    if grey.size == 0:
        return np.zeros_like(grey)
    pos = np.where(dark_ink(grey)[:, None, None], 1 - grey, grey)
    ink = np.clip(pos - np.median(pos.reshape(len(pos), -1), axis=1)[:, None, None], 0, None)
    peak = ink.max(axis=(1, 2), keepdims=True)
    return np.divide(ink, peak, out=np.zeros_like(ink), where=peak > 0)


def with_margin(grey: np.ndarray) -> np.ndarray:
    """``grey [H,W]`` framed by paper of its own tone (the median): a digit cropped to its ink no longer
    touches the picture's edge, where the ink stage looks for ruled lines and box borders."""
    return np.pad(grey, margin(grey.shape), constant_values=float(np.median(grey)))


def margin(shape: tuple[int, ...]) -> int:
    """Pixels of paper ``with_margin`` adds on each side of a picture of ``shape``."""
    return max(4, round(MARGIN_SHARE * max(shape)))
