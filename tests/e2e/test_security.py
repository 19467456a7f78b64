"""The holes a security review of ``digitrec serve`` found stay closed: real servers on loopback, real requests."""
from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import live_server, peak_rss_mb, reset_peak_rss
from PIL import Image

from digitrec.apps.server import FIRST_BYTE_S, HEADER_TIMEOUT_S, MAX_CLIENT_CONNECTIONS

pytestmark = pytest.mark.network

SECRET = "/etc/hostname"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def _file_data(path: str) -> dict:
    return {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}]}


def test_no_route_reads_or_serves_a_server_file(server):
    secret = open(SECRET).read().strip()
    for method, path, body in [("POST", "/gradio_api/call/read_upload", _file_data(SECRET)),
                               ("POST", "/gradio_api/queue/join", _file_data(SECRET)),
                               ("GET", f"/gradio_api/file={SECRET}", None),
                               ("GET", f"/file={SECRET}", None),
                               ("GET", f"/static/../../../../../..{SECRET}", None),
                               ("GET", f"/assets/..%2f..%2f..%2f..%2f..%2f..{SECRET}", None)]:
        r = httpx.request(method, server.url + path, json=body, timeout=10)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert secret not in r.text, path


def test_uploads_to_gradio_are_refused(server):
    r = httpx.post(f"{server.url}/gradio_api/upload", files={"files": ("a.png", b"x" * 1000, "image/png")}, timeout=10)
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_a_dev_zero_request_leaves_health_checks_answered_within_a_second(server):
    def work():
        for path in ("/gradio_api/call/read_upload", "/gradio_api/queue/join"):
            r = httpx.post(server.url + path, json=_file_data("/dev/zero"), timeout=10)
            assert 400 <= r.status_code < 500
        time.sleep(2)
    assert _health_while(server, work) < 1.0


def _health_while(server, work) -> float:
    """The slowest health check answered while ``work()`` runs (probed every 50 ms)."""
    slowest, failures, stop = [0.0], [], threading.Event()

    def probe():
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                if httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code != 200:
                    failures.append("not 200")
            except httpx.HTTPError as e:
                failures.append(repr(e))
            slowest[0] = max(slowest[0], time.perf_counter() - t0)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        work()
    finally:
        stop.set()
        prober.join()
    assert failures == []
    return slowest[0]


