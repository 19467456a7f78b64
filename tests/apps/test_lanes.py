"""Which lane a request's images take, and the order jobs start in."""
from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.apps.lanes import SMALL_WORK, ClientCap, Lane, work_of
from digitrec.apps.limits import ApiError

LIMIT = 16_000_000


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    light = np.linspace(150, 220, width)[None, :] + np.linspace(0, 20, height)[:, None]
    sheet = Image.fromarray(np.clip(light + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8))
    ImageDraw.Draw(sheet).line([(width * .45, height * .3), (width * .48, height * .7)], fill=30, width=8)
    return sheet


def test_a_canvas_drawing_is_small_work_and_a_photo_under_a_megapixel_is_not():
    assert work_of([open("examples/seven.png", "rb").read()], LIMIT) <= SMALL_WORK
    assert work_of([_encoded(_photo(640, 480), "JPEG")], LIMIT) > SMALL_WORK
    assert work_of([_encoded(_photo(1000, 750), "JPEG")], LIMIT) > SMALL_WORK


def test_a_tiny_declared_size_in_a_heavy_file_is_not_small_work():
    tiny = _encoded(Image.new("L", (28, 28), 255), "PNG")
    padded = tiny[:-12] + b"\x00" * 64_000 + tiny[-12:]  # 64 kB of bytes behind a 28x28 header
    assert work_of([tiny], LIMIT) <= SMALL_WORK < work_of([padded], LIMIT)
    assert work_of([b"not an image at all"], LIMIT) > SMALL_WORK  # unknown work waits with the large


def test_the_smallest_waiting_job_starts_first():
    started, gate = [], threading.Event()

    async def scenario():
        lane = Lane(1, "test")
        first = asyncio.create_task(lane.run(0, gate.wait))
        await asyncio.sleep(0.05)
        jobs = [asyncio.create_task(lane.run(w, lambda w=w: started.append(w))) for w in (500, 10, 90)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *jobs)
    asyncio.run(scenario())
    assert started == [10, 90, 500]


def test_a_job_given_up_while_waiting_frees_its_turn():
    gate = threading.Event()

    async def scenario():
        lane = Lane(1, "test")
        first = asyncio.create_task(lane.run(0, gate.wait))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(lane.run(1, lambda: "never"))
        await asyncio.sleep(0.05)
        gone.cancel()
        gate.set()
        await first
        return await asyncio.wait_for(lane.run(2, lambda: "ran"), 5)
    assert asyncio.run(scenario()) == "ran"


def test_one_client_gets_429_past_its_share_of_large_work_and_others_do_not():
    cap = ClientCap(10)
    cap.take("a", 30)  # one request alone is let in, however large
    with pytest.raises(ApiError) as e:
        cap.take("a", 1)
    assert e.value.status == 429 and e.value.headers == {"retry-after": "1"}
    cap.take("b", 5)
    cap.release("a", 30)
    cap.take("a", 5)
