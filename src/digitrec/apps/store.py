"""The corrections store: what people said the right reading was, with the picture they gave.

One table of corrections (a confirmation is a row whose correct value equals what was read) and one of
the schema version, written through SQLAlchemy Core so that the same code runs on SQLite (the default,
a file in the user's data folder) and on PostgreSQL (``DIGITREC_DB_URL=postgresql://...``). Pictures are
kept as grey PNGs of at most about a megapixel, the size the reader works at, so a stored correction
reads as the upload did.
"""
from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, create_engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from .. import deadline
from ..data import private
from ..data.corrections import CORRECTION_KINDS, correction_problem
from ..errors import InputError
from ..imaging.decode import read_picture
from ..imaging.ink import dark_ink

__all__ = ["Store", "StoreError", "Correction", "open_store", "default_url", "picture_png", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
MAX_VALUE = 64  # characters of a reading or a correction: a long account number fits

_meta = MetaData()
_corrections = Table(
    "corrections", _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False, index=True),  # UTC, without a zone: SQLite keeps none
    Column("kind", String(16), nullable=False),           # 'digit' or 'number'
    Column("image_png", LargeBinary, nullable=False),
    Column("read", String(MAX_VALUE), nullable=False),    # what the model read ('' for nothing)
    Column("correct", String(MAX_VALUE), nullable=False),  # what the person says it is
    Column("model_checksum", String(80)),                 # the weights that read it: "sha256:<hex>"
    Column("source", String(64), nullable=False),         # 'page', 'api', 'review', 'import:<file>'
    Column("writer", String(64)),                         # who wrote it, where known: held out together
)
_schema = Table("digitrec_schema", _meta, Column("version", Integer, nullable=False))


@dataclass(frozen=True)
class Correction:
    id: int
    created_at: datetime
    kind: str
    image_png: bytes
    read: str
    correct: str
    model_checksum: str | None
    source: str
    writer: str | None

    @property
    def group(self) -> str:
        """What a held-out split keeps together: the writer where known, else the source."""
        return self.writer or self.source


def default_url() -> str:
    """``$DIGITREC_DB_URL``, else SQLite at ``$DIGITREC_DB``, else ``corrections.db`` in the user's data folder."""
    if os.environ.get("DIGITREC_DB_URL"):
        return os.environ["DIGITREC_DB_URL"]
    path = os.environ.get("DIGITREC_DB")
    if not path:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        path = Path(base) / "digitrec" / "corrections.db"
    return f"sqlite:///{Path(path).expanduser()}"


def _engine_url(url: str) -> str:
    # a bare postgresql:// means psycopg 3 here (SQLAlchemy's default driver for it is psycopg2)
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.partition("://")[2]
    if not url.startswith(("sqlite:", "postgresql+psycopg:")):
        raise InputError(f"corrections database must be sqlite:///PATH or postgresql://..., not {url.split(':')[0]}:")
    return url


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    return (head.rsplit(":", 1)[0] + ":***@" + tail) if sep and head.count(":") > 1 else url


def _printable(name: str, text: str | None) -> None:
    # control characters would be printed raw by ``corrections stats``: terminal escapes in the user's shell
    if text and not text.isprintable():
        raise InputError(f"{name}: control characters are not allowed ({text!r})")


def picture_png(image, limit: int | None = None) -> bytes:
    """``image`` (path, bytes, PIL image or array) as the grey PNG a correction keeps: dark ink on light paper,
    at most about a megapixel; ``InputError`` if it is not a picture (or over ``limit`` pixels)."""
    picture, is_ink, _ = read_picture(image, limit=limit)
    # a transparent canvas's ink, and light ink on a dark board, become dark ink on light paper
    grey = 1 - picture if is_ink or not dark_ink(picture[None])[0] else picture
    buf = io.BytesIO()
    Image.fromarray((np.clip(grey, 0, 1) * 255).round().astype(np.uint8), "L").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _utc(t: datetime) -> datetime:
    """``t`` as naive UTC, the form the table keeps (a naive ``t`` is taken as UTC already)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _why(e: Exception) -> str:
    orig = getattr(e, "orig", None) or e
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


class StoreError(InputError):
    """The database failed (server gone, disk full, locked): one line naming it, for the CLI and the server's
    log; the server tells its clients less (no server paths)."""


def _db_errors(method):
    """A database failure as a one-line ``StoreError`` naming the database."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as e:
            raise StoreError(f"corrections database {_shown(self.url)}: {_why(e)}") from None
    return wrapped


