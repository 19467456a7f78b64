"""The realistic contexts: MNIST digits drawn as users hand them in, one *class* of input per context
(canvas drawings, tight crops, form cells, lined and squared paper, coloured paper, photos, markers, thin
pens, chalk, JPEG and low resolution).

``CONTEXTS[name].render(digits, seed)`` turns MNIST digits (uint8 ``[N,28,28]``, ink bright on black, from
either split) into what a user would send (numpy arrays, or JPEG bytes for the photo contexts). Every
picture draws its own parameters from ``np.random.default_rng((seed, context, index))`` (``seeds.picture_rng``),
so the first N pictures of a context do not depend on how many are asked for, nor on the order of the calls.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from . import draw
from .draw import skeleton
from .seeds import picture_rng

__all__ = ["Context", "CONTEXTS"]

Picture = np.ndarray | bytes  # JPEG contexts give the encoded file


@dataclass(frozen=True)
class Context:
    """A class of realistic input: ``make(digit, rng)`` draws one picture from an MNIST digit (float, 0..1)."""
    make: Callable[[np.ndarray, np.random.Generator], Picture]
    large: bool = False  # a big picture (a photo); benchmarks read fewer of them

    def render(self, digits: np.ndarray, seed: int = 0, start: int = 0) -> list:
        """The pictures for ``digits``; ``start`` is the index of the first one (for rendering in chunks)."""
        return [self.make(d.astype(np.float32) / 255, picture_rng(seed, self.make.__name__, start + i))
                for i, d in enumerate(digits)]




def clean(d, rng):
    return np.rint(d * 255).astype(np.uint8)


def _canvas_ink(d, rng):
    a = draw.digit_ink(d, rng.uniform(120, 240))
    return draw.random_place(a, 280, 280, rng, margin=10)


def canvas(d, rng):
    return np.rint(255 * (1 - _canvas_ink(d, rng))).astype(np.uint8)


def canvas_rgba(d, rng):
    a = _canvas_ink(d, rng)
    out = np.zeros((280, 280, 4), np.uint8)
    out[..., 3] = np.rint(255 * a)
    return out


def tight_crop_28(d, rng):
    a = draw.digit_ink(d, 112)
    s = 28 / max(a.shape)
    return draw.scanned(draw.resize(a, round(a.shape[0] * s), round(a.shape[1] * s)), rng, noise=1)


def tight_crop_64(d, rng):
    a = ndimage.grey_dilation(draw.digit_ink(d, 128), footprint=draw.disk(rng.uniform(2, 5)))
    a = a[draw.bbox(a)]
    s = 64 / max(a.shape)
    a = draw.resize(a, round(a.shape[0] * s), round(a.shape[1] * s))
    pad = rng.integers(1, 5, 4) * (rng.permutation(4) < rng.integers(0, 3))  # two to four sides stay touching
    return draw.scanned(np.pad(a, ((pad[0], pad[1]), (pad[2], pad[3]))), rng, noise=1)


def _cell(d, rng, touching: bool):
    """A form cell: the printed box around the digit, ``gap`` px between them on each side."""
    a = draw.digit_ink(d, rng.uniform(60, 90))
    ah, aw = a.shape
    gap = rng.integers(2, 9, 4)  # top, bottom, left, right
    if touching:
        gap[rng.integers(4)] = rng.integers(-3, 1)
    line, m = rng.integers(1, 4), rng.integers(2, 12, 4)
    inner = np.array([-gap[0], ah + gap[1], -gap[2], aw + gap[3]])
    outer = inner + np.array([-line, line, -line, line])
    top, left = min(outer[0], 0) - m[0], min(outer[2], 0) - m[2]
    h, w = max(outer[1], ah) + m[1] - top, max(outer[3], aw) + m[3] - left
    box = np.zeros((h, w), np.float32)
    box[outer[0] - top:outer[1] - top, outer[2] - left:outer[3] - left] = rng.uniform(0.6, 1.0)
    box[inner[0] - top:inner[1] - top, inner[2] - left:inner[3] - left] = 0
    ink = draw.place(a, h, w, -top, -left) * rng.uniform(0.75, 1.0)
    return draw.scanned(ndimage.gaussian_filter(np.maximum(box, ink), rng.uniform(0.2, 0.7)), rng)


def boxed_cell(d, rng):
    return _cell(d, rng, touching=False)


def boxed_cell_touching(d, rng):
    return _cell(d, rng, touching=True)


def small_in_photo(d, rng):
    a = draw.random_place(draw.digit_ink(d, rng.uniform(40, 70)), 600, 800, rng, margin=30)
    return draw.photo(a, rng, blur=(0.5, 1.2), shadow_p=0.3, quality=(85, 86))


def phone_photo(d, rng):
    h, w = (1200, 1600) if rng.random() < 0.5 else (1600, 1200)
    a = draw.digit_ink(d, rng.uniform(0.35, 0.7) * min(h, w))
    return draw.photo(draw.random_place(a, h, w, rng, margin=60), rng, blur=(1.0, 3.0), shadow_p=0.6, quality=(75, 91))


def hollow(d, rng):
    m = draw.random_place(draw.digit_ink(d, rng.uniform(70, 88)), 112, 112, rng, margin=8) > 0.5
    thick = ndimage.binary_dilation(m, draw.disk(rng.uniform(1.5, 3.5)))
    outline = thick & ~ndimage.binary_erosion(thick, draw.disk(rng.uniform(1, 2.2)))
    return draw.scanned(ndimage.gaussian_filter(outline.astype(np.float32), 0.6), rng)


def squared_paper(d, rng):
    s = int(rng.integers(112, 161))
    paper = np.full((s, s, 3), rng.uniform(235, 252), np.float32)
    grid = np.array([205, 205, 205]) if rng.random() < 0.5 else np.array([165, 200, 240])
    step, (oy, ox) = int(rng.integers(12, 21)), rng.integers(0, 12, 2)
    paper[oy::step] = paper[:, ox::step] = grid * rng.uniform(0.95, 1.05)
    a = draw.random_place(draw.digit_ink(d, rng.uniform(0.55, 0.8) * s), s, s, rng, margin=6)
    return draw.rgb(a, paper, rng.uniform(10, 60) + np.array([0, 0, rng.uniform(0, 80)]), 2.0, rng)


def lined_paper(d, rng):
    step = rng.uniform(28, 40)
    a = draw.digit_ink(d, rng.uniform(0.9, 1.5) * step)
    mt, mb, ml, mr = rng.integers(12, 30, 4)
    h, w = a.shape[0] + mt + mb, a.shape[1] + ml + mr
    paper = np.full((h, w, 3), rng.uniform(238, 252), np.float32)
    base = mt + a.shape[0] - 1 + rng.integers(-2, 3) if rng.random() < 0.5 \
        else mt + rng.uniform(0.3, 0.7) * a.shape[0]  # written on the line, or a line through the digit
    rule = np.array([150, 185, 230]) * rng.uniform(0.9, 1.05)
    for y in np.arange(base % step, h, step).astype(int):
        paper[y:y + rng.integers(1, 3)] = rule
    return draw.rgb(draw.place(a, h, w, mt, ml), paper, rng.uniform(10, 60, 3), 2.0, rng)


_INKS = {"blue": (30, 50, 160), "red": (190, 30, 40), "green": (30, 130, 60)}
_PAPERS = {"yellow": (250, 235, 140), "pink": (250, 200, 210), "grey": (200, 200, 200)}


def coloured(d, rng):
    s = int(rng.integers(112, 141))
    paper = np.asarray(list(_PAPERS.values())[rng.integers(3)]) + rng.uniform(-15, 5, 3)
    ink = np.asarray(list(_INKS.values())[rng.integers(3)]) + rng.uniform(-25, 25, 3)
    a = draw.random_place(draw.digit_ink(d, rng.uniform(0.6, 0.8) * s), s, s, rng, margin=6)
    return draw.rgb(a, np.broadcast_to(paper, (s, s, 3)).astype(np.float32), ink, 3.0, rng)


def jpeg_low_quality(d, rng):
    a = draw.random_place(draw.digit_ink(d, rng.uniform(70, 90)), 112, 112, rng, margin=6)
    return draw.jpeg(draw.scanned(a, rng), rng.integers(15, 36))


def low_res_16(d, rng):
    r, c = draw.bbox(d)
    side = max(r.stop - r.start, c.stop - c.start) + 2 * rng.integers(1, 4)
    cy, cx = (r.start + r.stop) // 2, (c.start + c.stop) // 2
    top, left = cy + side - side // 2, cx + side - side // 2  # in the padded frame, so the square never leaves it
    sq = np.pad(d, side)[top:top + side, left:left + side]
    return draw.scanned(np.asarray(Image.fromarray(sq, "F").resize((16, 16), Image.BOX)).clip(0, 1), rng, noise=1)


def _ink_4x(d):
    return np.clip((draw.resize(d, 112, 112) - 0.5) * 3 + 0.5, 0, 1)


def thick_marker(d, rng):
    return draw.scanned(ndimage.grey_dilation(_ink_4x(d), footprint=draw.disk(rng.uniform(3, 6.5))), rng)


def thin_pen(d, rng):
    # A fixed erosion would erase MNIST's thin strokes before it thins the thick ones: redraw the centre line.
    line = ndimage.binary_dilation(skeleton(_ink_4x(d) > 0.5), draw.disk(rng.uniform(0.5, 1.5)))
    return draw.scanned(ndimage.gaussian_filter(line.astype(np.float32), 0.6), rng)


def chalkboard(d, rng):
    s = int(rng.integers(112, 181))
    board = np.array([40, 70, 55]) if rng.random() < 0.5 else np.array([45, 47, 52])
    smudge = ndimage.gaussian_filter(rng.normal(0, 1, (s, s)), 8) * rng.uniform(150, 400)  # wiped chalk dust
    paper = (board + rng.uniform(-10, 10, 3))[None, None] + smudge[..., None]
    a = draw.random_place(draw.digit_ink(d, rng.uniform(0.55, 0.8) * s), s, s, rng, margin=6)
    grit = np.clip(ndimage.gaussian_filter(rng.random((s, s)), 0.7) * 2.2 - 0.3, 0.3, 1)  # chalk skips on the board
    return draw.rgb(a * grit, paper.astype(np.float32), rng.uniform(215, 245) * np.ones(3), rng.uniform(4, 10), rng)


CONTEXTS: dict[str, Context] = {f.__name__: Context(f) for f in (
    clean, canvas, canvas_rgba, tight_crop_28, tight_crop_64, boxed_cell, boxed_cell_touching, hollow,
    squared_paper, lined_paper, coloured, jpeg_low_quality, low_res_16, thick_marker, thin_pen, chalkboard)}
CONTEXTS.update({f.__name__: Context(f, large=True) for f in (small_in_photo, phone_photo)})
