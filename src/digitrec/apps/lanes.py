"""Which worker a request's images wait for, and in what order: lanes chosen by the work a request brings.

The work of an image is guessed on the event loop from what costs nothing to read: its fixed header (format
and declared pixels, ``imaging.headers``) and its size in bytes. A drawing compresses to almost nothing,
while a photo's grain and lighting fill its bytes and cost the ink stage most, so bytes count beside pixels.
Small work (a canvas drawing, a crop) goes to the fast lane, the rest to a slow lane of one thread; in
each lane the smallest waiting job starts first, and one client's large work in flight is capped.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
from concurrent.futures import ThreadPoolExecutor

from ..imaging.headers import declared_size
from .limits import ApiError

__all__ = ["work_of", "Lane", "ClientCap", "SMALL_WORK"]

BYTE_WORK = 16          # work units per byte of a compressed file: about what a decoded photo pixel costs per byte
SMALL_WORK = 300_000    # work units (pixels, plus BYTE_WORK a byte) a request may bring to take the fast lane:
                        # a 280x280 canvas drawing is ~100,000, a 640x480 phone photo ~700,000


def work_of(images: list, max_pixels: int) -> int:
    """The work units ``images`` bring: declared pixels plus ``BYTE_WORK`` per byte each, at most
    ``max_pixels`` an image (the largest the server takes); an image whose header says nothing counts as
    that largest one (its work is unknown)."""
    total = 0
    for src in images:
        found = declared_size(src) if isinstance(src, (bytes, bytearray)) else None
        pixels = max_pixels if found is None else found[1] * found[2]
        total += min(pixels + BYTE_WORK * len(src if isinstance(src, (bytes, bytearray)) else b""), max_pixels)
    return total


class Lane:
    """Threads whose waiting jobs start smallest first; a thread's place is freed when its job really ends
    (not when a request that timed out stops waiting for it)."""

    def __init__(self, threads: int, name: str):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._free = threads
        self._waiting: list[tuple[int, int, asyncio.Future]] = []
        self._order = itertools.count()  # first come first served among equal work

    async def run(self, work: int, fn, ended=None):
        """``fn()`` on a thread of this lane once no smaller job waits; ``ended()`` is called on the loop when
        the job ends, or when the request gives up before it starts."""
        loop = asyncio.get_running_loop()
        if self._free and not self._waiting:
            self._free -= 1
        else:
            turn = loop.create_future()
            heapq.heappush(self._waiting, (work, next(self._order), turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():  # handed a thread just as it was cancelled: pass it on
                    self._release()
                if ended is not None:
                    ended()
                raise
        job = self._pool.submit(fn)

        def finished(_):
            self._release()
            if ended is not None:
                ended()
        job.add_done_callback(lambda j: loop.call_soon_threadsafe(finished, j))
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        while self._waiting:
            turn = heapq.heappop(self._waiting)[2]
            if not turn.done():  # a request that gave up while waiting has its future cancelled
                turn.set_result(None)
                return
        self._free += 1


class ClientCap:
    """At most ``limit`` work units of slow-lane work waiting or running per client address; a client
    with none in flight is always let in, however large its one request."""

    def __init__(self, limit: int):
        self.limit, self._held = limit, {}

    def take(self, client: str | None, work: int) -> None:
        """Count ``work`` against ``client``, or refuse it with 429 (``release`` gives it back)."""
        held = self._held.get(client, 0)
        if held and held + work > self.limit:
            raise ApiError(429, "this client already has as much large work in progress as the server takes "
                                "from one client; send the next when an answer comes", {"retry-after": "1"})
        self._held[client] = held + work

    def release(self, client: str | None, work: int) -> None:
        left = self._held.pop(client) - work
        if left > 0:
            self._held[client] = left
