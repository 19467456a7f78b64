"""Shared fixtures: small real data (MNIST subsets, drawn PNGs) and a small model trained once per session."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import NamedTuple

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec import data
from digitrec.training import train


@pytest.fixture(scope="session")
def mnist_test_small():
    """The first 500 MNIST test images and labels."""
    x, y = data.load_mnist("test")
    return x[:500], y[:500]


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """Path of a fast-preset CNN trained for one epoch on 6,000 images in batches of 64 (a few seconds; ~96 %)."""
    out = tmp_path_factory.mktemp("small_model")
    train("cnn", "fast", out, train_subset=6000, test_subset=500, epochs=1, batch_size=64, progress=False)
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


# --- a live `digitrec serve`, shared by the HTTP tests (test_serve.py) and the browser tests (e2e/) ---

class LiveServer(NamedTuple):
    url: str     # http://127.0.0.1:PORT
    pid: int
    limits: dict  # as /api/v1/health reports them


# Small limits, so that the tests can cross each of them cheaply.
_LIMITS = {"max_upload_bytes": 2_000_000, "max_pixels": 4_000_000, "max_batch": 16, "timeout_s": 3.0}


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> LiveServer:
    """A ``digitrec serve`` process with the bundled model on a free loopback port, small limits."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "server.log"
    cmd = [sys.executable, "-m", "digitrec.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max-upload-bytes", str(_LIMITS["max_upload_bytes"]), "--max-pixels", str(_LIMITS["max_pixels"]),
            "--max-batch", str(_LIMITS["max_batch"]), "--timeout", str(_LIMITS["timeout_s"])]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"digitrec serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"digitrec serve did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.3)
        yield LiveServer(url, proc.pid, dict(_LIMITS))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
