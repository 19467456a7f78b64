"""Work that stops at its deadline: a per-thread time limit that long steps check between their parts.

The server gives every request a deadline; the imaging and reading steps call ``check()`` between
pictures and stages, so a request whose time is up stops working instead of running on after its
answer (a timeout) was sent. Outside ``until`` there is no deadline and ``check()`` costs one lookup.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

__all__ = ["DeadlineExceeded", "until", "check"]

_local = threading.local()


class DeadlineExceeded(Exception):
    """The work's time ran out; what was done so far is dropped."""


@contextmanager
def until(when: float | None):
    """Within the block, ``check()`` raises ``DeadlineExceeded`` once ``time.monotonic()`` passes ``when``."""
    before = getattr(_local, "when", None)
    _local.when = when
    try:
        yield
    finally:
        _local.when = before


def check() -> None:
    """Raise ``DeadlineExceeded`` if this thread's deadline has passed."""
    when = getattr(_local, "when", None)
    if when is not None and time.monotonic() > when:
        raise DeadlineExceeded("the request's time limit passed")
