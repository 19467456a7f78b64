"""The light path: a picture's ink by its polarity and its paper's tone alone, with no rule on marks.

A drawing, a scan of clean paper or a tight crop needs nothing more; the ink stage (``ink``) is for the
pictures this leaves unreadable (uneven light, ruled lines, boxes, noise), and the recognizer reads it
only where this path's reading is doubtful.
"""
from __future__ import annotations

import numpy as np

from .ink import dark_ink, otsus

__all__ = ["light_maps", "two_tone_maps", "with_margin", "margin"]

MARK_LEVEL = 0.5               # light-path ink above this is a mark (boxes and outlines are found in it)
MARGIN_SHARE = 0.15             # paper added on each side by ``with_margin``, as a share of the longer side
FRAMED_SHARE = 0.9              # two tones: a class over this share of the picture's edge is its paper, not ink


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


def two_tone_maps(grey: np.ndarray, dark: bool) -> np.ndarray:
    """Ink in [0, 1] of pictures ``[N,H,W]`` of one size taken as two tones split by Otsu's threshold: the
    darker (``dark``) or the lighter class is the ink, rising from 0 at the threshold to 1 at its mean tone.

    Bold ink in a tight crop covers as much of the picture as its paper: the median is no paper tone
    there, and the polarity vote can go either way, so the recognizer reads both polarities and the
    model's score tells ink from paper. Faint marks on the paper's side of the threshold (ruled lines,
    a printed grid) are paper here. A class that runs round the picture's edge (``FRAMED_SHARE``) is
    paper: even a tight crop's digit touches its edge only where its strokes end; the ink is then blank."""
    grey = np.asarray(grey, dtype=np.float32)
    if grey.size == 0:
        return np.zeros_like(grey)
    flat = grey.reshape(len(grey), -1)
    cut = otsus(flat)
    light = flat > cut[:, None]
    n_light = light.sum(axis=1)
    if dark:
        tone = np.where(light, 0, flat).sum(axis=1) / np.maximum(flat.shape[1] - n_light, 1)
    else:
        tone = np.where(light, flat, 0).sum(axis=1) / np.maximum(n_light, 1)
    inked = ~light.reshape(grey.shape) if dark else light.reshape(grey.shape)
    edge = np.concatenate([inked[:, 0], inked[:, -1], inked[:, :, 0], inked[:, :, -1]], axis=1)
    span = np.where(edge.mean(axis=1) > FRAMED_SHARE, 0, tone - cut)[:, None, None]
    out = np.divide(grey - cut[:, None, None], span, out=np.zeros_like(grey), where=np.abs(span) > 1e-3)
    return np.clip(out, 0, 1)


def with_margin(grey: np.ndarray) -> np.ndarray:
    """``grey [H,W]`` framed by paper of its own tone (the median): a digit cropped to its ink no longer
    touches the picture's edge, where the ink stage looks for ruled lines and box borders."""
    return np.pad(grey, margin(grey.shape), constant_values=float(np.median(grey)))


def margin(shape: tuple[int, ...]) -> int:
    """Pixels of paper ``with_margin`` adds on each side of a picture of ``shape``."""
    return max(4, round(MARGIN_SHARE * max(shape)))
