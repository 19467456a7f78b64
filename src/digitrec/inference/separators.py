"""The characters between the digits of a number: a mark's shape and place on the line -> ``.`` ``,`` ``-`` ``/``
or none, which of them a kind of field keeps, and an amount's value.

A separator is told by where it sits against the digits beside it and by its outline, not by a model: a
hyphen is a short flat stroke at mid-height (or lower: a flat mark is a hyphen before it is a point), a point
is small and sits on the baseline, a comma is as small and has a tail below the baseline, a slash a stroke
about as tall as the digits, leaning right. What fits none of them (a scribble, a stray letter) is no
separator and stays out of the text.
"""
from __future__ import annotations

from decimal import Decimal

import numpy as np

__all__ = ["KINDS", "separator", "slash_lean", "amount_value", "as_amount", "plausible", "LEAN", "SURE_SLASH"]

# the separators each kind of field writes into its text; "boxes" is read box by box
KINDS = {"digits": "", "amount": ".,", "date": "/-.", "any": ".,-/", "boxes": ""}

SMALL = 0.35            # a point is at most this tall and wide, in digit heights; a comma this wide ...
COMMA = 0.55            # ... and this tall, ...
LOW = 0.55              # ... its top below this share of the way from the digits' top to their baseline ...
TAIL = 0.08             # ... and its tail this far below the baseline, in digit heights (a point's is not)
SIT = 0.2               # a point's bottom is at most this far above the baseline, in digit heights ...
ROUND = 2.0             # ... and it is at most this many times as tall as wide, or as wide as tall
FLAT = 1.6              # a hyphen is this many times as wide as tall ...
THIN = 0.3              # ... at most this tall ...
WIDE = 0.2              # ... and at least this wide, in digit heights: a shorter one is a digit's broken-off piece
TALL = 0.6              # a slash is at least this tall, in digit heights ...
LEAN = 0.25             # ... and leans right by at least this much across per unit of height
SURE_SLASH = 0.45       # a "1" leaning less than this, taken for a slash, leaves the reading unsure


def separator(rr: np.ndarray, cc: np.ndarray, top: float, base: float) -> tuple[str | None, bool]:
    """The separator a mark's pixels (rows ``rr``, columns ``cc``) make on a line whose digits run from row
    ``top`` to row ``base``: ``(character or None, unsure)``. Unsure: a point's or a comma's tail is near the
    depth that tells them apart."""
    height = max(base - top, 1.0)
    h, w = (rr.max() - rr.min() + 1) / height, (cc.max() - cc.min() + 1) / height
    low = (rr.min() - top) / height
    below = (rr.max() - base) / height
    mid = ((rr.min() + rr.max()) / 2 - top) / height
    lean = slash_lean(rr, cc)
    if w >= FLAT * h and h <= THIN and w >= WIDE and 0.2 <= mid <= 0.85:
        return "-", False
    if w <= SMALL and low >= LOW and below >= TAIL and h <= COMMA:
        return ",", below < 1.3 * TAIL
    if max(h, w) <= SMALL and below >= -SIT and max(h, w) <= ROUND * min(h, w):
        return ".", below > 0.7 * TAIL
    if h >= TALL and lean >= LEAN:
        return "/", False
    return None, False


def slash_lean(rr: np.ndarray, cc: np.ndarray) -> float:
    """Columns to the right per row upwards along the mark's principal line (a slash's is positive)."""
    dr = rr - rr.mean()
    var = float((dr * dr).mean())
    return -float((dr * (cc - cc.mean())).mean()) / var if var > 0 else 0.0


def plausible(text: str, kind: str) -> bool:
    """Whether ``text`` is written as a field of ``kind`` writes it: separators between digits, an amount's
    decimal part last, its thousands in threes, a date's separators all alike."""
    if not text:
        return True
    groups = text.replace(",", ".").replace("/", ".").replace("-", ".").split(".")
    if any(not g for g in groups):
        return False
    if kind == "amount":
        return amount_value(text) is not None
    if kind == "date":
        return len({c for c in text if not c.isdigit()}) <= 1 and len(groups) <= 3 and \
            all(len(g) in (1, 2, 4) for g in groups) and (len(groups) == 1 or sum(len(g) == 4 for g in groups) <= 1)
    return True


def amount_value(text: str) -> Decimal | None:
    """The value of an amount written as ``text``: the last separator followed by one or two digits is the
    decimal point (``12,50`` is 12.50 as well as ``12.50``), the others group thousands in threes; None when
    the text is no amount so written."""
    seps = [i for i, c in enumerate(text) if not c.isdigit()]
    if not text or not text[0].isdigit() or not text[-1].isdigit() or any(text[i] not in ".," for i in seps):
        return None
    whole, cents = text, ""
    if seps and len(text) - seps[-1] - 1 in (1, 2):
        whole, cents = text[:seps[-1]], text[seps[-1] + 1:]
    groups = whole.replace(",", ".").split(".")
    if any(len(g) != 3 for g in groups[1:]) or not groups[0] or len({c for c in whole if not c.isdigit()}) > 1:
        return None
    if cents and any(c == text[seps[-1]] for c in whole if not c.isdigit()):
        return None  # "1.250.00": the same mark cannot both group thousands and start the decimals
    return Decimal("".join(groups) + ("." + cents if cents else ""))


def as_amount(text: str) -> str:
    """``text`` with its points and commas made an amount's where they are not: a point and a comma look much
    alike, so in "37.010.80" the first point is read as the comma that groups the thousands before the decimal
    point. Unchanged where that gives no amount either."""
    seps = [i for i, c in enumerate(text) if c in ".,"]
    if amount_value(text) is not None or len(seps) < 2 or len(text) - seps[-1] - 1 not in (1, 2):
        return text
    other = "," if text[seps[-1]] == "." else "."
    fixed = "".join(other if i in seps[:-1] else c for i, c in enumerate(text))
    return fixed if amount_value(fixed) is not None else text
