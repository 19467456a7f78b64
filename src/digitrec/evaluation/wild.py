"""Realistic inputs built from MNIST test digits: the pictures users hand in, one *class* per context.

``CONTEXTS[name].render(digits, seed)`` turns MNIST digits (uint8 ``[N,28,28]``, ink bright on black)
into what a user would send for that class of input (numpy arrays or JPEG bytes); ``NON_DIGITS[name]
.render(n, seed)`` gives pictures with no digit in them. Every picture draws its own parameters from
``np.random.default_rng((seed, context, index))``, so the first N pictures of a context do not depend on
how many are asked for, nor on the order of the calls. ``split`` fixes which test digits may be used to
tune thresholds (``tuning``) and which to report on (``report``).
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from scipy.interpolate import make_interp_spline

__all__ = ["Context", "NonDigit", "CONTEXTS", "NON_DIGITS", "split", "skeleton"]

Picture = np.ndarray | bytes  # JPEG contexts give the encoded file


@dataclass(frozen=True)
class Context:
    """A class of realistic input: ``make(digit, rng)`` draws one picture from an MNIST digit (float, 0..1)."""
    make: Callable[[np.ndarray, np.random.Generator], Picture]
    large: bool = False  # a big picture (a photo); benchmarks read fewer of them

    def render(self, digits: np.ndarray, seed: int = 0, start: int = 0) -> list:
        """The pictures for ``digits``; ``start`` is the index of the first one (for rendering in chunks)."""
        key = zlib.crc32(self.make.__name__.encode())
        return [self.make(d.astype(np.float32) / 255, np.random.default_rng((seed, key, start + i)))
                for i, d in enumerate(digits)]


@dataclass(frozen=True)
class NonDigit:
    """Pictures that hold no digit: ``make(rng)`` draws one."""
    make: Callable[[np.random.Generator], Picture]
    large: bool = False

    def render(self, n: int, seed: int = 0, start: int = 0) -> list:
        """``n`` pictures, the first one being number ``start``."""
        key = zlib.crc32(self.make.__name__.encode())
        return [self.make(np.random.default_rng((seed, key, start + i))) for i in range(n)]


def split(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``tuning`` (even indices) or ``report`` (odd indices) half of the MNIST test set."""
    if name not in ("tuning", "report"):
        raise ValueError(f"split must be 'tuning' or 'report', not {name!r}")
    s = slice(0, None, 2) if name == "tuning" else slice(1, None, 2)
    return x[s], y[s]


# --- drawing helpers: ink is an alpha map (0 = paper, 1 = full ink) -------------------------------

def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    im = Image.fromarray(a.astype(np.float32), "F").resize((max(1, w), max(1, h)), Image.BICUBIC)
    return np.clip(np.asarray(im), 0, 1)


