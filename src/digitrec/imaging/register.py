"""A scanned page -> where its template's points lie on it, and the crops of the template's boxes.

A scan is never where the template expects it: the page is shifted on the glass, turned a few degrees,
scaled by the scanner or the printer. ``register`` finds an affine map from template units (mm, or
fractions of the page) to the scan's pixels: from the printed corner marks when the template has them
(any rotation, scale, shift and shear they show), else from the box of the page's content (scale and
shift only). ``cut`` then resamples a box of the template, axis-aligned, at the scan's own resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .decode import box_average

__all__ = ["Registration", "register", "cut", "dark_mask"]

FIND_PX = 1000                  # marks are looked for on the page brought down to about this many px across
MARK_SIDE = (0.55, 1.7)         # a mark's side may be this share of the expected one (scale and naive guess)
MARK_FILL = 0.55                # a printed mark is solid: its ink covers at least this share of its box
MARK_ASPECT = 1.5               # ... and its box is about square (a turned square's box stays near square)
MARK_REACH = 0.2                # a mark lies within this share of the page's diagonal of where it is expected
MARK_FIT = 0.35                 # the fitted map puts every mark within this share of its side of where it was found
CONTENT_TRIM = 0.002            # share of the ink left out at each side of the content box (specks, dust)


@dataclass(frozen=True)
class Registration:
    """An affine map from template units to a page's pixels: ``matrix`` [2,3] takes (x, y, 1) in units to
    (column, row); ``method``: 'marks', 'content' or 'page' (no ink to go by: the page as the template)."""
    matrix: np.ndarray
    method: str

    @property
    def scale(self) -> float:
        """Pixels per template unit (the map's mean scale)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Template points ``[N,2]`` (x, y) -> pixel points ``[N,2]`` (column, row)."""
        return np.asarray(points, float) @ self.matrix[:, :2].T + self.matrix[:, 2]


def dark_mask(grey: np.ndarray) -> np.ndarray:
    """What is printed or written on a page ``[H,W]`` (dark on light paper of any tone or colour): darker than
    halfway from the paper's tone (the median) to the darkest ink; all False on blank paper."""
    paper = float(np.median(grey))
    ink = float(np.percentile(grey, 0.1))
    if paper - ink < 0.1 * (float(grey.max()) - float(grey.min()) + 1e-6) or paper - ink < 16 / 255 * _peak(grey):
        return np.zeros(grey.shape, bool)
    return grey < (paper + ink) / 2


def _peak(grey: np.ndarray) -> float:
    return 255.0 if grey.dtype == np.uint8 else 1.0


def register(grey: np.ndarray, page_size: tuple[float, float], marks: np.ndarray | None = None,
             mark_side: float = 0.0, content: tuple[float, float, float, float] | None = None) -> Registration:
    """The map from template units onto ``grey`` [H,W], a scan of a page ``page_size`` (width, height) units.

    ``marks``: the centres ``[K,2]`` of the template's solid square corner marks, ``mark_side`` units across;
    when at least three are found where they should be and a map fits them, it is theirs. Otherwise the box
    of the page's content (its ink, ``content`` in the template: x, y, width, height; default the whole page)
    gives scale and shift. A page with no ink is taken as the template's page, scaled to the scan.
    """
    h, w = grey.shape
    naive = min(w / page_size[0], h / page_size[1])  # px per unit if the scan is the page, edge to edge
    k = max(1, round(max(h, w) / FIND_PX))
    grey32 = np.asarray(grey, np.float32)  # no copy of a page that is float32 already, as read_form's is
    small = box_average(grey32, k) if k > 1 else grey32
    mask = dark_mask(small)
    if marks is not None and len(marks) >= 3 and mark_side > 0:
        found = _find_marks(grey, mask, k, np.asarray(marks, float), mark_side * naive, naive)
        if found is not None:
            return Registration(found, "marks")
    if mask.any():
        rows, cols = np.nonzero(mask)
        r0, r1 = np.quantile(rows, [CONTENT_TRIM, 1 - CONTENT_TRIM]) * k
        c0, c1 = np.quantile(cols, [CONTENT_TRIM, 1 - CONTENT_TRIM]) * k
        r1, c1 = r1 + k - 1, c1 + k - 1
        x, y, bw, bh = content or (0.0, 0.0, *page_size)
        sx, sy = (c1 - c0) / bw, (r1 - r0) / bh
        return Registration(np.array([[sx, 0, c0 - sx * x], [0, sy, r0 - sy * y]]), "content")
    return Registration(np.array([[naive, 0, 0], [0, naive, 0]], float), "page")


def _find_marks(grey: np.ndarray, mask: np.ndarray, k: int, centres: np.ndarray, side_px: float,
                naive: float) -> np.ndarray | None:
    """The affine matrix fitted to the marks found near ``centres`` (template units; ``naive`` px per unit
    puts them where they would be on a scan of the page edge to edge), or None."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    side = side_px / k
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    cands = []
    for i, (sl, area) in enumerate(zip(slices, areas)):
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if not (MARK_SIDE[0] * side <= max(bh, bw) <= MARK_SIDE[1] * side):
            continue
        if max(bh, bw) > MARK_ASPECT * min(bh, bw) or area < MARK_FILL * bh * bw:
            continue
        cands.append((i + 1, sl))
    if len(cands) < 3:
        return None
    # each candidate's centre at full resolution: the centroid of its darkness, sub-pixel
    paper = float(np.median(grey))
    points = []
    for label, sl in cands:
        r0, r1 = sl[0].start * k, sl[0].stop * k
        c0, c1 = sl[1].start * k, sl[1].stop * k
        dark = np.clip(paper - grey[r0:r1, c0:c1].astype(np.float32), 0, None)
        keep = np.kron(labels[sl] == label, np.ones((k, k), bool))[:r1 - r0, :c1 - c0]
        cy, cx = ndimage.center_of_mass(dark * keep)
        points.append((c0 + cx, r0 + cy))
    points = np.array(points)
    h, w = grey.shape
    expected = centres * naive
    reach = MARK_REACH * float(np.hypot(h, w))
    src, dst, used = [], [], set()
    for c, e in zip(centres, expected):
        d = np.hypot(*(points - e).T)
        j = int(np.argmin(d))
        if d[j] <= reach and j not in used:
            used.add(j)
            src.append(c)
            dst.append(points[j])
    if len(src) < 3:
        return None
    src, dst = np.array(src), np.array(dst)
    a = np.hstack([src, np.ones((len(src), 1))])
    m, *_ = np.linalg.lstsq(a, dst, rcond=None)
    residual = np.hypot(*(a @ m - dst).T).max()
    if residual > MARK_FIT * side_px:
        return None
    return m.T


def cut(grey: np.ndarray, reg: Registration, box: tuple[float, float, float, float], inset: float = 0.0,
        paper: float = 1.0) -> np.ndarray:
    """The template box (x, y, width, height in units), less ``inset`` units on each side, resampled
    axis-aligned from ``grey`` (float32 in [0, 1]) at the scan's scale; ``paper`` where it leaves the scan."""
    x, y, bw, bh = box[0] + inset, box[1] + inset, box[2] - 2 * inset, box[3] - 2 * inset
    ppu = reg.scale
    out_h, out_w = max(1, round(bh * ppu)), max(1, round(bw * ppu))
    m = reg.matrix
    # output pixel (r, c) is the template point (x + (c + .5) / ppu, y + (r + .5) / ppu); input is (row, col)
    matrix = np.array([[m[1, 1], m[1, 0]], [m[0, 1], m[0, 0]]]) / ppu
    ux, uy = x + 0.5 / ppu, y + 0.5 / ppu
    offset = np.array([m[1, 0] * ux + m[1, 1] * uy + m[1, 2], m[0, 0] * ux + m[0, 1] * uy + m[0, 2]])
    return ndimage.affine_transform(grey, matrix, offset, output_shape=(out_h, out_w), order=1, cval=paper)
