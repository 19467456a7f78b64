"""The whole imaging path: decode -> ink stage -> MNIST geometry, for one picture or a batch."""
from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from PIL import Image

from .. import deadline
from ..errors import InputError
from .decode import box_average, max_pixels, read_picture
from .frame import to_mnist_batch
from .ink import ink_map, ink_maps
from .light import light_maps, margin, two_tone_maps, with_margin
from .shapes import box_inside, outlines_filled

__all__ = ["load_image", "load_line", "preprocess_batch", "read_pictures", "light_x28", "heavy_x28",
           "PREPROCESS_VERSION", "COMPATIBLE_VERSIONS", "HEAVY"]

# what a model sees; a checkpoint records the version it was trained and calibrated with.
# 1: geometry only; 2: the ink stage for photos and scans (same output on clean digits as 1)
PREPROCESS_VERSION = 2
COMPATIBLE_VERSIONS = (1, 2)    # checkpoints of these versions read correctly through this preprocessing

WORK_PX = 64                    # a single digit's marks are cleaned at about this size (it is read at 20)
SHAPES_PX = 128                 # px: boxes and outlined strokes are looked for at about this size
LINE_PX = 40                    # a line of digits is cleaned at about this height (it is read at 24)


def load_image(src, one_digit: bool = False, limit: int | None = None) -> np.ndarray:
    """Return ``src`` (path, bytes, PIL image or array) as a float32 ink map in [0, 1], ink bright, paper 0.

    Transparent canvases (ink drawn on alpha 0) use the alpha channel as ink. ``one_digit``: the
    picture holds one digit, to be read at 20 pixels; a large digital picture (a canvas export, whose
    frame is exactly one tone) is then box-averaged until its marks are about ``WORK_PX`` pixels
    across, so the ink map is smaller than the picture (see ``decode._digital_shrink``). ``limit``: the
    most pixels a picture may have (default ``decode.max_pixels()``).
    """
    picture, is_ink, _ = read_picture(src, WORK_PX if one_digit else None, limit=limit)
    deadline.check()
    return picture if is_ink else ink_map(picture)


def load_line(src, limit: int | None = None) -> tuple[np.ndarray, int, np.ndarray, bool]:
    """Return ``src`` as an ink map for one line of digits, the factor its sides were divided by (1: none), and
    the decoded picture the ink came from with whether it was ink already (the reader looks there for points).

    As ``load_image``, but a large digital picture is box-averaged until its marks are about
    ``LINE_PX`` pixels *tall*: a line is read at the height of its digits, whatever its length.
    """
    picture, is_ink, k = read_picture(src, LINE_PX, rows_only=True, limit=limit)
    deadline.check()
    return (picture if is_ink else ink_map(picture)), k, picture, is_ink


