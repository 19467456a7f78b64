"""Multi-digit reading: a field of handwritten digits on one line -> the string, with a box per digit.

Read by a line model, checked digit by digit. The field's ink is scaled so that a digit is
``STRIP_DIGIT`` px tall and cut to a strip ``STRIP_HEIGHT`` px high around the line. A small
convolutional-recurrent network (``models.line.LineNet``), trained with CTC on synthetic fields of MNIST
*train* digits (``training.line``), reads the strip as frames 2 px apart; its best path gives
the digits and the frame where each one fires. Touching and overlapping neighbours need no explicit
cut: the network was trained on them. The ink is then shared out: each connected mark goes to the
digits that fire inside it, split at the emptiest column between two of them when it holds several (two
equal neighbours in one mark as wide as a digit are one digit where the recognizer says so: ``repeats``); a
mark where no digit fires is left out of the string (a hyphen, a dot, a digit-sized scribble). Each
digit's own ink then goes through the recognizer, which gives its box, its "not a digit" check and a
second opinion: a digit's probabilities are the normalised product of the line model's and the
recognizer's. The marks left out are then read as separators where the kind of field writes them
(``separators``). A row of printed boxes is read box by box instead (``imaging.boxes``).
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from importlib import resources

import numpy as np
from scipy import ndimage

from .. import deadline
from ..errors import InputError
from ..imaging import field_strip, load_line, to_mnist_batch
from ..imaging.frame import FRAME, INK_FRACTION
from ..imaging.light import light_maps
from .backends import Backend, open_backend
from .boxed import read_boxes
from .prediction import NumberReading, Prediction
from .repeats import joined, repeated
from .separators import KINDS, LEAN, SURE_SLASH, amount_value, as_amount, plausible, separator, slash_lean

__all__ = ["NumberReading", "read_number", "decode", "load_line_model"]

_MIN_AREA = 0.01           # components smaller than this share of a digit's height squared are specks ...
_MIN_DOT = 0.005           # ... or, from this share, maybe a point or a comma: what is no separator stays out
_DIGIT_SIZED = 0.5         # a mark left out this tall (in digit heights) may be a digit missed: the reading is unsure
# a digit is for a person to check under this confidence (the recognizer's threshold for one digit) or under
# this digit score of its own ink: cut from touching neighbours, a digit scores lower than a lone one, and the
# lone digit's threshold (1.6) would flag a good share of the touching fields read right
DIGIT_UNSURE_CONFIDENCE = 0.9
DIGIT_UNSURE_SCORE = 0.5


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


def _fired(strip, read: list) -> tuple[np.ndarray, np.ndarray]:
    """Where each digit the line model read fires, and the emptiest strip column between neighbours, in ink
    columns."""
    fire = np.array([strip.left + (f + 0.5) * FRAME / strip.scale for _, f, _ in read])
    profile = strip.image.sum(0)
    cuts = []
    for (_, f0, _), (_, f1, _) in zip(read, read[1:]):
        a, b = f0 * FRAME + 1, f1 * FRAME + 2  # from the centre of one firing frame to the next's
        low = np.flatnonzero(profile[a:b] <= profile[a:b].min() + 1e-6)
        cuts.append(strip.left + (a + (low[0] + low[-1]) / 2 + 0.5) / strip.scale)
    return fire, np.array(cuts)


def _box(rr: np.ndarray, cc: np.ndarray, k: int) -> tuple[int, int, int, int]:
    """The box (x, y, width, height) in the picture's pixels of ink pixels ``rr, cc`` of a ``k`` times smaller map."""
    x0, y0 = int(cc.min()) * k, int(rr.min()) * k
    x1, y1 = (int(cc.max()) + 1) * k, (int(rr.max()) + 1) * k
    return (x0, y0, x1 - x0, y1 - y0)


