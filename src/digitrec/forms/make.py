"""A template from a blank form: its printed frames become fields, its corner marks the template's marks."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..imaging.layout import find_layout

__all__ = ["make_template"]


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
