"""Every generated data set, in one place: non-digits (letters, scribbles, shapes, noise), digits
photographed on paper, and number fields (strings of digits on one line). Seeded: the same seed gives
the same set, and the named seeds below keep sets that must not overlap apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage

from .transforms import blur, grid, random_warp, to_uint8

__all__ = ["non_digits", "NON_DIGIT_KINDS", "LETTERS", "on_paper", "PAPER_KINDS", "Condition", "Field",
           "make_field", "ink_crop", "OUTLIER_BANK_SEED", "CALIBRATION_SEED", "EVALUATION_SEED"]

# seed offsets of the non-digit sets (a run's own seed is added): training's outlier-exposure bank,
# the calibration check of a trained model, and the evaluation sets of benchmarks and the report
OUTLIER_BANK_SEED = 10_000
CALIBRATION_SEED = 20_000
EVALUATION_SEED = 30_000


# --- non-digits ----------------------------------------------------------------------------------
# What a digit reader is shown by mistake: letters, scribbles, shapes and objects, noise. Letters
# that a hand makes look like digits (O, I, l, S, Z, B, g, q, ...) are left out: rejecting them
# would teach the model to reject real digits.

LETTERS = "ACEFHKMNPRUVWXYacefhkmnruvwxy"
NON_DIGIT_KINDS = ("letters", "doodles", "shapes", "noise")



def _letters(n: int, gen: torch.Generator, fonts: str) -> torch.Tensor:
    from PIL import Image, ImageDraw, ImageFont

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


def non_digits(n: int, gen: torch.Generator, kind: str | tuple = "mixed", fonts: str = "train") -> torch.Tensor:
    """Return ``n`` synthetic images that are not digits, float ``[n,1,28,28]``, ink bright on 0.

    ``kind`` is one of ``NON_DIGIT_KINDS``, a tuple of them (an equal share of each, in random order)
    or ``"mixed"`` (all of them); ``fonts="train"`` draws letters in Pillow's built-in font, ``"eval"``
    in the system's other fonts.
    """
    if kind == "mixed":
        kind = NON_DIGIT_KINDS
    if isinstance(kind, tuple):
        counts = [n // len(kind) + (i < n % len(kind)) for i in range(len(kind))]
        parts = torch.cat([non_digits(c, gen, k, fonts) for k, c in zip(kind, counts) if c])
        return parts[torch.randperm(n, generator=gen)]
    if kind == "letters":
        return _letters(n, gen, fonts)
    return {"doodles": _doodles, "shapes": _shapes, "noise": _noise}[kind](n, gen)


PAPER_KINDS = ("shadow", "ruled", "box", "specks")


def on_paper(images: np.ndarray, kind: str = "shadow", seed: int = 0, size: int = 112) -> np.ndarray:
    """Return uint8 ``[N,size,size]`` photos of ``images`` (MNIST-style uint8) as dark ink on lit paper.

    Every kind has uneven light (a shadow falling across the page) and sensor noise; ``"ruled"`` adds
    lines of a ruled page, ``"box"`` the borders of a form's box running to the image edge, ``"specks"``
    dust. The test bed for preprocessing and the before/after figures.
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(images)
    ink = F.interpolate(torch.from_numpy(np.asarray(images, np.float32) / 255)[:, None], size=(size, size),
                        mode="bilinear", align_corners=False)[:, 0]
    xs, ys = grid(n, size)
    ang = torch.rand(n, 1, 1, generator=gen) * 2 * math.pi
    ramp = (xs * torch.cos(ang) + ys * torch.sin(ang)) / size
    ramp = (ramp - ramp.amin((1, 2), keepdim=True)) / (ramp.amax((1, 2), keepdim=True) - ramp.amin((1, 2), keepdim=True))
    light = 0.95 - 0.45 * ramp  # a factor two between the brightest and darkest paper
    marks = torch.zeros(n, size, size)
    if kind == "ruled":
        gap = size // 4
        offset = torch.randint(0, gap, (n, 1, 1), generator=gen)
        marks = (((ys.long() - offset) % gap) < 2).float() * 0.6
    elif kind == "box":
        inset = 3
        edge = (ys.long() - inset).abs().le(1) | (ys.long() - (size - 1 - inset)).abs().le(1) | \
            (xs.long() - inset).abs().le(1) | (xs.long() - (size - 1 - inset)).abs().le(1)
        marks = edge.float() * 0.8
    elif kind == "specks":
        centres = torch.rand(n, 12, 2, generator=gen) * size
        radius = 0.8 + 1.5 * torch.rand(n, 12, 1, 1, generator=gen)
        d2 = (xs[:, None] - centres[..., 0, None, None]) ** 2 + (ys[:, None] - centres[..., 1, None, None]) ** 2
        marks = (d2 < radius ** 2).float().amax(1) * 0.8
    elif kind != "shadow":
        raise ValueError(f"kind must be one of {PAPER_KINDS}, not {kind!r}")
    page = light * (1 - 0.85 * torch.maximum(ink, marks)) + 0.03 * torch.randn(n, size, size, generator=gen)
    return to_uint8(page)



