"""The web app: one port serving the REST API under ``/api/v1`` beside a Gradio page at ``/``.

Everything runs over one ``Recognizer``. ``guard.Guard`` stands in front of every route (hosts,
origins, the routes that exist, the API key, the body limit); the API checks each upload at the
boundary and gives it a deadline its work stops at. The page is Gradio's layout around plain
HTML widgets whose few lines of JavaScript call the REST API, so Gradio's own API (uploads, file
routes, queue) is never needed and never exposed. Nothing is fetched from outside the machine: no
analytics, no CDN (FastAPI's /docs pages are off for that reason), no web fonts.

To add an endpoint, add a function to ``api.api_router``; to add a page tab, add it to ``page.page``.
"""
from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import sys
import tempfile

# Gradio reads these when it is imported: no telemetry leaves the machine, and whatever it would write
# goes to a private folder of this process, removed when it ends
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
if "GRADIO_TEMP_DIR" not in os.environ:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="digitrec-gradio-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402

from ..deadline import DeadlineExceeded  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..inference import Recognizer  # noqa: E402
from .api import api_router  # noqa: E402
from .engine import Engine  # noqa: E402
from .guard import Guard  # noqa: E402
from .limits import ApiError, Limits, json_error  # noqa: E402
from .page import CSS, SCRIPT, page  # noqa: E402
from .review import REVIEW_PAGE, ReviewQueue, review_router  # noqa: E402
from .store import Store, open_store  # noqa: E402

__all__ = ["create_app", "serve", "HEADER_TIMEOUT_S", "FIRST_BYTE_S", "MAX_IN_FLIGHT", "MAX_CLIENT_CONNECTIONS"]

HEADER_TIMEOUT_S = 10.0   # a request's line and headers must arrive within this (slow-loris clients)
FIRST_BYTE_S = 5.0        # a new connection that sends nothing for this long is closed, as an idle kept-alive one is
KEEP_ALIVE_S = 5.0        # an idle kept-alive connection is closed after this
MAX_IN_FLIGHT = 256       # requests being answered at once (connections, idle or not, are not counted); then 503
MAX_CLIENT_CONNECTIONS = 64  # open connections from one address other than loopback; more are closed at once


