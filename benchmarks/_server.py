"""A ``digitrec serve`` on a free loopback port, for the benchmarks that talk to a live server."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request


def start_server(model: str | None = None) -> tuple[subprocess.Popen, str]:
    """The server process and its URL, once its health check answers; exits the benchmark if it never does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "digitrec.apps.cli", "serve", "--port", str(port), "--no-store-corrections"]
    cmd += ["--model", model] if model else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"the server did not start ({' '.join(cmd)})")
