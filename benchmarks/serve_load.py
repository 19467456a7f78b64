"""Load test of ``digitrec serve``: POST /api/v1/predict at concurrency 1, 8 and 32 over loopback.

Starts the server (or drives one given by --url), then sends requests from this separate process
over keep-alive HTTP/1.1 connections, one per concurrent client, for a bounded time and count per
level, and prints requests/s, p50, p99 and errors. A minimal asyncio client keeps the load
generator's own CPU cost low: it shares the machine with the server.

With ``--abuse N``, N of each level's clients send only bad requests instead, in turn: a body over
the upload limit, a PNG whose header declares more than the pixel limit, a 12-MP photo, a batch
of 64 photos that cannot be read before the deadline, and a 9 MB GIF of 35,000 comment blocks; and
``--idle`` sockets (default 300 with --abuse) are held open sending nothing, reopened as the server
closes them. The figures are then the good clients' own.

Goals on a 2-core machine: p99 <= 50 ms at concurrency 8, >= 300 requests/s at 32, no errors;
with 8 of 32 clients abusive, good requests p99 <= 1 s and no errors.

    python benchmarks/serve_load.py [--duration 10] [--concurrency 1,8,32] [--abuse 8] [--image examples/seven.png]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from _machine import header
from _server import start_server
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = "digitrec-load-test"


def _request(host: str, *images: bytes, path: str = "/api/v1/predict") -> bytes:
    name = "images" if path.endswith("batch") else "image"
    parts = [(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"digit\"\r\n"
              f"Content-Type: application/octet-stream\r\n\r\n").encode() + image + b"\r\n" for image in images]
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
            f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def _photo(width: int, height: int) -> Image.Image:
    """A grey sheet with uneven light, a little sensor noise and one large dark digit-like stroke."""
    rng = np.random.default_rng(0)
    light = np.linspace(150, 220, width)[None, :] + np.linspace(0, 20, height)[:, None]
    sheet = Image.fromarray(np.clip(light + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8))
    ImageDraw.Draw(sheet).line([(width * .45, height * .3), (width * .55, height * .3), (width * .48, height * .7)],
                               fill=30, width=max(width // 60, 2))
    return sheet


def _abusive_requests(host: str, limits: dict) -> list[bytes]:
    """One request of each kind the server must refuse or cut short without slowing the others."""
    too_long = os.urandom(limits["max_upload_bytes"] + 1_000)
    side = int((limits["max_pixels"] * 1.5) ** 0.5)
    bomb = _encoded(Image.new("L", (side, side), 255), "PNG")  # a few KB that would decode to 1.5x the limit
    photo = _encoded(_photo(4000, 3000), "JPEG", quality=85)
    small_photo = _encoded(_photo(1600, 1200), "JPEG", quality=85)
    # comment blocks whose text PIL's GIF parser would join by copying, quadratic in their count
    gif = b"GIF89a\x1c\x00\x1c\x00\x00\x00\x00" + (b"\x21\xfe" + b"\xff" + b"c" * 255 + b"\x00") * 35_000 + b"\x3b"
    return [_request(host, too_long), _request(host, bomb), _request(host, photo),
            _request(host, *[small_photo] * limits["max_batch"], path="/api/v1/predict/batch"), _request(host, gif)]


async def _exchange(reader, writer, request: bytes) -> tuple[int, bytes]:
    """Send one request and return the status and body of its response."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


def _good(status: int, body: bytes) -> bool:
    return status == 200 and "digit" in json.loads(body)


async def _abuser(host: str, port: int, requests: list[bytes], offset: int, stop: float, statuses: dict) -> None:
    """Send bad requests in turn until ``stop``, counting the answers (``closed``: the server hung up)."""
    i = offset
    while time.perf_counter() < stop:
        request = requests[i % len(requests)]
        i += 1
        try:
            reader, writer = await asyncio.open_connection(host, port)
            status, _ = await asyncio.wait_for(_exchange(reader, writer, request), timeout=30)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            status = "closed"
        statuses[status] = statuses.get(status, 0) + 1


async def _idler(host: str, port: int, stop: float) -> None:
    """Hold a connection that sends nothing until ``stop``, opening another whenever the server closes it."""
    while time.perf_counter() < stop:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            await asyncio.wait_for(reader.read(1), max(stop - time.perf_counter(), 0.01))
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.1)
        finally:
            if writer is not None:
                writer.close()