def preprocess_batch(images, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x28 [N,28,28] float32, found [N] bool)`` for many images through the ink stage, exactly as
    ``preprocess`` gives them.

    Decoding runs per image; the ink stage (``ink_maps``) and the geometry (``to_mnist_batch``) run once
    per group of pictures that share a size. An ``[N,H,W]`` array is N images; ``limit`` as for ``load_image``.
    The recognizer reads the light path first, and this only where that is doubtful (``Recognizer.preprocess``).
    """
    pictures = read_pictures(images, limit)
    return heavy_x28(pictures, range(len(pictures)), readings=HEAVY[:1])[0]


def read_pictures(images, limit: int | None = None) -> list[tuple[np.ndarray, bool]]:
    """Decode ``images`` for ``light_x28`` and ``heavy_x28``: each as (grey picture, or ink already; True if ink).

    An ``[N,H,W]`` uint8 array of small pictures, as MNIST comes, is decoded in one step, exactly as each
    picture would be alone."""
    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 3 and \
            max(images.shape[1:]) < 2 * WORK_PX and images.shape[1] * images.shape[2] <= (limit or max_pixels()):
        return [(grey, False) for grey in images.astype(np.float32) / 255]
    pictures = []
    for img in _images(images):
        deadline.check()
        pictures.append(read_picture(img, WORK_PX, limit=limit)[:2])
    return pictures


def light_x28(pictures: list[tuple[np.ndarray, bool]]) -> tuple[np.ndarray, np.ndarray]:
    """``(x28, found)`` of decoded pictures through the light path (``light.light_maps``)."""
    return _x28([p if is_ink else None for p, is_ink in pictures], [p for p, _ in pictures], light_maps)


def _framed(grey: np.ndarray) -> np.ndarray:
    """The ink stage on pictures ``[N,H,W]`` framed by paper, for those whose ink reaches the edge (others: blank).

    A tight crop's strokes touch the edge, where the stage erases lines and bands; framed, they are kept
    (a boxed cell's box, which must touch the edge to be erased, is not: the model's score decides)."""
    out = np.zeros(grey.shape, np.float32)
    edge = light_maps(grey) > 0.5
    touching = np.flatnonzero(edge[:, [0, -1]].any(axis=(1, 2)) | edge[:, :, [0, -1]].any(axis=(1, 2)))
    if touching.size:
        m = margin(grey.shape[1:])
        out[touching] = ink_maps(np.stack([with_margin(grey[i]) for i in touching]))[:, m:-m, m:-m]
    return out


def _shapes_scale(grey: np.ndarray) -> np.ndarray:
    """Light-path ink of pictures ``[N,H,W]`` at most about ``SHAPES_PX`` a side: boxes and outlines are
    found at the scale the digit is read at, not at a photo's."""
    k = -(-max(grey.shape[1:]) // SHAPES_PX)
    return light_maps(box_average(grey, k) if k > 1 else grey)


# the readings of a picture that compete with the light path's where that one is doubtful: the ink stage as
# it is and framed by paper (where the ink touches the edge), the inside of a printed box, outlines filled,
# the picture as two tones with dark ink and with light ink. The first is the ink stage proper: where it finds
# no mark, the picture is blank
HEAVY = (ink_maps, _framed, lambda g: box_inside(_shapes_scale(g)), lambda g: outlines_filled(_shapes_scale(g)),
         lambda g: two_tone_maps(g, dark=True), lambda g: two_tone_maps(g, dark=False))


def heavy_x28(pictures: list[tuple[np.ndarray, bool]], which, readings=HEAVY) -> list[tuple[np.ndarray, np.ndarray]]:
    """For pictures ``which`` of the decoded ``pictures``: ``(x28, found)`` of each of ``readings`` (``HEAVY``).

    A picture that is ink already (a transparent canvas, an MNIST array) is read as it is by each."""
    which = list(which)
    inks = [pictures[i][0] if pictures[i][1] else None for i in which]
    return [_x28(list(inks), [pictures[i][0] for i in which], make) for make in readings]


def _x28(inks: list, greys: list, make) -> tuple[np.ndarray, np.ndarray]:
    """``to_mnist_batch`` of ``inks``, the ``None`` ones made by ``make`` from ``greys`` (batched by size)."""
    for idx in _by_shape(greys, [i for i, a in enumerate(inks) if a is None]):
        deadline.check()
        for ink, i in zip(make(np.stack([greys[i] for i in idx])), idx):
            inks[i] = ink
    x28, found = np.zeros((len(inks), 28, 28), np.float32), np.zeros(len(inks), bool)
    for idx in _by_shape(inks, range(len(inks))):
        x28[idx], found[idx] = to_mnist_batch(np.stack([inks[i] for i in idx]))
    return x28, found


def _images(images) -> list:
    """``images`` as a list of single images; ``InputError`` for what is not a sequence of them."""
    if isinstance(images, np.ma.MaskedArray):
        raise InputError("images are a masked array: fill its masked pixels first (images.filled(...))")
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise InputError(f"an array of images must be [N,H,W] or [N,H,W,C], got shape {images.shape}; "
                             "use predict() for one image")
        return list(images)
    single = isinstance(images, (str, bytes, bytearray, os.PathLike, Image.Image))
    if single or isinstance(images, dict) or not isinstance(images, Iterable):
        raise InputError(f"images must be a sequence of images (or an [N,H,W] array), not {type(images).__name__}"
                         + ("; use predict() for one image" if single else ""))
    return list(images)


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
