"""Recognition off the event loop: requests' preprocessing on worker threads, and the model run once for
whatever requests wait together."""
from __future__ import annotations

import asyncio
import logging

from .. import deadline
from ..errors import InputError
from ..inference import Prediction, Recognizer, read_number
from .lanes import SMALL_WORK, ClientCap, Lane, work_of

__all__ = ["Engine"]

log = logging.getLogger("digitrec.serve")

CLIENT_LARGE_IMAGES = 4  # slow-lane work one client may have waiting or running: this many of the largest images


class Engine:
    """Runs recognition on worker threads; requests that wait together share one model call.

    Preprocessing (decoding, cropping) runs per request on a lane, so a bad image fails only its own
    request; the model runs once per gathered batch, which costs little more than one image. A request's
    lane is chosen by its work (``lanes.work_of``): large requests (photos, batches of them) go to a slow
    lane of one thread, so that however many of them arrive, the small ones (a drawing, a crop) keep the
    other threads and are answered at once; in each lane the smallest waiting job starts first.
    """

    def __init__(self, recognizer: Recognizer, max_pixels: int, workers: int):
        self.recognizer = recognizer
        self.max_pixels = max_pixels
        self._fast = Lane(workers, "digitrec")
        self._slow = Lane(1, "digitrec-large")
        self._cap = ClientCap(CLIENT_LARGE_IMAGES * max_pixels)
        self._waiting: list[tuple[list, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

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

    def _preprocess_all(self, images: list, prefixes: list[str], each: bool) -> list:
        # prefixes go before error messages, so that a batch says which image was bad; with ``each`` a bad
        # image's error takes its place in the list, and the others are still read
        out = []
        for src, prefix in zip(images, prefixes):
            deadline.check()
            try:
                x28, found = self.recognizer.preprocess([src], limit=self.max_pixels)
                out.append(x28[0] if found[0] else None)
            except InputError as e:
                if not each:
                    raise type(e)(f"{prefix}{e}") from None
                out.append(type(e)(f"{prefix}{e}"))
        return out

    async def read_number(self, src, when: float, client: str | None, kind: str = "any"):
        """Return the ``NumberReading`` of one image: segmentation and its one model call, on a lane."""
        return await self.run_until(when, [src], client, read_number, self.recognizer, src, None, self.max_pixels,
                                    kind)

    async def preprocess(self, images: list, prefixes: list[str], when: float, client: str | None,
                         each: bool = False) -> list:
        """Return the 28x28 arrays the model will see (``None`` for blanks); ``prefixes`` name them in errors.
        ``each``: an image's ``InputError`` takes its place in the list instead of failing them all."""
        return await self.run_until(when, images, client, self._preprocess_all, images, prefixes, each)

    async def predict(self, x28: list) -> list[Prediction]:
        """Return the model's reading of preprocessed arrays, batched with whatever else is waiting."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((x28, done))
        # a task of its own, so that a request that times out cannot stop the others' batch
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = [(x, f) for x, f in self._waiting if not f.done()], []
            try:
                # work -1: the model's call starts before any preprocessing that waits
                x28 = [a for x, _ in batch for a in x]
                preds = await self._fast.run(-1, lambda: self.recognizer.predict_preprocessed(x28))
            except Exception as e:  # a bug, not bad input: fail these requests, keep serving
                log.exception("prediction failed")
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            i = 0
            for x, f in batch:
                if not f.done():
                    f.set_result(preds[i:i + len(x)])
                i += len(x)

