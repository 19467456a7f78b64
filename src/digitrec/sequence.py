"""Multi-digit reading: a field of handwritten digits on one line -> the string, with a box per digit.

Segmentation by recognition. The field is scaled so that a digit is about ``_WORK_HEIGHT`` pixels
tall; its connected components are the first pieces, and every component wide enough to hold more
than one digit is over-cut along the cheapest top-to-bottom paths through its ink (seams, as in seam
carving), which is where touching neighbours meet. Every run of up to ``_MAX_PIECES`` neighbouring
pieces is a candidate digit; all candidates go through the classifier in one batch, and dynamic
programming picks the partition of the pieces that scores best: each digit its class's log-probability
plus the log-odds, from a small logistic regression on its shape and cuts, that it is one whole digit
rather than a fragment or two merged neighbours. Marks much shorter than a digit (a hyphen, a dot, a
stray tick) may be left out of the string at a cost; a full-height mark when the classifier and that
regression both find it very unlike a digit, or when the recognizer rejects the part chosen as "not a
digit" (its ``reject_threshold``, as for a single image).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from .preprocess import load_image, to_mnist_batch
from .recognizer import Prediction

__all__ = ["NumberReading", "read_number"]

_BLANK_CONTRAST = 0.12     # peak ink (0-1) below this is an empty field, as for a single digit
_INK_FRACTION = 0.25       # pixels above this share of the peak ink are the marks' pixels
_COARSE_HEIGHT = 64        # px: the field's ink is first scaled to this height to measure its digits
_WORK_HEIGHT = 64          # px: the height of a digit where the field is segmented
_MIN_AREA = 0.01           # components smaller than this share of a digit's height squared are specks
_SPLIT_WIDTH = 0.75        # components wider than this many digit heights are cut into pieces
_MIN_PART = 0.06           # a cut leaves at least this share of a digit's height squared of ink either side
_CUT_SPACING = 0.06        # a cut is the cheapest seam within this many digit heights (mean x of the seams)
_CUT_SLOPE_COST = 0.4      # ink-units a seam pays per pixel of sideways step, so that cuts stay straight
_MAX_PIECES = 8            # a digit is made of at most this many neighbouring pieces
_MAX_WIDTH = 1.3           # a digit is at most this many digit heights wide
_MIN_HEIGHT = 0.45         # a candidate digit shorter than this share of the digit height is a mark
# logistic regression on _features' columns, whole digit vs fragment or merged pair, and a bonus per digit read;
# fitted on fields of MNIST *train* digits by `python benchmarks/sequence.py --fit`
_VERIFIER = (-8.800, -0.780, 1.134, 2.714, 1.161, 6.445, -5.256, 5.624, -2.043, -2.022, -0.074, 0.198, -2.148)
_DIGIT_BONUS = 1.5
_MARK_LOG_P = math.log(0.15)  # log-probability of leaving a short mark out of the string
_TALL_MARK_LOG_P = math.log(1e-3)  # ... and a digit-sized mark the classifier cannot read


@dataclass(frozen=True)
class NumberReading:
    """A field read as a number: ``text`` ('' when there is no digit), a Prediction per digit, and marks left out.

    ``confidence`` is the product of the digits' confidences (the probability that every digit is right,
    if the classifier is calibrated); 0.0 for an empty field, as for a blank single digit.
    ``marks`` are the boxes (x, y, width, height) of marks that were not read as digits: short ones (a hyphen,
    a dot) and those the recognizer rejects as "not a digit".
    """
    text: str
    digits: list[Prediction] = field(default_factory=list)
    confidence: float = 0.0
    marks: list[tuple[int, int, int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict: text, confidence, digits (each with its box), marks."""
        return {"text": self.text, "confidence": self.confidence, "digits": [p.to_dict() for p in self.digits],
                "marks": [list(b) for b in self.marks]}


