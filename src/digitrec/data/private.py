"""Files that hold people's handwriting or what it says (the corrections database, bulk results and review
files): created readable by their owner only, whatever the umask, as ssh keeps its keys. Other local users
of a shared machine would otherwise read them (umask 022 makes files 0644)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["opener", "make_folder", "touch", "FILE_MODE", "FOLDER_MODE"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def opener(path: str, flags: int) -> int:
    """``open(..., opener=opener)``: a file created is its owner's only (an existing one keeps its mode)."""
    return os.open(path, flags, FILE_MODE)


def make_folder(path: str | os.PathLike) -> None:
    """``path`` and its missing parents; the folders made here are their owner's only."""
    Path(path).mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)


def touch(path: str | os.PathLike) -> None:
    """Create ``path`` empty, its owner's only, unless it exists: before another library creates it (SQLite)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
