"""Recognition off the event loop: each request read on a worker thread, under its deadline, by the library's
one reading path (``Recognizer.read_batch``), so the server answers what ``predict`` answers."""
from __future__ import annotations

from .. import deadline
from ..errors import InputError
from ..imaging import read_pictures
from ..inference import Recognizer, read_number
from .lanes import SMALL_WORK, ClientCap, Lane, work_of

__all__ = ["Engine"]

CLIENT_LARGE_IMAGES = 4  # slow-lane work one client may have waiting or running: this many of the largest images


class Engine:
    """Runs recognition on worker threads, on the lane a request's work calls for.

    A request's images are decoded one by one, so a bad image fails only itself (or its request), then read
    together: one model pass per reading for the whole request. A request's lane is chosen by its work
    (``lanes.work_of``): large requests (photos, batches of them) go to a slow lane of one thread, so that
    however many of them arrive, the small ones (a drawing, a crop) keep the other threads and are answered at
    once; in each lane the smallest waiting job starts first.
    """

    def __init__(self, recognizer: Recognizer, max_pixels: int, workers: int):
        self.recognizer = recognizer
        self.max_pixels = max_pixels
        self._fast = Lane(workers, "digitrec")
        self._slow = Lane(1, "digitrec-large")
        self._cap = ClientCap(CLIENT_LARGE_IMAGES * max_pixels)

    async def run_until(self, when: float, images: list, client: str | None, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the lane that ``images`` call for, stopped (``DeadlineExceeded``) where it
        checks past ``when`` (monotonic); 429 when ``client`` has its share of the slow lane already."""
        def bounded():
            with deadline.until(when):
                return fn(*args, **kwargs)
        work = work_of(images, self.max_pixels)
        if work <= SMALL_WORK:
            return await self._fast.run(work, bounded)
        self._cap.take(client, work)
        return await self._slow.run(work, bounded, ended=lambda: self._cap.release(client, work))

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

    async def read(self, images: list, prefixes: list[str], when: float, client: str | None,
                   each: bool = False) -> list:
        """Each image's ``(Prediction, the 28x28 the model read or None)``, as ``predict`` reads it; ``prefixes``
        name the images in errors. ``each``: an image's ``InputError`` takes its place in the list instead of
        failing them all."""
        return await self.run_until(when, images, client, self._read_all, images, prefixes, each)

    async def read_number(self, src, when: float, client: str | None, kind: str = "any"):
        """Return the ``NumberReading`` of one image: segmentation and its one model call, on a lane."""
        return await self.run_until(when, [src], client, read_number, self.recognizer, src, None, self.max_pixels,
                                    kind)