# --- number fields ---------------------------------------------------------------------------------
# Strings of MNIST digits on one line, for training and benchmarking the reader. Each digit's ink box is
# scaled to a random height around the nominal one, shifted off a common (optionally sloping) baseline,
# with a random gap between neighbouring ink boxes; a negative gap makes neighbours touch or overlap.
# Optionally a hyphen or a decimal point sits between two digits, not part of the text, and a digit-sized
# mark that is not a digit stands among them. A pattern ("#,###.##", "##/##/##") writes separators that are
# part of the text, as amounts and dates have them. Restyled digits are thickened or thinned, slanted and
# stretched: other writers' hands. A boxed field is a row of printed boxes, a digit in each or none.

SCALE_JITTER = 0.15     # each digit's height varies this much either way
BASELINE_JITTER = 0.08  # each digit's bottom moves this share of the height up or down
MAX_OVERLAP = 0.25      # neighbours overlap by at most this share of the narrower one's width
MARGIN = 0.36           # paper left and right of the string, in digit heights, when the canvas is sized to it


@dataclass(frozen=True)
class Condition:
    """How fields are drawn; lengths and gaps are in units of the nominal digit height."""
    name: str
    digits: tuple[int, int]        # string length range, inclusive
    gap: tuple[float, float]       # gap between neighbouring ink boxes
    slope_deg: float = 0.0         # baseline slope range, degrees either way
    canvas: tuple[float, float] | None = None  # (width, height) in digit heights; None: as wide as the string
    marks: float = 0.0             # chance that a field has a hyphen or a decimal point between two digits
    others: float = 0.0            # chance that a field has a digit-sized mark that is not a digit
    patterns: tuple[str, ...] = ()  # each field follows one: "#" a digit, any other character a separator between two
    restyled: bool = False         # digits thickened or thinned, slanted up to 20 degrees, stretched
    heavy: bool = False            # restyled as a heavy, broad hand instead: every stroke thick, 1.1-1.4 times as wide
    boxed: bool = False            # a row of printed boxes, one digit or none in each ("digits": how many boxes)
    empty: float = 0.0             # boxed: chance that a box is left empty


@dataclass
class Field:
    image: np.ndarray              # uint8 HxW, dark ink on white paper
    text: str                      # the digits and separators, left to right; a boxed field: a space per empty box
    boxes: list                    # each digit's ink box (x, y, width, height) in the image


def ink_crop(digit28: np.ndarray, height: int) -> np.ndarray:
    """The digit's ink box scaled so that its ink is ``height`` px tall (float ink in [0, 1])."""
    rows, cols = np.flatnonzero(digit28.any(1)), np.flatnonzero(digit28.any(0))
    crop = digit28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255
    w = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((w, height), Image.Resampling.BILINEAR)).clip(0, 1)


def _mark(rng: np.random.Generator, height: float, stroke: float) -> tuple[np.ndarray, float]:
    """A hyphen (at mid-height) or a decimal point (on the baseline): its ink and its bottom above the baseline."""
    t = max(2, round(stroke))
    if rng.random() < 0.5:
        w = max(t + 1, round(height * rng.uniform(0.25, 0.6)))
        return np.ones((t, w), np.float32), height * rng.uniform(0.35, 0.6)
    d = max(2, round(stroke * rng.uniform(1.0, 1.6)))
    yy, xx = np.mgrid[:d, :d] - (d - 1) / 2
    return (yy ** 2 + xx ** 2 <= (d / 2) ** 2).astype(np.float32), height * rng.uniform(-0.02, 0.05)


# paper either side of a separator, in digit heights
_ROOM = {".": (0.05, 0.2), ",": (0.05, 0.2), "-": (0.1, 0.3), "/": (0.02, 0.15)}


