"""Any image -> a 28x28 MNIST-style array: light ink on black, cropped, fitted into 20x20, centred by mass.

``load_image`` is the boundary (paths, PIL images, numpy arrays of any layout and dtype are
validated there); ``to_mnist`` does the geometry on a clean grey array.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import InputError

__all__ = ["load_image", "load_line", "ink_map", "ink_maps", "to_mnist", "to_mnist_batch", "preprocess",
           "preprocess_batch", "deskewed", "MAX_PIXELS"]

MAX_PIXELS = 40_000_000         # larger images are refused before decoding (decompression bombs)
_BLANK_CONTRAST = 0.12          # ink must stand this far (0-1) above the paper to count as a mark
_INK_FRACTION = 0.25            # pixels above this share of the peak ink belong to the bounding box
_MIN_INK_PIXELS = 2             # fewer marked pixels than this is a blank (dust, a stray click)
_IMPULSE_FRACTION = 0.005       # share of isolated extreme pixels above which salt-and-pepper noise is filtered
_SPECK_SHARE = 0.04             # a component with fewer stroke pixels than this share of the largest is a speck
_MIN_LEFT_AFTER_LINES = 0.2     # erase edge lines only if at least this share of the ink is left
_FLIPPED_SHARE = 0.1            # paper of the ink's tone over this share of the picture is taken as such
_HOLLOW_SHARE = 0.3             # thin enclosed gaps above this share of the stroke pixels: outlined strokes
_PEPPER_SHARE = 0.03            # pits over this share of the ink pixels: grainy strokes
_HAIRLINE_SOLID = 0.5           # outlines: under this share of their pixels survive a 2x2 opening
_HOLLOW_OPEN = 6                # px: enclosed gaps narrower than this are the inside of an outlined stroke
_WORK_PX = 64                   # a single digit's marks are cleaned at about this size (it is read at 20)
_LINE_PX = 40                   # a line of digits is cleaned at about this height (it is read at 24)


def load_image(src, one_digit: bool = False) -> np.ndarray:
    """Return ``src`` (path, bytes, PIL image or array) as a float32 ink map in [0, 1], ink bright, paper 0.

    Transparent canvases (ink drawn on alpha 0) use the alpha channel as ink. ``one_digit``: the
    picture holds one digit, to be read at 20 pixels; a large digital picture (a canvas export, whose
    frame is exactly one tone) is then box-averaged until its marks are about ``_WORK_PX`` pixels
    across, so the ink map is smaller than the picture (see ``_digital_shrink``).
    """
    picture, is_ink, _ = _picture(src, _WORK_PX if one_digit else None)
    return picture if is_ink else ink_map(picture)


def load_line(src) -> tuple[np.ndarray, int]:
    """Return ``src`` as an ink map for one line of digits, and the factor its sides were divided by (1: none).

    As ``load_image``, but a large digital picture is box-averaged until its marks are about
    ``_LINE_PX`` pixels *tall*: a line is read at the height of its digits, whatever its length.
    """
    picture, is_ink, k = _picture(src, _LINE_PX, rows_only=True)
    return (picture if is_ink else ink_map(picture)), k


def _picture(src, size: int | None = None, rows_only: bool = False) -> tuple[np.ndarray, bool, int]:
    """``src`` as a float32 grey picture in [0, 1] for the ink stage, or as ink already (then True):
    a transparent canvas's alpha channel; with ``size``, box-averaged as ``_digital_shrink`` says, by
    the factor returned last (1: not at all)."""
    if isinstance(src, (str, os.PathLike, bytes, bytearray)):
        src = _open(src)
    if isinstance(src, Image.Image):
        picture, is_ink = _from_pil(src)
    elif isinstance(src, np.ndarray):
        picture, is_ink = _from_array(src)
    else:
        raise InputError(f"image must be a path, bytes, PIL.Image or numpy array, not {type(src).__name__}")
    picture, k = _digital_shrink(picture, size, rows_only) if size else (picture, 1)
    return picture, is_ink, k


def _open(src) -> Image.Image:
    name = "image bytes" if isinstance(src, (bytes, bytearray)) else str(src)
    try:
        img = Image.open(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else Path(src))
        if img.width * img.height > MAX_PIXELS:
            raise InputError(f"{name}: {img.width}x{img.height} is larger than {MAX_PIXELS:,} pixels")
        img.load()
        return ImageOps.exif_transpose(img)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image file PIL can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise InputError(f"{name}: damaged or unsupported image ({e})") from None


def _from_pil(img: Image.Image) -> tuple[np.ndarray, bool]:
    if img.width * img.height > MAX_PIXELS:
        raise InputError(f"image: {img.width}x{img.height} is larger than {MAX_PIXELS:,} pixels")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _from_array(np.asarray(img))
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "CMYK" or img.mode == "YCbCr" or img.mode == "1":
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        return _from_array(np.asarray(img.convert("RGBA")))
    return _from_array(np.asarray(img.convert("L")))


def _to_unit(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        # wide integer arrays often hold 8-bit values; only scale by the dtype's range when they exceed 255
        hi = 255 if a.max(initial=0) <= 255 else np.iinfo(a.dtype).max
        return np.clip(a.astype(np.float32) / hi, 0, 1)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError("image array contains NaN or infinite values")
        a = a.astype(np.float32)
        peak = float(a.max(initial=0))
        return np.clip(a / 255 if peak > 1 else a, 0, 1)
    raise InputError(f"image array dtype {a.dtype} is not numeric")


def _from_array(a: np.ndarray) -> tuple[np.ndarray, bool]:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise InputError(f"image array must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise InputError(f"image: {a.shape[1]}x{a.shape[0]} is larger than {MAX_PIXELS:,} pixels")
    a = _to_unit(a)
    if a.ndim == 2:
        return a, False
    grey = a[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if a.shape[2] == 4:
        alpha = a[:, :, 3]
        if alpha.min() < 0.5:
            # a canvas export: strokes are opaque, the background transparent, whatever their colours
            return alpha, True
        grey = grey * alpha + (1 - alpha)  # mostly opaque: composite over white paper
    return grey, False


def _digital_shrink(grey: np.ndarray, size: int, rows_only: bool = False) -> tuple[np.ndarray, int]:
    """Box-average a digital picture by the factor ``k`` that leaves its marks about ``size`` pixels across
    (``rows_only``: tall); return it and ``k`` (1: unchanged).

    Only for a picture whose outermost pixels all have exactly one tone: a canvas export or a rendered
    image, with no paper noise, so averaging loses nothing the 20-pixel reading would keep. The ink
    stage's cost grows with the pixels (a 280x280 canvas: about 10 ms; shrunk to 94x94: about 2 ms). The whole
    picture shrinks, not a crop of it: the ink stage sizes its paper estimate by the picture, and a
    digit filling its picture would read as a dark region. Photos and scans, and pictures whose marks
    are already small, are returned as they are.
    """
    edge = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = edge[0]
    if (edge != paper).any():
        return grey, 1
    marks = grey != paper
    rows, cols = np.flatnonzero(marks.any(axis=1)), np.flatnonzero(marks.any(axis=0))
    if rows.size == 0:
        return grey, 1
    extent = rows[-1] - rows[0] if rows_only else max(rows[-1] - rows[0], cols[-1] - cols[0])
    k = int(extent + 1) // size
    if k < 2:
        return grey, 1
    h, w = grey.shape
    out = np.full((-(-h // k) * k, -(-w // k) * k), paper, np.float32)  # padded with paper to whole blocks
    out[:h, :w] = grey
    return out.reshape(out.shape[0] // k, k, out.shape[1] // k, k).mean(axis=(1, 3)), k


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Return ink in [0, 1] (bright, paper 0) from a grey image of either polarity, cleaned up.

    Photos and scans bring uneven light, noise, specks and the lines of the form the digit was
    written on; clean input (an MNIST digit, a canvas drawing) passes through unchanged:

    1. ink is the minority, on the side of the paper's tone (the median) that reaches further (see
       ``_dark_ink`` for a tie); the paper under the ink is a grey opening larger than any stroke, and
       subtracting it flattens uneven lighting, shadows and haze; a region of paper in the ink's own
       tone that runs off the picture (a dark band across a light page, an inverted margin) has its ink
       taken the other way round;
       strokes pitted by grain (photon noise) are filled from their neighbours first;
    2. hysteresis threshold: Otsu's threshold on the ink marks the strokes, and a pixel survives
       if it stands above the paper's noise and is connected to a stroke (faint edges stay, haze and
       smudges apart from the strokes go);
    3. ruled lines and box borders (long straight runs reaching the image edge) are erased, and the
       parts of a thin line (a scribble, a dotted line) that run past the digit on both sides, then
       specks (components far smaller than the largest);
    4. strokes drawn as outlines (hollow pens, edge-detected images) are filled when thin enclosed gaps
       make up much of the ink; the wide loops of 0, 6, 8, 9 are left open. Hairlines left after that
       are thickened by a pixel each way.
    """
    return ink_maps(np.asarray(grey, dtype=np.float32)[None])[0]


