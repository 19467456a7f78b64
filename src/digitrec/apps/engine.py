"""Recognition off the event loop: each request read on a worker thread, under its deadline, by the library's
one reading path (``Recognizer.read_batch``), so the server answers what ``predict`` answers."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from .. import deadline
from ..errors import InputError
from ..imaging import read_pictures
from ..imaging.headers import declared_size
from ..inference import Recognizer, read_number

__all__ = ["Engine"]

LARGE_PIXELS = 1_000_000  # a request whose images declare more pixels than this together takes the slow lane


def _declared_pixels(images: list) -> int:
    """The pixels the images' fixed headers declare, read on the event loop without PIL (``imaging.headers``);
    an image whose header says nothing counts as large: its work is unknown, so it waits in the slow lane."""
    total = 0
    for src in images:
        found = declared_size(src)
        total += LARGE_PIXELS + 1 if found is None else found[1] * found[2]
    return total


class Engine:
    """Runs recognition on worker threads, on the lane a request's declared size calls for.

    A request's images are decoded one by one, so a bad image fails only itself (or its request), then read
    together: one model pass per reading for the whole request. Large requests (photos, batches of them) go to
    a slow lane of one thread, so that however many of them arrive, the small ones (a drawing, a crop) keep the
    other threads and are answered at once.
    """

    def __init__(self, recognizer: Recognizer, max_pixels: int, workers: int):
        self.recognizer = recognizer
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="digitrec")
        self._slow = ThreadPoolExecutor(1, thread_name_prefix="digitrec-large")

    async def run_until(self, when: float, images: list, fn, *args):
        """``fn(*args)`` on the lane that ``images`` call for, stopped (``DeadlineExceeded``) where it checks
        past ``when`` (monotonic)."""
        def bounded():
            with deadline.until(when):
                return fn(*args)
        pool = self._slow if _declared_pixels(images) > LARGE_PIXELS else self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, bounded)

    def _read_all(self, images: list, prefixes: list[str], each: bool) -> list:
        # prefixes go before error messages, so that a batch says which image was bad; with ``each`` a bad
        # image's error takes its place in the list, and the others are still read
        decoded = []
        for src, prefix in zip(images, prefixes):
            deadline.check()
            try:
                decoded.append(read_pictures([src], self.max_pixels)[0])
            except InputError as e:
                if not each:
                    raise type(e)(f"{prefix}{e}") from None
                decoded.append(type(e)(f"{prefix}{e}"))
        good = [d for d in decoded if not isinstance(d, InputError)]
        readings = self.recognizer.read_decoded(good) if good else None
        preds = iter(zip(self.recognizer.judge(readings), readings.x28, readings.found) if good else [])
        out = []
        for d in decoded:
            if isinstance(d, InputError):
                out.append(d)
            else:
                p, x28, found = next(preds)
                out.append((p, x28 if found else None))
        return out

    async def read(self, images: list, prefixes: list[str], when: float, each: bool = False) -> list:
        """Each image's ``(Prediction, the 28x28 the model read or None)``, as ``predict`` reads it; ``prefixes``
        name the images in errors. ``each``: an image's ``InputError`` takes its place in the list instead of
        failing them all."""
        return await self.run_until(when, images, self._read_all, images, prefixes, each)

    async def read_number(self, src, when: float, kind: str = "any"):
        """Return the ``NumberReading`` of one image: segmentation and its one model call, on the pool."""
        return await self.run_until(when, [src], read_number, self.recognizer, src, None, self.max_pixels, kind)