def test_image_headers_are_not_parsed_on_the_event_loop(server):
    # 1.8 MB of PostScript comment lines: PIL's EPS header parser takes about 1.5 s over them
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n" + b"%c\n" * 600_000
    answers = []

    def send():
        r = httpx.post(f"{server.url}/api/v1/predict", files={"image": ("a.eps", eps, "image/png")}, timeout=60)
        answers.append((r.status_code, r.json()["error"]))

    def four_at_once():
        clients = [threading.Thread(target=send) for _ in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()

    assert _health_while(server, four_at_once) < 1.0
    assert answers and all(status == 400 and "EPS images are not read" in error for status, error in answers)


def test_bad_requests_are_answered_without_a_traceback_in_the_log(server):
    log = Path(server.db.removeprefix("sqlite:///")).parent / "server.log"
    before = log.stat().st_size
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(5):
            assert client.get("/api/v1/nowhere").status_code == 404
            assert client.post("/api/v1/predict", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
            assert client.post("/api/v1/predict", json={"image": "***"}).status_code == 400
    written = log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in written and len(written) < 500, written[:2000]


def _scattered_strokes_png() -> bytes:
    """2000x2000 px of 1,000 short 1-px strokes: averaged down to 64 px tall, no mark is left."""
    from PIL import ImageDraw

    rng = np.random.default_rng(0)
    img = Image.new("L", (2000, 2000), 255)
    draw = ImageDraw.Draw(img)
    for _ in range(1000):
        x, y = rng.integers(0, 1990, 2)
        draw.line([(x, y), (x + rng.integers(-8, 9), y + rng.integers(-8, 9))], fill=0, width=1)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_field_of_scattered_thin_strokes_is_read_not_a_500(server, tmp_path):
    png = _scattered_strokes_png()
    r = httpx.post(f"{server.url}/api/v1/read", files={"image": ("s.png", png, "image/png")}, timeout=60)
    assert r.status_code == 200, r.text
    (tmp_path / "s.png").write_bytes(png)
    cli = _cli("read", str(tmp_path / "s.png"), timeout=120)
    assert cli.returncode == 0 and "Traceback" not in cli.stderr


def test_gradio_config_info_and_monitoring_are_not_public(server):
    for path in ("/config", "/gradio_api/info", "/monitoring/summary", "/gradio_api/heartbeat/x", "/login"):
        assert httpx.get(server.url + path, timeout=10).status_code == 404, path


def test_a_big_body_to_any_route_is_refused_without_being_read(server):
    reset_peak_rss(server.pid)  # a body read and freed would leave its mark on the peak, not on today's RSS
    before = peak_rss_mb(server.pid)
    junk = b'{"data": ["' + b"x" * (server.limits["max_upload_bytes"] + 10) + b'"]}'
    for path in ("/gradio_api/call/read_upload", "/gradio_api/queue/join", "/api/v1/predict", "/"):
        r = httpx.post(server.url + path, content=junk, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code in (404, 405, 413), (path, r.status_code)
    assert peak_rss_mb(server.pid) - before < 1.5  # holding one of these 2 MB bodies would pass it


def test_cross_origin_requests_and_preflights_get_no_cors_grant(server):
    for origin in ("http://localhost:3000", "http://evil.example"):
        pre = httpx.options(f"{server.url}/api/v1/predict", timeout=10,
                            headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 403 and not any(k.startswith("access-control-") for k in pre.headers)
        post = httpx.post(f"{server.url}/api/v1/predict", headers={"Origin": origin}, timeout=10,
                          files={"image": ("a.png", b"x", "image/png")})
        assert post.status_code == 403 and "access-control-allow-origin" not in post.headers


def test_a_host_header_naming_another_site_is_refused(server):
    # DNS rebinding: a page at evil.example whose name now points at 127.0.0.1
    r = httpx.get(f"{server.url}/api/v1/health", headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 421


def test_json_nested_a_thousand_levels_deep_is_a_400_json_error(server):
    body = '{"image": ' + "[" * 1000 + "]" * 1000 + "}"
    r = httpx.post(f"{server.url}/api/v1/predict", content=body, headers={"content-type": "application/json"},
                   timeout=10)
    assert r.status_code == 400 and set(r.json()) == {"error"}


def _striped_page_png(side: int, seed: int) -> bytes:
    """A lit page with broad dark stripes: cheap to send (tens of kB), costly to clean up (about a second)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    page = 200 + 40 * (xx / side) - 30 * (yy / side)
    page[(xx // int(rng.integers(40, 60))) % 2 == 0] = 40
    buf = io.BytesIO()
    Image.fromarray(page.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_a_request_past_its_deadline_stops_working(tmp_path):
    # a deadline of half a second for 16 pages of about a second of CPU each here: past it on a machine 10x faster
    with live_server(tmp_path, "--timeout", "0.5") as server:
        side = int(server.limits["max_pixels"] ** 0.5) - 1
        files = [("images", (f"{i}.png", _striped_page_png(side, i), "image/png"))
                 for i in range(server.limits["max_batch"])]
        t0 = time.perf_counter()
        r = httpx.post(f"{server.url}/api/v1/predict/batch", files=files, timeout=60)
        assert r.status_code == 503, f"the batch finished in {time.perf_counter() - t0:.1f} s: make it heavier"
        time.sleep(1.5)  # the picture in hand when the deadline passed
        cpu = _cpu_seconds(server.pid)
        time.sleep(2)
        assert _cpu_seconds(server.pid) - cpu < 0.5  # the workers stopped: nothing runs on
        t0 = time.perf_counter()
        assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
        assert time.perf_counter() - t0 < 1


def test_connections_that_never_finish_their_headers_are_closed(server):
    parts = urlsplit(server.url)
    socks = [socket.create_connection((parts.hostname, parts.port), timeout=HEADER_TIMEOUT_S + 10) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: ")  # and never the rest
        time.sleep(1)
        assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200  # others are still served
        closed = 0
        for s in socks:
            try:
                closed += s.recv(100) == b""
            except ConnectionResetError:
                closed += 1
    finally:
        for s in socks:
            s.close()
    assert closed == len(socks)


# --- an API key -----------------------------------------------------------------------------

KEY = "correct-horse-battery"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("keyed") / "server.log"
    cmd = [sys.executable, "-m", "digitrec.apps.cli", "serve", "--port", str(port), "--api-key", KEY]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail(log.read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_with_a_key_every_route_but_health_wants_it(keyed):
    png = open("examples/seven.png", "rb").read()
    for path in ("/", "/openapi.json", "/assets/x.js"):
        assert httpx.get(keyed + path, timeout=10).status_code == 401, path
    r = httpx.post(f"{keyed}/api/v1/predict", files={"image": ("7.png", png, "image/png")}, timeout=10)
    assert r.status_code == 401 and "key" in r.json()["error"]
    wrong = httpx.post(f"{keyed}/api/v1/predict", files={"image": ("7.png", png, "image/png")}, timeout=10,
                       headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = httpx.post(f"{keyed}/api/v1/predict", files={"image": ("7.png", png, "image/png")}, timeout=10,
                       headers={"Authorization": f"Bearer {KEY}"})
    assert right.status_code == 200 and right.json()["digit"] == 7
    assert httpx.get(f"{keyed}/api/v1/health", timeout=10).status_code == 200


def test_the_page_takes_the_key_once_and_keeps_it_in_a_strict_cookie(keyed):
    with httpx.Client(base_url=keyed, timeout=10) as client:
        login = client.get(f"/?key={KEY}")
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert KEY not in cookie  # a token derived from the key: the cookie does not give the key away
        assert client.get("/").status_code == 200  # the client sends the cookie back
        assert client.get("/openapi.json").status_code == 200
    token = cookie.split(";")[0].partition("=")[2]
    as_key = httpx.get(f"{keyed}/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert as_key.status_code == 401  # the token opens the page, and is no API key


# --- the command line -----------------------------------------------------------------------

def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "digitrec.apps.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_serve_on_an_impossible_port_is_one_line_and_exit_2():
    r = _cli("serve", "--port", "99999")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--port" in r.stderr.strip().splitlines()[-1] and "65535" in r.stderr  # argparse's usage, then the error


def test_serve_off_loopback_warns_and_stores_no_corrections():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "digitrec.apps.cli", "serve", "--host", "0.0.0.0", "--port",
                             str(port)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        said = proc.stdout.readline() + proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert "warning" in line and "not loopback" in line and "--api-key" in line
    assert "corrections are not stored" in said  # people's handwriting is kept only where asked, off loopback


def test_openapi_documents_the_error_format(server):
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    predict = spec["paths"]["/api/v1/predict"]["post"]["responses"]
    assert {"400", "413", "503"} <= set(predict)
    assert json.dumps(predict["400"]).count("ErrorOut") >= 1


# --- connections ------------------------------------------------------------------------------

def test_hundreds_of_idle_sockets_lock_no_one_out_and_are_closed(server):
    parts = urlsplit(server.url)
    socks = [socket.create_connection((parts.hostname, parts.port), timeout=FIRST_BYTE_S + 10) for _ in range(300)]
    try:
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
        seven = open("examples/seven.png", "rb").read()
        r = httpx.post(f"{server.url}/api/v1/predict", files={"image": ("7.png", seven, "image/png")}, timeout=10)
        assert r.status_code == 200 and r.json()["digit"] == 7
        t0 = time.monotonic()
        for s in socks:  # a connection that never sends a byte is let go, as an idle kept-alive one is
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - t0 < FIRST_BYTE_S + 5
    finally:
        for s in socks:
            s.close()


class _Transport:
    """What the server's protocol asks of a socket, from a remote address."""

    def __init__(self, host: str):
        self.host, self.closed = host, False

    def get_extra_info(self, name, default=None):
        return (self.host, 40000) if name == "peername" else default

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def set_protocol(self, protocol):
        pass


def _protocol():
    import asyncio

    from uvicorn import Config
    from uvicorn.server import ServerState

    from digitrec.apps.server import _Connections

    config = Config(lambda scope, receive, send: None)
    config.load()
    return _Connections(config, ServerState(), {}, asyncio.new_event_loop())


def test_one_remote_address_holds_a_bounded_number_of_connections():
    kept = [_protocol() for _ in range(MAX_CLIENT_CONNECTIONS + 1)]
    socks = [_Transport("203.0.113.7") for _ in kept]
    for p, t in zip(kept, socks):
        p.connection_made(t)
    assert [t.closed for t in socks] == [False] * MAX_CLIENT_CONNECTIONS + [True]
    other = _Transport("198.51.100.1")
    _protocol().connection_made(other)
    assert not other.closed  # another address is not held back
    kept[0].connection_lost(None)
    again = _Transport("203.0.113.7")
    _protocol().connection_made(again)
    assert not again.closed  # a closed connection frees its place


# --- lanes --------------------------------------------------------------------------------------

def _photo_jpeg(width: int, height: int) -> bytes:
    """A lit sheet with sensor grain and one stroke: cheap to send, the ink stage's most costly kind of picture."""
    rng = np.random.default_rng(0)
    light = np.linspace(150, 220, width)[None, :] + np.linspace(0, 20, height)[:, None]
    sheet = np.clip(light + rng.normal(0, 4, (height, width)), 0, 255).astype(np.uint8)
    sheet[height // 3:2 * height // 3, width // 2 - 6:width // 2 + 6] = 30
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_a_drawing_is_answered_promptly_while_photos_under_a_megapixel_keep_coming(server):
    photo, seven = _photo_jpeg(1000, 750), open("examples/seven.png", "rb").read()
    stop, latencies = threading.Event(), []

    def photos():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                client.post(f"{server.url}/api/v1/predict", files={"image": ("p.jpg", photo, "image/jpeg")})

    senders = [threading.Thread(target=photos) for _ in range(4)]
    for t in senders:
        t.start()
    try:
        time.sleep(1)
        with httpx.Client(timeout=30) as client:
            for _ in range(10):
                t0 = time.perf_counter()
                r = client.post(f"{server.url}/api/v1/predict", files={"image": ("7.png", seven, "image/png")})
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200
    finally:
        stop.set()
        for t in senders:
            t.join()
    assert sorted(latencies)[len(latencies) // 2] < 0.4, latencies


def test_one_client_past_its_share_of_large_work_gets_429_with_retry_after(server):
    side = int(server.limits["max_pixels"] ** 0.5) - 1
    page = _striped_page_png(side, 0)

    def send(_):
        return httpx.post(f"{server.url}/api/v1/predict", files={"image": ("p.png", page, "image/png")}, timeout=30)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    refused = [r for r in answers if r.status_code == 429]
    assert refused and {r.status_code for r in answers} <= {200, 429, 503}
    assert refused[0].headers["retry-after"] == "1" and set(refused[0].json()) == {"error"}
    time.sleep(server.limits["timeout_s"])  # the others' work ends with their deadline
    assert httpx.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200


def test_a_forwarded_host_is_not_written_into_the_page(server):
    r = httpx.get(f"{server.url}/", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
                  timeout=10)
    assert r.status_code == 200 and "evil.example" not in r.text


def test_two_host_headers_on_the_wire_are_a_400(server):
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(f"GET /api/v1/health HTTP/1.1\r\nHost: {parts.netloc}\r\nHost: evil.example\r\n\r\n".encode())
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 400"), head[:200]


# --- the API's contract ---------------------------------------------------------------------------

def test_trace_and_unknown_api_versions_get_the_projects_json_errors(server):
    trace = httpx.request("TRACE", f"{server.url}/api/v1/predict", timeout=10)
    assert trace.status_code == 405 and set(trace.json()) == {"error"} and "GET" in trace.headers["allow"]
    v2 = httpx.get(f"{server.url}/api/v2/predict", timeout=10)
    assert v2.status_code == 404 and set(v2.json()) == {"error"}
    wrong = httpx.get(f"{server.url}/api/v1/predict", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and set(wrong.json()) == {"error"}
    page = httpx.post(f"{server.url}/", timeout=10)
    assert page.status_code == 405 and "GET" in page.headers["allow"]


def test_the_specs_example_image_is_read(server):
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    example = body["properties"]["image"]["examples"][0]
    r = httpx.post(f"{server.url}/api/v1/predict", json={"image": example}, timeout=10)
    assert r.status_code == 200 and r.json()["digit"] is None  # a blank picture: no digit


def test_a_chunked_body_over_the_limit_to_review_is_413(server):
    def chunks():
        yield b'{"value": "'
        for _ in range(server.limits["max_upload_bytes"] // 65536 + 2):
            yield b"1" * 65536
        yield b'"}'
    r = httpx.post(f"{server.url}/api/v1/review/0", content=chunks(), headers={"content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 413 and set(r.json()) == {"error"}
