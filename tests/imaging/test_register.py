"""Registration: a scan turned, scaled and shifted is mapped back onto its template."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digitrec import data
from digitrec.data.render.form_pages import FORM_TEMPLATE, make_form_pages
from digitrec.imaging.register import cut, register


def _grey(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), np.float32) / 255


def _marks_land_on_marks(grey, reg) -> bool:
    """Each template mark, cut where the map puts it, is mostly ink."""
    side = FORM_TEMPLATE["marks"]["side"]
    return all(cut(grey, reg, (cx - side / 4, cy - side / 4, side / 2, side / 2)).mean() < 0.5
               for cx, cy in FORM_TEMPLATE["marks"]["centres"])


def test_corner_marks_register_turned_scaled_and_shifted_scans():
    x, y = data.load_mnist("test")
    for page in make_form_pages(x[:300], y[:300], 4, seed=11):
        grey = _grey(page.jpeg)
        reg = register(grey, FORM_TEMPLATE["page"], np.array(FORM_TEMPLATE["marks"]["centres"], float),
                       FORM_TEMPLATE["marks"]["side"])
        assert reg.method == "marks" and _marks_land_on_marks(grey, reg)


def test_without_marks_the_content_box_gives_scale_and_shift():
    grey = np.ones((400, 600), np.float32)
    grey[100:300, 150:450] = 0.0  # the page's content: a block 300 x 200 px
    reg = register(grey, (30.0, 20.0))
    assert reg.method == "content" and np.allclose(reg.to_pixels([[0, 0], [30, 20]]), [[150, 100], [449, 299]], atol=2)


def test_a_blank_scan_is_taken_as_the_page_itself():
    reg = register(np.ones((200, 300), np.float32), (30.0, 20.0))
    assert reg.method == "page" and np.isclose(reg.scale, 10.0)
