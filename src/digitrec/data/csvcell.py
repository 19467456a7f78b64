"""CSV cells a spreadsheet shows as text and never runs as a formula (OWASP's "CSV injection").

A spreadsheet runs a cell that starts with ``= + - @``, a tab or a carriage return as a formula, so a file
name such as ``=cmd|' -C calc'!A0.png`` in a results file would run when the file is opened. Such a text
cell is written with a leading ``'``, which spreadsheets show as text. A cell that is a plain number
(``-12.50``, ``+3``) is left as it is: it is a number, not a formula. A text that already starts with ``'``
gets a second one, so that ``restore`` gives back exactly what was written (``bulk`` resumes and ``/review``
rewrites by the file names in the cells). JSON files need none of this.

Every CSV the project writes goes through ``text_cell``; the page's "Download CSV" runs ``JS_TEXT_CELL``,
the same rule in the browser's JavaScript.
"""
from __future__ import annotations

import re

__all__ = ["text_cell", "text_row", "restore", "restore_row", "JS_TEXT_CELL"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9][0-9,]*(\.[0-9]+)?")


def text_cell(value):
    """``value`` as a CSV cell that cannot run as a formula; anything but a string is returned as it is."""
    if not isinstance(value, str):
        return value
    if value.startswith("'") or (value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value)):
        return "'" + value
    return value


def text_row(row: dict) -> dict:
    """``text_cell`` of every value of a ``csv.DictWriter`` row."""
    return {k: text_cell(v) for k, v in row.items()}


def restore(cell: str) -> str:
    """The text ``text_cell`` was given, from the cell it wrote."""
    return cell[1:] if cell.startswith("'") else cell


def restore_row(row: dict) -> dict:
    """``restore`` of every value of a ``csv.DictReader`` row (``None`` for a short row's missing cells)."""
    return {k: restore(v) if isinstance(v, str) else v for k, v in row.items()}


# the same rule for the page's script (a function expression): null is an empty cell, and numbers and booleans
# are written as they are
JS_TEXT_CELL = ("v => { if (v === null || v === undefined) return ''; const s = String(v);"
                " const formula = /^[=+\\-@\\t\\r]/.test(s) && !/^" + _NUMBER.pattern + "$/.test(s);"
                " return typeof v === 'string' && (s.startsWith(\"'\") || formula) ? \"'\" + s : s; }")
