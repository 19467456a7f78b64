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


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n" + b"%comment\n" * 1000 + b"newpath 0 0 moveto showpage\n"


def _gif_with_comments(blocks: int) -> bytes:
    """A 28x28 GIF whose frame is preceded by ``blocks`` comment extensions of 255 bytes each."""
    buf = io.BytesIO()
    Image.new("P", (28, 28), 0).save(buf, "GIF")
    gif = buf.getvalue()
    first_frame = gif.index(b"\x2c", 13)
    comments = (b"\x21\xfe\xff" + b"x" * 255 + b"\x00") * blocks
    return gif[:first_frame] + comments + gif[first_frame:]


def _png_with_ztxt(inflated: int) -> bytes:
    """A 28x28 PNG carrying one zTXt chunk that inflates to ``inflated`` bytes."""
    buf = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buf, "PNG")
    png = buf.getvalue()
    body = b"Comment\x00\x00" + zlib.compress(b" " * inflated, 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    return png[:33] + chunk + png[33:]  # after the 8-byte signature and the 25-byte IHDR


def test_an_eps_file_is_refused_by_its_format_name_and_never_handed_to_ghostscript(tmp_path):
    path = tmp_path / "digit.png"  # the name says PNG; the bytes are PostScript
    path.write_bytes(EPS)
    for src in (EPS, path):
        with pytest.raises(InputError, match="EPS images are not read; send PNG, JPEG"):
            decode.read_picture(src)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP", "PPM"])
def test_the_listed_formats_are_read(fmt):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buf, fmt)
    picture, _, _ = decode.read_picture(buf.getvalue())
    assert picture.shape == (30, 40)


def test_a_gif_of_many_comment_blocks_is_refused_before_pil_parses_it():
    gif = _gif_with_comments(2000)  # 0.5 MB of comments; PIL joins them by copying, its time grows as the square
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="comment"):
        decode.read_picture(gif)
    assert time.perf_counter() - t0 < 0.5
    decode.read_picture(_gif_with_comments(10))  # a few comments are a GIF like another


def test_a_png_whose_text_inflates_past_64_kb_is_refused_as_damaged():
    with pytest.raises(InputError, match="damaged"):
        decode.read_picture(_png_with_ztxt(1_000_000))
    decode.read_picture(_png_with_ztxt(1000))  # a short comment is fine
