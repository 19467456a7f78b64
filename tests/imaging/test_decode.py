"""The imaging boundary: one pixel limit, found from the header; large photos brought down before the ink stage."""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import peak_rss_mb, reset_peak_rss
from PIL import Image

import digitrec
from digitrec import InputError
from digitrec.errors import ImageTooLarge
from digitrec.imaging import decode


def _png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of white pixels: a few kB on disk, width*height bytes once decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    z = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    idat = b"".join(z.compress(row * 100) for _ in range(height // 100)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_the_default_limit_is_16_megapixels_and_refuses_before_decoding():
    r, bomb = digitrec.load(), _png_bomb(6300, 6300)  # 40 MP
    reset_peak_rss()
    before, t0 = peak_rss_mb(), time.process_time()
    with pytest.raises(ImageTooLarge, match="too large.*16,000,000-pixel limit"):
        r.predict(bomb)
    assert time.process_time() - t0 < 0.5  # at once, whatever the machine
    assert peak_rss_mb() - before < 10  # decoding it would raise the peak by 38 MB


def test_the_limit_applies_to_arrays_and_pil_images_too():
    with pytest.raises(ImageTooLarge):
        decode.read_picture(np.zeros((5000, 4000), np.uint8))
    with pytest.raises(ImageTooLarge):
        decode.read_picture(Image.new("L", (5000, 4000)))


def test_the_limit_can_be_set_by_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITREC_MAX_PIXELS", "1000")
    with pytest.raises(ImageTooLarge, match="1,000-pixel limit"):
        decode.read_picture(np.zeros((40, 40), np.uint8))
    monkeypatch.setenv("DIGITREC_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="DIGITREC_MAX_PIXELS"):
        decode.read_picture(np.zeros((4, 4), np.uint8))


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size():
    photo = np.full((3000, 4000), 220, np.uint8)
    photo[1000:2000, 1800:1900] = 30  # a 1, a thousand pixels tall
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=90)
    picture, _, k = decode.read_picture(buf.getvalue())
    assert k >= 4 and picture.size <= decode.WORK_PIXELS
    assert digitrec.load().predict(buf.getvalue()).digit == 1


def test_large_arrays_are_brought_down_before_the_ink_stage():
    picture, _, k = decode.read_picture(np.full((2000, 3000), 128, np.uint8))
    assert k == 3 and picture.shape == (666, 1000)


def test_masked_arrays_and_wrong_types_are_input_errors():
    r = digitrec.load()
    for bad in (None, 7, "examples/seven.png", np.ma.masked_array(np.zeros((2, 28, 28)))):
        with pytest.raises(InputError):
            r.predict_batch(bad)
    with pytest.raises(InputError, match="masked"):
        r.predict(np.ma.masked_array(np.zeros((28, 28)), mask=False))
    with pytest.raises(InputError, match="path"):
        digitrec.load(123)


@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_a_digital_picture_shrinks_to_the_exact_mean_of_its_blocks(k):
    rng = np.random.default_rng(k)
    grey = np.ones((70 * k, 64 * k), np.float32)
    grey[5:-5, 7:-7] = rng.random((70 * k - 10, 64 * k - 14), dtype=np.float32)
    small, factor = decode._digital_shrink(grey, (70 * k - 10) // k)  # the marks span 70k - 10 rows
    assert factor == k
    assert np.array_equal(small, grey.reshape(70, k, 64, k).mean(axis=(1, 3)))
