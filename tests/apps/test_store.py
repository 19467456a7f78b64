"""The corrections store, the same behaviour on SQLite (the default) and on a real PostgreSQL server."""
from __future__ import annotations

import io
import os
import stat
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import Image

from digitrec.apps.store import SCHEMA_VERSION, Store, default_url, open_store
from digitrec.errors import InputError


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'sub' / 'c.db'}")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
        s.purge()  # one server for the session: each test starts from an empty table
    yield s
    s.close()


def test_a_stored_correction_comes_back_with_its_picture_and_fields(store, drawn_png):
    ident = store.add(drawn_png(7), "4", read="9", kind="digit", source="page", model_checksum="ab" * 32, writer="ann")
    [row] = store.rows()
    assert (row.id, row.correct, row.read, row.kind, row.source, row.writer) == (ident, "4", "9", "digit", "page", "ann")
    assert row.model_checksum == "ab" * 32
    picture = np.asarray(Image.open(io.BytesIO(row.image_png)))
    assert picture.shape == (280, 280)


def test_pictures_are_kept_as_dark_ink_on_light_paper_whatever_their_polarity(store, drawn_png):
    for mode in ("dark", "light", "rgba"):
        store.add(drawn_png(1, mode), "1")
    for row in store.rows():
        grey = np.asarray(Image.open(io.BytesIO(row.image_png)).convert("L"), float)
        assert np.median(grey) > 200 and grey.min() < 60, "paper light, ink dark"


def test_stats_count_corrections_confirmations_and_confusions(store, drawn_png):
    for read, right in [("9", "4"), ("9", "4"), ("7", "1"), ("3", "3")]:
        store.add(drawn_png(7), right, read=read)
    store.add(drawn_png(7), "90210", read="90216", kind="number")
    s = store.stats()
    assert (s["corrections"], s["confirmations"]) == (4, 1)
    assert s["per_kind"] == {"digit": 4, "number": 1}
    assert s["per_digit"]["4"] == 2 and s["per_digit"]["3"] == 1
    assert s["confusions"][0] == {"read": "9", "correct": "4", "count": 2}


def test_purge_deletes_what_is_older_than_the_date_or_everything(store, drawn_png):
    store.add(drawn_png(7), "2")
    assert store.purge(datetime.now(timezone.utc) - timedelta(days=1)) == 0
    assert store.purge(datetime.now(timezone.utc) + timedelta(minutes=1)) == 1
    store.add(drawn_png(7), "2")
    assert store.purge() == 1 and store.count() == 0


@pytest.mark.parametrize("kind, correct, words", [("digit", "12", "one of 0-9"), ("digit", "x", "one of 0-9"),
                                                  ("number", " ", "must not be empty"), ("letter", "a", "kind")])
def test_a_bad_correction_is_refused_by_name_and_nothing_is_stored(store, drawn_png, kind, correct, words):
    with pytest.raises(InputError, match=words):
        store.add(drawn_png(7), correct, kind=kind)
    assert store.count() == 0


def test_a_file_that_is_no_picture_is_refused(store, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(InputError):
        store.add(bad, "3")
    assert store.count() == 0


def test_the_schema_version_is_written_once_and_a_newer_one_is_refused(tmp_path):
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_store(url).close()
    open_store(url).close()  # a second open keeps the one row
    db = create_engine(url)
    with db.begin() as c:
        assert c.execute(text("select version from digitrec_schema")).scalars().all() == [SCHEMA_VERSION]
        c.execute(text("update digitrec_schema set version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(InputError, match="newer"):
        Store(url)


def test_an_unreachable_server_is_one_line_without_the_password():
    with pytest.raises(InputError) as e:
        open_store("postgresql://me:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="sqlite:///PATH or postgresql"):
        open_store("mysql://x")


def test_the_default_store_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITREC_DB", str(tmp_path / "mine.db"))
    monkeypatch.delenv("DIGITREC_DB_URL", raising=False)
    assert default_url() == f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("DIGITREC_DB_URL", "postgresql://h/db")
    assert default_url() == "postgresql://h/db"


@pytest.fixture
def umask_022():
    """The usual umask, under which a file is made readable by every user of the machine."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_sqlite_database_and_its_folder_are_their_owners_only(tmp_path, drawn_png, umask_022):
    path = tmp_path / "new" / "corrections.db"
    store = open_store(f"sqlite:///{path}")
    store.add(drawn_png(7), "7")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if stat.S_IMODE(p.stat().st_mode) & 0o077]