def read_number(recognizer, image) -> NumberReading:
    """Return the digits written on one line of ``image`` (path, bytes, PIL image or array), left to right."""
    ink = load_image(image)
    seg = _segment(recognizer, ink)
    if seg is None:
        return NumberReading("")
    chosen = _best_partition(seg)

    def box(i, j):
        r0, r1, c0, c1 = _union_box(seg.pieces, i, j)
        x0, y0 = math.floor(c0 / seg.scale), math.floor(r0 / seg.scale)
        x1, y1 = min(math.ceil(c1 / seg.scale), ink.shape[1]), min(math.ceil(r1 / seg.scale), ink.shape[0])
        return (x0, y0, x1 - x0, y1 - y0)

    parts = []
    for i, j, k in chosen:
        if k is None and parts and parts[-1][2] is None:
            parts[-1] = (parts[-1][0], j, None)  # neighbouring pieces left out together are one mark
        else:
            parts.append((i, j, k))
    digits, marks = [], []
    for i, j, k in parts:
        # a part the recognizer rejects as "not a digit" is a mark too, as a single image would be
        if k is None or not seg.accepted[k]:
            marks.append(box(i, j))
            continue
        p = seg.probs[k]
        d = int(p.argmax())
        digits.append(Prediction(digit=d, confidence=float(p[d]), probabilities=tuple(map(float, p)), box=box(i, j)))
    return NumberReading(text="".join(str(p.digit) for p in digits), digits=digits,
                         confidence=float(np.prod([p.confidence for p in digits])) if digits else 0.0, marks=marks)


@dataclass
class _Segmentation:
    scale: float               # working resolution / input resolution
    work: np.ndarray           # the ink map at working resolution
    pieces: list               # (rows, cols, r0, r1, c0, c1) at working resolution, left to right
    digit_h: float             # a digit's height at working resolution, px
    cuts: list                 # cuts[i]: strokes a seam crossed between pieces i-1 and i (0: separate marks)
    spans: list                # candidate digits: runs (i, j) of pieces i..j-1
    probs: np.ndarray          # the classifier's calibrated probabilities [len(spans), 10]
    search_probs: np.ndarray   # the same at temperature 1, the scale the search scoring was fitted on
    accepted: np.ndarray       # [len(spans)] bool: not rejected by the recognizer as "not a digit"


def _segment(recognizer, ink: np.ndarray) -> _Segmentation | None:
    """Over-segment the ink map and classify every candidate digit in one batch; None when there is no mark."""
    peak = float(ink.max(initial=0))
    if peak < _BLANK_CONTRAST:
        return None
    scale = _work_scale(ink, peak)
    work = _resize(ink, scale) if scale < 1 else ink
    pieces, digit_h, cuts = _pieces(work, float(work.max()))
    if not pieces:
        return None
    spans, x28 = _candidates(work, pieces, digit_h)
    probs, digit_scores = recognizer.scores(x28)
    # softmax(z / T) ** T is proportional to softmax(z): undo calibration so the search's fitted constants
    # keep their meaning whatever temperature a model carries
    search = probs.astype(np.float64) ** recognizer.temperature
    search /= search.sum(1, keepdims=True)
    return _Segmentation(scale, work, pieces, digit_h, cuts, spans, probs, search,
                         digit_scores >= recognizer.reject_threshold)


def _resize(a: np.ndarray, scale: float) -> np.ndarray:
    h, w = a.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BOX))


def _work_scale(ink: np.ndarray, peak: float) -> float:
    """The factor that makes a digit about ``_WORK_HEIGHT`` px tall (never above 1: no upsampling)."""
    rows = np.flatnonzero((ink > peak * _INK_FRACTION).any(1))
    coarse = min(1.0, _COARSE_HEIGHT / (rows[-1] - rows[0] + 1))
    small = _resize(ink, coarse) if coarse < 1 else ink
    _, heights, areas = _components(small > float(small.max()) * _INK_FRACTION)
    digit_h = _digit_height(heights, areas) / coarse
    return min(1.0, _WORK_HEIGHT / digit_h)


def _components(mask: np.ndarray):
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    slices = ndimage.find_objects(labels)
    heights = np.array([s[0].stop - s[0].start for s in slices])
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return (labels, slices), heights, areas


def _digit_height(heights: np.ndarray, areas: np.ndarray) -> float:
    # the area-weighted median: specks and hyphens are light, touching digits keep one digit's height
    order = np.argsort(heights)
    cum = np.cumsum(areas[order])
    return float(heights[order][np.searchsorted(cum, cum[-1] / 2)])


