"""Multi-digit reading: a field of handwritten digits on one line -> the string, with a box per digit.

Read by a line model, checked digit by digit. The field's ink is scaled so that a digit is
``STRIP_DIGIT`` px tall and cut to a strip ``STRIP_HEIGHT`` px high around the line. A small
convolutional-recurrent network (``models.line.LineNet``), trained with CTC on synthetic fields of MNIST
*train* digits (``training.line``), reads the strip as frames 2 px apart; its best path gives
the digits and the frame where each one fires. Touching and overlapping neighbours need no explicit
cut: the network was trained on them. The ink is then shared out: each connected mark goes to the
digits that fire inside it, split at the emptiest column between two of them when it holds several; a
mark where no digit fires is left out of the string (a hyphen, a dot, a digit-sized scribble). Each
digit's own ink then goes through the recognizer, which gives its box, its "not a digit" check and a
second opinion: a digit's probabilities are the normalised product of the line model's and the
recognizer's.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from scipy import ndimage

from .. import deadline
from ..imaging import field_strip, load_line, to_mnist_batch
from ..imaging.frame import FRAME, INK_FRACTION
from .backends import Backend, open_backend
from .prediction import Prediction

__all__ = ["NumberReading", "read_number", "decode", "load_line_model"]

_MIN_AREA = 0.01           # components smaller than this share of a digit's height squared are specks


@dataclass(frozen=True)
class NumberReading:
    """A field read as a number: ``text`` ('' when there is no digit), a Prediction per digit, and marks left out.

    ``confidence`` is the product of the digits' confidences (the probability that every digit is right,
    if the classifier is calibrated); 0.0 for an empty field, as for a blank single digit.
    ``marks`` are the boxes (x, y, width, height) of marks that were not read as digits: those no digit
    was read in (a hyphen, a dot, a scribble) and those the recognizer rejects as "not a digit".
    """
    text: str
    digits: list[Prediction] = field(default_factory=list)
    confidence: float = 0.0
    marks: list[tuple[int, int, int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict: text, confidence, digits (each with its box), marks."""
        return {"text": self.text, "confidence": self.confidence, "digits": [p.to_dict() for p in self.digits],
                "marks": [list(b) for b in self.marks]}



@functools.cache
def load_line_model(path: str | None = None) -> Backend:
    """The line model at ``path`` (default: the bundled ONNX file), loaded once per path. An ``.onnx`` file
    (``digitrec export`` of a line model) runs in ONNX Runtime, about twice as fast here as PyTorch on a
    field; a ``.pt`` in PyTorch."""
    return open_backend(path or str(resources.files("digitrec") / "weights" / "line.onnx"), line=True)


