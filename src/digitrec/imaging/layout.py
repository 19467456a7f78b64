"""A blank form's printed layout: its boxes (a field's frame, or a row of one-digit cells) and its corner
marks, in pixels, from which a template is made (``forms.make_template``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .boxes import line_runs
from .register import dark_mask

__all__ = ["Box", "find_layout"]

MIN_BOX = 0.03          # a field's frame is at least this share of the page's shorter side each way (text is less)
OUTLINE_FILL = 0.4      # ... and its ink covers at most this share of its bounding box: an outline, not a block
MARK_FILL = 0.8         # a corner mark is a solid square: ink covers at least this share of its bounding box
MARK_MIN = 0.01         # ... at least this share of the page's shorter side across
CORNER = 0.2            # ... within this share of the page's size of a corner
CELL_LINE = 0.8         # a column of the frame's ink this share of its height tall is a side or a divider


@dataclass(frozen=True)
class Box:
    """A printed frame: (x, y, width, height) in pixels, and how many equal cells its dividers make."""
    x: int
    y: int
    width: int
    height: int
    cells: int = 1


def find_layout(grey: np.ndarray) -> tuple[list[Box], np.ndarray, float]:
    """The frames on a blank form ``grey [H,W]`` (dark print on light paper), its corner marks' centres
    ``[K,2]`` (x, y) and their mean side in pixels (0 when it has none)."""
    mask = dark_mask(grey)
    labels, n = ndimage.label(mask)
    if n == 0:
        return [], np.zeros((0, 2)), 0.0
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    h_page, w_page = grey.shape
    short = min(h_page, w_page)
    boxes, marks, sides = [], [], []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        fill = areas[i] / (h * w)
        cx, cy = sl[1].start + w / 2, sl[0].start + h / 2
        near_corner = min(cx, w_page - cx) < CORNER * w_page and min(cy, h_page - cy) < CORNER * h_page
        if fill >= MARK_FILL and max(w, h) <= 1.5 * min(w, h) and min(w, h) >= MARK_MIN * short and near_corner:
            marks.append((cx, cy))
            sides.append((w + h) / 2)
        elif min(w, h) >= MIN_BOX * short and fill <= OUTLINE_FILL:
            lines = (labels[sl] == i + 1).mean(axis=0) >= CELL_LINE  # the frame's sides and dividers, a run each
            boxes.append(Box(sl[1].start, sl[0].start, w, h, max(1, len(line_runs(np.flatnonzero(lines))) - 1)))
    return boxes, np.array(marks, float).reshape(-1, 2), float(np.mean(sides)) if sides else 0.0
