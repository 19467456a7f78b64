"""Digit datasets in the formats others publish them: IDX files (MNIST's own) and Kaggle's CSV.
Malformed files get an ``InputError`` naming the file and the problem."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["read_idx", "load_idx_dir", "read_kaggle_csv"]


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Return the array stored in an IDX file (gzipped or raw), e.g. ``train-images-idx3-ubyte.gz``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise InputError(f"{path}: IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise InputError(f"{path}: IDX header promises {expected} bytes of data for shape {shape}, file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_idx_dir(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 [N,28,28], labels int64 [N])`` from the standard IDX files in ``directory``."""
    directory = Path(directory)
    if split not in _IDX_NAMES:
        raise InputError(f"split must be 'train' or 'test', not {split!r}")
    arrays = []
    for stem in _IDX_NAMES[split]:
        found = [directory / n for n in (stem + ".gz", stem, stem.replace("-idx", ".idx"))
                 if (directory / n).exists()]
        if not found:
            raise InputError(f"{directory}: no {stem}[.gz] file")
        arrays.append((found[0], read_idx(found[0])))
    (ipath, x), (lpath, y) = arrays
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise InputError(f"{ipath}: expected uint8 images of shape [N,28,28], got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise InputError(f"{lpath}: {len(y)} labels for {len(x)} images in {ipath.name}")
    if y.size and y.max() > 9:
        raise InputError(f"{lpath}: labels must be 0-9, found {int(y.max())}")
    return x, y.astype(np.int64)


def read_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(images uint8 [N,28,28], labels int64 [N] or None)`` from Kaggle's ``label,pixel0..pixel783`` CSV.

    Kaggle's ``test.csv`` has no label column; then labels are ``None``.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            header = f.readline().strip().split(",")
            body = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read CSV ({e})") from e
    except ValueError as e:
        raise InputError(f"{path}: malformed CSV row ({e})") from e
    has_label = header[:1] == ["label"]
    pixels = [f"pixel{i}" for i in range(784)]
    if header[int(has_label):] != pixels:
        raise InputError(f"{path}: header must be 'label,pixel0,...,pixel783' (or 'pixel0..pixel783'), got {len(header)} columns")
    if body.size == 0:
        raise InputError(f"{path}: no data rows")
    if body.shape[1] != len(header):
        raise InputError(f"{path}: rows have {body.shape[1]} columns, header has {len(header)}")
    x = body[:, int(has_label):]
    if x.min() < 0 or x.max() > 255:
        raise InputError(f"{path}: pixel values must be 0-255")
    y = body[:, 0] if has_label else None
    if y is not None and (y.min() < 0 or y.max() > 9):
        raise InputError(f"{path}: labels must be 0-9")
    return x.astype(np.uint8).reshape(-1, 28, 28), y
