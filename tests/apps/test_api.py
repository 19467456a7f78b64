"""The REST API over real HTTP, against a ``digitrec serve`` process (see conftest.py for its limits)."""
from __future__ import annotations

import base64
import functools
import io
import socket
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import peak_rss_mb, reset_peak_rss
from PIL import Image

import digitrec
from digitrec import data
from digitrec.apps import cli

pytestmark = pytest.mark.network  # one digitrec serve for the module (conftest.server)


@pytest.fixture(scope="module")
def mnist():
    x, y = data.load_mnist("test")
    return x[:40], y[:40]


@pytest.fixture(scope="module")
def recognizer():
    return digitrec.load()  # the model the server loads by default


def _png(a: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG", **save)
    return buf.getvalue()


def _paper(digit28: np.ndarray) -> np.ndarray:
    """An MNIST digit as dark ink on white paper, 4x larger, as a scan would be."""
    return 255 - np.kron(digit28, np.ones((4, 4), np.uint8))


@functools.cache
def _png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height white pixels: a few kB on the wire, width*height bytes decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = (b"\x00" + b"\xff" * ((width + 7) // 8)) * 1000
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(rows) for _ in range(height // 1000)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _post_image(url: str, body: bytes, name="digit.png", mime="image/png") -> httpx.Response:
    return httpx.post(f"{url}/api/v1/predict", files={"image": (name, body, mime)}, timeout=30)


def _assert_json_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def _assert_healthy(url: str) -> None:
    assert httpx.get(f"{url}/api/v1/health", timeout=10).json()["status"] == "ok"


# --- what a client gets ----------------------------------------------------------------------

def test_reads_the_digit_in_an_uploaded_png(server, mnist):
    url = server.url
    x, y = mnist
    r = _post_image(url, _png(_paper(x[0])))
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["digit"] == y[0]
    assert set(p) == {"digit", "confidence", "unsure", "reading", "probabilities", "top3"}
    assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-4
    assert p["top3"][0] == {"digit": p["digit"], "probability": p["confidence"]}


def test_reads_base64_json_and_data_urls(server, mnist):
    url = server.url
    x, y = mnist
    b64 = base64.b64encode(_png(x[1])).decode()
    for text in (b64, f"data:image/png;base64,{b64}"):
        r = httpx.post(f"{url}/api/v1/predict", json={"image": text}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["digit"] == y[1]


def test_batch_answers_each_image_in_order_as_the_library_does(server, mnist, recognizer):
    url = server.url
    x, _ = mnist
    pngs = [_png(_paper(a)) for a in x[:server.limits["max_batch"]]]
    r = httpx.post(f"{url}/api/v1/predict/batch", files=[("images", (f"{i}.png", b, "image/png"))
                                                        for i, b in enumerate(pngs)], timeout=30)
    assert r.status_code == 200, r.text
    assert [p["digit"] for p in r.json()] == [p.digit for p in recognizer.predict_batch(pngs)]
    r = httpx.post(f"{url}/api/v1/predict/batch", json={"images": [base64.b64encode(b).decode() for b in pngs[:3]]},
                   timeout=30)
    assert [p["digit"] for p in r.json()] == [p.digit for p in recognizer.predict_batch(pngs[:3])]


def test_concurrent_requests_each_get_their_own_answer(server, mnist, recognizer):
    url = server.url
    x, _ = mnist
    pngs = [_png(_paper(a)) for a in x]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: _post_image(url, b).json()["digit"], pngs))
    assert answers == [p.digit for p in recognizer.predict_batch(pngs)]


def test_health_names_the_model_and_the_limits(server):
    url = server.url
    h = httpx.get(f"{url}/api/v1/health", timeout=10).json()
    assert h["status"] == "ok" and h["model"]["arch"]
    assert h["limits"] == server.limits


def test_openapi_spec_describes_the_endpoints(server):
    url = server.url
    spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
    assert {"/api/v1/predict", "/api/v1/predict/batch", "/api/v1/health"} <= set(spec["paths"])
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)


def test_unknown_endpoints_and_methods_get_json_errors(server):
    url = server.url
    assert "openapi.json" in _assert_json_error(httpx.get(f"{url}/api/v1/nothing", timeout=10), 404)
    assert "POST" in _assert_json_error(httpx.get(f"{url}/api/v1/predict", timeout=10), 405)


# --- bad input: a 4xx JSON error, or a right answer where the image is valid ------------------

def _file(body: bytes, name="a.png") -> dict:
    return {"files": {"image": (name, body, "image/png")}}


# name -> (request for httpx.post given a valid PNG of a digit, expected status)
_BAD_REQUESTS = {
    "not an image": (lambda png: _file(b"this is not a picture"), 400),
    "empty body": (lambda png: {}, 400),
    "empty file": (lambda png: _file(b""), 400),
    "truncated png": (lambda png: _file(png[: len(png) // 2]), 400),
    "over the pixel limit": (lambda png: _file(_png_bomb(3000, 2000)), 413),
    "raw image body": (lambda png: {"content": png, "headers": {"content-type": "image/png"}}, 415),
    "text body": (lambda png: {"content": b"7", "headers": {"content-type": "text/plain"}}, 415),
    "malformed json": (lambda png: {"content": b"{'image': ", "headers": {"content-type": "application/json"}}, 400),
    "json without image": (lambda png: {"json": {"picture": "x"}}, 400),
    "bad base64": (lambda png: {"json": {"image": "not base64 at all!"}}, 400),
    "multipart without image field": (lambda png: {"files": {"photo": ("a.png", png, "image/png")}}, 400),
}


@pytest.mark.parametrize("case", list(_BAD_REQUESTS))
def test_bad_input_gets_a_json_error_and_the_server_keeps_serving(server, mnist, case):
    url = server.url
    request, status = _BAD_REQUESTS[case]
    _assert_json_error(httpx.post(f"{url}/api/v1/predict", timeout=30, **request(_png(_paper(mnist[0][2])))), status)
    _assert_healthy(url)


def test_a_20000x20000_png_bomb_is_refused_without_decoding_it(server):
    url = server.url
    bomb = _png_bomb(20000, 20000)
    reset_peak_rss(server.pid)  # else an earlier, higher peak would hide this request's
    before = peak_rss_mb(server.pid)
    assert "too large" in _assert_json_error(_post_image(url, bomb), 413)
    assert peak_rss_mb(server.pid) - before < 100  # decoding it would take 400 MB
    _assert_healthy(url)


def test_unusual_but_valid_images_are_read_as_their_8_bit_versions(server, mnist, recognizer):
    url = server.url
    x, _ = mnist
    wide = _paper(x[4]).astype(np.uint16) * 257  # 16-bit greyscale
    cmyk = io.BytesIO()
    Image.fromarray(_paper(x[5])).convert("CMYK").save(cmyk, "JPEG", quality=95)
    assert _post_image(url, _png(wide)).json()["digit"] == recognizer.predict(_paper(x[4])).digit
    assert _post_image(url, cmyk.getvalue(), "d.jpg", "image/jpeg").json()["digit"] == \
        recognizer.predict(_paper(x[5])).digit
    tiny = _post_image(url, _png(np.full((1, 1), 255, np.uint8)))
    assert tiny.status_code == 200 and tiny.json()["digit"] is None  # valid, and nothing to read
    _assert_healthy(url)


def test_a_batch_over_the_limit_is_refused(server, mnist):
    url = server.url
    png = _png(mnist[0][0])
    huge = [("images", (f"{i}.png", png, "image/png")) for i in range(1000)]
    limit = server.limits["max_batch"]
    assert str(limit) in _assert_json_error(httpx.post(f"{url}/api/v1/predict/batch", files=huge, timeout=30), 413)
    as_json = {"images": [base64.b64encode(png).decode()] * (limit + 1)}
    _assert_json_error(httpx.post(f"{url}/api/v1/predict/batch", json=as_json, timeout=30), 413)
    _assert_healthy(url)


def test_a_bad_image_in_a_batch_is_an_item_with_its_error_and_the_others_are_read(server, mnist):
    png = _png(mnist[0][0])
    files = [("images", ("0.png", png, "image/png")), ("images", ("1.png", b"junk", "image/png")),
             ("images", ("2.png", png, "image/png"))]
    r = httpx.post(f"{server.url}/api/v1/predict/batch", files=files, timeout=30)
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["file"] for i in items] == ["0.png", "1.png", "2.png"]
    assert items[1]["error"].startswith("1.png: ") and "digit" not in items[1]
    assert items[0]["digit"] == items[2]["digit"] == int(mnist[1][0]) and "error" not in items[0]
    as_json = httpx.post(f"{server.url}/api/v1/predict/batch", json={"images": ["aGk=", base64.b64encode(png).decode()]},
                         timeout=30).json()
    assert as_json[0]["file"] == "images[0]" and "error" in as_json[0] and as_json[1]["digit"] == int(mnist[1][0])


def _raw_request(url: str, head: bytes, body: bytes = b"", wait_s: float = 15) -> bytes:
    """Send a request by hand (to control what is sent and when); return the response's first line."""
    parts = urlsplit(url)
    head = head.replace(b"Host: x", f"Host: {parts.netloc}".encode())  # the server answers to its own address only
    with socket.create_connection((parts.hostname, parts.port), timeout=wait_s) as s:
        s.sendall(head + body)
        return s.recv(65536).split(b"\r\n", 1)[0]


def test_a_body_over_the_byte_limit_is_refused_before_it_is_sent(server):
    url = server.url
    too_big = server.limits["max_upload_bytes"] + 1
    head = (f"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {too_big}\r\n\r\n").encode()
    assert b" 413 " in _raw_request(url, head)  # answered with no body sent at all
    _assert_healthy(url)


def test_a_body_of_undeclared_length_is_cut_off_at_the_byte_limit(server):
    def chunks():  # no Content-Length: sent chunked, so the server must count as it reads
        for _ in range(server.limits["max_upload_bytes"] // 100_000 + 3):
            yield b"x" * 100_000
    r = httpx.post(f"{server.url}/api/v1/predict", content=chunks(), headers={"content-type": "application/json"},
                   timeout=30)
    assert "upload limit" in _assert_json_error(r, 413)
    _assert_healthy(server.url)


def test_a_stalled_upload_times_out(server):
    url = server.url
    head = (b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    assert b" 408 " in _raw_request(url, head, b'{"image": "', wait_s=server.limits["timeout_s"] + 15)
    _assert_healthy(url)


def test_serve_refuses_a_non_positive_limit(capsys):
    assert cli.main(["serve", "--max-batch", "0"]) == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == "digitrec: error: max batch must be positive, got 0"


# --- reading a number: POST /api/v1/read ------------------------------------------------------

def _written_number(x, y, count: int) -> tuple[np.ndarray, str]:
    """The first ``count`` digits side by side as on paper (4x larger, 20 px apart) and the number they make."""
    gap = np.full((112, 20), 255, np.uint8)
    row = np.hstack([gap] + [part for a in x[:count] for part in (_paper(a), gap)])
    return np.pad(row, ((40, 40), (0, 0)), constant_values=255), "".join(map(str, y[:count]))


def test_read_answers_the_number_with_a_box_per_digit_as_the_library_does(server, mnist, recognizer):
    image, number = _written_number(*mnist, 5)
    r = httpx.post(f"{server.url}/api/v1/read", files={"image": ("zip.png", _png(image), "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"text", "confidence", "unsure", "value", "digits", "separators", "marks"}
    expected = recognizer.read_number(image)
    assert body["text"] == expected.text == number
    assert [d["box"] for d in body["digits"]] == [list(p.box) for p in expected.digits]
    assert [d["digit"] for d in body["digits"]] == [int(c) for c in number]


def test_read_takes_base64_json_and_a_blank_field_reads_as_no_digits(server, mnist):
    image, number = _written_number(*mnist, 3)
    r = httpx.post(f"{server.url}/api/v1/read", json={"image": base64.b64encode(_png(image)).decode()}, timeout=30)
    assert r.status_code == 200 and r.json()["text"] == number
    blank = httpx.post(f"{server.url}/api/v1/read", files={"image": ("b.png", _png(np.full((200, 800), 255, np.uint8)),
                                                                        "image/png")}, timeout=30)
    assert blank.status_code == 200 and blank.json() == {"text": "", "confidence": 0.0, "unsure": False, "value": None,
                                                         "digits": [], "separators": [], "marks": []}


def test_read_keeps_an_amounts_separators_and_gives_its_value(server, mnist):
    from digitrec.data.render.fields import Condition, make_field

    field = make_field(*mnist, Condition("amount", (4, 4), (0.1, 0.3), patterns=("##.##",)), np.random.default_rng(3))
    png = _png(field.image)
    r = httpx.post(f"{server.url}/api/v1/read?kind=amount", files={"image": ("a.png", png, "image/png")}, timeout=30)
    assert r.status_code == 200 and r.json()["text"] == field.text
    assert r.json()["value"] == str(Decimal(field.text)) and [s["char"] for s in r.json()["separators"]] == ["."]
    digits = httpx.post(f"{server.url}/api/v1/read?kind=digits", files={"image": ("a.png", png, "image/png")}, timeout=30)
    assert digits.json()["text"] == field.text.replace(".", "")
    assert httpx.post(f"{server.url}/api/v1/read?kind=roman", files={"image": ("a.png", png, "image/png")},
                      timeout=30).status_code == 422


def test_read_refuses_bad_input_with_json_errors_and_keeps_serving(server):
    url = server.url
    assert "not an image" in _assert_json_error(
        httpx.post(f"{url}/api/v1/read", files={"image": ("x.png", b"not a png", "image/png")}, timeout=30), 400)
    assert "too large" in _assert_json_error(
        httpx.post(f"{url}/api/v1/read", files={"image": ("b.png", _png_bomb(20000, 20000), "image/png")}, timeout=30),
        413)
    _assert_json_error(httpx.post(f"{url}/api/v1/read", json={"picture": "x"}, timeout=30), 400)
    _assert_json_error(httpx.get(f"{url}/api/v1/read", timeout=30), 405)
    assert "/api/v1/read" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    _assert_healthy(url)
