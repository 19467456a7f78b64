"""Shared fixtures: small real data (MNIST subsets, drawn PNGs) and a small model trained once per session."""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import torch
from PIL import Image, ImageDraw
from threadpoolctl import threadpool_limits

from digitrec import data
from digitrec.training import train


def pytest_configure(config):
    # xdist workers share the cores: threads beyond a worker's share busy-wait on the other worker's. Here,
    # training the small model costs 8 s of CPU on two torch threads and 5 s on one; fitting the logistic
    # baseline on 2,000 images 9 s on two OpenBLAS threads and 1 s on one. The CLI and servers the tests start
    # inherit the setting.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        config._thread_limits = threadpool_limits(threads)  # BLAS and OpenMP pools in this process, kept for the run
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)


@pytest.fixture(scope="session", autouse=True)
def _corrections_away_from_home(tmp_path_factory):
    """Every store a test or a server it starts opens by default is a temporary file, not the user's own."""
    os.environ.pop("DIGITREC_DB_URL", None)
    os.environ["DIGITREC_DB"] = str(tmp_path_factory.mktemp("store") / "corrections.db")


@pytest.fixture(scope="session")
def mnist_test_small():
    """The first 500 MNIST test images and labels."""
    x, y = data.load_mnist("test")
    return x[:500], y[:500]


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, worker_id):
    """Path of a fast-preset CNN trained for one epoch on 6,000 images in batches of 64 (~96 %).

    Trained once per run, not once per xdist worker: the first worker to ask trains it (about 10 s of CPU) in the
    folder the workers share, the others wait for it. Nobody writes to it after.
    """
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out = shared / "small_model"
    with open(shared / "small_model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "small_model.done").exists():  # not model.pt: training writes it before it is done
            train("cnn", "fast", out, train_subset=6000, test_subset=500, epochs=1, batch_size=64, progress=False)
            (shared / "small_model.done").touch()
    return out / "model.pt"


def draw_digit(digit: int, size: int = 280, ink: int = 0, paper: int = 255, width: int = 20) -> Image.Image:
    """A digit drawn with thick strokes, as a user would on a canvas: 1, 7 or 0."""
    img = Image.new("L", (size, size), paper)
    d = ImageDraw.Draw(img)
    s = size / 280
    strokes = {1: [[(150, 45), (140, 235)]],
               7: [[(70, 60), (215, 60), (150, 150), (115, 235)]],
               0: None}
    if digit == 0:
        d.ellipse([85 * s, 45 * s, 195 * s, 235 * s], outline=ink, width=round(width * s))
    else:
        for line in strokes[digit]:
            d.line([(x * s, y * s) for x, y in line], fill=ink, width=round(width * s), joint="curve")
    return img


@pytest.fixture
def drawn_png(tmp_path):
    """Factory: ``drawn_png(digit, mode)`` writes a 280x280 PNG and returns its path.

    mode: 'dark' (black on white), 'light' (white on black) or 'rgba' (black on transparent, as canvases export).
    """
    def make(digit: int, mode: str = "dark"):
        if mode == "dark":
            img = draw_digit(digit)
        elif mode == "light":
            img = draw_digit(digit, ink=255, paper=0)
        else:
            alpha = draw_digit(digit, ink=255, paper=0)
            img = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
        path = tmp_path / f"{digit}-{mode}.png"
        img.save(path)
        return path
    return make


def reset_peak_rss(pid: int | str = "self") -> None:
    """Bring a process's peak resident memory down to its current one, so that a later peak is new (Linux)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory since it started or since ``reset_peak_rss`` (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


# --- a live `digitrec serve`, shared by the HTTP tests (test_serve.py) and the browser tests (e2e/) ---

class LiveServer(NamedTuple):
    url: str     # http://127.0.0.1:PORT
    pid: int
    limits: dict  # as /api/v1/health reports them
    db: str      # the corrections database it stores into


# Small limits, so that the tests can cross each of them cheaply.
_LIMITS = {"max_upload_bytes": 2_000_000, "max_pixels": 4_000_000, "max_batch": 16, "timeout_s": 3.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(folder, *args: str, db: str | None = None):
    """A ``digitrec serve`` process with the bundled model on a free loopback port and small limits, storing
    corrections in ``db`` (default: a SQLite file in ``folder``, never the user's own store)."""
    port = _free_port()
    log = folder / "server.log"
    db = db or f"sqlite:///{folder / 'corrections.db'}"
    cmd = [sys.executable, "-m", "digitrec.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max-upload-bytes", str(_LIMITS["max_upload_bytes"]), "--max-pixels", str(_LIMITS["max_pixels"]),
            "--max-batch", str(_LIMITS["max_batch"]), "--timeout", str(_LIMITS["timeout_s"]), "--db", db, *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"digitrec serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"digitrec serve did not answer within 120 s:\n{log.read_text()}")
            time.sleep(0.3)
        yield LiveServer(url, proc.pid, dict(_LIMITS), db)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> LiveServer:
    """A ``digitrec serve`` shared by the HTTP and browser tests (``live_server``)."""
    with live_server(tmp_path_factory.mktemp("serve")) as s:
        yield s


# --- a real PostgreSQL, started by the tests on a temporary folder (Debian's postgresql, bin/install --test) ---

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql://...`` of a fresh PostgreSQL server on a loopback port, stopped after the session."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (bin/install --test installs it)")
    folder = Path(tempfile.mkdtemp(prefix="digitrec-pg-"))
    # the server refuses to run as root: as root, run it as the postgres user, which owns its folder
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    except subprocess.CalledProcessError as e:
        pytest.fail(f"PostgreSQL did not start: {e.stderr.decode(errors='replace')[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
