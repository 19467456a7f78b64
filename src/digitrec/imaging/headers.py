"""What an image file says of itself in its fixed header, read from its bytes without PIL.

The server decides how heavy a request is before any worker takes it, on the event loop, where nothing may
take long: PIL's ``Image.open`` runs a format's whole header parser there (a GIF's comment blocks, a PNG's
text chunks, an EPS's comment lines), which a crafted file makes take seconds. Here each format's size is
read at a fixed place or by a walk of a bounded number of steps, and a format not listed is not read.

``gif_problem`` walks a GIF's blocks (in a worker, before PIL does) to refuse one whose comment or extension
blocks would make PIL's parser quadratic.
"""
from __future__ import annotations

import re
import struct

__all__ = ["declared_size", "gif_problem", "MAX_GIF_COMMENT_BYTES", "MAX_GIF_BLOCKS"]

_JPEG_MARKERS = 512           # segments walked to find a JPEG's frame header (a camera's has a dozen)
_TIFF_ENTRIES = 256           # entries read of a TIFF's first directory (a scan's has a few dozen)
_PPM_HEAD = 1024              # bytes a PPM/PGM/PBM's magic, width and height must fit in
MAX_GIF_COMMENT_BYTES = 65_536  # comment text in one GIF; PIL joins comment blocks by copying, so cost grows as its square
MAX_GIF_BLOCKS = 200_000      # data sub-blocks in one GIF: a 50 MB file in full 255-byte blocks
_MARKER = re.compile(rb"\xff+([^\xff])", re.DOTALL)  # a JPEG marker after its fill bytes


def declared_size(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` as a PNG, JPEG, GIF, BMP, WebP, TIFF or PPM header declares them; None for any
    other bytes, or a header cut short."""
    try:
        for reader in (_png, _gif, _bmp, _webp, _jpeg, _tiff, _ppm):
            found = reader(data)
            if found is not None:
                return found
    except (struct.error, IndexError, ValueError):  # a header cut short or garbled
        return None
    return None


def _png(d: bytes):
    if d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR":
        return ("PNG", *struct.unpack(">II", d[16:24]))
    return None


def _gif(d: bytes):
    if d[:6] in (b"GIF87a", b"GIF89a"):
        return ("GIF", *struct.unpack("<HH", d[6:10]))
    return None


def _bmp(d: bytes):
    if d[:2] != b"BM":
        return None
    if struct.unpack("<I", d[14:18])[0] == 12:  # OS/2's header: 16-bit sides
        return ("BMP", *struct.unpack("<HH", d[18:22]))
    w, h = struct.unpack("<ii", d[18:26])
    return "BMP", abs(w), abs(h)  # a negative height is a top-down bitmap


def _webp(d: bytes):
    if d[:4] != b"RIFF" or d[8:12] != b"WEBP":
        return None
    chunk = d[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", d[26:30])
        return "WEBP", w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b0, b1, b2, b3 = d[21:25]
        return "WEBP", 1 + (((b1 & 0x3F) << 8) | b0), 1 + (((b3 & 0xF) << 10) | (b2 << 2) | (b1 >> 6))
    if chunk == b"VP8X":
        return "WEBP", 1 + int.from_bytes(d[24:27], "little"), 1 + int.from_bytes(d[27:30], "little")
    return None


def _jpeg(d: bytes):
    if d[:2] != b"\xff\xd8":
        return None
    pos = 2
    for _ in range(_JPEG_MARKERS):
        # bytes between segments are skipped, as decoders do; find and the pattern scan at C speed
        pos = d.find(b"\xff", pos)
        found = _MARKER.match(d, pos) if pos >= 0 else None
        if found is None:
            return None
        marker, pos = found.group(1)[0], found.end()
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # no length follows these
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header: SOF0..SOF15
            h, w = struct.unpack(">HH", d[pos + 3:pos + 7])
            return "JPEG", w, h
        pos += struct.unpack(">H", d[pos:pos + 2])[0]
    return None


def _tiff(d: bytes):
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(d[:4])
    if order is None:
        return None
    ifd = struct.unpack(order + "I", d[4:8])[0]
    count = struct.unpack(order + "H", d[ifd:ifd + 2])[0]
    sides = {}
    for i in range(min(count, _TIFF_ENTRIES)):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", d[at:at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: a SHORT or a LONG
            sides[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), d[at + 8:at + (10 if kind == 3 else 12)])[0]
    return ("TIFF", sides[256], sides[257]) if len(sides) == 2 else None


def _ppm(d: bytes):
    if len(d) < 2 or d[:1] != b"P" or d[1] not in b"123456":
        return None
    tokens, head = [], d[2:_PPM_HEAD]
    for line in head.split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            return "PPM", int(tokens[0]), int(tokens[1])
    return None


def gif_problem(data: bytes) -> str | None:
    """Why PIL should not parse this GIF (too much comment text, too many blocks), or None."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    comment = blocks = 0
    try:
        while pos < len(data) and data[pos] != 0x3B:  # 0x3B: the trailer
            if data[pos] == 0x21:    # an extension: label, then data sub-blocks
                label, pos = data[pos + 1], pos + 2
            elif data[pos] == 0x2C:  # a frame: its descriptor, local colour table, LZW code size, sub-blocks
                packed = data[pos + 9]
                pos += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1
                label = None
            else:                    # not a GIF block: PIL's parser decides what it is
                return None
            while data[pos]:
                comment += data[pos] if label == 0xFE else 0
                pos += data[pos] + 1
                blocks += 1
                if comment > MAX_GIF_COMMENT_BYTES:
                    return f"more than {MAX_GIF_COMMENT_BYTES:,} bytes of comment text"
                if blocks > MAX_GIF_BLOCKS:
                    return f"more than {MAX_GIF_BLOCKS:,} data blocks"
            pos += 1
    except IndexError:  # cut short: PIL reads what there is
        return None
    return None