def _bbox(a: np.ndarray, t: float = 0.05) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero((a > t).any(1)), np.flatnonzero((a > t).any(0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _ink(d: np.ndarray, size: float) -> np.ndarray:
    """The digit's ink cropped to its bounding box, its longer side (nearly always the height) scaled to ``size``
    px, edges kept sharp."""
    c = d[_bbox(d)]
    s = size / max(c.shape)
    a = _resize(c, round(c.shape[0] * s), round(c.shape[1] * s))
    # Bicubic upscaling of a 20 px digit blurs its edges over several pixels; pen ink has crisp ones.
    return np.clip((a - 0.5) * min(3.0, s) + 0.5, 0, 1) if s > 1.5 else a


def _place(a: np.ndarray, h: int, w: int, top: int, left: int) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return out


def _random_place(a: np.ndarray, h: int, w: int, rng: np.random.Generator, margin: int = 0) -> np.ndarray:
    top = rng.integers(margin, max(margin, h - a.shape[0] - margin) + 1)
    left = rng.integers(margin, max(margin, w - a.shape[1] - margin) + 1)
    return _place(a, h, w, top, left)


def _disk(r: float) -> np.ndarray:
    k = int(np.ceil(r))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    return xx ** 2 + yy ** 2 <= r ** 2


def _on_paper(a: np.ndarray, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    """Dark ink on white paper, as a flatbed scan gives: grey uint8."""
    paper, ink = rng.uniform(225, 252), rng.uniform(15, 70)
    g = paper * (1 - a) + ink * a + rng.normal(0, noise, a.shape)
    return np.clip(g, 0, 255).astype(np.uint8)


def _rgb(a: np.ndarray, paper: np.ndarray, ink, noise: float, rng: np.random.Generator) -> np.ndarray:
    img = paper * (1 - a[..., None]) + np.asarray(ink, np.float32) * a[..., None]
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def _light(h: int, w: int, rng: np.random.Generator, shadow_p: float) -> np.ndarray:
    """Illumination of a photographed sheet: a gradient, vignetting and sometimes a soft shadow."""
    yy, xx = np.linspace(-1, 1, h, dtype=np.float32)[:, None], np.linspace(-1, 1, w, dtype=np.float32)[None]
    th = rng.uniform(0, 2 * np.pi)
    light = (1 + rng.uniform(0.05, 0.25) * (np.cos(th) * xx + np.sin(th) * yy)
             - rng.uniform(0, 0.15) * (xx ** 2 + yy ** 2)).astype(np.float32)
    if rng.random() < shadow_p:  # a hand or the phone over part of the sheet
        ph = rng.uniform(0, 2 * np.pi)
        edge = (np.cos(ph) * xx + np.sin(ph) * yy - rng.uniform(0.2, 0.9)) / rng.uniform(0.03, 0.25)
        light = light * (1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-edge)))
    return light * rng.uniform(190, 255)


def _photo(a: np.ndarray, rng: np.random.Generator, blur: tuple, shadow_p: float, quality: tuple) -> bytes:
    """The ink ``a`` on a photographed sheet: reflectance times light, lens blur, sensor noise, JPEG."""
    h, w = a.shape
    a = ndimage.gaussian_filter(a, rng.uniform(*blur))  # blurring the ink alone is enough: the light is smooth
    paper = rng.uniform(0.82, 0.95) * rng.uniform(0.93, 1.0, 3).astype(np.float32)  # a warm or cool cast
    ink = rng.uniform(0.08, 0.3) * rng.uniform(0.85, 1.0, 3).astype(np.float32)
    refl = paper * (1 - a[..., None]) + ink * a[..., None]
    img = refl * _light(h, w, rng, shadow_p)[..., None]
    img += rng.normal(0, rng.uniform(2, 7), (h, w, 1)).astype(np.float32)  # luminance noise dominates
    return _jpeg(np.clip(img, 0, 255).astype(np.uint8), rng.integers(*quality))


# --- the contexts --------------------------------------------------------------------------------

def clean(d, rng):
    return np.rint(d * 255).astype(np.uint8)


def _canvas_ink(d, rng):
    a = _ink(d, rng.uniform(120, 240))
    return _random_place(a, 280, 280, rng, margin=10)


def canvas(d, rng):
    return np.rint(255 * (1 - _canvas_ink(d, rng))).astype(np.uint8)


def canvas_rgba(d, rng):
    a = _canvas_ink(d, rng)
    out = np.zeros((280, 280, 4), np.uint8)
    out[..., 3] = np.rint(255 * a)
    return out


def tight_crop_28(d, rng):
    a = _ink(d, 112)
    s = 28 / max(a.shape)
    return _on_paper(_resize(a, round(a.shape[0] * s), round(a.shape[1] * s)), rng, noise=1)


def tight_crop_64(d, rng):
    a = ndimage.grey_dilation(_ink(d, 128), footprint=_disk(rng.uniform(2, 5)))
    a = a[_bbox(a)]
    s = 64 / max(a.shape)
    a = _resize(a, round(a.shape[0] * s), round(a.shape[1] * s))
    pad = rng.integers(1, 5, 4) * (rng.permutation(4) < rng.integers(0, 3))  # two to four sides stay touching
    return _on_paper(np.pad(a, ((pad[0], pad[1]), (pad[2], pad[3]))), rng, noise=1)


def _cell(d, rng, touching: bool):
    """A form cell: the printed box around the digit, ``gap`` px between them on each side."""
    a = _ink(d, rng.uniform(60, 90))
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
    ink = _place(a, h, w, -top, -left) * rng.uniform(0.75, 1.0)
    return _on_paper(ndimage.gaussian_filter(np.maximum(box, ink), rng.uniform(0.2, 0.7)), rng)


def boxed_cell(d, rng):
    return _cell(d, rng, touching=False)


def boxed_cell_touching(d, rng):
    return _cell(d, rng, touching=True)


def small_in_photo(d, rng):
    a = _random_place(_ink(d, rng.uniform(40, 70)), 600, 800, rng, margin=30)
    return _photo(a, rng, blur=(0.5, 1.2), shadow_p=0.3, quality=(85, 86))


def phone_photo(d, rng):
    h, w = (1200, 1600) if rng.random() < 0.5 else (1600, 1200)
    a = _ink(d, rng.uniform(0.35, 0.7) * min(h, w))
    return _photo(_random_place(a, h, w, rng, margin=60), rng, blur=(1.0, 3.0), shadow_p=0.6, quality=(75, 91))


def hollow(d, rng):
    m = _random_place(_ink(d, rng.uniform(70, 88)), 112, 112, rng, margin=8) > 0.5
    thick = ndimage.binary_dilation(m, _disk(rng.uniform(1.5, 3.5)))
    outline = thick & ~ndimage.binary_erosion(thick, _disk(rng.uniform(1, 2.2)))
    return _on_paper(ndimage.gaussian_filter(outline.astype(np.float32), 0.6), rng)


def squared_paper(d, rng):
    s = int(rng.integers(112, 161))
    paper = np.full((s, s, 3), rng.uniform(235, 252), np.float32)
    grid = np.array([205, 205, 205]) if rng.random() < 0.5 else np.array([165, 200, 240])
    step, (oy, ox) = int(rng.integers(12, 21)), rng.integers(0, 12, 2)
    paper[oy::step] = paper[:, ox::step] = grid * rng.uniform(0.95, 1.05)
    a = _random_place(_ink(d, rng.uniform(0.55, 0.8) * s), s, s, rng, margin=6)
    return _rgb(a, paper, rng.uniform(10, 60) + np.array([0, 0, rng.uniform(0, 80)]), 2.0, rng)


def lined_paper(d, rng):
    step = rng.uniform(28, 40)
    a = _ink(d, rng.uniform(0.9, 1.5) * step)
    mt, mb, ml, mr = rng.integers(12, 30, 4)
    h, w = a.shape[0] + mt + mb, a.shape[1] + ml + mr
    paper = np.full((h, w, 3), rng.uniform(238, 252), np.float32)
    base = mt + a.shape[0] - 1 + rng.integers(-2, 3) if rng.random() < 0.5 \
        else mt + rng.uniform(0.3, 0.7) * a.shape[0]  # written on the line, or a line through the digit
    rule = np.array([150, 185, 230]) * rng.uniform(0.9, 1.05)
    for y in np.arange(base % step, h, step).astype(int):
        paper[y:y + rng.integers(1, 3)] = rule
    return _rgb(_place(a, h, w, mt, ml), paper, rng.uniform(10, 60, 3), 2.0, rng)


_INKS = {"blue": (30, 50, 160), "red": (190, 30, 40), "green": (30, 130, 60)}
_PAPERS = {"yellow": (250, 235, 140), "pink": (250, 200, 210), "grey": (200, 200, 200)}


def coloured(d, rng):
    s = int(rng.integers(112, 141))
    paper = np.asarray(list(_PAPERS.values())[rng.integers(3)]) + rng.uniform(-15, 5, 3)
    ink = np.asarray(list(_INKS.values())[rng.integers(3)]) + rng.uniform(-25, 25, 3)
    a = _random_place(_ink(d, rng.uniform(0.6, 0.8) * s), s, s, rng, margin=6)
    return _rgb(a, np.broadcast_to(paper, (s, s, 3)).astype(np.float32), ink, 3.0, rng)


def jpeg_low_quality(d, rng):
    a = _random_place(_ink(d, rng.uniform(70, 90)), 112, 112, rng, margin=6)
    return _jpeg(_on_paper(a, rng), rng.integers(15, 36))


def low_res_16(d, rng):
    r, c = _bbox(d)
    side = max(r.stop - r.start, c.stop - c.start) + 2 * rng.integers(1, 4)
    cy, cx = (r.start + r.stop) // 2, (c.start + c.stop) // 2
    top, left = cy + side - side // 2, cx + side - side // 2  # in the padded frame, so the square never leaves it
    sq = np.pad(d, side)[top:top + side, left:left + side]
    return _on_paper(np.asarray(Image.fromarray(sq, "F").resize((16, 16), Image.BOX)).clip(0, 1), rng, noise=1)


def _ink_4x(d):
    return np.clip((_resize(d, 112, 112) - 0.5) * 3 + 0.5, 0, 1)


def thick_marker(d, rng):
    return _on_paper(ndimage.grey_dilation(_ink_4x(d), footprint=_disk(rng.uniform(3, 6.5))), rng)


def skeleton(m: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a mask ``[H,W]`` (or masks ``[N,H,W]``): the 1 px centre line of each stroke,
    connected as the strokes were."""
    m = m.copy()
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = np.pad(m, [(0, 0)] * (m.ndim - 2) + [(1, 1), (1, 1)])
            n = [p[..., :-2, 1:-1], p[..., :-2, 2:], p[..., 1:-1, 2:], p[..., 2:, 2:], p[..., 2:, 1:-1],
                 p[..., 2:, :-2], p[..., 1:-1, :-2], p[..., :-2, :-2]]
            count = sum(v.astype(np.int8) for v in n)
            crossings = sum((~n[i] & n[(i + 1) % 8]).astype(np.int8) for i in range(8))
            up, right, down, left = n[0], n[2], n[4], n[6]
            side = (~(up & right & down) & ~(right & down & left) if step == 0
                    else ~(up & right & left) & ~(up & down & left))
            gone = m & (count >= 2) & (count <= 6) & (crossings == 1) & side
            changed |= bool(gone.any())
            m &= ~gone
    return m


def thin_pen(d, rng):
    # A fixed erosion would erase MNIST's thin strokes before it thins the thick ones: redraw the centre line.
    line = ndimage.binary_dilation(skeleton(_ink_4x(d) > 0.5), _disk(rng.uniform(0.5, 1.5)))
    return _on_paper(ndimage.gaussian_filter(line.astype(np.float32), 0.6), rng)


def chalkboard(d, rng):
    s = int(rng.integers(112, 181))
    board = np.array([40, 70, 55]) if rng.random() < 0.5 else np.array([45, 47, 52])
    smudge = ndimage.gaussian_filter(rng.normal(0, 1, (s, s)), 8) * rng.uniform(150, 400)  # wiped chalk dust
    paper = (board + rng.uniform(-10, 10, 3))[None, None] + smudge[..., None]
    a = _random_place(_ink(d, rng.uniform(0.55, 0.8) * s), s, s, rng, margin=6)
    grit = np.clip(ndimage.gaussian_filter(rng.random((s, s)), 0.7) * 2.2 - 0.3, 0.3, 1)  # chalk skips on the board
    return _rgb(a * grit, paper.astype(np.float32), rng.uniform(215, 245) * np.ones(3), rng.uniform(4, 10), rng)


CONTEXTS: dict[str, Context] = {f.__name__: Context(f) for f in (
    clean, canvas, canvas_rgba, tight_crop_28, tight_crop_64, boxed_cell, boxed_cell_touching, hollow,
    squared_paper, lined_paper, coloured, jpeg_low_quality, low_res_16, thick_marker, thin_pen, chalkboard)}
CONTEXTS.update({f.__name__: Context(f, large=True) for f in (small_in_photo, phone_photo)})


# --- not digits ----------------------------------------------------------------------------------

def _strokes(h: int, w: int, lines: list, width: float) -> np.ndarray:
    """Polylines (lists of (x, y) in px) drawn as pen strokes, antialiased by drawing at 4x."""
    im = Image.new("L", (4 * w, 4 * h))
    draw = ImageDraw.Draw(im)
    for pts in lines:
        draw.line([(4 * x, 4 * y) for x, y in pts], fill=255, width=max(1, round(4 * width)), joint="curve")
    return np.asarray(im.resize((w, h), Image.BOX), np.float32) / 255


def _smooth_path(rng, n_ctrl: int, h: int, w: int, margin: float) -> list:
    ctrl = rng.uniform([margin * w, margin * h], [(1 - margin) * w, (1 - margin) * h], (n_ctrl, 2))
    return [tuple(q) for q in make_interp_spline(np.arange(n_ctrl), ctrl, k=3)(np.linspace(0, n_ctrl - 1, 30 * n_ctrl))]


def blank_paper_photo(rng):
    return _photo(np.zeros((600, 800), np.float32), rng, blur=(0.5, 1.5), shadow_p=0.5, quality=(75, 91))


def dot(rng):
    s = int(rng.integers(112, 281))
    r, (cx, cy) = rng.uniform(1, 5), rng.uniform(0.3, 0.7, 2) * s
    im = Image.new("L", (4 * s, 4 * s))
    ImageDraw.Draw(im).ellipse([4 * (cx - r), 4 * (cy - r * rng.uniform(0.7, 1)), 4 * (cx + r), 4 * (cy + r)], fill=255)
    return _on_paper(np.asarray(im.resize((s, s), Image.BOX), np.float32) / 255, rng)


_LETTERS = "AEFHKMNRVWX"  # letters no reader would take for a digit (no O, I, S, Z, B, G)


def letters(rng):
    s = int(rng.integers(112, 161))
    font = ImageFont.load_default(size=int(rng.uniform(0.55, 0.85) * s))
    im = Image.new("L", (s, s))
    ch = _LETTERS[rng.integers(len(_LETTERS))]
    x0, y0, x1, y1 = ImageDraw.Draw(im).textbbox((0, 0), ch, font=font)
    ImageDraw.Draw(im).text(((s - x1 - x0) / 2, (s - y1 - y0) / 2), ch, fill=255, font=font,
                            stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
    return _on_paper(np.asarray(im, np.float32) / 255, rng)


def scribble(rng):
    s = int(rng.integers(112, 201))
    paths = [_smooth_path(rng, int(rng.integers(6, 14)), s, s, 0.15)]
    return _on_paper(_strokes(s, s, paths, rng.uniform(2, 6)), rng)


def x_mark(rng):
    s = int(rng.integers(112, 161))
    c, r = s / 2 + rng.normal(0, 4, 2), rng.uniform(0.2, 0.4, 2) * s
    ends = c + r * np.array([[-1, -1], [1, 1], [1, -1], [-1, 1]]) + rng.normal(0, 0.04 * s, (4, 2))  # a hand's wobble
    lines = [[tuple(ends[0]), tuple(ends[1])], [tuple(ends[2]), tuple(ends[3])]]
    return _on_paper(_strokes(s, s, lines, rng.uniform(2, 7)), rng)


def cross_out(rng):
    s = int(rng.integers(112, 201))
    n = int(rng.integers(5, 12))
    xs = np.linspace(0.15, 0.85, 2 * n) * s + rng.normal(0, 2, 2 * n)
    ys = np.where(np.arange(2 * n) % 2, 0.3, 0.7) * s + rng.normal(0, 0.05 * s, 2 * n)
    return _on_paper(_strokes(s, s, [list(zip(xs, ys))], rng.uniform(2, 6)), rng)


def horizontal_line(rng):
    h, w = int(rng.integers(80, 161)), int(rng.integers(112, 241))
    length, y = rng.uniform(0.4, 0.9) * w, rng.uniform(0.35, 0.65) * h
    x0 = rng.uniform(0.05 * w, w - length - 0.05 * w)
    xs = np.linspace(x0, x0 + length, 30)
    ys = y + (xs - x0) * np.tan(np.radians(rng.uniform(-6, 6))) + np.sin(xs / rng.uniform(10, 40)) * rng.uniform(0, 2)
    return _on_paper(_strokes(h, w, [list(zip(xs, ys))], rng.uniform(2, 7)), rng)


NON_DIGITS: dict[str, NonDigit] = {f.__name__: NonDigit(f) for f in (dot, letters, scribble, x_mark, cross_out,
                                                                      horizontal_line)}
NON_DIGITS["blank_paper_photo"] = NonDigit(blank_paper_photo, large=True)