def decode(log_probs: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """CTC best path of one strip's ``[T, 11]`` log-probs: ``(digit, frame, probabilities over the 10 digits)``
    per digit read, left to right; the frame is where the digit is surest, its probabilities those there."""
    best = log_probs.argmax(1)
    out = []
    t = 0
    while t < len(best):
        if best[t] == 0:
            t += 1
            continue
        end = t
        while end + 1 < len(best) and best[end + 1] == best[t]:
            end += 1
        peak = t + int(log_probs[t:end + 1, best[t]].argmax())
        p = np.exp(log_probs[peak, 1:].astype(np.float64))
        out.append((int(best[t]) - 1, peak, p / p.sum()))
        t = end + 1
    return out


def read_number(recognizer, image, line_model=None, limit: int | None = None) -> NumberReading:
    """Return the digits written on one line of ``image`` (path, bytes, PIL image or array), left to right.

    ``line_model``: one made by ``load_line_model`` (default: the bundled one); ``limit``: the most pixels
    the image may have (default ``imaging.decode.max_pixels()``)."""
    ink, k = load_line(image, limit)
    strip = field_strip(ink)
    if strip is None:
        return NumberReading("")
    deadline.check()
    read = decode((line_model or load_line_model()).logits(strip.image[None, None])[0])
    # where each digit fires, and the emptiest strip column between neighbours, in ink columns
    fire = np.array([strip.left + (f + 0.5) * FRAME / strip.scale for _, f, _ in read])
    profile = strip.image.sum(0)
    cuts = []
    for (_, f0, _), (_, f1, _) in zip(read, read[1:]):
        a, b = f0 * FRAME + 1, f1 * FRAME + 2  # from the centre of one firing frame to the next's
        low = np.flatnonzero(profile[a:b] <= profile[a:b].min() + 1e-6)
        cuts.append(strip.left + (a + (low[0] + low[-1]) / 2 + 0.5) / strip.scale)
    owners, marks = _share_ink(ink, fire, np.array(cuts), strip.digit_h)

    def box(rr, cc):
        x0, y0 = int(cc.min()) * k, int(rr.min()) * k
        x1, y1 = (int(cc.max()) + 1) * k, (int(rr.max()) + 1) * k
        return (x0, y0, x1 - x0, y1 - y0)

    kept = [i for i, (rr, _) in enumerate(owners) if len(rr)]
    digits, mark_boxes = [], [box(rr, cc) for rr, cc in marks]
    if kept:
        probs, accepted = _check(recognizer, ink, [owners[i] for i in kept])
        for i, p_clf, ok in zip(kept, probs, accepted):
            rr, cc = owners[i]
            if not ok:
                mark_boxes.append(box(rr, cc))
                continue
            p = read[i][2] * p_clf
            p /= p.sum()
            d = int(p.argmax())
            digits.append(Prediction(digit=d, confidence=float(p[d]), probabilities=tuple(map(float, p)),
                                     box=box(rr, cc)))
    mark_boxes.sort()
    return NumberReading(text="".join(str(p.digit) for p in digits), digits=digits,
                         confidence=float(np.prod([p.confidence for p in digits])) if digits else 0.0,
                         marks=mark_boxes)


def _share_ink(ink: np.ndarray, fire: np.ndarray, cuts: np.ndarray, digit_h: float):
    """Give each digit its ink: ``(rows, cols)`` per digit, and the ``(rows, cols)`` of each mark no digit owns.

    A connected mark belongs to the digits that fire within its columns (or, for a digit that fires
    over paper, to the nearest mark); one that several digits share is split at the cuts between
    them. A mark no digit fires in joins a digit whose ink spans at least half of its columns (the
    detached bar of a 5), else it is left out.
    """
    mask = ink > float(ink.max()) * INK_FRACTION
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    comps = [(i + 1, sl) for i, (sl, a) in enumerate(zip(slices, areas)) if a >= _MIN_AREA * digit_h ** 2]
    spans = np.array([(sl[1].start, sl[1].stop) for _, sl in comps]).reshape(-1, 2)
    holders: dict[int, list[int]] = {}
    for d, x in enumerate(fire):
        if not len(comps):
            break
        inside = np.flatnonzero((spans[:, 0] <= x + 1) & (x - 1 < spans[:, 1]))
        if not len(inside):
            inside = [int(np.argmin(np.maximum(spans[:, 0] - x, x - spans[:, 1])))]
        for c in inside:
            holders.setdefault(int(c), []).append(d)
    parts: list[list] = [[] for _ in fire]
    orphans = []
    for c, (n_, sl) in enumerate(comps):
        rr, cc = np.nonzero(labels[sl] == n_)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        ds = holders.get(c)
        if not ds:
            orphans.append((rr, cc))
        elif len(ds) == 1:
            parts[ds[0]].append((rr, cc))
        else:
            # split at the cuts between the digits that share this mark
            who = np.clip(np.searchsorted(cuts, cc + 0.5), min(ds), max(ds))
            for d in set(ds):
                sel = who == d
                parts[d].append((rr[sel], cc[sel]))
    owned = [(np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps])) if ps
             else (np.zeros(0, int), np.zeros(0, int)) for ps in parts]
    marks = []
    for rr, cc in orphans:
        best, share = None, 0.5
        for d, (_, occ) in enumerate(owned):
            if len(occ):
                overlap = min(cc.max(), occ.max()) - max(cc.min(), occ.min()) + 1
                if overlap / (cc.max() - cc.min() + 1) >= share:
                    best, share = d, overlap / (cc.max() - cc.min() + 1)
        if best is None:
            marks.append((rr, cc))
        else:
            owned[best] = (np.concatenate([owned[best][0], rr]), np.concatenate([owned[best][1], cc]))
    return owned, marks


def _check(recognizer, ink: np.ndarray, owned) -> tuple[np.ndarray, np.ndarray]:
    """The recognizer's probabilities for each digit's own ink, and whether it takes each for a digit."""
    boxes = [(rr.min(), rr.max() + 1, cc.min(), cc.max() + 1) for rr, cc in owned]
    crops = np.zeros((len(owned), max(b[1] - b[0] for b in boxes), max(b[3] - b[2] for b in boxes)), np.float32)
    for crop, (rr, cc), (r0, _, c0, _) in zip(crops, owned, boxes):
        crop[rr - r0, cc - c0] = ink[rr, cc]
    x28, found = to_mnist_batch(crops)
    probs = np.full((len(owned), 10), 0.1)
    accepted = np.zeros(len(owned), bool)
    if found.any():
        p, score = recognizer.scores(x28[found])
        probs[found] = p
        accepted[found] = score >= recognizer.reject_threshold
    return probs, accepted