def _separator(ch: str, rng: np.random.Generator, height: float, stroke: float) -> tuple[np.ndarray, float]:
    """A separator of the text as a hand writes it: its ink and its bottom above the baseline."""
    t = max(2, round(stroke))
    if ch in ".-":
        while True:  # _mark draws either; keep the one asked for
            ink, lift = _mark(rng, height, stroke)
            if (ink.shape[1] > ink.shape[0] + 1) == (ch == "-"):
                return ink, lift
    if ch == ",":
        h, w = round(height * rng.uniform(0.25, 0.4)), round(height * rng.uniform(0.08, 0.18))
        path = [(w + t / 2, t / 2), (t / 2, h + t / 2)]
        lift = -h * rng.uniform(0.6, 0.8)
    else:  # "/"
        h = round(height * rng.uniform(0.85, 1.15))
        w = round(h * math.tan(math.radians(rng.uniform(15, 35))))
        path = [(t / 2, h + t / 2), (w + t / 2, t / 2)]
        lift = -height * rng.uniform(0.0, 0.12)
    img = Image.new("L", (w + t + 1, h + t + 1))
    ImageDraw.Draw(img).line(path, fill=255, width=t)
    return np.asarray(img, np.float32) / 255, lift


def _in_hand(crop: np.ndarray, rng: np.random.Generator, cond: Condition) -> np.ndarray:
    """A digit's ink as the field's writer has it: as drawn, restyled, or in a heavy, broad hand."""
    if not cond.restyled:
        return crop
    return _broad(crop, rng) if cond.heavy else _restyle(crop, rng)


def _broad(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit's ink written with a broad pen: strokes thickened by 0.06-0.09 of the height, 1.1-1.4 times as
    wide, upright; still as tall."""
    h = crop.shape[0]
    k = max(2, round(h * rng.uniform(0.06, 0.09)))
    return _to_height(ndimage.grey_dilation(np.pad(crop, k), size=(k, k)), h, rng.uniform(1.1, 1.4))


def _restyle(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit's ink as another hand writes it: thicker or thinner strokes, slanted up to 20 degrees either
    way, 0.7-1.4 times as wide; still as tall."""
    h = crop.shape[0]
    k = int(rng.integers(2, max(3, round(0.07 * h))))
    stroke = rng.random()
    if stroke < 0.4:
        crop = ndimage.grey_dilation(np.pad(crop, k), size=(k, k))
    elif stroke < 0.7:
        thin = ndimage.grey_erosion(crop, size=(k // 2 + 1, k // 2 + 1))
        crop = thin if thin.max() > 0.5 else crop
    shear = math.tan(math.radians(rng.uniform(-20, 20)))
    grow = int(math.ceil(abs(shear) * crop.shape[0]))
    wide = np.pad(crop, ((0, 0), (grow, grow)))
    centre = crop.shape[0] / 2
    wide = ndimage.affine_transform(wide, [[1, 0], [-shear, 1]], offset=[0, shear * centre], order=1)
    return _to_height(wide, h, rng.uniform(0.7, 1.4))


def _to_height(ink: np.ndarray, height: int, widen: float) -> np.ndarray:
    """``ink`` cut to its ink box and resized to ``height`` px tall and ``widen`` times its width."""
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    w = max(1, round(ink.shape[1] * widen))
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize((w, height), Image.Resampling.BILINEAR)).clip(0, 1)


def make_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, height: int = 110,
               others: np.ndarray | None = None) -> Field:
    """One field of digits drawn from ``x``/``y`` (uint8 28x28 images, labels); a digit is about ``height`` px tall.

    ``others``: uint8 28x28 images of non-digits, one of which joins the string, as a digit would, with
    ``cond.others``' chance.
    """
    if cond.boxed:
        return _boxed_field(x, y, cond, rng, height)
    pattern = str(rng.choice(cond.patterns)) if cond.patterns else ""
    n = pattern.count("#") or int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    idx = rng.choice(len(x), n, replace=False)
    images, labels = list(x[idx]), [int(y[i]) for i in idx]
    if others is not None and cond.others and rng.random() < cond.others:
        at = int(rng.integers(0, n + 1))
        images.insert(at, others[rng.integers(len(others))])
        labels.insert(at, -1)
        n += 1
    crops = [ink_crop(im, round(height * rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER))) for im in images]
    crops = [_in_hand(c, rng, cond) for c in crops]
    widths = np.array([c.shape[1] for c in crops])
    # nobody writes a digit far into its neighbour: a "1" inside a "0" is unreadable to a person too
    gaps = np.maximum(rng.uniform(*cond.gap, n - 1) * height, -MAX_OVERLAP * np.minimum(widths[:-1], widths[1:]))
    pieces = [(c, 0.0, label >= 0) for c, label in zip(crops, labels)]  # (ink, bottom above the baseline, a digit?)
    stroke = height * 0.12
    for at, ch in enumerate(pattern):
        if ch != "#":
            pieces.insert(at, (*_separator(ch, rng, height, stroke * rng.uniform(0.7, 1.1)), False))
            room = height * rng.uniform(*_ROOM[ch])
            gaps = np.insert(gaps, at, room)
            gaps[at - 1] = room
    if n > 1 and cond.marks and rng.random() < cond.marks:
        at = int(rng.integers(1, n))
        room = height * rng.uniform(0.15, 0.3)
        pieces.insert(at, (*_mark(rng, height, stroke=stroke), False))
        gaps = np.insert(gaps, at, room)
        gaps[at - 1] = room
    widths = np.array([p[0].shape[1] for p in pieces])
    lefts = np.concatenate([[0.0], np.cumsum(widths[:-1] + gaps)]).round().astype(int)
    lefts -= lefts.min()
    width = int(max(lft + w for lft, w in zip(lefts, widths)))
    slope = math.tan(math.radians(rng.uniform(-cond.slope_deg, cond.slope_deg)))
    margin = round(MARGIN * height)
    if cond.canvas is None:
        cw, ch = width + 2 * margin, round(height * 200 / 110)
    else:
        cw, ch = round(cond.canvas[0] * height), round(cond.canvas[1] * height)
    rise = abs(slope) * width
    x0 = int(rng.integers(0, max(1, cw - width)))
    base = ch / 2 + height / 2 + (rise / 2 if slope > 0 else -rise / 2)  # centre the sloping line vertically
    canvas = np.zeros((ch, cw), np.float32)
    boxes = []
    for (c, lift, digit), left in zip(pieces, lefts):
        bottom = base - slope * (left + c.shape[1] / 2) - lift
        if digit:
            bottom += rng.uniform(-1, 1) * BASELINE_JITTER * height
        top = int(round(min(max(bottom - c.shape[0], 0), ch - c.shape[0])))
        l0 = x0 + left
        region = canvas[top:top + c.shape[0], l0:l0 + c.shape[1]]
        c = c[:region.shape[0], :region.shape[1]]
        np.maximum(region, c, out=region)
        if digit:
            boxes.append((int(l0), top, c.shape[1], c.shape[0]))
    digits = iter(str(d) for d in labels if d >= 0)
    text = "".join(next(digits) if ch == "#" else ch for ch in pattern) if pattern else "".join(digits)
    return Field((255 - canvas * 255).round().astype(np.uint8), text, boxes)


