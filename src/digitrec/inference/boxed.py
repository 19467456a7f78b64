"""A row of printed boxes (a form's account number, a date in cells) read box by box: the inside of each box
(``imaging.boxes.box_row``), each read by the recognizer as one digit or found empty."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import deadline
from ..imaging.boxes import box_row
from ..imaging.decode import read_picture
from ..imaging.frame import INK_FRACTION
from ..imaging.light import light_maps
from .prediction import BLANK, NumberReading

__all__ = ["read_boxes"]

EMPTY_BOX = 0.01          # a box whose inside is inked over less than this share of it is empty


def read_boxes(recognizer, image, limit: int | None):
    """A row of printed boxes read box by box: a Prediction per box (digit None where it is empty, its box then
    the box's inside; else the box of its ink), a space in the text for an empty one; None without a row of
    boxes."""
    picture, is_ink, k = read_picture(image, limit=limit)
    ink = picture if is_ink else light_maps(picture[None])[0]
    cells = box_row(ink)
    if not cells:
        return None
    deadline.check()
    insides = [ink[t:b, lf:rt] for t, b, lf, rt in cells]
    written = [float((c > 0.5).mean()) >= EMPTY_BOX for c in insides]
    inked = [i for i, w in enumerate(written) if w]
    # each inside is light-path ink already: read through the same path as a picture of ink
    read = recognizer.judge(recognizer.read_decoded([(insides[i], True) for i in inked])) if inked else []
    preds = [BLANK] * len(insides)
    for i, p in zip(inked, read):
        preds[i] = p
    digits = [replace(p, box=ink_box(inside, t, lf, k)) if w else
              replace(BLANK, box=(lf * k, t * k, (rt - lf) * k, (b - t) * k))
              for p, w, inside, (t, b, lf, rt) in zip(preds, written, insides, cells)]
    read = [p for p in digits if p.digit is not None]
    return NumberReading(text="".join(" " if p.digit is None else str(p.digit) for p in digits), digits=digits,
                         confidence=float(np.prod([p.confidence for p in read])) if read else 0.0,
                         unsure=any(p.unsure for p in read) or any(w and p.digit is None for p, w in zip(digits, written)))


def ink_box(inside: np.ndarray, top: int, left: int, k: int) -> tuple[int, int, int, int]:
    """The box (x, y, width, height) in the input of the ink inside a box whose inside starts at (top, left)."""
    rr, cc = np.nonzero(inside > float(inside.max()) * INK_FRACTION)
    return ((left + int(cc.min())) * k, (top + int(rr.min())) * k, (int(cc.max()) - int(cc.min()) + 1) * k,
            (int(rr.max()) - int(rr.min()) + 1) * k)
