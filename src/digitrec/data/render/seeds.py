"""The one seeding convention of every rendered set, and the named seeds that keep sets apart.

A set is asked for with an integer ``seed`` (one of the named offsets below plus a run's own seed), never a
generator. A picture drawn on its own takes ``picture_rng(seed, maker, index)``: its parameters depend on
the seed, the name of what draws it and its place in the set, not on how many pictures are asked for or
in which order; a batch drawn as one tensor takes ``torch.Generator().manual_seed(seed)``.
"""
from __future__ import annotations

import zlib

import numpy as np

__all__ = ["OUTLIER_BANK_SEED", "CALIBRATION_SEED", "EVALUATION_SEED", "picture_rng", "split"]

# offsets of the non-digit sets (a run's own seed is added): training's outlier-exposure bank, the
# calibration check of a trained model, and the evaluation sets of benchmarks and the report
OUTLIER_BANK_SEED = 10_000
CALIBRATION_SEED = 20_000
EVALUATION_SEED = 30_000


def picture_rng(seed: int, maker: str, index: int) -> np.random.Generator:
    """The generator of picture ``index`` drawn by ``maker`` (a function's name) under ``seed``."""
    return np.random.default_rng((seed, zlib.crc32(maker.encode()), index))


def split(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``tuning`` (even indices) or ``report`` (odd indices) half of the MNIST test set."""
    if name not in ("tuning", "report"):
        raise ValueError(f"split must be 'tuning' or 'report', not {name!r}")
    s = slice(0, None, 2) if name == "tuning" else slice(1, None, 2)
    return x[s], y[s]