def _digits(recognizer, ink: np.ndarray, owners: list, read: list, box) -> tuple[list, list]:
    """Each digit's ``(Prediction, its ink)``: the line model's probabilities times the recognizer's reading of
    its own ink; and the ink of those the recognizer does not take for a digit (left out)."""
    kept = [i for i, (rr, _) in enumerate(owners) if len(rr)]
    digits, left_out = [], []
    if kept:
        probs, accepted, scores = _check(recognizer, ink, [owners[i] for i in kept])
        for i, p_clf, ok, score in zip(kept, probs, accepted, scores):
            rr, cc = owners[i]
            if not ok:
                left_out.append((rr, cc))
                continue
            p = read[i][2] * p_clf
            p /= p.sum()
            d = int(p.argmax())
            digits.append((Prediction(digit=d, confidence=float(p[d]), probabilities=tuple(map(float, p)),
                                      box=box(rr, cc), unsure=_unsure(p[d], score)), owners[i]))
    return digits, left_out


def read_number(recognizer, image, line_model=None, limit: int | None = None, kind: str = "any") -> NumberReading:
    """Return the number written on one line of ``image`` (path, bytes, PIL image or array), left to right.

    ``kind``: ``"digits"`` (digits only), ``"amount"`` (decimal point and thousands separators kept; ``value``
    set), ``"date"`` (``/ - .`` kept), ``"any"`` (digits and all of those) or ``"boxes"`` (a row of printed
    boxes, one digit or none in each). ``line_model``: one made by ``load_line_model`` (default: the bundled
    one); ``limit``: the most pixels the image may have (default ``imaging.decode.max_pixels()``)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "boxes":
        boxed = read_boxes(recognizer, image, limit)
        # without a row of boxes, the line is read as digits, and unsure
        return boxed or replace(read_number(recognizer, image, line_model, limit, "digits"), unsure=True)
    # the ink stage's ink for the digits; the light path's too, where the stage dropped a point as a speck
    ink, k, picture, is_ink = load_line(image, limit)
    strip = field_strip(ink)
    if strip is None:
        return NumberReading("")
    deadline.check()
    read = decode((line_model or load_line_model()).logits(strip.image[None, None])[0])
    fire, cuts = _fired(strip, read)
    owners, marks, dots = _share_ink(ink, fire, cuts, strip.digit_h)
    if not is_ink and set(KINDS[kind]) & set(".,"):
        dots += _dropped(light_maps(picture[None])[0], ink, strip.digit_h)
    box = functools.partial(_box, k=k)
    digits, refused = _digits(recognizer, ink, owners, read, box)
    left_out = list(marks) + refused
    for i in reversed(repeated([p.digit for p, _ in digits], [o for _, o in digits], strip.digit_h,
                               lambda owned: _check(recognizer, ink, owned))):
        # one digit read twice: keep the surer reading, with the ink of both
        (p, a), (q, b) = digits[i], digits.pop(i + 1)
        both = joined(a, b)  # not ``ink``: that is the whole line's, which the check above reads
        digits[i] = (replace(max(p, q, key=lambda d: d.confidence), box=box(*both)), both)
    digits, points = _points_apart(digits)
    left_out += points
    digits, seps, unsure = _separators(digits, left_out, dots, kind, strip.digit_h)
    items = sorted([(float(cc.mean()), str(p.digit)) for p, (_, cc) in digits] + [(x, c) for x, c, _, _ in seps])
    text = "".join(c for _, c in items)
    if kind == "amount":
        fixed = as_amount(text)
        unsure |= fixed != text
        text = fixed
    preds = [p for p, _ in digits]
    return NumberReading(text=text, digits=preds,
                         confidence=float(np.prod([p.confidence for p in preds])) if preds else 0.0,
                         marks=sorted(box(rr, cc) for rr, cc in left_out),
                         separators=[(c, box(rr, cc)) for _, c, rr, cc in sorted(seps, key=lambda s: s[0])],
                         value=amount_value(text) if kind == "amount" else None,
                         unsure=unsure or any(p.unsure for p in preds) or not plausible(text, kind))


def _unsure(confidence: float, score: float) -> bool:
    """Whether a digit read with this confidence and the recognizer's digit score is for a person to check."""
    return bool(confidence < DIGIT_UNSURE_CONFIDENCE or score < DIGIT_UNSURE_SCORE)


