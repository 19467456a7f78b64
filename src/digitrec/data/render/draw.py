"""The drawing helpers every rendered set shares: ink is an alpha map (0 = paper, 1 = full ink) in float
pixels; ``scanned`` puts it on paper as a flatbed scan, ``rgb`` on a coloured sheet, ``photo`` on a
photographed sheet (light, lens blur, sensor noise, JPEG); ``strokes`` draws pen lines; ``skeleton``
thins a stroke to its centre line."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.interpolate import make_interp_spline

__all__ = ["resize", "bbox", "digit_ink", "place", "random_place", "disk", "scanned", "rgb", "jpeg", "lighting",
           "photo", "strokes", "smooth_path", "skeleton"]


def resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    im = Image.fromarray(a.astype(np.float32), "F").resize((max(1, w), max(1, h)), Image.BICUBIC)
    return np.clip(np.asarray(im), 0, 1)


def bbox(a: np.ndarray, t: float = 0.05) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero((a > t).any(1)), np.flatnonzero((a > t).any(0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def digit_ink(d: np.ndarray, size: float) -> np.ndarray:
    """The digit's ink cropped to its bounding box, its longer side (nearly always the height) scaled to ``size``
    px, edges kept sharp."""
    c = d[bbox(d)]
    s = size / max(c.shape)
    a = resize(c, round(c.shape[0] * s), round(c.shape[1] * s))
    # Bicubic upscaling of a 20 px digit blurs its edges over several pixels; pen ink has crisp ones.
    return np.clip((a - 0.5) * min(3.0, s) + 0.5, 0, 1) if s > 1.5 else a


def place(a: np.ndarray, h: int, w: int, top: int, left: int) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return out


def random_place(a: np.ndarray, h: int, w: int, rng: np.random.Generator, margin: int = 0) -> np.ndarray:
    top = rng.integers(margin, max(margin, h - a.shape[0] - margin) + 1)
    left = rng.integers(margin, max(margin, w - a.shape[1] - margin) + 1)
    return place(a, h, w, top, left)


def disk(r: float) -> np.ndarray:
    k = int(np.ceil(r))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    return xx ** 2 + yy ** 2 <= r ** 2


def scanned(a: np.ndarray, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    """Dark ink on white paper, as a flatbed scan gives: grey uint8."""
    paper, ink = rng.uniform(225, 252), rng.uniform(15, 70)
    g = paper * (1 - a) + ink * a + rng.normal(0, noise, a.shape)
    return np.clip(g, 0, 255).astype(np.uint8)


def rgb(a: np.ndarray, paper: np.ndarray, ink, noise: float, rng: np.random.Generator) -> np.ndarray:
    img = paper * (1 - a[..., None]) + np.asarray(ink, np.float32) * a[..., None]
    return np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def lighting(h: int, w: int, rng: np.random.Generator, shadow_p: float) -> np.ndarray:
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


def photo(a: np.ndarray, rng: np.random.Generator, blur: tuple, shadow_p: float, quality: tuple) -> bytes:
    """The ink ``a`` on a photographed sheet: reflectance times light, lens blur, sensor noise, JPEG."""
    h, w = a.shape
    a = ndimage.gaussian_filter(a, rng.uniform(*blur))  # blurring the ink alone is enough: the light is smooth
    paper = rng.uniform(0.82, 0.95) * rng.uniform(0.93, 1.0, 3).astype(np.float32)  # a warm or cool cast
    ink = rng.uniform(0.08, 0.3) * rng.uniform(0.85, 1.0, 3).astype(np.float32)
    refl = paper * (1 - a[..., None]) + ink * a[..., None]
    img = refl * lighting(h, w, rng, shadow_p)[..., None]
    img += rng.normal(0, rng.uniform(2, 7), (h, w, 1)).astype(np.float32)  # luminance noise dominates
    return jpeg(np.clip(img, 0, 255).astype(np.uint8), rng.integers(*quality))


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


def strokes(h: int, w: int, lines: list, width: float) -> np.ndarray:
    """Polylines (lists of (x, y) in px) drawn as pen strokes, antialiased by drawing at 4x."""
    im = Image.new("L", (4 * w, 4 * h))
    draw = ImageDraw.Draw(im)
    for pts in lines:
        draw.line([(4 * x, 4 * y) for x, y in pts], fill=255, width=max(1, round(4 * width)), joint="curve")
    return np.asarray(im.resize((w, h), Image.BOX), np.float32) / 255


def smooth_path(rng, n_ctrl: int, h: int, w: int, margin: float) -> list:
    ctrl = rng.uniform([margin * w, margin * h], [(1 - margin) * w, (1 - margin) * h], (n_ctrl, 2))
    return [tuple(q) for q in make_interp_spline(np.arange(n_ctrl), ctrl, k=3)(np.linspace(0, n_ctrl - 1, 30 * n_ctrl))]
