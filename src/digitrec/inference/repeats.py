"""One digit read twice: the line model can fire two neighbouring frames with the same digit inside the
ink of one broad digit (a thick, wide 8 read as "88"). CTC cannot tell that from two of them touching, so
the recognizer is asked: a pair of equal neighbours that share one connected mark no wider than a digit
is read as one when the recognizer reads the whole mark as that digit and takes it for a digit more
surely than either half.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["repeated", "joined", "FITS_ONE"]

FITS_ONE = 1.2  # digit heights: a mark at most this wide may be a single (broad) digit


def repeated(digits: list[int], owned: list, digit_h: float, check) -> list[int]:
    """Indices ``i`` of the digits read (``digits``, their inks ``owned`` as ``(rows, cols)``) where digit ``i + 1``
    is digit ``i`` read again: the same digit, the two inks one connected mark no wider than a broad digit,
    which the recognizer reads as that digit and takes for a digit more surely than either half.

    ``check(inks)`` gives the recognizer's probabilities, acceptance and digit score for a list of inks.
    """
    pairs = [i for i in range(len(digits) - 1)
             if digits[i] == digits[i + 1] and _one_mark(owned[i], owned[i + 1], digit_h)]
    if not pairs:
        return []
    probs, _, scores = check([joined(owned[i], owned[i + 1]) for i in pairs] +
                             [owned[j] for i in pairs for j in (i, i + 1)])
    halves = scores[len(pairs):].reshape(-1, 2)
    out: list[int] = []
    for k, i in enumerate(pairs):
        if (not out or out[-1] != i - 1) and int(probs[k].argmax()) == digits[i] and scores[k] > halves[k].max():
            out.append(i)
    return out


def joined(a, b) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of two inks ``(rows, cols)`` together."""
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def _one_mark(a, b, digit_h: float) -> bool:
    """Whether two digits' inks together are one connected mark no wider than a broad digit."""
    if not len(a[0]) or not len(b[0]):
        return False
    rr, cc = joined(a, b)
    if cc.max() - cc.min() + 1 > FITS_ONE * digit_h:
        return False
    mask = np.zeros((rr.max() - rr.min() + 1, cc.max() - cc.min() + 1), bool)
    mask[rr - rr.min(), cc - cc.min()] = True
    return ndimage.label(mask, structure=np.ones((3, 3), bool))[1] == 1
