"""The guard in front of every route: which Host, Origin and forwarding headers get a request in."""
from __future__ import annotations

import asyncio
import json

from digitrec.apps.guard import Guard


async def _echo(scope, receive, send):
    """An app that answers the headers it was given."""
    body = json.dumps([[k.decode(), v.decode()] for k, v in scope["headers"]]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _call(guard: Guard, headers: list[tuple[str, str]], path: str = "/api/v1/health") -> tuple[int, object]:
    """The status and JSON body ``guard`` answers a GET with these headers."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_two_host_or_two_origin_headers_are_refused():
    guard = Guard(_echo, 1000, loopback_port=7860)
    status, body = _call(guard, [("Host", "127.0.0.1:7860"), ("Host", "evil.example")])
    assert status == 400 and "Host" in body["error"]
    status, body = _call(guard, [("Host", "127.0.0.1:7860"), ("Origin", "http://127.0.0.1:7860"),
                                 ("Origin", "http://evil.example")])
    assert status == 400 and "Origin" in body["error"]


def test_forwarded_headers_are_dropped_unless_a_proxy_sets_them():
    headers = [("Host", "127.0.0.1:7860"), ("X-Forwarded-Host", "evil.example"), ("Forwarded", "host=evil.example")]
    _, seen = _call(Guard(_echo, 1000, loopback_port=7860), headers)
    assert [k for k, _ in seen] == ["host"]
    _, seen = _call(Guard(_echo, 1000, loopback_port=7860, forwarded=True), headers)
    assert ["x-forwarded-host", "evil.example"] in seen


def test_an_allowed_host_is_answered_and_any_other_is_421():
    guard = Guard(_echo, 1000, allowed_hosts=("digits.example.org",))
    assert _call(guard, [("Host", "digits.example.org")])[0] == 200
    assert _call(guard, [("Host", "Digits.Example.org:443")])[0] == 200
    status, body = _call(guard, [("Host", "evil.example")])
    assert status == 421 and "--allowed-host" in body["error"]
    assert _call(Guard(_echo, 1000), [("Host", "evil.example")])[0] == 200  # off loopback, no list: a proxy decides
