"""A form template: the page's size, its corner marks and named fields with their kinds and checks, as
pydantic models; ``load_template`` reads one from JSON and turns a validation error into one line.

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

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InputError

__all__ = ["Template", "FieldSpec", "load_template", "luhn_valid", "NUMBER_KINDS", "WHOLE_PAGE_KINDS"]

NUMBER_KINDS = ("number", "amount", "date")
WHOLE_PAGE_KINDS = ("digit", "number")  # what a page read without a template may hold


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{v!r} is not a number")
    return float(v)


Number = Annotated[float, BeforeValidator(_number)]


def _numbers(n: int, positive: bool = False):
    """A validator of a list of ``n`` numbers, with the message a template's author reads."""
    def check(v: Any) -> tuple:
        ok = isinstance(v, (list, tuple)) and len(v) == n and all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in v)
        if not ok or (positive and min(v) <= 0):
            raise ValueError(f"must be {n} {'positive ' if positive else ''}number{'s' if n > 1 else ''}, not {v!r}")
        return tuple(float(a) for a in v)
    return BeforeValidator(check)


class _Checks(BaseModel):
    model_config = ConfigDict(extra="forbid")
    length: Any = None
    regex: Any = None
    luhn: bool = False

    @field_validator("length")
    @classmethod
    def _length(cls, v):
        if v is None:
            return None
        pair = (v, v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(a, int) for a in pair)
                and 0 <= pair[0] <= pair[1]):
            raise ValueError(f"length must be a whole number or [least, most], not {v!r}")
        return tuple(pair)

    @field_validator("regex")
    @classmethod
    def _regex(cls, v):
        if v is not None:
            try:
                re.compile(v)
            except (re.error, TypeError) as e:
                raise ValueError(f"regex {v!r} does not compile ({e})") from None
        return v


class _Field(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    kind: Any = Field(None, validate_default=True)
    box: Annotated[tuple, _numbers(4)]
    checks: _Checks | None = Field(None, alias="validate")

    @field_validator("kind")
    @classmethod
    def _kind(cls, v):
        if v not in ("digit", *NUMBER_KINDS) and not (isinstance(v, str) and re.fullmatch(r"boxes:[1-9]\d?", v)):
            raise ValueError(f"kind must be digit, number, amount, date or boxes:N (N 1-99), not {v!r}")
        return v


class _Marks(BaseModel):
    side: Number
    centres: Annotated[list[Annotated[tuple, _numbers(2)]], Field(min_length=3)]

    @field_validator("side")
    @classmethod
    def _side(cls, v):
        if v <= 0:
            raise ValueError(f"side must be a positive number, not {v!r}")
        return v


class _Template(BaseModel):
    page: Annotated[tuple, _numbers(2, positive=True)]
    fields: Annotated[list[_Field], Field(min_length=1)]
    marks: _Marks | None = None
    content: Annotated[tuple, _numbers(4)] | None = None
    name: str = ""
    units: str = ""

    @model_validator(mode="after")
    def _fields_fit(self):
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        w, h = self.page
        for f in self.fields:
            x, y, bw, bh = f.box
            if bw <= 0 or bh <= 0 or x < 0 or y < 0 or x + bw > w or y + bh > h:
                raise ValueError(f"field {f.name!r}: box {list(f.box)} is not inside the {w:g} x {h:g} page")
        return self


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
        digits = sum(c in "0123456789" for c in value)
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


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` ends in a correct Luhn check digit (card and account numbers)."""
    if not digits or any(c not in "0123456789" for c in digits):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _message(name: str, src: Any, e: ValidationError) -> str:
    """The first problem of a validation error as one line: where it is and what is wrong."""
    err = e.errors()[0]
    loc, msg = list(err["loc"]), err["msg"].removeprefix("Value error, ")
    where = name
    if loc[:1] == ["fields"] and len(loc) > 1 and isinstance(loc[1], int):
        f = src["fields"][loc[1]]
        if loc[2:] == ["name"] or not (isinstance(f, dict) and isinstance(f.get("name"), str) and f["name"]):
            return f"{name}: field {loc[1] + 1} needs a 'name'"
        where, loc = f"{name}: field {f['name']!r}", loc[2:]
    if loc[:1] == ["validate"] and err["type"] == "extra_forbidden":
        return f"{where}: 'validate' takes length, regex and luhn"
    if loc == ["fields"]:
        return f"{where}: 'fields' must be a non-empty list"
    part = f"'{loc[0]}'" if loc and not isinstance(loc[0], int) else ""
    if err["type"] == "missing":
        return f"{where}: {part or 'a part'} is missing"
    return f"{where}: {part + ' ' if part and not msg.startswith(('kind', 'length', 'regex', 'field')) else ''}{msg}"


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
    try:
        t = _Template.model_validate(src)
    except ValidationError as e:
        raise InputError(_message(name, src, e).replace("\n", " ")) from None
    specs = tuple(FieldSpec(f.name, f.kind, f.box, *((f.checks.length, f.checks.regex, f.checks.luhn)
                                                      if f.checks else ())) for f in t.fields)
    marks = np.array(t.marks.centres, float) if t.marks else None
    return Template(t.page, specs, marks, t.marks.side if t.marks else 0.0, t.content, t.name)
