"""Digit datasets in the formats others publish them (IDX files, MNIST's own, and Kaggle's CSV), and the
pages of scanned forms (image files, folders, zip archives, PDFs, multi-page TIFFs) for bulk reading.
Malformed files get an ``InputError`` naming the file and the problem; in bulk input, an error row."""
from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageTooLarge, InputError

__all__ = ["read_idx", "load_idx_dir", "read_kaggle_csv", "Page", "read_pages", "page_files", "file_pages",
           "PAGE_SUFFIXES"]


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


# --- pages for bulk reading ------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pbm", ".pgm", ".ppm")
PAGE_SUFFIXES = IMAGE_SUFFIXES + (".pdf", ".zip")   # what a folder's or an archive's files are read for
MAX_MEMBER_BYTES = 256 * 2 ** 20                     # a zip member larger than this, unpacked, is an error row
MAX_MEMBERS = 10_000                                 # an archive with more entries is an error row
MAX_ARCHIVE_BYTES = 4 * 2 ** 30                      # bytes unpacked from one archive; past them, the rest is not read
MAX_PAGES = 1000                                     # pages or frames read of one file; the rest is one error row
_LOCAL_HEADER = 30                                   # bytes of a zip member's local header before its name


@dataclass(frozen=True)
class Page:
    """One page of bulk input: where it came from, its grey pixels (uint8, HxW) or why it could not be read.

    ``file`` is the path as found (``archive.zip!member`` inside an archive); ``page`` counts from 1 within
    the file, 0 for an error that concerns the whole file (it could not be opened at all)."""
    file: str
    page: int
    image: np.ndarray | None = None
    error: str | None = None


def read_pages(paths: Iterable[str | os.PathLike], dpi: float = 200, limit: int | None = None,
               max_pages: int = MAX_PAGES) -> Iterator[Page]:
    """Every page of ``paths``, in order: image files, folders (recursively, sorted by path, files with a
    suffix of ``PAGE_SUFFIXES``), zip archives (their members, likewise), PDFs (each page rendered at ``dpi``)
    and multi-page TIFFs.

    A file or page that cannot be read becomes a ``Page`` with its ``error`` and the rest goes on, so a broken
    file never stops a run. ``limit``: the most pixels a page may have (default ``imaging.decode.max_pixels()``),
    checked from the header (a PDF's page size) before decoding. ``max_pages``: the most pages read of one file
    (a 46 KB GIF may hold 2,000 frames); past them, one error row says so.
    """
    if limit is None:
        from ..imaging.decode import max_pixels  # the one pixel limit of the project
        limit = max_pixels()
    for name in page_files(paths):
        yield from file_pages(name, Path(name), dpi, limit, max_pages=max_pages)


def page_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The files ``read_pages`` reads for ``paths``, in its order (folders expanded), named as it names them."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            out += [str(p) for p in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES)]
        else:
            out.append(str(path))
    return out


def file_pages(name: str, src: Path | bytes, dpi: float = 200, limit: int | None = None,
               in_archive: bool = False, max_pages: int = MAX_PAGES) -> Iterator[Page]:
    """The pages of one file, a path or its bytes, named ``name``, as ``read_pages`` gives them."""
    if limit is None:
        from ..imaging.decode import max_pixels
        limit = max_pixels()
    suffix = Path(name).suffix.lower()
    try:
        if isinstance(src, Path) and not src.exists():
            raise InputError(f"{name}: no such file")
        if suffix == ".zip":
            if in_archive:
                raise InputError(f"{name}: an archive inside an archive is not read")
            yield from _zip_pages(name, src if isinstance(src, Path) else io.BytesIO(src), dpi, limit, max_pages)
        elif suffix == ".pdf":
            yield from _pdf_pages(name, src, dpi, limit, max_pages)
        else:
            yield from _image_pages(name, src, limit, max_pages)
    except InputError as e:
        yield Page(name, 0, error=str(e))
    except (OSError, zipfile.BadZipFile) as e:
        yield Page(name, 0, error=f"{name}: cannot read ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})")


def _zip_pages(name: str, path: Path | io.BytesIO, dpi: float, limit: int, max_pages: int) -> Iterator[Page]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{name}: not a zip archive, or a damaged one") from None
    with archive:
        members = sorted((m for m in _checked_members(name, archive)
                          if not m.is_dir() and Path(m.filename).suffix.lower() in PAGE_SUFFIXES), key=lambda m: m.filename)
        unpacked = 0
        for m in members:
            member = f"{name}!{m.filename}"
            if unpacked > MAX_ARCHIVE_BYTES:
                yield Page(name, 0, error=f"{name}: over {MAX_ARCHIVE_BYTES:,} bytes unpacked; the rest of the "
                                          "archive is not read")
                return
            try:
                data = _member_bytes(member, archive, m)
            except InputError as e:
                yield Page(member, 0, error=str(e))
                continue
            unpacked += len(data)
            yield from file_pages(member, data, dpi, limit, in_archive=True, max_pages=max_pages)