def _pieces(work: np.ndarray, peak: float):
    """Over-segment the field into pieces, left to right; return them, the digit height and each cut's cost.

    A piece is ``(rows, cols, r0, r1, c0, c1)``; ``cuts[i]`` is the ink (in strokes crossed) between
    pieces ``i-1`` and ``i`` when a seam made them, else 0: separate components cost nothing to keep apart.
    """
    mask = work > peak * _INK_FRACTION
    (labels, slices), heights, areas = _components(mask)
    digit_h = _digit_height(heights, areas)
    stroke = _stroke_width(mask) * peak
    pieces, seam_costs = [], []
    for n, (sl, area) in enumerate(zip(slices, areas), start=1):
        if area < _MIN_AREA * digit_h ** 2:
            continue
        own = labels[sl] == n
        rr, cc = np.nonzero(own)
        part, costs = _cut(np.where(own, work[sl], 0), rr, cc, digit_h)
        for k in range(len(costs) + 1):
            sel = part == k
            if sel.any():
                r, c = rr[sel] + sl[0].start, cc[sel] + sl[1].start
                pieces.append((r, c, r.min(), r.max() + 1, c.min(), c.max() + 1))
                seam_costs.append((n, costs[k - 1] / stroke if k else 0.0))
    order = sorted(range(len(pieces)), key=lambda i: pieces[i][1].mean())
    cuts = [seam_costs[b][1] if a + 1 == b and seam_costs[a][0] == seam_costs[b][0] else 0.0
            for a, b in zip([-1] + order[:-1], order)]
    return [pieces[i] for i in order], digit_h, cuts


def _stroke_width(mask: np.ndarray) -> float:
    """Median length (px) of the runs of ink along rows and columns: about a pen stroke's width."""
    runs = []
    for m in (mask, mask.T):
        edges = np.diff(m.astype(np.int8), axis=1, prepend=0, append=0)
        runs.append(np.flatnonzero(edges.ravel() == -1) - np.flatnonzero(edges.ravel() == 1))
    return float(max(1.0, np.median(np.concatenate(runs))))


def _cut(sub: np.ndarray, rr: np.ndarray, cc: np.ndarray, digit_h: float):
    """Cut one component along its cheapest seams: each pixel's piece (0, 1, ... left to right) and each seam's ink."""
    h, w = sub.shape
    if w <= _SPLIT_WIDTH * digit_h:
        return np.zeros(len(rr), int), []
    # seam carving: cost[r, x] = ink on the cheapest path from the top row down to (r, x)
    step = np.zeros((h, w), np.int8)
    padded = np.full(w + 2, np.inf, np.float32)
    padded[1:-1] = sub[0]
    for r in range(1, h):
        left, here, right = padded[:-2] + _CUT_SLOPE_COST, padded[1:-1], padded[2:] + _CUT_SLOPE_COST
        side = np.minimum(left, right)
        step[r] = np.where(here <= side, 0, np.where(left <= right, -1, 1))
        padded[1:-1] = np.minimum(here, side) + sub[r]
    cost = padded[1:-1]
    # every bottom column's seam at once, traced back up the rows
    paths = np.empty((w, h), np.intp)
    x = np.arange(w)
    for r in range(h - 1, -1, -1):
        paths[:, r] = x
        x = x + step[r, x]
    # ink pixels left of each seam, from per-row running counts
    before = np.zeros((h, w + 1), np.int32)
    np.cumsum(sub > 0, axis=1, out=before[:, 1:])
    left = before[np.arange(h), paths].sum(1)
    centres = paths.mean(1)
    useful = np.minimum(left, len(rr) - left) >= _MIN_PART * digit_h ** 2
    # a seam is a candidate cut when no useful seam centred within _CUT_SPACING is cheaper: local minima of
    # the cost along the component, not just its cheapest few, since touching digits may meet right next to
    # a cheaper but wrong cut
    cost = np.where(useful, cost, np.inf)
    near = np.abs(centres[:, None] - centres[None, :]) < _CUT_SPACING * digit_h
    cheapest = np.where(near, cost[None, :], np.inf).min(1)
    seams, kept = [], []
    for x in np.argsort(centres, kind="stable"):
        if useful[x] and cost[x] <= cheapest[x] and all(abs(left[x] - k) > _MIN_PART * digit_h ** 2 / 4 for k in kept):
            seams.append(x)
            kept.append(left[x])
    if not seams:
        return np.zeros(len(rr), int), []
    # backtracked seams may swap places between two rows without sharing a pixel; keep them ordered
    ordered = np.maximum.accumulate(paths[seams], axis=0)
    inks = sub[np.arange(h)[None, :], paths[seams]].sum(1)
    return (cc[None, :] >= ordered[:, rr]).sum(0), [float(v) for v in inks]


