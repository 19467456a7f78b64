"""Generated form pages: a printed form (corner marks, labelled boxes) filled in with MNIST digits, then
scanned (turned, scaled, shifted, JPEG'd), with the form's template and each page's true field values.

The form has six fields: a ZIP code, an amount, a date, eight boxed digits whose last is a Luhn check
digit, and two single digits. Some pages are printed in grey on coloured paper. Seeded: the same seed
and digits give the same pages.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .fields import Condition, ink_crop, make_field

__all__ = ["FORM_TEMPLATE", "FormPage", "make_form_pages", "blank_form", "luhn_digit"]

FORM_TEMPLATE = {
    "name": "synthetic-claim",
    "units": "mm",
    "page": [160, 100],
    "marks": {"side": 5, "centres": [[7, 7], [153, 7], [7, 93], [153, 93]]},
    "fields": [
        {"name": "zip", "kind": "number", "box": [15, 16, 50, 15], "validate": {"length": 5}},
        {"name": "amount", "kind": "amount", "box": [85, 16, 60, 15], "validate": {"length": [3, 7]}},
        {"name": "date", "kind": "date", "box": [15, 40, 62, 15], "validate": {"length": 6}},
        {"name": "account", "kind": "boxes:8", "box": [15, 66, 96, 12], "validate": {"length": 8, "luhn": True}},
        {"name": "code_a", "kind": "digit", "box": [118, 66, 12, 12]},
        {"name": "code_b", "kind": "digit", "box": [133, 66, 12, 12]},
    ],
}
PAPERS = [(246, 244, 236), (250, 238, 200), (214, 232, 246), (246, 222, 226), (222, 240, 214)]  # white, then tints
CANVAS = 1.2                    # the scan is this much larger than the form, so a turned, enlarged page stays in it
DIGIT_SHARE = 0.6               # a handwritten digit is this share of its box's height
# number fields: the reader's own synthetic strings, a digit-sized gap apart at most; amounts and dates
# with the separators people write in them, which are part of their values
FIELDS = {"zip": Condition("zip", (5, 5), (0.1, 0.45)),
          "amount": Condition("amount", (3, 6), (0.1, 0.45), patterns=("#.##", "##.##", "###.##", "#,###.##",
                                                                         "####", "##,###")),
          "date": Condition("date", (6, 6), (0.1, 0.45), patterns=("##/##/##", "##-##-##", "##.##.##"))}


@dataclass
class FormPage:
    jpeg: bytes                 # the scanned page, as a scanner would write it
    values: dict                # field name -> the true value (an amount's and a date's with their separators)


def luhn_digit(digits: str) -> int:
    """The Luhn check digit that makes ``digits`` + it a valid number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def _paste(ink: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Ink ``patch`` into ``ink`` with its top left at (x, y), clipped to the page."""
    h, w = patch.shape
    y0, x0 = max(0, y), max(0, x)
    y1, x1 = min(ink.shape[0], y + h), min(ink.shape[1], x + w)
    if y1 > y0 and x1 > x0:
        region = ink[y0:y1, x0:x1]
        np.maximum(region, patch[y0 - y:y1 - y, x0 - x:x1 - x], out=region)


def _by_label(y: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(y == d) for d in range(10)]


def make_form_pages(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0, dpi: float = 150,
                    quality: tuple[int, int] = (60, 90)) -> list[FormPage]:
    """``n`` filled-in, scanned forms of ``FORM_TEMPLATE`` written with digits from ``x``/``y`` (uint8 28x28, labels).

    Each page is turned up to 3 degrees either way, scaled by up to 10 %, shifted by up to 2 % of its
    size, and saved as a JPEG of a random quality in ``quality``; a third are printed in grey on coloured paper.
    """
    rng = np.random.default_rng(seed)
    by_label = _by_label(y)
    ppm = dpi / 25.4
    form = _printed(ppm)  # the same on every page: drawn once
    return [_page(x, y, by_label, rng, ppm, form, quality) for _ in range(n)]


def _printed(ppm: float) -> np.ndarray:
    """What the form prints (corner marks, labels, boxes) at ``ppm`` px per mm: its ink's share of each pixel,
    float32 [H,W] in [0, 1]."""
    pw, ph = FORM_TEMPLATE["page"]
    form = Image.new("L", (round(pw * ppm), round(ph * ppm)), 0)
    draw = ImageDraw.Draw(form)
    px = lambda v: round(v * ppm)  # noqa: E731 -- mm to px, used for every coordinate below
    side = FORM_TEMPLATE["marks"]["side"]
    for cx, cy in FORM_TEMPLATE["marks"]["centres"]:
        draw.rectangle([px(cx - side / 2), px(cy - side / 2), px(cx + side / 2) - 1, px(cy + side / 2) - 1], fill=255)
    line = max(1, round(0.3 * ppm))
    for f in FORM_TEMPLATE["fields"]:
        bx, by, bw, bh = f["box"]
        draw.text((px(bx), px(by - 4.5)), f["name"].upper(), fill=255)
        cells = int(f["kind"].split(":")[1]) if f["kind"].startswith("boxes:") else 1
        for c in range(cells):
            cw = bw / cells
            draw.rectangle([px(bx + c * cw), px(by), px(bx + (c + 1) * cw), px(by + bh)], outline=255, width=line)
    return np.asarray(form, np.float32) / 255


def blank_form(dpi: float = 150) -> Image.Image:
    """The form not filled in, as printed on white paper (grey, ``dpi`` px per inch): what a template is made from."""
    printed = _printed(dpi / 25.4)
    return Image.fromarray((255 - printed * (255 - 20)).round().astype(np.uint8), "L")


def _page(x, y, by_label, rng, ppm, form, quality) -> FormPage:
    grey_print = rng.random() < 1 / 3
    paper = PAPERS[int(rng.integers(1, len(PAPERS)))] if grey_print else PAPERS[0]
    printed = int(rng.integers(70, 110)) if grey_print else 20
    px = lambda v: round(v * ppm)  # noqa: E731 -- mm to px, used for every coordinate below
    hand = np.zeros(form.shape, np.float32)  # what is handwritten: ink in [0, 1]
    values = {}
    for f in FORM_TEMPLATE["fields"]:
        bx, by, bw, bh = f["box"]
        if f["kind"] in ("number", "amount", "date"):
            field = make_field(x, y, FIELDS[f["name"]], rng, height=px(bh * DIGIT_SHARE * 0.8))
            ink = 1 - field.image.astype(np.float32) / 255
            fit = min(1.0, px(bw) * 0.92 / ink.shape[1], px(bh) * 0.95 / ink.shape[0])
            if fit < 1:
                ink = np.asarray(Image.fromarray(ink).resize((max(1, round(ink.shape[1] * fit)),
                                                              max(1, round(ink.shape[0] * fit))), Image.Resampling.BILINEAR))
            _paste(hand, ink, px(bx) + (px(bw) - ink.shape[1]) // 2 + int(rng.integers(-3, 4)),
                   px(by) + (px(bh) - ink.shape[0]) // 2 + int(rng.integers(-2, 3)))
            values[f["name"]] = field.text
            continue
        cells = int(f["kind"].split(":")[1]) if f["kind"].startswith("boxes:") else 1
        labels = list(rng.integers(0, 10, cells))
        if cells > 1:
            labels[-1] = luhn_digit("".join(map(str, labels[:-1])))
        cw = bw / cells
        for c, d in enumerate(labels):
            ink = ink_crop(x[rng.choice(by_label[d])], px(bh * DIGIT_SHARE * rng.uniform(0.9, 1.1)))
            _paste(hand, ink, px(bx + c * cw) + (px(cw) - ink.shape[1]) // 2 + int(rng.integers(-2, 3)),
                   px(by) + (px(bh) - ink.shape[0]) // 2 + int(rng.integers(-2, 3)))
        values[f["name"]] = "".join(map(str, labels))
    rgb = np.empty((*form.shape, 3), np.float32)
    printed_share = form[..., None]
    pen = np.array([30, 40, 110] if rng.random() < 0.5 else [25, 25, 30], np.float32)  # blue or black ballpoint
    rgb[:] = paper
    rgb = rgb * (1 - printed_share) + printed * printed_share
    rgb = rgb * (1 - hand[..., None]) + pen * hand[..., None]
    return FormPage(_scan(Image.fromarray(rgb.clip(0, 255).astype(np.uint8)), paper, rng, quality), values)


def _scan(page: Image.Image, paper, rng, quality) -> bytes:
    """The page as scanned: turned, scaled and shifted on a larger bed of its own paper, then a JPEG."""
    w, h = page.size
    cw, ch = round(w * CANVAS), round(h * CANVAS)
    angle = np.radians(rng.uniform(-3, 3))
    scale = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.02, 0.02, 2) * (w, h)
    # the inverse map PIL wants: scan pixel -> page pixel, about the centres of both
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    cx, cy = cw / 2 + shift[0], ch / 2 + shift[1]
    coeffs = (cos, sin, w / 2 - cos * cx - sin * cy, -sin, cos, h / 2 + sin * cx - cos * cy)
    scan = page.transform((cw, ch), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=tuple(paper))
    out = io.BytesIO()
    scan.save(out, "JPEG", quality=int(rng.integers(*quality)))
    return out.getvalue()