def _boxed_field(x: np.ndarray, y: np.ndarray, cond: Condition, rng: np.random.Generator, height: int) -> Field:
    """A row of printed boxes, side by side or apart, a digit written in each (some left empty), the digits as
    large as the box allows: some run into its lines."""
    n = int(rng.integers(cond.digits[0], cond.digits[1] + 1))
    filled = rng.random(n) >= cond.empty
    filled[rng.integers(n)] = True
    side = round(height * rng.uniform(1.15, 1.35))  # from a box's outer edge to its neighbour's
    line = int(rng.integers(2, 5))
    apart = 0 if rng.random() < 0.5 else round(side * rng.uniform(0.1, 0.3))
    margin = round(MARGIN * height)
    canvas = np.zeros((round(side * 1.6), 2 * margin + n * (side + apart) + line), np.float32)
    top = (canvas.shape[0] - side) // 2
    idx = iter(rng.choice(len(x), n, replace=False))
    text, boxes = "", []
    for i in range(n):
        x0 = margin + i * (side + apart)
        for rows, cols in ((slice(top, top + line), slice(x0, x0 + side + line)),
                           (slice(top + side, top + side + line), slice(x0, x0 + side + line)),
                           (slice(top, top + side + line), slice(x0, x0 + line)),
                           (slice(top, top + side + line), slice(x0 + side, x0 + side + line))):
            canvas[rows, cols] = 0.9
        if not filled[i]:
            text += " "
            continue
        j = next(idx)
        crop = ink_crop(x[j], round(side * rng.uniform(0.65, 0.95)))
        crop = _in_hand(crop, rng, cond)[:, :side]
        h, w = crop.shape
        # anywhere in the box, a little past its lines at times
        left = int(np.clip(x0 + line + rng.uniform(-0.05, 1.05) * (side - line - w), x0, x0 + side + line - w))
        up = int(np.clip(top + line + rng.uniform(-0.05, 1.05) * (side - line - h), top, top + side + line - h))
        region = canvas[up:up + h, left:left + w]
        np.maximum(region, crop, out=region)
        text += str(int(y[j]))
        boxes.append((left, up, w, h))
    return Field((255 - canvas * 255).round().astype(np.uint8), text, boxes)
