"""Bulk reading: folders, zip archives, PDFs and TIFFs of pages -> one row per page in a CSV or JSONL file.

A page is read by a form template (``forms.read_form``: a value, a confidence and an unsure flag per
field) or, without one, as one digit or one number filling it (``forms.read_whole``). Pages are read in
worker processes, one model and one thread each: a tiny CNN runs best on a core of its own, and two
threads per process on a busy 2-core machine spend their time waiting on each other. Rows come out in
the input's order. An interrupted run resumes: pages already in the output are skipped. The fields a
person should check go to a review file beside the output (``review_path``), with their pictures, for
``digitrec serve --review``.
"""
from __future__ import annotations

import csv
import json
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

from tqdm import tqdm

from ..data import private
from ..data.csvcell import restore_row, text_row
from ..data.readers import MAX_PAGES, Page, read_pages
from ..errors import InputError
from ..forms import WHOLE_PAGE_KINDS, Template
from .rows import columns, read_page

__all__ = ["bulk", "BulkSummary", "review_path", "read_rows", "FORMATS"]

FORMATS = (".csv", ".jsonl")
AHEAD = 4                       # pages queued per worker: enough to keep it busy, few in memory


@dataclass(frozen=True)
class BulkSummary:
    """What a bulk run did: pages read now, pages skipped (already in the output), error rows, fields left
    unsure, seconds, and the files written."""
    pages: int
    skipped: int
    errors: int
    unsure: int
    seconds: float
    out: Path
    review: Path