def _checked_members(name: str, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries; an ``InputError`` for too many, a name twice, or two that share bytes.

    CPython's zipfile checks none of this: 10,000 entries pointing into one deflate stream of 250 MB make
    a 765 KB archive that unpacks for an hour."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InputError(f"{name}: {len(infos):,} entries, over the {MAX_MEMBERS:,} an archive may have")
    seen: set[str] = set()
    for m in infos:
        if m.filename in seen:
            raise InputError(f"{name}: the entry {m.filename[:120]!r} appears twice; not read")
        seen.add(m.filename)
    end = 0
    for m in sorted(infos, key=lambda m: m.header_offset):
        if m.header_offset < end:
            raise InputError(f"{name}: entries overlap (they share bytes, as a zip bomb's do); not read")
        # a lower bound of the entry's span: its header's fixed part and its data, without name and extra
        end = m.header_offset + _LOCAL_HEADER + m.compress_size
    return infos


def _member_bytes(member: str, archive: zipfile.ZipFile, m: zipfile.ZipInfo) -> bytes:
    """A member's bytes, at most the size its entry declares: zipfile's ``read()`` inflates whatever a chunk holds
    in one call (1 KB declared, 1 GB inflated: 2.4 GB of memory), a bounded ``read(n)`` no more than ``n``."""
    if m.file_size > MAX_MEMBER_BYTES:
        raise InputError(f"{member}: {m.file_size:,} bytes unpacked, over the {MAX_MEMBER_BYTES:,}-byte limit for an "
                         "archive member")
    try:
        with archive.open(m) as f:
            return f.read(m.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
        raise InputError(f"{member}: cannot unpack ({str(e)[:120]})") from None


def _more_pages(name: str, max_pages: int) -> Page:
    return Page(name, max_pages + 1, error=f"{name}: more than {max_pages:,} pages; the rest are not read "
                                           "(--max-pages)")


def _too_large(name: str, width: int, height: int, limit: int) -> ImageTooLarge:
    return ImageTooLarge(f"{name}: too large, {width}x{height} is {width * height:,} pixels, over the "
                         f"{limit:,}-pixel limit")


def _pdf_pages(name: str, src: Path | bytes, dpi: float, limit: int, max_pages: int) -> Iterator[Page]:
    import pypdfium2 as pdfium  # PDFium in its wheel; loaded only when a PDF comes

    try:
        pdf = pdfium.PdfDocument(src)
    except pdfium.PdfiumError as e:
        raise InputError(f"{name}: not a PDF PDFium can read ({e})") from None
    try:
        for i in range(min(len(pdf), max_pages)):
            try:
                page = pdf[i]
                w, h = (round(side * dpi / 72) for side in page.get_size())  # PDF units are 1/72 inch
                if w * h > limit:
                    raise _too_large(f"{name} page {i + 1} at {dpi:g} dpi", w, h, limit)
                grey = page.render(scale=dpi / 72, grayscale=True).to_numpy()
                yield Page(name, i + 1, image=np.ascontiguousarray(grey.reshape(grey.shape[:2])))
            except (pdfium.PdfiumError, InputError) as e:
                yield Page(name, i + 1, error=str(e) if isinstance(e, InputError) else f"{name} page {i + 1}: {e}")
        if len(pdf) > max_pages:
            yield _more_pages(name, max_pages)
    finally:
        pdf.close()


def _image_pages(name: str, src: Path | bytes, limit: int, max_pages: int) -> Iterator[Page]:
    """An image file's frames (one, or a multi-page TIFF's several) as grey pages."""
    from PIL import Image, ImageOps, ImageSequence

    from ..imaging.decode import open_image  # the formats the project reads, and no other

    try:
        img = open_image(src, name)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name}: too large, over the {limit:,}-pixel limit") from None
    with img:
        for i, frame in enumerate(ImageSequence.Iterator(img)):
            if i == max_pages:  # frames are found one at a time: a count would parse them all first
                yield _more_pages(name, max_pages)
                return
            try:
                if frame.width * frame.height > limit:
                    raise _too_large(f"{name} page {i + 1}", frame.width, frame.height, limit)
                grey = np.asarray(ImageOps.exif_transpose(frame).convert("L"))
                yield Page(name, i + 1, image=grey)
            except InputError as e:
                yield Page(name, i + 1, error=str(e))
            except (OSError, ValueError, SyntaxError, EOFError) as e:
                yield Page(name, i + 1, error=f"{name} page {i + 1}: damaged or unsupported image "
                                              f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})")
