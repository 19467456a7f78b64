"""A scanned page of a form read field by field: the page registered to its template, one-digit cells read
together, numbers on their line; each field with a value, a confidence and whether a person should check it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..imaging.light import light_maps
from ..imaging.register import Registration, cut, register
from ..imaging.shapes import box_inside
from .template import WHOLE_PAGE_KINDS, FieldSpec, Template

__all__ = ["FieldReading", "FormReading", "read_form", "read_whole", "alternatives"]

READ_AS = {"number": "digits", "amount": "amount", "date": "date"}  # a template's kind -> read_number's
UNSURE_DIGIT = 0.9              # a number is unsure when any of its digits is read with less confidence than this
INSET = 0.06                    # a field is read this share of its box's shorter side inside its printed frame
CELL_MARGIN = 0.12              # a boxed cell is cut with this share of its side around it, so all four lines show
PICTURE_MARGIN = 0.25           # an unsure field's picture, for a person, shows this share of its height around it
# a mark the reader left out of a number, at least this share of the digits' median height, is likely a digit
# it could not read (a separator is small): the number is unsure. On the tuning split of benchmarks/forms.py
# it halves the wrong numbers left unflagged, the same from 0.4 to 0.8
DROPPED_MARK = 0.5


@dataclass(frozen=True)
class FieldReading:
    """A field's value ('' when nothing was read), its confidence, whether a person should check it, and
    why it fails its checks (None when it passes). ``digits``: each digit's Prediction; ``picture``: for an
    unsure field, the field and some paper around it (uint8 grey), for the person who checks it."""
    name: str
    value: str
    confidence: float
    unsure: bool
    problem: str | None = None
    digits: list = field(default_factory=list)
    picture: np.ndarray | None = None


@dataclass(frozen=True)
class FormReading:
    """Every field of one page, in the template's order, and how the page was registered."""
    fields: list[FieldReading]
    registration: Registration


def read_form(recognizer, page: np.ndarray, template: Template) -> FormReading:
    """Every field of ``template`` read on ``page`` (a grey scan [H,W], uint8 or float in [0, 1]).

    The page is registered first (``imaging.register``), then each field cut at the scan's resolution: one-
    digit cells (``digit``, ``boxes:N``) all go through ``recognizer.predict_batch`` at once, numbers through
    ``recognizer.read_number``. A number is unsure when a digit's confidence is under ``UNSURE_DIGIT`` or a
    digit-sized mark was left out of it (``DROPPED_MARK``), a cell when its Prediction is; any field that
    fails its checks is unsure too.
    """
    grey = page.astype(np.float32) / 255 if page.dtype == np.uint8 else np.asarray(page, np.float32)
    reg = register(grey, template.page, template.marks, template.mark_side, template.content)
    paper = float(np.median(grey[::4, ::4]))
    cells = [c for spec in template.fields if spec.cells for c in _cells(grey, reg, spec, paper)]
    preds = iter(recognizer.predict_batch(cells) if cells else [])  # each field takes its own cells, in order
    readings = []
    for spec in template.fields:
        if spec.cells:
            mine = list(itertools.islice(preds, spec.cells))
            read = [p for p in mine if p.digit is not None]
            value = "".join(str(p.digit) for p in read)
            confidence = float(np.prod([p.confidence for p in read])) if read else 0.0
            # a cell with ink that is no digit (the recognizer's None with its doubt) is doubtful as well
            doubtful = any(p.unsure for p in mine)
        else:
            inset = INSET * min(spec.box[2], spec.box[3])
            number = recognizer.read_number(cut(grey, reg, spec.box, inset, paper), kind=READ_AS[spec.kind])
            read, value, confidence = number.digits, number.text, number.confidence
            doubtful = _doubtful(number)
        problem = spec.check(value)
        unsure = doubtful or problem is not None
        picture = None
        if unsure:
            m = PICTURE_MARGIN * spec.box[3]
            wide = (spec.box[0] - m, spec.box[1] - m, spec.box[2] + 2 * m, spec.box[3] + 2 * m)
            picture = (cut(grey, reg, wide, 0.0, paper) * 255).round().astype(np.uint8)
        readings.append(FieldReading(spec.name, value, confidence, unsure, problem, read, picture))
    return FormReading(readings, reg)


def read_whole(recognizer, page: np.ndarray, kind: str = "digit", name: str = "value") -> FieldReading:
    """``page`` (any picture) read as one field filling it: one digit, or a number (``WHOLE_PAGE_KINDS``),
    unsure by the same rules as a template's fields."""
    if kind == "digit":
        p = recognizer.predict(page)
        read = [p] if p.digit is not None else []
        value, confidence, unsure = "".join(str(d.digit) for d in read), p.confidence if read else 0.0, p.unsure
    elif kind == "number":
        number = recognizer.read_number(page)  # any: digits and the separators a number may have
        read, value, confidence = number.digits, number.text, number.confidence
        unsure = _doubtful(number)
    else:
        raise InputError(f"a page without a template is read as {' or '.join(WHOLE_PAGE_KINDS)}, not {kind!r}")
    picture = np.asarray(page) if unsure and isinstance(page, np.ndarray) else None
    return FieldReading(name, value, confidence, unsure, None, read, picture)


def _doubtful(number) -> bool:
    """Whether a person should check a ``NumberReading``: the reader doubts it, a digit is read with little
    confidence, or a mark left out is as tall as a digit."""
    if number.unsure or any(p.confidence < UNSURE_DIGIT for p in number.digits):
        return True
    height = float(np.median([p.box[3] for p in number.digits])) if number.digits else 0.0
    return height > 0 and any(m[3] >= DROPPED_MARK * height for m in number.marks)


def alternatives(reading: FieldReading, n: int = 3, spec: FieldSpec | None = None) -> list[str]:
    """Other values the field may have, likeliest first: ``value`` with one digit changed to that digit's
    second choice, the digits whose second choice is nearest their first first; with the field's ``spec``,
    those that pass its checks (a Luhn digit, a pattern) before those that do not."""
    if not reading.value or len(reading.digits) != len(reading.value):
        return []
    swaps = sorted(((p.top3[1][1] / max(p.top3[0][1], 1e-12), i, p.top3[1][0]) for i, p in enumerate(reading.digits)),
                   reverse=True)
    values = [reading.value[:i] + str(d) + reading.value[i + 1:] for _, i, d in swaps]
    if spec is not None:
        values.sort(key=lambda v: spec.check(v) is not None)  # stable: likeliest first within each group
    return values[:n]


def _cells(grey: np.ndarray, reg: Registration, spec: FieldSpec, paper: float) -> list[np.ndarray]:
    """Each one-digit cell of ``spec`` as a grey picture with its printed box taken away.

    A cell is cut with a margin so that its four lines show, and ``imaging.shapes.box_inside`` keeps what
    is inside them; where it finds no box (or an empty one) the cell cut inside its frame is read instead,
    so a box the handwriting hides is not lost."""
    x, y, w, h = spec.box
    cw = w / spec.cells
    out = []
    for c in range(spec.cells):
        cell = (x + c * cw, y, cw, h)
        m = CELL_MARGIN * min(cw, h)
        wide = cut(grey, reg, (cell[0] - m, cell[1] - m, cell[2] + 2 * m, cell[3] + 2 * m), 0.0, paper)
        inside = box_inside(light_maps(wide[None]))[0]
        if inside.max() > 0:
            out.append(1 - inside)
        else:
            out.append(cut(grey, reg, cell, INSET * min(cw, h), paper))
    return out