def review_path(out: str | os.PathLike) -> Path:
    """The review file beside results ``out``: ``results.csv`` -> ``results.review.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".review.jsonl")


class _Output:
    """Rows appended to a CSV or JSONL file; the pages already in it, so that a run resumes."""

    def __init__(self, path: Path, cols: list[str]):
        if path.suffix.lower() not in FORMATS:
            raise InputError(f"{path}: the output must end in {' or '.join(FORMATS)}")
        self.path, self.cols, self.csv = path, cols, path.suffix.lower() == ".csv"
        self.done: set[tuple[str, str]] = set()
        try:
            if path.exists() and path.stat().st_size:
                self._read_done()
            private.make_folder(path.parent)
            self.file = open(path, "a", newline="", encoding="utf-8", opener=private.opener)
        except OSError as e:
            raise InputError(f"{path}: cannot write ({e.strerror or e})") from None
        if self.csv:
            self.writer = csv.DictWriter(self.file, cols, extrasaction="ignore")
            if not self.done and self.file.tell() == 0:
                self.writer.writeheader()

    def _read_done(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as f:
            if self.csv:
                reader = csv.DictReader(f)
                if reader.fieldnames != self.cols:
                    raise InputError(f"{self.path} has other columns (another template?): name another --out "
                                     "to start afresh")
                rows = [restore_row(r) for r in reader]  # the file names as read, not as written
            else:
                try:
                    rows = [json.loads(line) for line in f if line.strip()]
                except json.JSONDecodeError:
                    raise InputError(f"{self.path}: not a JSONL file of results; name another --out") from None
        self.done = {(r["file"], str(r["page"])) for r in rows}

    def write(self, row: dict) -> None:
        if self.csv:
            self.writer.writerow(text_row(row))
        else:
            self.file.write(json.dumps({c: row.get(c) for c in self.cols}) + "\n")
        self.file.flush()  # a run stopped at any point leaves whole rows to resume from

    def close(self) -> None:
        self.file.close()


_state: dict = {}


def _load(model, template, kind) -> None:
    from ..inference.recognizer import load

    _state.update(recognizer=load(model), template=template, kind=kind)


def _start_worker(model, template, kind) -> None:
    import torch

    torch.set_num_threads(1)  # a worker process shares the cores with the others
    _load(model, template, kind)


def _read_in_worker(page: Page) -> tuple[dict, list[dict]]:
    return read_page(_state["recognizer"], page, _state["template"], _state["kind"])


def read_rows(pages: Iterable[Page], model=None, template: Template | None = None, kind: str = "digit",
              workers: int = 1) -> Iterator[tuple[dict, list[dict]]]:
    """``read_page`` of each page, in order: in this process with ``workers`` 1, else in that many processes."""
    if workers <= 1:  # the caller's process: its torch threads are the caller's to set
        _load(model, template, kind)
        for page in pages:
            yield _read_in_worker(page)
        return
    # forked where the platform can (as PyTorch's DataLoader does): a caller's script needs no __main__ guard,
    # and this process has run no model, so no thread pool of its is copied half-way
    context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(model, template, kind)) as pool:
        window: deque = deque()
        for page in pages:
            window.append(pool.submit(_read_in_worker, page))
            if len(window) >= AHEAD * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def bulk(paths: Iterable[str | os.PathLike], out: str | os.PathLike, template: Template | None = None,
         kind: str = "digit", model=None, workers: int | None = None, dpi: float = 200, engine: str = "local",
         address: str | None = None, progress: bool = True, max_pages: int = MAX_PAGES) -> BulkSummary:
    """Read every page of ``paths`` (``data.readers.read_pages``) into ``out`` (.csv or .jsonl), one row per
    page, skipping the pages already there; unsure fields go to ``review_path(out)``.

    ``template``: the form (``forms.load_template``); without one each page is one ``kind`` ('digit' or
    'number'). ``workers``: processes (default: every core). ``engine``: 'local', or 'ray' for Ray Data
    (``address``: a cluster's, default a local Ray of ``workers`` CPUs). ``max_pages``: the most pages read of
    one file; the rest of it is one error row.
    """
    paths = [Path(p) for p in paths]
    out = Path(out)
    workers = (os.cpu_count() or 1) if workers is None else workers
    _check(paths, template, kind, model, workers, engine, max_pages)
    output = _Output(out, columns(template))
    review = review_path(out)
    counts = {"pages": 0, "skipped": 0, "errors": 0, "unsure": 0}
    t0 = time.perf_counter()
    try:
        review_file = open(review, "a", encoding="utf-8", opener=private.opener)
    except OSError as e:
        output.close()
        raise InputError(f"{review}: cannot write ({e.strerror or e})") from None
    bar = tqdm(desc="reading", unit="page", disable=not progress, smoothing=0.1)
    try:
        if engine == "ray":
            from .ray_engine import ray_rows
            rows = ray_rows(paths, model, template, kind, workers, dpi, address, skip=output.done, max_pages=max_pages)
        else:
            pages = (p for p in read_pages(paths, dpi=dpi, max_pages=max_pages) if not _skip(p, output.done, counts))
            rows = read_rows(pages, model, template, kind, workers)
        for row, items in rows:
            if row is None:  # a page the Ray engine found in the output already
                counts["skipped"] += 1
                continue
            output.write(row)
            for item in items:
                review_file.write(json.dumps(item) + "\n")
            review_file.flush()
            counts["pages"] += 1
            counts["errors"] += row.get("error") is not None
            counts["unsure"] += len(items)
            bar.update()
    finally:
        bar.close()
        output.close()
        review_file.close()
    return BulkSummary(counts["pages"], counts["skipped"], counts["errors"], counts["unsure"],
                       time.perf_counter() - t0, out, review)


def _check(paths: list, template: Template | None, kind: str, model, workers: int, engine: str, max_pages: int) -> None:
    """``bulk``'s arguments checked at the boundary: an ``InputError`` names the first one that is wrong."""
    if not paths:
        raise InputError("no files or folders to read")
    if workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}")
    if max_pages < 1:
        raise InputError(f"max pages must be at least 1, not {max_pages}")
    if engine not in ("local", "ray"):
        raise InputError(f"engine must be local or ray, not {engine!r}")
    if template is None and kind not in WHOLE_PAGE_KINDS:
        raise InputError(f"a page without a template is read as {' or '.join(WHOLE_PAGE_KINDS)}, not {kind!r}")
    if model is not None:  # a bad model file is one error here, not one in every worker
        from ..inference.recognizer import load
        load(model)


def _skip(page: Page, done: set, counts: dict) -> bool:
    if (page.file, str(page.page)) in done:
        counts["skipped"] += 1
        return True
    return False