# label components within each picture of a batch, never across pictures
_CROSS = np.zeros((3, 3, 3), bool)
_CROSS[1] = ndimage.generate_binary_structure(2, 1)
_SQUARE = np.zeros((3, 3, 3), bool)
_SQUARE[1] = True
_RING = np.ones((3, 3), bool)  # a pixel's 8 neighbours
_RING[1, 1] = False


def ink_maps(grey: np.ndarray) -> np.ndarray:
    """``ink_map`` of N pictures of one size ``[N,H,W]`` at once.

    The steps every picture takes run as array operations over the batch (filters with a window of
    one picture, components labelled within each picture); the branches few pictures take
    (salt-and-pepper noise, a tie in the polarity vote, a band of flipped paper, lines at the edge)
    run per picture. A 28x28 digit costs about an eighth of what it costs alone (0.14 against 1.2 ms).
    """
    grey = np.asarray(grey, dtype=np.float32)
    out = np.zeros_like(grey)
    h, w = grey.shape[1:]
    if grey.size == 0:
        return out
    live = np.flatnonzero(grey.max(axis=(1, 2)).astype(np.float64) - grey.min(axis=(1, 2)) >= 1e-6)
    if live.size == 0:
        return out
    g = grey[live]
    # an isolated pixel is far from both horizontal neighbours: only pictures with enough such pixels
    # can have salt-and-pepper noise, and only they pay for the 3x3 rank filters
    d = np.abs(np.diff(g, axis=2)) > 0.5
    for i in np.flatnonzero((d[:, :, :-1] & d[:, :, 1:]).sum(axis=(1, 2)) > _IMPULSE_FRACTION * h * w):
        g[i] = _despeckle(g[i])
    flat = g.reshape(len(g), -1)
    # the ink reaches further from the paper's tone (the median) than the paper's own variation does; the
    # mean is no guide under haze, whose long bright tail pulls it to the paper's dark side
    darkest, median, lightest = np.percentile(flat, (1, 50, 99), axis=1)
    reach = (median - darkest).astype(np.float64) - (lightest - median)
    dark = reach > 0
    for i in np.flatnonzero(np.abs(reach) < 1e-3):
        dark[i] = _dark_ink(g[i])
    pos = np.where(dark[:, None, None], 1 - g, g)
    # pepper in the strokes (shot noise): pits, pixels well below all four neighbours, in numbers
    pits = _pits(pos).sum(axis=(1, 2)) > _PEPPER_SHARE * (pos > 0.5).sum(axis=(1, 2))
    for i in np.flatnonzero(pits):
        pos[i] = np.maximum(pos[i], _around(pos[i]))
    window = max(3, min(h, w) // 2)
    ink = pos - ndimage.grey_opening(pos, size=(1, window, window))
    # where most of the surroundings are ink after flattening (the median above Otsu's threshold, counted
    # with a box filter) and the region runs off the picture, it is paper: a band or a label; a bold stroke is not
    bright = (ink > _otsus(ink)[:, None, None]).astype(np.float32)
    # a band of paper in the ink's tone that spans the picture (an inverted stripe): its paper tone is its median.
    # Looked for in the picture as well as in the flattened ink: a band as wide as the flattening window, or
    # with a digit's strokes taking much of it, is flattened away in part
    bands = _bands(np.maximum(bright, pos > _otsus(pos)[:, None, None]), window // 2)
    for i in np.flatnonzero(bands.any(axis=(1, 2))):
        ink[i] = np.where(bands[i], np.clip(np.median(pos[i][bands[i]]) - pos[i], 0, None), ink[i])
    bright[bands] = 0
    flipped = _touching_edge(ndimage.uniform_filter(bright, size=(1, window, window), mode="nearest") > 0.5)
    for i in np.flatnonzero(flipped.mean(axis=(1, 2)) > _FLIPPED_SHARE):
        local = _local_paper(pos[i], window)
        # the median places a region's edge only to a pixel or two: bright pixels just outside are its paper
        f = flipped[i] | ((bright[i] > 0) & ndimage.binary_dilation(flipped[i], iterations=2))
        # paper of the ink's own tone (a dark band across a light page): there the ink is the other way round
        ink[i] = np.where(f, np.clip(local - pos[i], 0, None), ink[i])
    out[live] = _clean(ink)
    return out


def _bands(bright: np.ndarray, min_width: int) -> np.ndarray:
    """Where ``bright [N,H,W]`` has a band: at least ``min_width`` neighbouring columns (or rows), each
    mostly bright and bright at both of its ends, on the picture's edges, between straight edges.

    A digit, even a bold 8 that fills half of many columns, does not run off two opposite edges; a
    stroke crossing a band darkens a column or two, which a closing bridges. The edges must be straight,
    where most lines cross from paper to band at the same column, or the band is a thing, not paper:
    trousers and dresses also run off the top and bottom of their pictures.
    """
    out = np.zeros(bright.shape, bool)
    for axis in (1, 2):
        b = bright if axis == 1 else bright.transpose(0, 2, 1)  # bands of columns; rows as columns
        full = (b.mean(axis=1) > 0.5) & (b[:, 0] * b[:, -1] > 0)  # [N, W]
        full = ndimage.binary_closing(full, structure=np.ones((1, 5), bool)) | full
        labels, _ = ndimage.label(full, structure=np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], bool))
        sizes = np.bincount(labels.ravel())
        for i, run in zip(*np.nonzero((sizes >= min_width)[labels] & (labels > 0) &
                                      (labels != np.roll(labels, 1, axis=1)))):
            run = int(run)
            stop = run + int(sizes[labels[i, run]])
            edges = [(run - 1, run)] * int(run > 0) + [(stop, stop - 1)] * int(stop < b.shape[2])
            if edges and all((b[i, :, inside] > b[i, :, outside]).mean() >= 0.5 for outside, inside in edges):
                band = out[i] if axis == 1 else out[i].T
                band[:, run:stop] = True
    return out