def _points_apart(digits):
    """The digits read, less the 1s whose ink stands apart from their neighbours' and is a point or a comma on
    their line (the line model reads a comma as a 1 at times); and the ink of those."""
    kept, points = [], []
    for i, (p, (rr, cc)) in enumerate(digits):
        near = [digits[j][1] for j in (i - 1, i + 1) if 0 <= j < len(digits)]
        apart = all(ncc.max() < cc.min() or cc.max() < ncc.min() for _, ncc in near)
        if p.digit == 1 and near and apart and separator(rr, cc, np.mean([r.min() for r, _ in near]),
                                                         np.mean([r.max() for r, _ in near]))[0] in (".", ","):
            points.append((rr, cc))
        else:
            kept.append((p, (rr, cc)))
    return kept, points


def _separators(digits, left_out, dots, kind: str, digit_h: float):
    """The digits, and the separators ``kind`` writes among the marks left out (and the specks) as ``(column,
    character, rows, cols)``: in a date, a "1" that leans as a slash does where the date needs one is one of
    them, no longer a digit. And whether any of it makes the reading doubtful: a point or a comma near the
    depth that tells them apart, a slash that was a "1" leaning little more than a slash must, a mark that is
    no separator but as tall as a digit."""
    if not digits:
        return digits, [], False
    centres = np.array([cc.mean() for _, (_, cc) in digits])
    tops = np.array([rr.min() for _, (rr, _) in digits], float)
    bases = np.array([rr.max() for _, (rr, _) in digits], float)
    lefts = np.array([cc.min() for _, (_, cc) in digits])
    rights = np.array([cc.max() for _, (_, cc) in digits])
    seps, unsure = [], False
    for rr, cc in left_out + dots:
        x = float(cc.mean())
        # the line at the mark: the digits either side of it
        near = [j for j in (np.searchsorted(centres, x) - 1, np.searchsorted(centres, x)) if 0 <= j < len(centres)]
        char, doubt = separator(rr, cc, tops[near].mean(), bases[near].mean())
        # a point or a comma lies in the gap between two digits; under a digit, it is a piece broken off it
        if char in (".", ",") and ((lefts <= x) & (x <= rights)).any():
            char = None
        if char == "," and "," not in KINDS[kind]:
            char, doubt = ".", False  # a date's point with a tail: there is no comma to tell it from
        if char is not None and char in KINDS[kind] and centres[0] < x < centres[-1]:
            seps.append((x, char, rr, cc))
            unsure |= doubt
        elif char is None and rr.max() - rr.min() + 1 >= _DIGIT_SIZED * digit_h:
            unsure = True
    if kind == "date":
        slashes, doubt = _slashes(digits, seps)
        seps += [(float(cc.mean()), "/", rr, cc) for i, (_, (rr, cc)) in enumerate(digits) if i in slashes]
        digits = [d for i, d in enumerate(digits) if i not in slashes]
        unsure |= doubt
    return digits, _one_per_gap(seps, centres), unsure


def _one_per_gap(seps, centres: np.ndarray):
    """``seps`` with the points and commas that share a gap between two digits made one (a comma whose head and
    tail came apart): a comma if either is."""
    out = []
    for x, char, rr, cc in sorted(seps, key=lambda s: s[0]):
        if out and {char, out[-1][1]} <= {".", ","} and \
                np.searchsorted(centres, x) == np.searchsorted(centres, out[-1][0]):
            _, prev, prr, pcc = out.pop()
            rr, cc = np.concatenate([prr, rr]), np.concatenate([pcc, cc])
            x, char = float(cc.mean()), "," if "," in (char, prev) else "."
        out.append((x, char, rr, cc))
    return out


def _slashes(digits, seps) -> tuple[list[int], bool]:
    """Which of the digits read as "1" in a date are slashes: those that lean as a slash does, where the date
    needs its separators; and whether one of those leans little more than a slash must. (A hand's 1 leans as
    far as a slash often enough that elsewhere a "1" stays a 1: one in eight of MNIST's test 1s leans over 0.35
    columns per row.)"""
    leans = {i: slash_lean(rr, cc) for i, (p, (rr, cc)) in enumerate(digits) if p.digit == 1}
    candidates = [i for i, v in leans.items() if v >= LEAN]
    best, best_lean = [], 0.0
    for pick in itertools.chain.from_iterable(itertools.combinations(candidates, r) for r in (1, 2)):
        chars = sorted([(float(cc.mean()), "/" if i in pick else "0") for i, (_, (_, cc)) in enumerate(digits)] +
                       [(x, c) for x, c, _, _ in seps])
        if plausible("".join(c for _, c in chars), "date") and sum(leans[i] for i in pick) > best_lean:
            best, best_lean = list(pick), sum(leans[i] for i in pick)
    return best, any(leans[i] < SURE_SLASH for i in best)


