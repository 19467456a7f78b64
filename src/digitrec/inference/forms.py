"""Forms: a template (the page's size, its corner marks, named fields with their kinds and checks) and the
reading of a scanned page of it, field by field.

A template is a small JSON file in page units (millimetres, or fractions of the page: any unit, one for
all its numbers), so one template fits a scan of any resolution::

    {"page": [160, 100],
     "marks": {"side": 5, "centres": [[7, 7], [153, 7], [7, 93], [153, 93]]},
     "fields": [{"name": "zip", "kind": "number", "box": [15, 16, 50, 15], "validate": {"length": 5}},
                {"name": "account", "kind": "boxes:8", "box": [15, 66, 96, 12], "validate": {"luhn": true}}]}

``box`` is (x, y, width, height) from the page's top left: the field's printed frame. Kinds: ``digit`` (one
digit), ``number`` (digits on a line: a ZIP code), ``amount`` (digits with their decimal point and thousands
commas), ``date`` (digits with / - or .), ``boxes:N`` (N equal cells of one digit each; an empty cell is
left out). ``validate``: ``length`` (how many digits: a number, or [least, most]), ``regex`` (the whole
value) and ``luhn`` (the last digit checks the others). ``marks`` (optional): solid squares printed at the page's
corners; without them the page is registered by the box of its content, ``content`` (default the page).
"""
from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imaging.layout import find_layout
from ..imaging.light import light_maps
from ..imaging.register import Registration, cut, register
from ..imaging.shapes import box_inside

__all__ = ["Template", "FieldSpec", "FieldReading", "FormReading", "load_template", "make_template", "read_form",
           "read_whole", "alternatives", "luhn_valid", "WHOLE_PAGE_KINDS"]

NUMBER_KINDS = ("number", "amount", "date")
READ_AS = {"number": "digits", "amount": "amount", "date": "date"}  # a template's kind -> read_number's
UNSURE_DIGIT = 0.9              # a number is unsure when any of its digits is read with less confidence than this
INSET = 0.06                    # a field is read this share of its box's shorter side inside its printed frame
CELL_MARGIN = 0.12              # a boxed cell is cut with this share of its side around it, so all four lines show
PICTURE_MARGIN = 0.25           # an unsure field's picture, for a person, shows this share of its height around it
WHOLE_PAGE_KINDS = ("digit", "number")  # what a page read without a template may hold
# a mark the reader left out of a number, at least this share of the digits' median height, is likely a digit
# it could not read (a separator is small): the number is unsure. On the tuning split of benchmarks/forms.py
# it halves the wrong numbers left unflagged, the same from 0.4 to 0.8
DROPPED_MARK = 0.5


@dataclass(frozen=True)
class FieldSpec:
    """One field of a template; see the module's docstring for the meaning of each part."""
    name: str
    kind: str
    box: tuple[float, float, float, float]
    length: tuple[int, int] | None = None
    regex: str | None = None
    luhn: bool = False

    @property
    def cells(self) -> int:
        """How many one-digit cells the field has (1 for ``digit``; 0 for a number read on a line)."""
        return int(self.kind.split(":")[1]) if self.kind.startswith("boxes:") else int(self.kind == "digit")

    def check(self, value: str) -> str | None:
        """What is wrong with ``value`` by the field's checks, or None."""
        digits = sum(c.isdigit() for c in value)
        if self.length and not self.length[0] <= digits <= self.length[1]:
            want = self.length[0] if self.length[0] == self.length[1] else f"{self.length[0]}-{self.length[1]}"
            return f"{digits} digits, not {want}"
        if self.regex and not re.fullmatch(self.regex, value):
            return f"does not match {self.regex}"
        if self.luhn and not luhn_valid(value):
            return "fails the Luhn check"
        return None