def _dark_ink(grey: np.ndarray) -> bool:
    """Whether the ink is darker than the paper: the paper is most of the picture (its median), so the
    mean lies on the ink's side of it; without such a skew, the middle of the picture (clear of a frame)
    decides, and failing that the tone of the largest connected region, the paper's."""
    h, w = grey.shape
    for part in (grey, grey[h // 8:h - h // 8, w // 8:w - w // 8]):
        mean, median = float(part.mean()), float(np.median(part))
        if abs(mean - median) >= 1e-3:
            return mean < median
    light = grey > _otsu(grey)
    largest = [np.bincount(ndimage.label(m)[0].ravel())[1:].max(initial=0) for m in (light, ~light)]
    return bool(largest[0] > largest[1])


def _touching_edge(mask: np.ndarray) -> np.ndarray:
    """The 4-connected components of each picture of ``mask [N,H,W]`` that reach its edge."""
    labels, _ = ndimage.label(mask, structure=_CROSS)
    return _at_edge(labels)


def _at_edge(labels: np.ndarray) -> np.ndarray:
    """Where ``labels [N,H,W]`` holds a component that has a pixel on its picture's edge."""
    edge = np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(),
                           labels[:, :, -1].ravel()])
    return np.isin(labels, edge[edge > 0])


def _local_paper(pos: np.ndarray, window: int) -> np.ndarray:
    """The median tone around each pixel (keeps the edges of paper regions), computed at most 64 pixels a side."""
    h, w = pos.shape
    k = max(1, -(-min(h, w) // 64))
    small = pos[::k, ::k]
    local = ndimage.median_filter(small, size=max(3, window // k), mode="nearest")
    return np.kron(local, np.ones((k, k), np.float32))[:h, :w] if k > 1 else local


def _despeckle(grey: np.ndarray) -> np.ndarray:
    """A 3x3 median when salt-and-pepper noise is present (isolated pixels far from all 8 neighbours)."""
    lo = ndimage.minimum_filter(grey, footprint=_RING, mode="nearest")
    hi = ndimage.maximum_filter(grey, footprint=_RING, mode="nearest")
    isolated = (grey - hi > 0.5) | (lo - grey > 0.5)
    if isolated.mean() > _IMPULSE_FRACTION:
        return ndimage.median_filter(grey, size=3, mode="nearest")
    return grey


def _pits(pos: np.ndarray) -> np.ndarray:
    """Pixels of ``pos [N,H,W]`` more than 0.3 below each of their four neighbours (False on the border).

    Inside a grainy stroke they are common; a hairline outline has none (its inside runs along it), nor
    has a clean or blurred stroke."""
    c = pos[:, 1:-1, 1:-1]
    out = np.zeros(pos.shape, bool)
    out[:, 1:-1, 1:-1] = ((c < pos[:, :-2, 1:-1] - 0.3) & (c < pos[:, 2:, 1:-1] - 0.3) &
                          (c < pos[:, 1:-1, :-2] - 0.3) & (c < pos[:, 1:-1, 2:] - 0.3))
    return out


def _around(pos: np.ndarray) -> np.ndarray:
    """The median of each pixel's 8 neighbours."""
    return ndimage.median_filter(pos, footprint=_RING, mode="nearest")


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of one set of values: see ``_otsus``."""
    return float(_otsus(np.asarray(values).reshape(1, -1))[0])


def _otsus(values: np.ndarray, bins: int = 256) -> np.ndarray:
    """Otsu's threshold of each row (picture) of ``values``: the cut of [0, max] that maximises the
    between-class variance (0 for a picture with nothing above 0)."""
    flat = values.reshape(len(values), -1)
    top = flat.max(axis=1)
    scale = (bins / np.where(top > 0, top, 1).astype(np.float64)).astype(flat.dtype)
    # 256-bin histograms of [0, top], counted with one bincount: np.histogram's generic path costs 10x more
    idx = np.minimum((flat * scale[:, None]).astype(np.intp), bins - 1) + bins * np.arange(len(flat))[:, None]
    hist = np.bincount(idx.ravel(), minlength=bins * len(flat)).reshape(len(flat), bins)
    edges = np.linspace(0.0, top.astype(np.float64), bins + 1, axis=1)
    mids = (edges[:, :-1] + edges[:, 1:]) / 2
    w0 = np.cumsum(hist, axis=1)
    w1 = w0[:, -1:] - w0
    m0 = np.cumsum(hist * mids, axis=1)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[:, -1:] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    cut = edges[:, 1:][np.arange(len(flat)), np.argmax(between, axis=1)]
    return np.where(top > 0, cut, 0.0)


def _clean(ink: np.ndarray) -> np.ndarray:
    """Steps 2-4 of ``ink_map`` for each picture of ``ink [N,H,W]``."""
    peak = ink.max(axis=(1, 2))
    t = _otsus(ink)
    # the paper's noise: median + 4 robust standard deviations (1.4826 MAD) of what lies below the cut
    flat = ink.reshape(len(ink), -1)
    paper = flat <= t[:, None]
    med = _masked_median(flat, paper)
    mad = _masked_median(np.abs(flat - med[:, None]), paper)
    noise = np.where(peak > 0, med.astype(np.float64) + 4 * 1.4826 * mad.astype(np.float64), np.inf)
    faint = peak - noise < _BLANK_CONTRAST
    strokes = ink > t[:, None, None]
    above = ink > noise[:, None, None]
    mask = np.zeros_like(above)
    box = _box(above)
    if box is not None:
        labels, n = ndimage.label(above[box], structure=_SQUARE)
        keep = np.zeros(n + 1, bool)
        keep[np.unique(labels[strokes[box]])] = True
        keep[0] = False
        mask[box] = keep[labels]
    mask[faint] = False
    # a line needs a row or column with that many stroke pixels: few pictures have one
    ms = strokes & mask
    rows = ms.sum(axis=2).max(axis=1) >= _line_length(ink.shape[2])
    cols = ms.sum(axis=1).max(axis=1) >= _line_length(ink.shape[1])
    for i in np.flatnonzero(rows | cols):
        mask[i] &= ~_edge_lines(mask[i], strokes[i])
    mask &= ~_stray_lines(mask)
    mask = _drop_specks(mask, strokes)
    out = np.where(mask, ink, 0).astype(np.float32)
    _fill_hollow_strokes(out, ink, mask & strokes)
    # what is still hairlines (outlines broken open, so not filled above; a fine pen) is thickened by a
    # pixel each way: the model knows MNIST's 2-3 pixel strokes, and two outlines merge into one stroke.
    # A speck or two is no line to thicken
    drawn = out > 0
    for i in np.flatnonzero(_hairlines(drawn) & (drawn.sum(axis=(1, 2)) >= min(out.shape[1:]) // 2)):
        out[i] = ndimage.grey_dilation(out[i], size=(3, 3))
    return out


def _box(mask: np.ndarray) -> tuple | None:
    """The slices of ``mask [N,H,W]`` that hold every True pixel of every picture, one pixel wider
    where the picture allows (labelling only there is the same and cheaper); None when there is none."""
    rows, cols = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    if rows.size == 0:
        return None
    return (slice(None), slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))


def _masked_median(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``np.median`` of each row's kept values (``values[i][keep[i]]``), rows with none give inf."""
    ranked = np.sort(np.where(keep, values, np.inf), axis=1)
    count = keep.sum(axis=1)
    rows = np.arange(len(values))
    lo, hi = ranked[rows, np.maximum(count - 1, 0) // 2], ranked[rows, count // 2 - (count == 0)]
    return np.where(count % 2 == 1, lo, (lo + hi) / np.asarray(2, values.dtype))


def _hairlines(marks: np.ndarray) -> np.ndarray:
    """Which pictures of ``marks [N,H,W]`` are drawn in hairlines (outlines, a fine pen): most of their
    pixels fall to a 2x2 opening, where a pen's strokes mostly stay."""
    solid = ndimage.binary_opening(marks, structure=np.ones((1, 2, 2), bool)).sum(axis=(1, 2))
    return solid < _HAIRLINE_SOLID * marks.sum(axis=(1, 2))


def _fill_hollow_strokes(out: np.ndarray, ink: np.ndarray, strokes: np.ndarray) -> None:
    """Fill, in ``out``, the inside of strokes drawn as outlines: enclosed gaps too thin to survive an
    opening of ``_HOLLOW_OPEN`` pixels, and at most a pixel wider (from their middle to their edge) than
    the thinnest, in pictures whose strokes are hairlines and where those gaps add
    up to over ``_HOLLOW_SHARE`` of the stroke pixels (a solid digit's loops are wide, or rare); the fill
    is the median ink of the strokes."""
    box = _box(strokes)
    if box is None:
        return
    # holes: the background's 4-connected regions that do not reach the border (binary_fill_holes' rule);
    # outside the strokes' box all is background joined to the border, so the box decides alone
    out, ink, strokes = out[box], ink[box], strokes[box]
    labels, _ = ndimage.label(~strokes, structure=_CROSS)
    labels[_at_edge(labels)] = 0
    holes = labels > 0
    count = strokes.sum(axis=(1, 2))
    # thin gaps are holes: only pictures whose holes alone pass the share can pass it
    for i in np.flatnonzero(holes.sum(axis=(1, 2)) > _HOLLOW_SHARE * count):
        if not _hairlines(strokes[i][None])[0]:
            continue
        opened = ndimage.binary_opening(holes[i], structure=np.ones((_HOLLOW_OPEN, _HOLLOW_OPEN), bool))
        wide = np.unique(labels[i][opened])
        thin = holes[i] & ~np.isin(labels[i], wide[wide > 0])
        # the insides of the strokes are about equally wide; a hole clearly wider is a loop (a small 0's)
        found = np.unique(labels[i][thin])
        if found.size > 1:
            half = ndimage.maximum(ndimage.distance_transform_edt(thin), labels[i], found)
            thin &= np.isin(labels[i], found[half <= half.min() + 1])
        if thin.sum() > _HOLLOW_SHARE * count[i]:
            out[i][thin] = float(np.median(ink[i][strokes[i]]))


def _edge_lines(mask: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """Pixels of straight horizontal or vertical strokes over three quarters of the image long that reach its edge.

    Where a digit's stroke crosses such a line the crossing is kept (ink on both sides of the line),
    and nothing is erased when the lines are nearly all the ink: a tightly cropped 1 is a vertical run too.
    """
    lines = np.zeros_like(mask)
    for axis in (0, 1):
        length = _line_length(mask.shape[axis])
        m = (strokes & mask).astype(np.uint8)
        if m.sum(axis=axis).max(initial=0) < length:  # no line of that length can be there
            continue
        # zeros beyond the edge: the default reflection would double a stroke that ends there
        runs = ndimage.maximum_filter1d(ndimage.minimum_filter1d(m, length, axis=axis, mode="constant"), length,
                                        axis=axis) > 0
        if not runs.any():
            continue
        labels, _ = ndimage.label(runs)
        edge = np.take(labels, [0, -1], axis=axis).ravel()
        found = np.isin(labels, edge[edge > 0])
        if not found.any():
            continue
        # the anti-aliased fringe of a line is part of it
        found = ndimage.binary_dilation(found, iterations=1) & mask
        thickness = int(np.ceil(found.sum() / max(1, found.any(axis=1 - axis).sum())))
        across = [1, 1]
        across[1 - axis] = 2 * thickness + 3
        bridged = ndimage.binary_closing(strokes & ~found, structure=np.ones(across, bool))
        lines |= found & ~bridged
    if lines.any() and (mask & ~lines).sum() < _MIN_LEFT_AFTER_LINES * mask.sum():
        return np.zeros_like(mask)
    return lines


def _stray_lines(mask: np.ndarray) -> np.ndarray:
    """Pixels of thin lines (a scribble, a dotted or ruled line) that run past the marks on both sides,
    in each picture of ``mask [N,H,W]``: what to erase so that the digit, not the line, is cropped.

    Such a line shows as thin columns (ink shorter than a fifth of the ink's height) at both ends of the
    ink, at least a tenth of its width each, on one near-horizontal straight line that goes on across the
    digit. A line apart from the digit goes whole. One joined to the digit loses the parts beyond it,
    if they are equally thick (the part across the digit stays: it cannot be told from the digit's
    strokes); a bar of the digit, a 7's or a 2's base, thickens where it meets the rest, and stays.
    """
    _, h, w = mask.shape
    out = np.zeros_like(mask)
    has = mask.any(axis=1)                                            # [N, W]
    rows, cols = np.arange(h), np.arange(w)
    top = np.where(mask, rows[:, None], h).min(axis=1)
    bottom = np.where(mask, rows[:, None], -1).max(axis=1)
    ink_rows = mask.any(axis=2)
    height = h - ink_rows[:, ::-1].argmax(axis=1) - ink_rows.argmax(axis=1)
    limit = np.maximum(3, 0.2 * height)
    thick = has & (bottom - top + 1 > limit[:, None])
    c0, c1 = has.argmax(axis=1), w - 1 - has[:, ::-1].argmax(axis=1)
    # the thin columns before the first thick one, and after the last
    first, last = thick.argmax(axis=1), w - 1 - thick[:, ::-1].argmax(axis=1)
    least = np.maximum(3, np.round(0.1 * (c1 - c0 + 1)))
    candidates = np.flatnonzero(thick.any(axis=1) & (first - c0 >= least) & (c1 - last >= least))
    for i in candidates:
        at = np.flatnonzero(has[i] & ((cols < first[i]) | (cols > last[i])))
        centre = (top[i, at] + bottom[i, at]) / 2
        slope, offset = np.polyfit(at, centre, 1)
        if abs(slope) > 0.3 or np.abs(centre - (slope * at + offset)).max() > limit[i]:
            continue
        near = np.abs(rows[:, None] - (slope * cols + offset)) <= limit[i]
        # a line goes on across the digit (a dotted one every other dash); two bars at either end do not
        if (mask[i] & near)[:, first[i]:last[i] + 1].any(axis=0).mean() < 0.4:
            continue
        labels, _ = ndimage.label(mask[i], structure=np.ones((3, 3), bool))
        line = np.isin(labels, np.unique(labels[:, at][mask[i][:, at]]))
        if (line & ~near).any():
            # where a bar of the digit (a 7's, a 2's base) meets the rest, its columns grow taller: a line
            # running past the digit is as thick at both ends
            extent = bottom[i, at] - top[i, at] + 1
            if extent.max() > 1.5 * np.median(extent) + 1:
                continue
            line[:, first[i]:last[i] + 1] = False
        out[i] = line
    return out


def _line_length(size: int) -> int:
    """Pixels a ruled line or box border runs at least, along a side of ``size`` pixels (odd: a centred filter)."""
    return 3 * size // 4 | 1


def _drop_specks(mask: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """Remove, in each picture, components whose stroke pixels are fewer than ``_SPECK_SHARE`` of its
    largest component's."""
    box = _box(mask)
    if box is None:
        return mask
    labels, n = ndimage.label(mask[box], structure=_SQUARE)
    size = np.bincount(labels[strokes[box] & mask[box]], minlength=n + 1)
    size[0] = 0
    owner = np.zeros(n + 1, np.intp)  # the picture each component lies in
    owner[labels] = np.arange(len(mask))[:, None, None]
    largest = np.zeros(len(mask), np.int64)
    np.maximum.at(largest, owner[1:], size[1:])
    keep = size >= _SPECK_SHARE * largest[owner]
    keep[0] = False
    kept = np.zeros_like(mask)
    kept[box] = keep[labels]
    return kept


def to_mnist(ink: np.ndarray) -> np.ndarray | None:
    """Return a 28x28 float32 array in MNIST's convention, or ``None`` when there is no mark to read.

    Crops to the ink, scales the longer side to 20 pixels keeping the aspect ratio, and places
    the centre of mass at the centre of the 28x28 frame, as MNIST was made. One image is a batch
    of one: see ``to_mnist_batch``.
    """
    x28, found = to_mnist_batch(ink[None])
    return x28[0] if found[0] else None


def to_mnist_batch(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x28 [N,28,28] float32, found [N] bool)`` for ink maps ``[N,H,W]`` of one size; blanks are zeros.

    Vectorised over the batch: bounding boxes and centres of mass are array reductions, and the
    crop-and-resize of every image is one pair of batched matrix products with per-image
    resampling matrices (PIL's filters: Lanczos-3 widened by the scale factor when shrinking, so
    large canvases are anti-aliased; bilinear when enlarging).
    """
    ink = np.asarray(ink, dtype=np.float32)
    n, h, w = ink.shape
    peak = ink.max(axis=(1, 2))
    level = (peak * _INK_FRACTION)[:, None]
    found = (peak >= _BLANK_CONTRAST) & (np.count_nonzero(ink > level[:, :, None], axis=(1, 2)) >= _MIN_INK_PIXELS)
    r0, r1 = _extent(ink.max(2) > level)
    c0, c1 = _extent(ink.max(1) > level)
    bh, bw = r1 - r0 + 1, c1 - c0 + 1
    k = _BOX / np.maximum(bh, bw)
    nh, nw = np.maximum(1, np.round(bh * k)).astype(np.int64), np.maximum(1, np.round(bw * k)).astype(np.int64)
    lanczos = k < 1
    rows = _resample_matrix(r0, bh, nh, h, lanczos) / np.maximum(peak, 1e-12)[:, None, None]  # ink / peak, folded in
    small = rows @ ink @ _resample_matrix(c0, bw, nw, w, lanczos).transpose(0, 2, 1)
    np.clip(small, 0, None, out=small)
    small /= np.maximum(small.max(axis=(1, 2)), 1e-6)[:, None, None]
    mass = np.maximum(small.sum(axis=(1, 2)), 1e-12)
    grid = np.arange(_BOX, dtype=np.float64)
    # symmetric digits put the centre exactly half-way between pixels; rounding off float32 summation noise
    # makes the shift the same whatever else shares the batch
    cy, cx = np.round(small.sum(2) @ grid / mass, 4), np.round(small.sum(1) @ grid / mass, 4)
    top = np.clip(np.round(_CENTRE - cy).astype(np.int64), 0, 28 - nh)
    left = np.clip(np.round(_CENTRE - cx).astype(np.int64), 0, 28 - nw)
    out = _shift_matrix(top) @ small @ _shift_matrix(left).transpose(0, 2, 1)
    out[~found] = 0
    return out.astype(np.float32, copy=False), found


_BOX = 20  # MNIST fits each digit's longer side into 20 pixels of the 28x28 frame
# MNIST puts the centre of mass on pixel (14, 14), not the grid centre 13.5: the test set's mean is 13.99, 14.01
_CENTRE = 14.0


def _extent(any_ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index along axis 1 where ``any_ink [N,L]`` is true (0 and L-1 when none is)."""
    length = any_ink.shape[1]
    first = any_ink.argmax(1)
    last = length - 1 - any_ink[:, ::-1].argmax(1)
    return first, np.maximum(last, first)


def _lanczos3(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0)


def _resample_matrix(start: np.ndarray, size: np.ndarray, out_size: np.ndarray, length: int,
                     lanczos: np.ndarray) -> np.ndarray:
    """``[N,20,length]`` weights mapping a row (or column) of length ``length`` to ``out_size`` samples of
    its window ``[start, start+size)``, as PIL's resize does: output pixel ``i`` is centred at
    ``(i + 0.5) / scale`` in the window, and the filter is widened by ``1/scale`` when shrinking.
    Rows ``i >= out_size`` are zero.
    """
    # a batch holds few distinct windows (MNIST's 10,000 test digits: a few hundred), so each is built once
    key = ((start * (length + 1) + size) * (_BOX + 1) + out_size) * 2 + lanczos
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    start, size, out_size, lanczos = (v[first][:, None, None] for v in (start, size, out_size, lanczos))
    scale = out_size / size
    stretch = np.maximum(1 / scale, 1)
    i = np.arange(_BOX)[None, :, None]
    u = np.arange(length)[None, None, :] - start
    x = (u + 0.5 - (i + 0.5) / scale) / stretch
    wts = np.where(lanczos, _lanczos3(x), np.clip(1 - np.abs(x), 0, None))
    wts *= (u >= 0) & (u < size) & (i < out_size)
    total = wts.sum(2, keepdims=True)
    return (wts / np.where(total == 0, 1, total)).astype(np.float32)[inverse.ravel()]


def _shift_matrix(offset: np.ndarray) -> np.ndarray:
    """``[N,28,20]`` one-hot matrices that move row ``i`` of a 20-pixel box to row ``i + offset`` of 28."""
    return (np.arange(28)[None, :, None] == np.arange(_BOX)[None, None, :] + offset[:, None, None]).astype(np.float32)


def preprocess_batch(images) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x28 [N,28,28] float32, found [N] bool)`` for many images, exactly as ``preprocess`` gives them.

    Decoding runs per image; the ink stage (``ink_maps``) and the geometry (``to_mnist_batch``) run once
    per group of pictures that share a size. An ``[N,H,W]`` array is N images.
    """
    pictures = [_picture(img, _WORK_PX)[:2] for img in images]
    inks = [p if is_ink else None for p, is_ink in pictures]
    for idx in _by_shape([p for p, _ in pictures], [i for i, a in enumerate(inks) if a is None]):
        for ink, i in zip(ink_maps(np.stack([pictures[i][0] for i in idx])), idx):
            inks[i] = ink
    x28, found = np.zeros((len(inks), 28, 28), np.float32), np.zeros(len(inks), bool)
    for idx in _by_shape(inks, range(len(inks))):
        x28[idx], found[idx] = to_mnist_batch(np.stack([inks[i] for i in idx]))
    return x28, found


def _by_shape(arrays: list, which) -> list[list[int]]:
    """Indices ``which`` of ``arrays`` grouped by shape, in groups of at most 2 million pixels (memory)."""
    groups: dict[tuple, list[int]] = {}
    for i in which:
        groups.setdefault(arrays[i].shape, []).append(i)
    out = []
    for shape, idx in groups.items():
        step = max(1, 2_000_000 // int(np.prod(shape)))
        out += [idx[j:j + step] for j in range(0, len(idx), step)]
    return out


def preprocess(src, deskew: bool = False) -> np.ndarray | None:
    """Return ``src`` as a 28x28 float32 MNIST-style array in [0, 1], or ``None`` if it is blank.

    ``deskew`` straightens slanted writing (see ``deskewed``); the bundled model is trained without it.
    """
    x28 = to_mnist(load_image(src, one_digit=True))
    return deskewed(x28) if deskew and x28 is not None else x28


def deskewed(x28: np.ndarray) -> np.ndarray:
    """Return the image sheared horizontally so that its ink leans neither way, about its centre of mass.

    The slant is the ratio of the second moments mu11 / mu02 of the ink, the classic MNIST deskew.
    """
    total = float(x28.sum())
    if total <= 0:
        return x28
    rows, cols = np.mgrid[:x28.shape[0], :x28.shape[1]]
    cy, cx = (rows * x28).sum() / total, (cols * x28).sum() / total
    mu02 = ((rows - cy) ** 2 * x28).sum() / total
    if mu02 < 1e-6:
        return x28
    slant = ((rows - cy) * (cols - cx) * x28).sum() / total / mu02
    # affine_transform reads input (r, c + slant * (r - cy)) for output (r, c)
    out = ndimage.affine_transform(x28, [[1, 0], [slant, 1]], offset=[0, -slant * cy], order=1)
    return np.clip(out, 0, 1).astype(np.float32)