def _share_ink(ink: np.ndarray, fire: np.ndarray, cuts: np.ndarray, digit_h: float):
    """Give each digit its ink: ``(rows, cols)`` per digit, the ``(rows, cols)`` of each mark no digit owns, and
    of each mark too small to be read but large enough to be a point or a comma.

    A connected mark belongs to the digits that fire within its columns (or, for a digit that fires
    over paper, to the nearest mark); one that several digits share is split at the cuts between
    them. A mark no digit fires in joins a digit whose ink spans at least half of its columns (the
    detached bar of a 5), unless it is shaped and placed as a point or a comma; else it is left out.
    """
    mask = ink > float(ink.max()) * INK_FRACTION
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    slices = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    comps = [(i + 1, sl) for i, (sl, a) in enumerate(zip(slices, areas)) if a >= _MIN_AREA * digit_h ** 2]
    dots = [_pixels(labels, i + 1, sl) for i, (sl, a) in enumerate(zip(slices, areas))
            if _MIN_DOT * digit_h ** 2 <= a < _MIN_AREA * digit_h ** 2]
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
        rr, cc = _pixels(labels, n_, sl)
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
        for d, (orr, occ) in enumerate(owned):
            if len(occ) and separator(rr, cc, orr.min(), orr.max())[0] not in (".", ","):
                overlap = min(cc.max(), occ.max()) - max(cc.min(), occ.min()) + 1
                if overlap / (cc.max() - cc.min() + 1) >= share:
                    best, share = d, overlap / (cc.max() - cc.min() + 1)
        if best is None:
            marks.append((rr, cc))
        else:
            owned[best] = (np.concatenate([owned[best][0], rr]), np.concatenate([owned[best][1], cc]))
    return owned, marks, dots


def _dropped(light: np.ndarray, ink: np.ndarray, digit_h: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rows, cols)`` of the marks of the light path's ``light`` that the ink stage's ``ink`` has none of, and
    no larger than a point or a comma: what it dropped as specks."""
    labels, n = ndimage.label(light > INK_FRACTION, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    kept_ink = np.bincount(labels.ravel(), weights=(ink > float(ink.max()) * INK_FRACTION).ravel(), minlength=n + 1)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    slices = ndimage.find_objects(labels)
    return [_pixels(labels, i, slices[i - 1]) for i in range(1, n + 1)
            if kept_ink[i] == 0 and _MIN_DOT * digit_h ** 2 <= areas[i] < 4 * _MIN_AREA * digit_h ** 2]


def _pixels(labels: np.ndarray, n: int, sl) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels labelled ``n`` within the slice ``sl``."""
    rr, cc = np.nonzero(labels[sl] == n)
    return rr + sl[0].start, cc + sl[1].start


def _check(recognizer, ink: np.ndarray, owned) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recognizer's probabilities for each digit's own ink, whether it takes each for a digit, and its digit
    score."""
    boxes = [(rr.min(), rr.max() + 1, cc.min(), cc.max() + 1) for rr, cc in owned]
    crops = np.zeros((len(owned), max(b[1] - b[0] for b in boxes), max(b[3] - b[2] for b in boxes)), np.float32)
    for crop, (rr, cc), (r0, _, c0, _) in zip(crops, owned, boxes):
        crop[rr - r0, cc - c0] = ink[rr, cc]
    x28, found = to_mnist_batch(crops)
    probs = np.full((len(owned), 10), 0.1)
    accepted = np.zeros(len(owned), bool)
    scores = np.full(len(owned), -np.inf)
    if found.any():
        probs[found], scores[found] = recognizer.scores(x28[found])
        accepted[found] = scores[found] >= recognizer.reject_threshold
    return probs, accepted, scores
