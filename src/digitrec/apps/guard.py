"""The server's front door: one ASGI middleware in front of everything, the REST API and the page alike.

What it enforces, in order, for every request:

1. one ``Host`` and at most one ``Origin`` header; ``Host`` names this server (when it listens on loopback: a
   web page elsewhere cannot reach it through DNS rebinding; or one of ``--allowed-host``); ``X-Forwarded-*``
   and ``Forwarded`` are dropped unless a proxy is configured (Gradio would write a forged host into its page);
2. no cross-origin request gets in unless ``--cors-origin`` names its origin, and then only to the API;
   preflights are answered here, and no CORS header from below (Gradio answers preflights for any
   localhost origin, with credentials) reaches a client;
3. only known routes exist: the API, its spec, and the few static routes the page loads. Gradio's own
   API (uploads, file serving, queue, config, monitoring) is never reachable, so no request can make it
   read, copy or serve a file of the server's;
4. with an API key, every route but the health check wants it (``Authorization: Bearer``, ``X-API-Key``,
   or the cookie that ``/?key=KEY`` sets for the page, which holds a token derived from the key);
5. the body limit, by ``Content-Length`` before any of it is read and while it streams in;
6. at most ``max_in_flight`` requests are answered at once; past it a request gets 503 and Retry-After.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

from .limits import ApiError

__all__ = ["Guard", "PAGE_PREFIXES", "COOKIE"]

# what the Gradio page loads, and nothing else of Gradio's
PAGE_PREFIXES = ("/assets/", "/static/")
PAGE_PATHS = ("/", "/theme.css", "/favicon.ico", "/review")
API_PREFIX = "/api/v1/"  # any other /api/ path is no route of ours (Gradio's would answer it)
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SPEC = "/openapi.json"
OPEN_WITHOUT_KEY = ("/api/v1/health",)  # load balancers' probes carry no key
COOKIE = "digitrec_key"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                     (b"x-frame-options", b"SAMEORIGIN")]


def _json(status: int, message: str, headers: list | None = None):
    body = json.dumps({"error": message}).encode()

    async def respond(send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *_SECURITY_HEADERS, *(headers or [])]})
        await send({"type": "http.response.body", "body": body})
    return respond


def _host_name(host: bytes) -> bytes:
    """The name a Host header gives, without its port: ``[::1]:80`` -> ``[::1]``, ``a.org:443`` -> ``a.org``."""
    host = host.lower()
    if host.startswith(b"["):
        return host.partition(b"]")[0] + b"]"
    return host.rpartition(b":")[0] if host.count(b":") == 1 else host


class Guard:
    def __init__(self, app, max_bytes: int, api_key: str | None = None, cors_origins: tuple[str, ...] = (),
                 loopback_port: int | None = None, max_in_flight: int | None = None,
                 allowed_hosts: tuple[str, ...] = (), forwarded: bool = False):
        """``loopback_port``: the server listens on loopback at this port, so only loopback Host headers
        are valid; None when it listens elsewhere. ``allowed_hosts``: the names it also answers to (any
        Host when there are none and it is not on loopback); ``forwarded``: a proxy in front sets the
        ``X-Forwarded-*`` headers, which are otherwise dropped."""
        self.app, self.max_bytes = app, max_bytes
        self.max_in_flight, self.in_flight = max_in_flight, 0
        self.api_key = api_key.encode() if api_key else None
        # the page's cookie holds a token derived from the key, not the key: a cookie read off a browser's
        # disk or a proxy's log opens the page, and gives no one the key the API's other clients use
        self.cookie_token = hmac.new(self.api_key, b"digitrec page cookie", hashlib.sha256).hexdigest().encode() \
            if api_key else None
        self.cors_origins = set(cors_origins)
        self.forwarded = forwarded
        names = [*(_LOOPBACK if loopback_port is not None else ()), *(h.lower() for h in allowed_hosts)]
        # a name alone matches any port: the port a client dials is the proxy's, not necessarily ours
        self.hosts = {n.encode() for n in names} if names else None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # websockets: the page uses none
            return await send({"type": "websocket.close", "code": 1008})
        if not self.forwarded:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                          if not k.startswith(b"x-forwarded-") and k != b"forwarded"]}
        refusal = self._refusal(scope)
        if refusal is not None:
            return await refusal(send)
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        allowed_origin = origin if origin is not None and origin.decode("latin-1") in self.cors_origins else None
        if scope["method"] == "OPTIONS":
            return await self._preflight(allowed_origin, scope["path"], send)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _json(413, self._too_big)(send)
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            return await _json(503, "the server is answering as many requests as it can; try again in a moment",
                               [(b"retry-after", b"1")])(send)
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self._forward(scope, receive, send, allowed_origin)
        finally:
            self.in_flight -= 1

    @property
    def _too_big(self) -> str:
        return f"request body is larger than the {self.max_bytes:,}-byte upload limit"

    async def _forward(self, scope, receive, send, allowed_origin: bytes | None) -> None:
        """The app's answer, its CORS headers replaced; a body that streams past the limit is answered 413 here
        (FastAPI turns any error while it reads a JSON body into its own 400)."""
        seen, over, started = 0, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                over = True
                raise ApiError(413, self._too_big)
            return message

        async def filtered(message):
            nonlocal started
            if over and not started:  # the app's answer to a body it could not read: the 413 below replaces it
                return
            if message["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                if allowed_origin is not None:
                    kept.append((b"access-control-allow-origin", allowed_origin))
                    kept.append((b"vary", b"origin"))
                message = {**message, "headers": kept + _SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, counted, filtered)
        except ApiError:
            if not over:
                raise
        if over and not started:
            await _json(413, self._too_big)(send)

    def _refusal(self, scope):
        """The error response a request gets before it reaches the app, or None to let it in."""
        headers = dict(scope["headers"])
        path, method = scope["path"], scope["method"]
        names = [k for k, _ in scope["headers"]]
        for name in (b"host", b"origin"):
            if names.count(name) > 1:  # which one counts would be up to each layer: none does
                return _json(400, f"more than one {name.decode().title()} header")
        if self.hosts is not None and _host_name(headers.get(b"host", b"")) not in self.hosts:
            return _json(421, "this server does not answer to the host the Host header names (loopback"
                              + (", or --allowed-host" if self.hosts - {h.encode() for h in _LOOPBACK} else "") + ")")
        origin = headers.get(b"origin")
        if origin is not None and not self._same_origin(origin, headers.get(b"host")):
            if origin.decode("latin-1") not in self.cors_origins or not path.startswith(API_PREFIX):
                return _json(403, "cross-origin requests are refused; start the server with --cors-origin to allow "
                                  "an origin")
        page = path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)
        if not (page or path.startswith(API_PREFIX) or path == SPEC):
            return _json(404, f"no such route {path}; the API is described at {SPEC}")
        if (page or path == SPEC) and method not in ("GET", "HEAD", "OPTIONS"):
            return _json(405, f"{path} takes GET, not {method}", [(b"allow", b"GET, HEAD")])
        if method not in _METHODS:  # TRACE, CONNECT and made-up ones: no route takes them
            return _json(405, f"no route takes {method[:20]}", [(b"allow", b"GET, HEAD, POST, OPTIONS")])
        if self.api_key is not None and path not in OPEN_WITHOUT_KEY and method != "OPTIONS":
            if path == "/" and self._query_key(scope):
                return self._login(scope)
            if not self._has_key(headers):
                return _json(401, "this server wants its API key: send 'Authorization: Bearer KEY' (or open "
                                  "/?key=KEY once in a browser)", [(b"www-authenticate", b"Bearer")])
        return None

    @staticmethod
    def _same_origin(origin: bytes, host: bytes | None) -> bool:
        return host is not None and origin.split(b"://", 1)[-1].lower() == host.lower()

    def _query_key(self, scope) -> bool:
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("key", [""])[0].encode()
        return bool(given) and hmac.compare_digest(given, self.api_key)

    def _login(self, scope):
        """``/?key=KEY``: keep the key in a cookie the page's own requests carry, and drop it from the URL."""
        cookie = f"{COOKIE}={self.cookie_token.decode()}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def respond(send):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/"), (b"set-cookie", cookie), (b"content-length", b"0"),
                                    *_SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": b""})
        return respond

    def _has_key(self, headers: dict) -> bool:
        offered = []
        auth = headers.get(b"authorization", b"")
        if auth.lower().startswith(b"bearer "):
            offered.append(auth[7:].strip())
        if b"x-api-key" in headers:
            offered.append(headers[b"x-api-key"].strip())
        cookies = []
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == COOKIE.encode():
                cookies.append(value)
        return any(hmac.compare_digest(k, self.api_key) for k in offered) or \
            any(hmac.compare_digest(c, self.cookie_token) for c in cookies)

    async def _preflight(self, allowed_origin: bytes | None, path: str, send):
        if allowed_origin is None or not path.startswith(API_PREFIX):
            return await _json(403, "cross-origin requests are refused; start the server with --cors-origin to "
                                    "allow an origin")(send)
        await send({"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-origin", allowed_origin), (b"access-control-allow-methods", b"GET, POST"),
            (b"access-control-allow-headers", b"authorization, content-type, x-api-key"),
            (b"access-control-max-age", b"600"), (b"vary", b"origin"), (b"content-length", b"0"),
            *_SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": b""})
