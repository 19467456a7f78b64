"""Shared fixtures: small real data (MNIST subsets, drawn PNGs) and a small model trained once per session."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import data
from digitrec.train import train


@pytest.fixture(scope="session")
def mnist_test_small():
    """The first 500 MNIST test images and labels."""
    x, y = data.load_mnist("test")
    return x[:500], y[:500]


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """Path of a fast-preset CNN trained for one epoch on 6,000 images (a few seconds; ~96 % accurate)."""
    out = tmp_path_factory.mktemp("small_model")
    train("cnn", "fast", out, train_subset=6000, test_subset=500, epochs=1, progress=False)
    return out / "model.pt"


def draw_digit(digit: int, size: int = 280, ink: int = 0, paper: int = 255, width: int = 20) -> Image.Image:
    """A digit drawn with thick strokes, as a user would on a canvas: 1, 7 or 0."""
    img = Image.new("L", (size, size), paper)
    d = ImageDraw.Draw(img)
    s = size / 280
    strokes = {1: [[(150, 45), (140, 235)]],
               7: [[(70, 60), (215, 60), (150, 150), (115, 235)]],
               0: None}
    if digit == 0:
        d.ellipse([85 * s, 45 * s, 195 * s, 235 * s], outline=ink, width=round(width * s))
    else:
        for line in strokes[digit]:
            d.line([(x * s, y * s) for x, y in line], fill=ink, width=round(width * s), joint="curve")
    return img


@pytest.fixture
def drawn_png(tmp_path):
    """Factory: ``drawn_png(digit, mode)`` writes a 280x280 PNG and returns its path.

    mode: 'dark' (black on white), 'light' (white on black) or 'rgba' (black on transparent, as canvases export).
    """
    def make(digit: int, mode: str = "dark"):
        if mode == "dark":
            img = draw_digit(digit)
        elif mode == "light":
            img = draw_digit(digit, ink=255, paper=0)
        else:
            alpha = draw_digit(digit, ink=255, paper=0)
            img = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
        path = tmp_path / f"{digit}-{mode}.png"
        img.save(path)
        return path
    return make


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when the name ends in .gz."""
    import gzip
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)
