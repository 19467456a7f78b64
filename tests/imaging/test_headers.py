"""Image sizes read from fixed headers without PIL: right for every format read, quick whatever the bytes."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from digitrec.imaging.headers import declared_size

SAVES = [("PNG", "L", {}), ("JPEG", "RGB", {}), ("JPEG", "L", {"progressive": True}), ("GIF", "P", {}),
         ("BMP", "RGB", {}), ("WEBP", "RGB", {}), ("WEBP", "RGBA", {"lossless": True}), ("TIFF", "L", {}),
         ("TIFF", "RGB", {"compression": "tiff_lzw"}), ("PPM", "RGB", {}), ("PPM", "1", {})]


@pytest.mark.parametrize("fmt, mode, options", SAVES)
@pytest.mark.parametrize("width, height", [(37, 513), (4000, 3), (1, 1)])
def test_the_declared_size_is_the_size_pil_reads(fmt, mode, options, width, height):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    assert declared_size(buf.getvalue()) == (fmt, width, height)


@pytest.mark.parametrize("data", [b"", b"garbage" * 10, b"%!PS-Adobe-3.0 EPSF-3.0\n", b"\x89PNG\r\n\x1a\n",
                                  b"\xff\xd8" + b"\xff" * 5_000_000, b"\xff\xd8" + b"\x00" * 5_000_000,
                                  b"\xff\xd8" + b"\xff\xe0\x00\x02" * 1_000_000])
def test_other_or_cut_short_bytes_declare_nothing_and_take_no_time(data):
    t0 = time.perf_counter()
    assert declared_size(data) is None
    assert time.perf_counter() - t0 < 0.1
