"""The corrections people made, as a dataset: ``dataset`` reads stored rows into MNIST-style digits, ``export``
writes them as npz, IDX (``write_idx``) or Kaggle's CSV.

A stored digit is read as the model will see it (``recognizer.preprocess``); a corrected number field
gives its digits when the reader found as many digits as the correction has (each cut at its box),
else it is left out and counted. The recognizer is passed in: ``data`` sits below ``inference``.
"""
from __future__ import annotations

import csv
import gzip
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError

__all__ = ["dataset", "export", "write_idx", "correction_problem", "FORMATS", "CORRECTION_KINDS", "SEPARATORS"]

FORMATS = ("npz", "idx", "csv")
CORRECTION_KINDS = ("digit", "number")
SEPARATORS = ".,-/"  # what a number's correction may hold besides digits


def correction_problem(kind: str, correct: str) -> str | None:
    """Why ``correct`` is no correction of ``kind``, or None. ASCII digits only: ``str.isdigit`` takes '²' and
    '٤', which no model reads as a digit and which ``int`` and the datasets built from the store refuse."""
    if kind not in CORRECTION_KINDS:
        return f"kind must be one of {', '.join(CORRECTION_KINDS)}, not {kind!r}"
    if kind == "digit" and not (len(correct) == 1 and "0" <= correct <= "9"):
        return f"a digit's correction must be one of 0-9, not {correct!r}"
    if kind == "number" and not correct:
        return "a number's correction must not be empty"
    if kind == "number" and not all("0" <= c <= "9" or c in SEPARATORS for c in correct):
        return f"a number's correction holds the digits 0-9 and {' '.join(SEPARATORS)} only, not {correct!r}"
    return None


def dataset(recognizer, rows) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """``(x28 [N,28,28] in [0, 1], labels [N], groups [N], rows left out)`` from stored corrections; a row that is
    no valid correction (``correction_problem``) is left out and counted."""
    pictures, labels, groups, skipped = [], [], [], 0
    for row in rows:
        if correction_problem(row.kind, row.correct):  # stored by an older digitrec: one bad row, not a crash
            skipped += 1
            continue
        if row.kind == "digit":
            pictures.append(row.image_png)
            labels.append(int(row.correct))
            groups.append(row.group)
            continue
        wanted = [int(c) for c in row.correct if "0" <= c <= "9"]
        reading = recognizer.read_number(row.image_png)
        if not wanted or len(reading.digits) != len(wanted):
            skipped += 1
            continue
        page = np.asarray(Image.open(io.BytesIO(row.image_png), formats=["PNG"]).convert("L"))  # as the store keeps it
        for p, d in zip(reading.digits, wanted):
            x, y, w, h = p.box
            m = max(w, h) // 4  # some paper round the digit, as a single digit comes
            pictures.append(page[max(0, y - m):y + h + m, max(0, x - m):x + w + m])
            labels.append(d)
            groups.append(row.group)
    if not pictures:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64), [], skipped
    x28, found = recognizer.preprocess(pictures)
    keep = np.flatnonzero(found)
    skipped += len(pictures) - len(keep)
    return x28[keep], np.asarray(labels, np.int64)[keep], [groups[i] for i in keep], skipped


def write_idx(path: str | Path, a: np.ndarray) -> None:
    """Write ``a`` (as uint8) as an IDX file, MNIST's format, gzipped when the name ends in .gz."""
    raw = struct.pack(f">HBB{a.ndim}I", 0, 0x08, a.ndim, *a.shape) + np.ascontiguousarray(a, np.uint8).tobytes()
    Path(path).write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)


def export(x28: np.ndarray, labels: np.ndarray, groups: list[str], fmt: str, out: str | Path) -> list[Path]:
    """Write the digits as ``npz`` (x uint8, y, group), ``idx`` (MNIST's two files, named as its training set,
    in the folder ``out``) or ``csv`` (Kaggle's: label, pixel0..pixel783); return the files written."""
    out = Path(out)
    x8 = (np.clip(x28, 0, 1) * 255).round().astype(np.uint8)
    try:
        if fmt == "npz":
            np.savez_compressed(out, x=x8, y=labels, group=np.asarray(groups, dtype=str))
            return [out if out.suffix == ".npz" else out.with_name(out.name + ".npz")]
        if fmt == "idx":
            out.mkdir(parents=True, exist_ok=True)
            files = [out / "train-images-idx3-ubyte", out / "train-labels-idx1-ubyte"]
            write_idx(files[0], x8)
            write_idx(files[1], labels)
            return files
        if fmt == "csv":
            with open(out, "w", newline="") as f:
                w = csv.writer(f)
                # the cells are ints (a label, pixels) under a fixed header: none is text a spreadsheet could run
                w.writerow(["label", *(f"pixel{i}" for i in range(784))])
                w.writerows([int(lab), *img.ravel().tolist()] for lab, img in zip(labels, x8))
            return [out]
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror or e}") from None
    raise InputError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