@dataclass(frozen=True)
class Template:
    """A form: page size (width, height) in units, optional corner marks and content box, fields in order."""
    page: tuple[float, float]
    fields: tuple[FieldSpec, ...]
    marks: np.ndarray | None = None
    mark_side: float = 0.0
    content: tuple[float, float, float, float] | None = None
    name: str = ""


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


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` ends in a correct Luhn check digit (card and account numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def load_template(src: str | os.PathLike | dict) -> Template:
    """The template in a JSON file (or a dict of the same shape), checked: ``InputError`` names what is wrong."""
    name = "template"
    if isinstance(src, (str, os.PathLike)):
        name = str(src)
        try:
            src = json.loads(Path(src).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{name}: not a JSON template ({e})") from None
    if not isinstance(src, dict):
        raise InputError(f"{name}: a template is a JSON object with 'page' and 'fields'")
    page = _numbers(src.get("page"), 2, f"{name}: 'page'", positive=True)
    fields = src.get("fields")
    if not isinstance(fields, list) or not fields:
        raise InputError(f"{name}: 'fields' must be a non-empty list")
    specs = [_field(f, i, name, page) for i, f in enumerate(fields)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"{name}: field names must be unique")
    marks, side = None, 0.0
    if src.get("marks") is not None:
        m = src["marks"]
        if not isinstance(m, dict) or not isinstance(m.get("centres"), list) or len(m["centres"]) < 3:
            raise InputError(f"{name}: 'marks' must be {{'side': S, 'centres': [[x, y], ...]}} with at least 3 centres")
        side = _numbers([m.get("side")], 1, f"{name}: marks 'side'", positive=True)[0]
        marks = np.array([_numbers(c, 2, f"{name}: a mark centre") for c in m["centres"]], float)
    content = _numbers(src["content"], 4, f"{name}: 'content'") if src.get("content") is not None else None
    return Template(page, tuple(specs), marks, side, content, str(src.get("name", "")))


def make_template(blank: np.ndarray, dpi: float | None = None, name: str = "") -> dict:
    """A template (a dict, as ``load_template`` takes it) for the blank form ``blank`` (grey [H,W]): its
    printed frames become fields ``field1``, ``field2``... (top to bottom, left to right; a frame split into
    cells ``boxes:N``, a square one ``digit``, a wider one ``number``), its corner marks the template's marks.
    Units: millimetres when ``dpi`` is known, else pixels. Rename the fields and add checks by hand."""
    grey = blank.astype(np.float32) / 255 if blank.dtype == np.uint8 else np.asarray(blank, np.float32)
    boxes, marks, side = find_layout(grey)
    if not boxes:
        raise InputError("no printed boxes found on the blank form (a field's frame is a dark outline)")
    unit = 25.4 / dpi if dpi else 1.0
    row = 0.5 * min(b.height for b in boxes)  # frames whose tops are closer than this are on one line
    fields = []
    for k, b in enumerate(sorted(boxes, key=lambda b: (round(b.y / row), b.x))):
        kind = f"boxes:{b.cells}" if b.cells > 1 else "digit" if b.width <= 1.5 * b.height else "number"
        fields.append({"name": f"field{k + 1}", "kind": kind,
                       "box": [round(v * unit, 2) for v in (b.x, b.y, b.width, b.height)]})
    template = {"name": name, "units": "mm" if dpi else "px",
                "page": [round(grey.shape[1] * unit, 2), round(grey.shape[0] * unit, 2)], "fields": fields}
    if len(marks) >= 3:
        template["marks"] = {"side": round(side * unit, 2), "centres": (marks * unit).round(2).tolist()}
    return template


def _numbers(v, n: int, what: str, positive: bool = False) -> tuple:
    ok = isinstance(v, (list, tuple)) and len(v) == n and all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                              for a in v)
    if not ok or (positive and min(v) <= 0):
        raise InputError(f"{what} must be {n} {'positive ' if positive else ''}number{'s' if n > 1 else ''}, not {v!r}")
    return tuple(float(a) for a in v)


def _field(f, i: int, name: str, page) -> FieldSpec:
    if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
        raise InputError(f"{name}: field {i + 1} needs a 'name'")
    where = f"{name}: field {f['name']!r}"
    kind = f.get("kind")
    if kind not in ("digit", *NUMBER_KINDS) and not (isinstance(kind, str) and re.fullmatch(r"boxes:[1-9]\d?", kind)):
        raise InputError(f"{where}: kind must be digit, number, amount, date or boxes:N (N 1-99), not {kind!r}")
    box = _numbers(f.get("box"), 4, f"{where}: 'box'")
    if box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0 or box[0] + box[2] > page[0] or box[1] + box[3] > page[1]:
        raise InputError(f"{where}: box {list(box)} is not inside the {page[0]:g} x {page[1]:g} page")
    v = f.get("validate") or {}
    if not isinstance(v, dict) or set(v) - {"length", "regex", "luhn"}:
        raise InputError(f"{where}: 'validate' takes length, regex and luhn")
    length = v.get("length")
    if length is not None:
        length = (length, length) if isinstance(length, int) else length
        if not (isinstance(length, (list, tuple)) and len(length) == 2 and all(isinstance(a, int) for a in length)
                and 0 <= length[0] <= length[1]):
            raise InputError(f"{where}: length must be a whole number or [least, most], not {v['length']!r}")
        length = tuple(length)
    regex = v.get("regex")
    if regex is not None:
        try:
            re.compile(regex)
        except (re.error, TypeError) as e:
            raise InputError(f"{where}: regex {regex!r} does not compile ({e})") from None
    return FieldSpec(f["name"], kind, box, length, regex, bool(v.get("luhn", False)))


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