def create_app(recognizer: Recognizer, limits: Limits | None = None, workers: int | None = None,
               api_key: str | None = None, cors_origins: tuple[str, ...] = (),
               loopback_port: int | None = None, store: Store | None = None,
               review: ReviewQueue | None = None, allowed_hosts: tuple[str, ...] = (),
               forwarded: bool = False) -> Guard:
    """Return the ASGI app: the REST API under /api/v1, the spec at /openapi.json, the page at /, all behind
    the guard (see ``guard.Guard`` for ``api_key``, ``cors_origins``, ``loopback_port``, ``allowed_hosts`` and
    ``forwarded``); corrections sent
    to the API go to ``store`` (None: the server stores none); ``review``: the queue served at /review."""
    limits = limits or Limits()
    engine = Engine(recognizer, limits.max_pixels, workers or os.cpu_count() or 2)
    app = FastAPI(title="digitrec", version="1", docs_url=None, redoc_url=None,  # those pages load a CDN
                  description="Handwritten digit recognition. Errors are JSON {\"error\": ...} with 4xx/5xx "
                              "codes. With an API key, send 'Authorization: Bearer KEY'.")
    # each of the project's errors by its class: Starlette answers those and goes on, while what reaches its
    # handler for Exception is answered, then raised again for the server to log with its traceback
    for exc in (ApiError, InputError, DeadlineExceeded, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(exc, json_error)
    app.include_router(review_router(review))  # before the API's catch-all answer to unknown /api/v1 paths
    app.include_router(api_router(engine, limits, store))
    app.add_api_route("/review", lambda: HTMLResponse(REVIEW_PAGE), include_in_schema=False)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    app = gr.mount_gradio_app(app, page(), path="/", theme=theme, css=CSS, js=SCRIPT, footer_links=[],
                              run_history=False, max_file_size=limits.max_upload_bytes, ssr_mode=False,
                              mcp_server=False, allowed_paths=[], blocked_paths=["/"])
    return Guard(app, limits.max_upload_bytes, api_key=api_key, cors_origins=cors_origins,
                 loopback_port=loopback_port, max_in_flight=MAX_IN_FLIGHT, allowed_hosts=allowed_hosts,
                 forwarded=forwarded)


class _Connections(HttpToolsProtocol):
    """uvicorn's HTTP protocol with this server's rules for connections: one that sends no byte within
    ``FIRST_BYTE_S``, or not its whole request head within ``HEADER_TIMEOUT_S``, is closed (uvicorn's own
    keep-alive timer does not run before the first request, and any byte received stops it); an address
    other than loopback holds at most ``MAX_CLIENT_CONNECTIONS`` (behind a proxy every client has the
    proxy's address, and the proxy caps them: see ``serve --help``)."""
    _timer = None
    _peer = None
    _first = False  # no byte received yet on this connection
    _open: dict[str, int] = {}  # open connections per counted address, for the whole server

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        peer = (transport.get_extra_info("peername") or ("",))[0]
        if not _is_loopback(peer):
            if self._open.get(peer, 0) >= MAX_CLIENT_CONNECTIONS:
                transport.close()
                return
            self._peer = peer
            self._open[peer] = self._open.get(peer, 0) + 1
        self._arm(FIRST_BYTE_S)
        self._first = True

    def data_received(self, data: bytes) -> None:
        if self._first:  # the first bytes: the rest of the head has the head's own time
            self._first = False
            self._disarm()
            self._arm(HEADER_TIMEOUT_S)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:
            self._arm(HEADER_TIMEOUT_S)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._peer is not None:
            left = self._open.pop(self._peer) - 1
            if left:
                self._open[self._peer] = left
            self._peer = None
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._timer = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model=None, host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None,
          api_key: str | None = None, cors_origins: tuple[str, ...] = (), trust_unverified: bool = False,
          store_corrections: bool | None = None, db: str | None = None, review: str | None = None,
          allowed_hosts: tuple[str, ...] = (), proxy: str | None = None) -> None:
    """Load the model and serve the page and the API until interrupted; corrections are stored (in ``db``,
    default ``store.default_url()``) when ``store_corrections``, by default only when serving on loopback;
    ``review``: a bulk run's results file, whose unsure fields are checked at /review; ``allowed_hosts``: the
    names the server answers to (its Host headers); ``proxy``: the reverse proxy's address, the only one whose
    ``X-Forwarded-*`` headers count (without it they are dropped)."""
    import torch
    import uvicorn

    from ..inference import load

    if not 0 < port < 65536:
        raise InputError(f"port must be 1-65535, not {port}")
    loopback = _is_loopback(host)
    if not loopback:
        print(f"digitrec: warning: listening on {host}, not loopback: other machines can reach this server"
              + ("" if api_key else "; set DIGITREC_API_KEY (or --api-key) to keep strangers out"),
              file=sys.stderr, flush=True)
    # many small requests: threads across requests beat intra-op threads on a tiny CNN (and do not spin)
    torch.set_num_threads(1)
    store = open_store(db) if (loopback if store_corrections is None else store_corrections) else None
    recognizer = load(model, trust_unverified=trust_unverified)
    queue = ReviewQueue(review, store, recognizer.checkpoint.checksum) if review else None
    app = create_app(recognizer, limits or Limits.from_env(), api_key=api_key, cors_origins=cors_origins,
                     loopback_port=port if loopback else None, store=store, review=queue,
                     allowed_hosts=allowed_hosts, forwarded=proxy is not None)
    try:  # bound here, so that a busy port is a one-line error rather than uvicorn's log and exit
        sock = socket.create_server((host, port))
    except (OSError, OverflowError) as e:
        raise InputError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    print(f"digitrec: serving http://{host}:{port}/ (REST API /api/v1, spec /openapi.json); Ctrl-C stops",
          flush=True)
    print(f"digitrec: corrections are stored in {store.where}" if store else "digitrec: corrections are not stored",
          flush=True)
    if queue:
        print(f"digitrec: {sum(i['reviewed'] is None for i in queue.items)} fields to check at "
              f"http://{host}:{port}/review", flush=True)
    # no limit_concurrency: uvicorn counts open connections with it, so idle sockets would lock everyone out;
    # the guard counts requests in flight instead
    config = uvicorn.Config(app, log_level="warning", access_log=False, http=_Connections,
                            timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=5,
                            proxy_headers=proxy is not None, forwarded_allow_ips=proxy)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes the Ctrl-C on: the way to stop
        print("digitrec: stopped", flush=True)
    finally:
        if queue:  # the answers given since the last merge, into the results file
            queue.merge()