class Store:
    """Corrections in one database; ``open_store()`` makes one. Safe to share between threads."""

    def __init__(self, url: str):
        self.url = url
        try:
            if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                path = Path(url.removeprefix("sqlite:///"))
                private.make_folder(path.parent)
                private.touch(path)  # SQLite would make it 0644, and its journal files as the database is
            self._db = create_engine(_engine_url(url), pool_pre_ping=True)
            with self._db.begin() as c:
                _meta.create_all(c)
                version = c.execute(select(_schema.c.version)).scalar()
                if version is None:
                    c.execute(insert(_schema).values(version=SCHEMA_VERSION))
        except (SQLAlchemyError, OSError) as e:
            raise StoreError(f"cannot open the corrections database {_shown(url)}: {_why(e)}") from None
        if version is not None and version > SCHEMA_VERSION:
            raise InputError(f"the corrections database {_shown(url)} has schema {version}, newer than this "
                             f"digitrec's {SCHEMA_VERSION}: upgrade digitrec")

    @_db_errors
    def add(self, image, correct: str, read: str = "", kind: str = "digit", source: str = "api",
            model_checksum: str | None = None, writer: str | None = None, limit: int | None = None,
            in_time: Callable[[], bool] | None = None) -> int:
        """Store one correction (``image`` as ``picture_png`` takes it); return its id. ``in_time`` is asked
        inside the transaction, the row written: False rolls it back (``DeadlineExceeded``), so that a request
        already answered with a timeout leaves nothing stored."""
        correct, read = str(correct).strip(), str(read or "").strip()
        problem = correction_problem(kind, correct)
        if problem:
            raise InputError(problem)
        _printable("read", read)
        _printable("writer", writer)
        if len(correct) > MAX_VALUE or len(read) > MAX_VALUE:
            raise InputError(f"a reading or correction is at most {MAX_VALUE} characters")
        deadline.check()  # a request whose time ran out while it waited for a worker decodes nothing
        row = {"created_at": _utc(datetime.now(timezone.utc)), "kind": kind, "image_png": picture_png(image, limit), "read": read,
               "correct": correct, "model_checksum": model_checksum, "source": source[:64],
               "writer": writer[:64] if writer else None}
        with self._db.begin() as c:
            ident = int(c.execute(insert(_corrections).values(**row).returning(_corrections.c.id)).scalar_one())
            if in_time is not None and not in_time():
                raise deadline.DeadlineExceeded("the correction's time limit passed before it was stored")
            return ident

    @_db_errors
    def rows(self, kind: str | None = None) -> list[Correction]:
        """Every correction (of ``kind``), oldest first."""
        q = select(_corrections).order_by(_corrections.c.id)
        if kind:
            q = q.where(_corrections.c.kind == kind)
        with self._db.begin() as c:
            return [Correction(**r._mapping) for r in c.execute(q)]

    @_db_errors
    def count(self) -> int:
        with self._db.begin() as c:
            return int(c.execute(select(func.count()).select_from(_corrections)).scalar_one())

    @_db_errors
    def purge(self, before: datetime | None = None) -> int:
        """Delete the corrections made before ``before`` (all of them when None); return how many went."""
        q = delete(_corrections)
        if before is not None:
            q = q.where(_corrections.c.created_at < _utc(before))
        with self._db.begin() as c:
            return c.execute(q).rowcount

    @_db_errors
    def stats(self) -> dict:
        """How many corrections, confirmations, per kind and per corrected digit, and the commonest confusions."""
        cols = _corrections.c
        with self._db.begin() as c:  # the three columns only: the pictures stay in the database
            rows = [tuple(r) for r in c.execute(select(cols.kind, cols.read, cols.correct))]
        digits = [(read, right) for kind, read, right in rows if kind == "digit"]
        confusions: dict[tuple[str, str], int] = {}
        for read, right in digits:
            if read != right:
                confusions[read, right] = confusions.get((read, right), 0) + 1
        return {"corrections": sum(read != right for _, read, right in rows),
                "confirmations": sum(read == right for _, read, right in rows),
                "per_kind": {k: sum(kind == k for kind, _, _ in rows) for k in CORRECTION_KINDS},
                "per_digit": {str(d): sum(right == str(d) for _, right in digits) for d in range(10)},
                "confusions": [{"read": a or None, "correct": b, "count": n}
                               for (a, b), n in sorted(confusions.items(), key=lambda kv: -kv[1])[:10]]}

    @property
    def where(self) -> str:
        """The database's URL without its password, for messages."""
        return _shown(self.url)

    def close(self) -> None:
        self._db.dispose()


def open_store(url: str | None = None) -> Store:
    """The corrections store at ``url`` (default: ``default_url()``), its schema created on first use."""
    return Store(url or default_url())