def _union_box(pieces, i: int, j: int):
    run = pieces[i:j]
    return (min(p[2] for p in run), max(p[3] for p in run), min(p[4] for p in run), max(p[5] for p in run))


def _candidates(work: np.ndarray, pieces, digit_h: float):
    """Every run ``(i, j)`` of neighbouring pieces that could be one digit, and its 28x28 model input."""
    spans, boxes = [], []
    for i in range(len(pieces)):
        for j in range(i + 1, min(len(pieces), i + _MAX_PIECES) + 1):
            r0, r1, c0, c1 = _union_box(pieces, i, j)
            if c1 - c0 <= _MAX_WIDTH * digit_h and r1 - r0 >= _MIN_HEIGHT * digit_h:
                spans.append((i, j))
                boxes.append((r0, r1, c0, c1))
    if not spans:
        return [], np.zeros((0, 28, 28), np.float32)
    # each candidate's own ink, top-left aligned in one padded stack: the padding is paper, which the
    # batched crop to the ink ignores
    crops = np.zeros((len(spans), max(b[1] - b[0] for b in boxes), max(b[3] - b[2] for b in boxes)), np.float32)
    for crop, (i, j), (r0, _, c0, _) in zip(crops, spans, boxes):
        for r, c, *_ in pieces[i:j]:
            crop[r - r0, c - c0] = work[r, c]
    x28, found = to_mnist_batch(crops)
    return [s for s, ok in zip(spans, found) if ok], x28[found]


def _features(seg: _Segmentation) -> np.ndarray:
    """What tells a whole digit from a fragment or a merged pair, one row per candidate (weights: ``_VERIFIER``).

    Columns: 1, log-probability of the top class, its margin over the second (log), log aspect ratio and
    its square, width and its square and height (in digit heights), strokes cut at the left and right
    ends, pieces joined, read as a 1, and a 1's width.
    """
    top2 = np.sort(seg.search_probs, axis=1)[:, -2:]
    logp, margin = np.log(top2[:, 1] + 1e-9), np.log(top2[:, 1] + 1e-9) - np.log(top2[:, 0] + 1e-9)
    one = seg.search_probs.argmax(1) == 1
    rows = []
    for (i, j), lp, mg, is1 in zip(seg.spans, logp, margin, one):
        r0, r1, c0, c1 = _union_box(seg.pieces, i, j)
        w, h = (c1 - c0) / seg.digit_h, (r1 - r0) / seg.digit_h
        aspect = math.log(w / h)
        right = seg.cuts[j] if j < len(seg.cuts) else 0.0
        rows.append((1.0, lp, mg, aspect, aspect ** 2, w, w ** 2, h, seg.cuts[i], right, j - i - 1, is1, is1 * w))
    return np.array(rows, np.float64).reshape(-1, 13)


def _best_partition(seg: _Segmentation):
    """Dynamic programming over the pieces: the partition into digits (and marks) of highest score.

    A candidate digit scores its class's log-probability plus the log-odds that it is one whole digit
    (not a fragment, not a merged pair): with log-odds, rather than log-probabilities, a partition into
    fewer parts gets no advantage for having fewer terms. Returns ``(i, j, k)`` per part, left to right:
    pieces ``i..j-1`` read as candidate ``k``, or ``k=None`` for a mark left out of the string.
    """
    pieces, n = seg.pieces, len(seg.pieces)
    scores = np.log(seg.search_probs.max(1) + 1e-9) + _features(seg) @ np.array(_VERIFIER) + _DIGIT_BONUS
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back: list = [None] * (n + 1)
    ends: dict[int, list] = {}
    for k, ((i, j), score) in enumerate(zip(seg.spans, scores)):
        ends.setdefault(j, []).append((i, k, float(score)))
    for j in range(1, n + 1):
        # any single piece may be a mark, so a partition always exists; a digit-sized one only at a high cost
        short = pieces[j - 1][3] - pieces[j - 1][2] < _MIN_HEIGHT * seg.digit_h
        options = [(best[j - 1] + (_MARK_LOG_P if short else _TALL_MARK_LOG_P), j - 1, None)]
        options += [(best[i] + score, i, k) for i, k, score in ends.get(j, [])]
        score, i, k = max(options, key=lambda o: o[0])
        best[j], back[j] = score, (i, k)
    parts, j = [], n
    while j > 0:
        i, k = back[j]
        parts.append((i, j, k))
        j = i
    return parts[::-1]
