"""Pictures with no digit in them, in two forms.

- ``non_digits(n, seed, kind)``: a batch of 28x28 tensors (letters, doodles, shapes, noise), the shape a
  model reads; training's outlier-exposure bank and the calibration check draw from it.
- ``NON_DIGITS[name].render(n, seed)``: pictures as users hand them in (a dot, printed letters, a
  scribble, an x, a cross-out, a line, a photo of blank paper), drawn like ``contexts``' digits.

Letters that a hand makes look like digits (O, I, l, S, Z, B, g, q, ...) are left out of both: rejecting
them would teach the model to reject real digits.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..transforms import blur, grid, random_warp
from . import draw
from .seeds import picture_rng

__all__ = ["non_digits", "NON_DIGIT_KINDS", "LETTERS", "NonDigit", "NON_DIGITS", "PRINTED_LETTERS"]

# What a digit reader is shown by mistake: letters, scribbles, shapes and objects, noise. Letters
# that a hand makes look like digits (O, I, l, S, Z, B, g, q, ...) are left out: rejecting them
# would teach the model to reject real digits.

LETTERS = "ACEFHKMNPRUVWXYacefhkmnruvwxy"
NON_DIGIT_KINDS = ("letters", "doodles", "shapes", "noise")



def _letters(n: int, gen: torch.Generator, fonts: str) -> torch.Tensor:
    if fonts == "train":  # Pillow's own font: present everywhere, so training is reproducible
        faces = [ImageFont.load_default(size=40)]
    else:  # other typefaces when the system has them, so measuring does not replay training
        paths = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
        faces = [ImageFont.truetype(str(p), 40) for p in paths if "Math" not in p.name] or \
            [ImageFont.load_default(size=34)]
    glyphs = []
    for face in faces:
        for ch in LETTERS:
            for bold in (0, 2):
                img = Image.new("L", (64, 64))
                ImageDraw.Draw(img).text((32, 32), ch, fill=255, font=face, anchor="mm", stroke_width=bold,
                                         stroke_fill=255)
                glyphs.append(np.asarray(img.resize((28, 28), Image.Resampling.BOX), np.float32) / 255)
    bank = torch.from_numpy(np.stack(glyphs))[:, None]
    pick = torch.randint(0, len(bank), (n,), generator=gen)
    return random_warp(bank[pick], gen, rotate_deg=15, scale=0.15, shear_deg=15, translate_px=2, elastic_px=1.5)


def _doodles(n: int, gen: torch.Generator) -> torch.Tensor:
    # scribbles: sums of four random sinusoids per axis (2-6 turns each, so few pass for a digit), Gaussian pen
    t = torch.linspace(0, 1, 128)
    out = []
    for m in [min(256, n - i) for i in range(0, n, 256)]:
        f = torch.randint(2, 7, (m, 2, 4), generator=gen).float()
        amp = torch.rand(m, 2, 4, generator=gen) * 14 / f
        phase = torch.rand(m, 2, 4, generator=gen) * 2 * math.pi
        path = 14 + (amp[..., None] * torch.sin(2 * math.pi * f[..., None] * t + phase[..., None])).sum(2)
        xs, ys = grid(m)
        d2 = (xs.reshape(m, -1, 1) - path[:, None, 0]) ** 2 + (ys.reshape(m, -1, 1) - path[:, None, 1]) ** 2
        pen = 0.6 + 0.8 * torch.rand(m, 1, generator=gen)
        out.append(torch.exp(-d2.amin(2) / (2 * pen ** 2)).reshape(m, 1, 28, 28))
    return torch.cat(out)


def _shapes(n: int, gen: torch.Generator) -> torch.Tensor:
    # one to three ellipses or boxes, filled or outlined, some striped: objects, clothing, logos
    xs, ys = grid(n)
    img = torch.zeros(n, 28, 28)
    for k in range(3):
        c = 8 + 12 * torch.rand(n, 2, 1, 1, generator=gen)
        ax = 3 + 9 * torch.rand(n, 2, 1, 1, generator=gen)
        ang = torch.rand(n, 1, 1, generator=gen) * math.pi
        dx, dy = xs - c[:, 0], ys - c[:, 1]
        u = (dx * torch.cos(ang) + dy * torch.sin(ang)) / ax[:, 0]
        v = (-dx * torch.sin(ang) + dy * torch.cos(ang)) / ax[:, 1]
        box = torch.rand(n, 1, 1, generator=gen) < 0.5
        r = torch.where(box, torch.maximum(u.abs(), v.abs()), torch.sqrt(u ** 2 + v ** 2))
        outline = torch.rand(n, 1, 1, generator=gen) < 0.3
        shape = torch.where(outline, (r - 1).abs() < 0.15, r < 1).float()
        stripes = torch.rand(n, 1, 1, generator=gen) < 0.3
        period = 2 + 3 * torch.rand(n, 1, 1, generator=gen)
        shape = torch.where(stripes, shape * (torch.sin(2 * math.pi * u * ax[:, 0] / period) > 0), shape)
        present = (k == 0) | (torch.rand(n, 1, 1, generator=gen) < 0.4)
        grey = 0.5 + 0.5 * torch.rand(n, 1, 1, generator=gen)
        img = torch.maximum(img, shape * grey * present)
    return img[:, None]


def _noise(n: int, gen: torch.Generator) -> torch.Tensor:
    # smoothed random fields, some thresholded into blobs, some left as grainy texture
    sigma = 0.5 + 2.5 * torch.rand(n, generator=gen)
    field = blur(torch.rand(n, 1, 28, 28, generator=gen), sigma, 9)
    lo, hi = field.amin((1, 2, 3), keepdim=True), field.amax((1, 2, 3), keepdim=True)
    field = (field - lo) / (hi - lo + 1e-6)
    level = (0.4 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen))
    blobs = torch.rand(n, 1, 1, 1, generator=gen) < 0.5
    return torch.where(blobs, (field > level).float(), field)


def non_digits(n: int, seed: int, kind: str | tuple = "mixed", fonts: str = "train", shuffle: bool = True) -> torch.Tensor:
    """Return ``n`` synthetic images that are not digits, float ``[n,1,28,28]``, ink bright on 0.

    ``kind`` is one of ``NON_DIGIT_KINDS``, a tuple of them (an equal share of each, in random order)
    or ``"mixed"`` (all of them); ``fonts="train"`` draws letters in Pillow's built-in font, ``"eval"``
    in the system's other fonts. ``seed``: a named seed of ``seeds`` plus the run's own. ``shuffle=False``
    leaves a tuple's kinds in order, an equal share each, so that they can be told apart.
    """
    return _non_digits(n, torch.Generator().manual_seed(seed), kind, fonts, shuffle)


def _non_digits(n: int, gen: torch.Generator, kind: str | tuple, fonts: str, shuffle: bool = True) -> torch.Tensor:
    if kind == "mixed":
        kind = NON_DIGIT_KINDS
    if isinstance(kind, tuple):
        counts = [n // len(kind) + (i < n % len(kind)) for i in range(len(kind))]
        parts = torch.cat([_non_digits(c, gen, k, fonts) for k, c in zip(kind, counts) if c])
        return parts[torch.randperm(n, generator=gen)] if shuffle else parts
    if kind == "letters":
        return _letters(n, gen, fonts)
    return {"doodles": _doodles, "shapes": _shapes, "noise": _noise}[kind](n, gen)


# --- as users hand them in ----------------------------------------------------------------------

@dataclass(frozen=True)
class NonDigit:
    """Pictures that hold no digit: ``make(rng)`` draws one."""
    make: Callable[[np.random.Generator], np.ndarray | bytes]
    large: bool = False

    def render(self, n: int, seed: int = 0, start: int = 0) -> list:
        """``n`` pictures, the first one being number ``start``."""
        return [self.make(picture_rng(seed, self.make.__name__, start + i)) for i in range(n)]


def blank_paper_photo(rng):
    return draw.photo(np.zeros((600, 800), np.float32), rng, blur=(0.5, 1.5), shadow_p=0.5, quality=(75, 91))


def dot(rng):
    s = int(rng.integers(112, 281))
    r, (cx, cy) = rng.uniform(1, 5), rng.uniform(0.3, 0.7, 2) * s
    im = Image.new("L", (4 * s, 4 * s))
    ImageDraw.Draw(im).ellipse([4 * (cx - r), 4 * (cy - r * rng.uniform(0.7, 1)), 4 * (cx + r), 4 * (cy + r)], fill=255)
    return draw.scanned(np.asarray(im.resize((s, s), Image.BOX), np.float32) / 255, rng)


PRINTED_LETTERS = "AEFHKMNRVWX"  # letters no reader would take for a digit (no O, I, S, Z, B, G)


def letters(rng):
    s = int(rng.integers(112, 161))
    font = ImageFont.load_default(size=int(rng.uniform(0.55, 0.85) * s))
    im = Image.new("L", (s, s))
    ch = PRINTED_LETTERS[rng.integers(len(PRINTED_LETTERS))]
    x0, y0, x1, y1 = ImageDraw.Draw(im).textbbox((0, 0), ch, font=font)
    ImageDraw.Draw(im).text(((s - x1 - x0) / 2, (s - y1 - y0) / 2), ch, fill=255, font=font,
                            stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
    return draw.scanned(np.asarray(im, np.float32) / 255, rng)


def scribble(rng):
    s = int(rng.integers(112, 201))
    paths = [draw.smooth_path(rng, int(rng.integers(6, 14)), s, s, 0.15)]
    return draw.scanned(draw.strokes(s, s, paths, rng.uniform(2, 6)), rng)


def x_mark(rng):
    s = int(rng.integers(112, 161))
    c, r = s / 2 + rng.normal(0, 4, 2), rng.uniform(0.2, 0.4, 2) * s
    ends = c + r * np.array([[-1, -1], [1, 1], [1, -1], [-1, 1]]) + rng.normal(0, 0.04 * s, (4, 2))  # a hand's wobble
    lines = [[tuple(ends[0]), tuple(ends[1])], [tuple(ends[2]), tuple(ends[3])]]
    return draw.scanned(draw.strokes(s, s, lines, rng.uniform(2, 7)), rng)


def cross_out(rng):
    s = int(rng.integers(112, 201))
    n = int(rng.integers(5, 12))
    xs = np.linspace(0.15, 0.85, 2 * n) * s + rng.normal(0, 2, 2 * n)
    ys = np.where(np.arange(2 * n) % 2, 0.3, 0.7) * s + rng.normal(0, 0.05 * s, 2 * n)
    return draw.scanned(draw.strokes(s, s, [list(zip(xs, ys))], rng.uniform(2, 6)), rng)


def horizontal_line(rng):
    h, w = int(rng.integers(80, 161)), int(rng.integers(112, 241))
    length, y = rng.uniform(0.4, 0.9) * w, rng.uniform(0.35, 0.65) * h
    x0 = rng.uniform(0.05 * w, w - length - 0.05 * w)
    xs = np.linspace(x0, x0 + length, 30)
    ys = y + (xs - x0) * np.tan(np.radians(rng.uniform(-6, 6))) + np.sin(xs / rng.uniform(10, 40)) * rng.uniform(0, 2)
    return draw.scanned(draw.strokes(h, w, [list(zip(xs, ys))], rng.uniform(2, 7)), rng)


NON_DIGITS: dict[str, NonDigit] = {f.__name__: NonDigit(f) for f in (dot, letters, scribble, x_mark, cross_out,
                                                                      horizontal_line)}
NON_DIGITS["blank_paper_photo"] = NonDigit(blank_paper_photo, large=True)
