"""Any picture the user gives -> a float grey array in [0, 1] (or ink, for a transparent canvas).

The boundary of the imaging path: paths, bytes, PIL images and numpy arrays of any layout and dtype are
validated here, and every problem is an ``InputError`` naming the input.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from ..errors import ImageTooLarge, InputError
from .headers import gif_problem

__all__ = ["read_picture", "open_image", "max_pixels", "MAX_PIXELS", "WORK_PIXELS", "FORMATS"]

MAX_PIXELS = 16_000_000         # default limit, width x height, checked from the header before decoding
WORK_PIXELS = 1_000_000         # larger pictures are brought down to about this before the ink stage
# the formats read, PIL's names: every other plugin stays shut (EPS hands the file to Ghostscript, which runs
# it as a PostScript program). A camera's JPEG holding a second picture (MPO) is opened by the JPEG plugin
FORMATS = ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP", "PPM")
# PIL warns of images over its own limit; ours is checked first and is lower, so its warning says nothing new
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
# a PNG's text is metadata no reading uses: 64 KB a chunk and 256 KB in all (PIL's defaults, 1 MB and 64 MB,
# let a 64 KB file make it inflate 63 MB of zTXt); a file past them is refused as damaged
PngImagePlugin.MAX_TEXT_CHUNK = 64 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024


def max_pixels() -> int:
    """The pixel limit in force: ``$DIGITREC_MAX_PIXELS`` or ``MAX_PIXELS``."""
    raw = os.environ.get("DIGITREC_MAX_PIXELS")
    if raw is None:
        return MAX_PIXELS
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:  # isdigit alone takes '²', which int refuses
        raise InputError(f"DIGITREC_MAX_PIXELS={raw!r} is not a positive whole number")
    return int(raw)


def read_picture(src, size: int | None = None, rows_only: bool = False,
                 limit: int | None = None) -> tuple[np.ndarray, bool, int]:
    """``src`` as a float32 grey picture in [0, 1] for the ink stage, or as ink already (then True):
    a transparent canvas's alpha channel; and the factor its sides were divided by (1: not at all).

    Over ``limit`` pixels (default ``max_pixels()``) is an ``InputError``, found from a file's header
    before decoding. A picture over ``WORK_PIXELS`` is brought down to about that (a JPEG decoded at a
    fraction of its size, then box-averaged); with ``size``, a digital one further as ``_digital_shrink`` says.
    """
    limit = limit or max_pixels()
    k = 1
    if isinstance(src, (str, os.PathLike, bytes, bytearray)):
        src, k = _open(src, limit)
    if isinstance(src, Image.Image):
        picture, is_ink = _from_pil(src, limit)
    elif isinstance(src, np.ndarray):
        picture, is_ink = _from_array(src, limit)
    else:
        raise InputError(f"image must be a path, bytes, PIL.Image or numpy array, not {type(src).__name__}")
    picture, j = _reduce(picture)
    k *= j
    if size:
        picture, j = _digital_shrink(picture, size, rows_only)
        k *= j
    return picture, is_ink, k


def _too_large(name: str, width: int, height: int, limit: int) -> ImageTooLarge:
    return ImageTooLarge(f"{name}: too large, {width}x{height} is {width * height:,} pixels, over the "
                         f"{limit:,}-pixel limit")


def _open(src, limit: int) -> tuple[Image.Image, int]:
    """The decoded image, and the factor its sides were divided by in decoding (a JPEG's draft mode)."""
    name = "image bytes" if isinstance(src, (bytes, bytearray)) else str(src)
    try:
        img = open_image(src, name)
        width, height = img.size
        if width * height > limit:
            raise _too_large(name, width, height, limit)
        shrink = _factor(width * height)
        if img.format == "JPEG" and shrink > 1:
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale for a fraction of the work: the ink stage would
            # bring the picture down to that size anyway
            img.draft("L", (width // shrink, height // shrink))
        img.load()
        return ImageOps.exif_transpose(img), max(1, round(width / img.width))
    except InputError:  # ours, with the name already
        raise
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not an image") from None
    except PermissionError:
        raise InputError(f"{name}: not readable (permission denied)") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too large, over the {limit:,}-pixel limit") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise InputError(f"{name}: damaged or unsupported image ({str(e).splitlines()[0][:120]})") from None


def open_image(src: str | os.PathLike | bytes, name: str) -> Image.Image:
    """The image file ``src`` (a path or its bytes), opened by PIL as one of ``FORMATS`` (its header read, its
    pixels not yet); an ``InputError`` naming ``name`` for any other format, or a GIF PIL would be slow to parse.
    PIL's own errors (a damaged file, a missing one) pass through."""
    if isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    else:
        with open(src, "rb") as f:
            data = f.read(16)
            if data.startswith(b"GIF"):  # its blocks are walked before PIL's parser sees them
                data += f.read()
    problem = gif_problem(data)
    if problem:
        raise InputError(f"{name}: GIF with {problem}: not read")
    try:
        return Image.open(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else Path(src), formats=FORMATS)
    except UnidentifiedImageError:
        found = _format_of(data[:16])
        raise InputError(f"{name}: " + (f"{found} images are not read" if found else "not an image file")
                         + "; send PNG, JPEG, GIF, TIFF, BMP, WebP or PPM") from None


def _format_of(prefix: bytes) -> str | None:
    """The PIL format whose magic bytes ``prefix`` starts with (its plugin's check of the prefix only)."""
    Image.init()
    for fmt, (_, accept) in Image.OPEN.items():
        try:
            if accept is not None and accept(prefix):
                return fmt
        except Exception:  # a plugin's check of a short prefix
            continue
    return None


def _factor(pixels: int) -> int:
    """The whole factor to divide a picture's sides by so that it has at most about ``WORK_PIXELS``."""
    return max(1, math.ceil(math.sqrt(pixels / WORK_PIXELS)))


def _reduce(picture: np.ndarray) -> tuple[np.ndarray, int]:
    """Box-average a picture of more than about ``WORK_PIXELS`` by a whole factor; return it and the factor."""
    k = _factor(picture.size)
    return (picture, 1) if k == 1 else (box_average(picture, k), k)


def box_average(a: np.ndarray, k: int) -> np.ndarray:
    """``a [..., H, W]`` with its last two sides divided by ``k``: the mean of each k x k block (a ragged
    last row or column of blocks is dropped)."""
    h, w = (a.shape[-2] // k) * k, (a.shape[-1] // k) * k
    return a[..., :h, :w].reshape(*a.shape[:-2], h // k, k, w // k, k).mean(axis=(-3, -1))


def _from_pil(img: Image.Image, limit: int) -> tuple[np.ndarray, bool]:
    if img.width * img.height > limit:
        raise _too_large("image", img.width, img.height, limit)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _from_array(np.asarray(img), limit)
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "CMYK" or img.mode == "YCbCr" or img.mode == "1":
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        return _from_array(np.asarray(img.convert("RGBA")), limit)
    return _from_array(np.asarray(img.convert("L")), limit)


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


def _from_array(a: np.ndarray, limit: int) -> tuple[np.ndarray, bool]:
    if isinstance(a, np.ma.MaskedArray):
        raise InputError("image array is a masked array: fill its masked pixels first (a.filled(...))")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise InputError(f"image array must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if a.shape[0] * a.shape[1] > limit:
        raise _too_large("image array", a.shape[1], a.shape[0], limit)
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
    # the k x k offsets added as whole arrays: numpy's mean over two strided axes of length k runs ten times
    # slower on a canvas (0.4 ms); this adds in numpy's order (along a block row, then the rows) for k < 8
    blocks = out.reshape(out.shape[0] // k, k, out.shape[1] // k, k)
    total = None
    for i in range(k):
        row = blocks[:, i, :, 0].copy()
        for j in range(1, k):
            row += blocks[:, i, :, j]
        total = row if total is None else total + row
    return total / np.float32(k * k), k

