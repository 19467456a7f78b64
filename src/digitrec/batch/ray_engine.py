"""The bulk run on Ray Data, for when one machine is not enough.

Files are read by ``ray.data.read_binary_files``, split into pages where they lie (``data.readers.file_pages``:
PDF pages, TIFF frames, zip members) and read by actors that each hold one Recognizer (``map_batches``
with a callable class), in the input's order. The rows come back to the driver, which writes them as the
local engine does, so both engines give the same file. On a cluster the files must be where every node
finds them: a shared file system, or a URL that pyarrow reads (s3://, gs://).
"""
from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..data.readers import MAX_PAGES, Page, file_pages, page_files
from ..errors import InputError
from .rows import read_page

__all__ = ["ray_rows"]

BATCH = 4                       # pages per call of a reader actor: small, pages are large
# CPUs asked for by a reader actor and by a task that splits files into pages: the readers must leave room
# for the splitting, or on a node of as many CPUs as readers nothing is split and every reader waits
READER_CPUS = 0.8
SPLIT_CPUS = 0.2


class _Pages:
    """A file's bytes -> its pages, as rows Ray can carry (the grey pixels as bytes and a shape), each with
    ``source``, the input file it came from (a zip member's page names the member in ``file``)."""

    def __init__(self, names: dict[str, str], dpi: float, skip: frozenset, max_pages: int):
        self.names, self.dpi, self.skip, self.max_pages = names, dpi, skip, max_pages

    def __call__(self, item: dict) -> list[dict]:
        name = self.names.get(os.path.abspath(item["path"]), item["path"])
        out = []
        for p in file_pages(name, bytes(item["bytes"]), self.dpi, max_pages=self.max_pages):
            if (p.file, str(p.page)) in self.skip:
                out.append({"file": p.file, "page": p.page, "pixels": b"", "h": 0, "w": 0, "error": "", "skip": True,
                            "source": name})
                continue
            pixels = b"" if p.image is None else np.ascontiguousarray(p.image, np.uint8).tobytes()
            h, w = (0, 0) if p.image is None else p.image.shape
            # "" for no error: a column of strings, never one Ray may turn into floats (NaN) for its Nones
            out.append({"file": p.file, "page": p.page, "pixels": pixels, "h": h, "w": w, "error": p.error or "",
                        "skip": False, "source": name})
        return out


class _Reader:
    """One Recognizer per actor; a batch of pages -> their rows and review items as JSON, and the input file
    of each (a skipped page's row is null, yet the driver places the missing files' rows by it)."""

    def __init__(self, model, template, kind: str):
        import torch

        from ..inference.recognizer import load

        torch.set_num_threads(1)
        self.recognizer, self.template, self.kind = load(model), template, kind

    def __call__(self, batch: dict) -> dict:
        rows, reviews = [], []
        for i in range(len(batch["file"])):
            if batch["skip"][i]:
                rows.append("null")
                reviews.append("[]")
                continue
            error = str(batch["error"][i])
            image = None
            if not error:
                image = np.frombuffer(batch["pixels"][i], np.uint8).reshape(int(batch["h"][i]), int(batch["w"][i]))
            row, review = read_page(self.recognizer, Page(str(batch["file"][i]), int(batch["page"][i]), image,
                                                          error or None), self.template, self.kind)
            rows.append(json.dumps(row))
            reviews.append(json.dumps(review))
        return {"row": np.array(rows, dtype=object), "review": np.array(reviews, dtype=object),
                "source": np.array([str(s) for s in batch["source"]], dtype=object)}


def _missing(ahead: deque, missing: set, until: str | None = None) -> Iterator[tuple[dict, list[dict]]]:
    """Error rows of the missing files at the head of ``ahead`` (the input files not yet reached), taking
    files off it up to ``until``, the file now being read (to the end for None): read_binary_files fails whole
    on a missing file, so each is an error row here, as locally, at its place in the input."""
    while ahead and ahead[0] != until:
        name = ahead.popleft()
        if name in missing:
            yield {"file": name, "page": 0, "error": f"{name}: no such file"}, []


def ray_rows(paths, model, template, kind: str, workers: int, dpi: float, address: str | None,
             skip=frozenset(), max_pages: int = MAX_PAGES) -> Iterator[tuple[dict | None, list[dict]]]:
    """``bulk.read_page``'s rows for every page of ``paths``, read on Ray Data by ``workers`` actors; a page
    in ``skip`` ((file, page) pairs) comes back as ``(None, [])``. ``address``: a cluster's (ray://...),
    default a local Ray of ``workers`` CPUs started and stopped here."""
    try:
        import ray
    except ImportError:
        raise InputError("the ray engine needs Ray: pip install 'digitrec[ray]'") from None
    names = page_files(paths)
    missing = {n for n in names if not Path(n).is_file()}
    present = [n for n in names if n not in missing]
    ahead = deque(names)
    if not present:
        yield from _missing(ahead, missing)
        return
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        ds = ray.data.read_binary_files(present, include_paths=True, num_cpus=SPLIT_CPUS)
        ds = ds.flat_map(_Pages({os.path.abspath(n): n for n in present}, dpi, frozenset(skip), max_pages), num_cpus=SPLIT_CPUS)
        ds = ds.map_batches(_Reader, fn_constructor_kwargs={"model": model, "template": template, "kind": kind},
                            batch_size=BATCH, concurrency=workers, num_cpus=READER_CPUS)
        for r in ds.iter_rows():
            yield from _missing(ahead, missing, r["source"])
            row = json.loads(r["row"])
            yield row, json.loads(r["review"]) if row is not None else []
        yield from _missing(ahead, missing)
    finally:
        if started:
            ray.shutdown()