async def _client(host: str, port: int, request: bytes, start: float, stop: float, budget: list[int],
                  latencies: list[float], errors: list[int]) -> None:
    reader = writer = None
    while time.perf_counter() < stop and budget[0] > 0:
        budget[0] -= 1
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            ok = _good(*await asyncio.wait_for(_exchange(reader, writer, request), timeout=30))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            ok = False
            if writer is not None:
                writer.close()
            reader = writer = None
        t1 = time.perf_counter()
        if t0 < start:  # requests begun during the warm-up are not counted
            continue
        if ok:
            latencies.append(t1 - t0)
        else:
            errors.append(1)
    if writer is not None:
        writer.close()


async def _level(host: str, port: int, request: bytes, concurrency: int, warmup: float, duration: float,
                 max_requests: int, abusive: list[bytes], abusers: int, idle: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    statuses: dict = {}
    now = time.perf_counter()
    start, stop = now + warmup, now + warmup + duration
    budget = [max_requests]
    await asyncio.gather(*(_client(host, port, request, start, stop, budget, latencies, errors)
                           for _ in range(concurrency - abusers)),
                         *(_abuser(host, port, abusive, i, stop, statuses) for i in range(abusers)),
                         *(_idler(host, port, stop) for _ in range(idle)))
    elapsed = min(time.perf_counter(), stop) - start
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "seconds": round(elapsed, 2),
            "req_per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
            "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"), "errors": len(errors),
            "sent": max_requests - budget[0], "abusive": statuses}


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) used so far by process ``pid`` (Linux), or by this process."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="drive this running server instead of starting one (loopback only)")
    ap.add_argument("--model", help="checkpoint for the started server (default: the bundled model)")
    ap.add_argument("--image", default=str(ROOT / "examples" / "seven.png"), help="image to send")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default: 1,8,32)")
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per level (default: 10)")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each level (default: 2)")
    ap.add_argument("--max-requests", type=int, default=50_000, help="at most this many requests per level")
    ap.add_argument("--abuse", type=int, default=0, metavar="N",
                    help="N clients of each level send oversized, pixel-bomb, photo and slow-batch requests (default: 0)")
    ap.add_argument("--idle", type=int, metavar="N", help="sockets held open sending nothing (default: 300 with "
                    "--abuse, else 0)")
    args = ap.parse_args()
    idle = args.idle if args.idle is not None else (300 if args.abuse else 0)

    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.model)
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("serve_load: only loopback servers may be load-tested")
    request = _request(parts.netloc, Path(args.image).read_bytes())
    limits = json.loads(urllib.request.urlopen(f"{url}/api/v1/health", timeout=5).read())["limits"]
    abusive = _abusive_requests(parts.netloc, limits) if args.abuse else []
    print(header())
    print(f"# gradio {version('gradio')}, uvicorn {version('uvicorn')}; load average {os.getloadavg()[0]:.1f} "
          f"at start (other work on the machine lowers every figure)")
    print(f"# server {url} ({'started here, torch 1 thread' if proc else 'given'}); image {args.image} "
          f"({Path(args.image).stat().st_size} B); {args.duration:g} s per level after {args.warmup:g} s warm-up, "
          f"at most {args.max_requests} requests" + (f"; {args.abuse} clients abusive" if args.abuse else "")
          + (f"; {idle} idle sockets" if idle else ""))
    # CPU per request does not depend on how busy the machine is: 2 cores / it bounds a quiet machine's req/s
    print(f"{'concurrency':>11} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'server CPU ms/req':>18} {'client CPU ms/req':>18}")
    try:
        for c in (int(x) for x in args.concurrency.split(",")):
            cpu0 = (_cpu_seconds(proc.pid) if proc else 0.0), _cpu_seconds()
            r = asyncio.run(_level(parts.hostname, parts.port, request, c, args.warmup, args.duration,
                                   args.max_requests, abusive, min(args.abuse, c - 1), idle))
            sent = max(r["sent"], 1)  # warm-up requests included, as in the CPU times
            server_ms = f"{(_cpu_seconds(proc.pid) - cpu0[0]) / sent * 1000:.2f}" if proc else "n/a"
            client_ms = f"{(_cpu_seconds() - cpu0[1]) / sent * 1000:.2f}"
            print(f"{r['concurrency']:>11} {r['requests']:>9} {r['req_per_s']:>8.1f} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f} {r['errors']:>7} {server_ms:>18} {client_ms:>18}", flush=True)
            if r["abusive"]:
                print(f"{'':>11} abusive requests answered: "
                      + ", ".join(f"{k}: {v}" for k, v in sorted(r["abusive"].items(), key=str)))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
