"""A page of bulk input -> its row (a value, confidence and unsure flag per field) and its review items."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from ..data.readers import Page
from ..errors import InputError
from ..forms import Template, alternatives, read_form, read_whole

__all__ = ["columns", "read_page"]


def _field_names(template: Template | None) -> list[str]:
    return [f.name for f in template.fields] if template else ["value"]


def columns(template: Template | None) -> list[str]:
    """The output's columns: file, page, then value, confidence and unsure per field, then error."""
    per_field = [c for n in _field_names(template) for c in (n, f"{n}_confidence", f"{n}_unsure")]
    return ["file", "page", *per_field, "error"]


def _png_b64(grey: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(grey, np.uint8)).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def read_page(recognizer, page: Page, template: Template | None, kind: str = "digit") -> tuple[dict, list[dict]]:
    """One page's row (``columns``' keys) and its review items (one per unsure field)."""
    row = {"file": page.file, "page": page.page}
    if page.error is not None:
        return {**row, "error": page.error}, []
    try:
        fields = read_form(recognizer, page.image, template).fields if template else \
            [read_whole(recognizer, page.image, kind)]
    except InputError as e:
        return {**row, "error": f"{page.file} page {page.page}: {e}"}, []
    specs = {spec.name: spec for spec in template.fields} if template else {}
    review = []
    for f in fields:
        row.update({f.name: f.value, f"{f.name}_confidence": round(float(f.confidence), 4),
                    f"{f.name}_unsure": bool(f.unsure)})
        if f.unsure:
            review.append({"file": page.file, "page": page.page, "field": f.name, "value": f.value,
                           "alternatives": alternatives(f, spec=specs.get(f.name)), "problem": f.problem,
                           "picture": _png_b64(f.picture) if f.picture is not None else None})
    return row, review
