"""The web app: one FastAPI app serving the REST API under ``/api/v1`` beside a Gradio page at ``/``.

Everything runs over one ``Recognizer``. Uploads are checked at the boundary (body size before it is
read, pixel count from the image header before it is decoded, batch size, a per-request deadline);
every API error is JSON ``{"error": ...}`` with a 4xx/5xx code and the server keeps serving. Nothing
is fetched from outside the machine: no analytics, no CDN (FastAPI's /docs pages are off for that
reason; the spec is at /openapi.json), no web fonts.

To add an endpoint, add a function to ``_api``; to add a page tab, add a ``_..._tab`` function and
call it from ``_page``.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from html import escape

# Gradio reads these when it is imported: no telemetry leaves the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import APIRouter, FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from PIL import Image  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

from .errors import InputError  # noqa: E402
from .preprocess import load_image, preprocess  # noqa: E402
from .recognizer import Prediction, Recognizer  # noqa: E402

__all__ = ["Limits", "create_app", "serve"]

log = logging.getLogger("digitrec.serve")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server; each field can be set by an environment variable."""
    max_upload_bytes: int = 10_000_000  # request body in bytes (base64 JSON counts as sent); DIGITREC_MAX_UPLOAD_BYTES
    max_pixels: int = 16_000_000        # width x height of one image, read from its header; DIGITREC_MAX_PIXELS
    max_batch: int = 64                 # images in one /predict/batch request; DIGITREC_MAX_BATCH
    timeout_s: float = 10.0             # seconds to receive the body and predict; DIGITREC_TIMEOUT

    _ENV = {"max_upload_bytes": "DIGITREC_MAX_UPLOAD_BYTES", "max_pixels": "DIGITREC_MAX_PIXELS",
            "max_batch": "DIGITREC_MAX_BATCH", "timeout_s": "DIGITREC_TIMEOUT"}

    @classmethod
    def from_env(cls, **overrides) -> Limits:
        """Return the defaults, overridden by environment variables, overridden by non-None ``overrides``."""
        limits = cls()
        for f in fields(cls):
            raw = os.environ.get(cls._ENV[f.name])
            value = overrides.get(f.name)
            if value is None and raw is not None:
                try:
                    value = (float if f.name == "timeout_s" else int)(raw)
                except ValueError:
                    raise InputError(f"{cls._ENV[f.name]}={raw!r} is not a number") from None
            if value is not None:
                if value <= 0:
                    raise InputError(f"{f.name.replace('_', ' ')} must be positive, got {value}")
                limits = replace(limits, **{f.name: value})
        return limits


class _ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_error(request: Request, e: Exception) -> JSONResponse:
    """Every API failure as ``{"error": message}``, FastAPI's own (validation, 404, 405) included."""
    if isinstance(e, _ApiError):
        return _error(e.status, str(e))
    if isinstance(e, InputError):
        return _error(400, str(e))
    if isinstance(e, RequestValidationError):
        return _error(422, str(e.errors()))
    return _error(e.status_code, str(e.detail))


# --- prediction off the event loop -----------------------------------------------------------

def _check_pixels(src, max_pixels: int) -> None:
    """Refuse an image (bytes or path) whose header declares more than ``max_pixels``; PIL opens lazily."""
    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as img:
            width, height = img.size
    except Image.DecompressionBombError as e:
        raise _ApiError(413, f"image is too large: {e}") from None
    except Exception:
        return  # unreadable: preprocess names the problem
    if width * height > max_pixels:
        raise _ApiError(413, f"image is {width}x{height}, more than the {max_pixels:,}-pixel limit")


class _Engine:
    """Runs recognition on worker threads; requests that wait together share one model call.

    Preprocessing (decoding, cropping) runs per request on the pool, so a bad image fails only its own
    request; the model runs once per gathered batch, which costs little more than one image.
    """

    def __init__(self, recognizer: Recognizer, max_pixels: int, workers: int):
        self.recognizer = recognizer
        self.max_pixels = max_pixels
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="digitrec")
        self._waiting: list[tuple[list, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _preprocess_all(self, images: list, prefixes: list[str]) -> list[np.ndarray | None]:
        # prefixes go before error messages, so that a batch says which image was bad
        out = []
        for src, prefix in zip(images, prefixes):
            try:
                if isinstance(src, (bytes, str)):
                    _check_pixels(src, self.max_pixels)
                out.append(preprocess(src))
            except _ApiError as e:
                raise _ApiError(e.status, f"{prefix}{e}") from None
            except InputError as e:
                raise InputError(f"{prefix}{e}") from None
        return out

    def _read_number(self, src):
        if isinstance(src, (bytes, str)):
            _check_pixels(src, self.max_pixels)
        return self.recognizer.read_number(src)

    async def read_number(self, src):
        """Return the ``NumberReading`` of one image: segmentation and its one model call, on the pool."""
        return await self.run(self._read_number, src)

    async def preprocess(self, images: list, prefixes: list[str]) -> list[np.ndarray | None]:
        """Return the 28x28 arrays the model will see (``None`` for blanks); bytes and paths are size-checked."""
        return await self.run(self._preprocess_all, images, prefixes)

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
                preds = await self.run(self.recognizer.predict_preprocessed, [a for x, _ in batch for a in x])
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


# --- REST API --------------------------------------------------------------------------------

class TopDigit(BaseModel):
    digit: int
    probability: float


class PredictionOut(BaseModel):
    digit: int | None  # None: no digit found (blank, or rejected as not a digit)
    confidence: float
    probabilities: list[float]
    top3: list[TopDigit]


class DigitOut(PredictionOut):
    box: list[int]  # x, y, width, height in the uploaded image, pixels


class NumberOut(BaseModel):
    text: str  # the digits read, left to right; "" when there are none
    confidence: float  # product of the digits' confidences; 0 when there are none
    digits: list[DigitOut]
    marks: list[list[int]]  # boxes of marks left out of the text as not digits (a hyphen, a dot)


class ImageIn(BaseModel):
    image: str  # base64, optionally as a data: URL


class BatchIn(BaseModel):
    images: list[str]


class ErrorOut(BaseModel):
    error: str


_FILE = {"type": "string", "format": "binary"}


def _body_doc(field: str, many: bool, model: type[BaseModel]) -> dict:
    prop = {"type": "array", "items": _FILE} if many else _FILE
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": [field], "properties": {field: prop}}},
        "application/json": {"schema": model.model_json_schema()}}}}


_ERRORS = {code: {"model": ErrorOut, "description": why} for code, why in {
    400: "not an image, damaged, empty, bad base64 or bad JSON", 408: "body not received in time",
    413: "body, image or batch over its limit", 415: "neither multipart/form-data nor application/json",
    503: "prediction not finished in time"}.items()}


def _b64(text: str, name: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _ApiError(400, f"{name}: not valid base64") from None


async def _read_images(request: Request, many: bool, max_count: int) -> list[bytes]:
    """Return the uploaded images: multipart files or base64 JSON, under 'images' if ``many`` else 'image'."""
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    field = "images" if many else "image"
    if ctype == "multipart/form-data":
        try:
            async with request.form(max_files=max_count) as form:  # closes the spooled files after
                parts = form.getlist(field)
                if not parts or any(isinstance(p, str) for p in parts):
                    raise _ApiError(400, f"multipart body needs a file field named {field!r}")
                images = [await p.read() for p in parts]
        except HTTPException as e:
            if "Too many files" not in str(e.detail):
                raise _ApiError(400, f"malformed multipart body: {e.detail}") from None
            if many:
                raise _ApiError(413, f"more than {max_count} images in one request") from None
            raise _ApiError(400, "one image per request here; send more to /api/v1/predict/batch") from None
    elif ctype == "application/json":
        body = await request.body()
        if not body:
            raise _ApiError(400, "empty request body")
        try:
            doc = (BatchIn if many else ImageIn).model_validate(json.loads(body))
        except (ValueError, ValidationError):
            shape = '{"images": ["<base64>", ...]}' if many else '{"image": "<base64>"}'
            raise _ApiError(400, f"JSON body must be {shape}") from None
        texts = doc.images if many else [doc.image]
        if len(texts) > max_count:
            raise _ApiError(413, f"{len(texts)} images in one request; the limit is {max_count}")
        images = [_b64(t, f"images[{i}]" if many else "image") for i, t in enumerate(texts)]
    elif not ctype and request.headers.get("content-length", "0") == "0":
        raise _ApiError(400, "empty request body")
    else:
        raise _ApiError(415, f"content type {ctype or 'missing'}: send multipart/form-data with a file "
                             f"field {field!r}, or application/json with base64 in {field!r}")
    if not images:
        raise _ApiError(400, "no images in the request")
    for i, data in enumerate(images):
        if not data:
            raise _ApiError(400, f"{f'images[{i}]' if many else 'image'}: empty file")
    return images


async def _in_time(awaitable, deadline: float, status: int, what: str):
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(awaitable, max(deadline - loop.time(), 0))
    except asyncio.TimeoutError:
        raise _ApiError(status, f"{what} did not finish within the request timeout") from None


async def _predict_uploads(request: Request, engine: _Engine, limits: Limits, many: bool) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + limits.timeout_s
    images = await _in_time(_read_images(request, many, limits.max_batch if many else 1), deadline, 408,
                            "receiving the request body")
    prefixes = [f"images[{i}]: " for i in range(len(images))] if many else [""]
    x28 = await _in_time(engine.preprocess(images, prefixes), deadline, 503, "reading the image")
    preds = await _in_time(engine.predict(x28), deadline, 503, "the prediction")
    return [p.to_dict() for p in preds]


def _api(engine: _Engine, limits: Limits) -> APIRouter:
    api = APIRouter(prefix="/api/v1", responses=_ERRORS)

    @api.post("/predict", response_model=PredictionOut, openapi_extra=_body_doc("image", False, ImageIn),
              summary="Read the digit in one image (multipart field 'image', or JSON base64 'image')")
    async def predict(request: Request):
        return (await _predict_uploads(request, engine, limits, many=False))[0]

    @api.post("/predict/batch", response_model=list[PredictionOut],
              openapi_extra=_body_doc("images", True, BatchIn),
              summary=f"Read one digit per image, in order (up to the batch limit, default {Limits.max_batch})")
    async def predict_batch(request: Request):
        return await _predict_uploads(request, engine, limits, many=True)

    @api.post("/read", response_model=NumberOut, openapi_extra=_body_doc("image", False, ImageIn),
              summary="Read a number, one line of handwritten digits (multipart field 'image', or JSON base64 "
                      "'image'): the text and a box per digit")
    async def read(request: Request):
        deadline = asyncio.get_running_loop().time() + limits.timeout_s
        (image,) = await _in_time(_read_images(request, False, 1), deadline, 408, "receiving the request body")
        return (await _in_time(engine.read_number(image), deadline, 503, "reading the number")).to_dict()

    @api.get("/health", summary="Liveness, the model in use and the limits in force")
    async def health():
        ckpt = engine.recognizer.checkpoint
        return {"status": "ok", "model": {k: ckpt.get(k) for k in ("arch", "preset", "parameters")},
                "limits": asdict(limits)}

    @api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown(request: Request):
        path = request.scope["path"]
        allowed = sorted({m for r in api.routes if getattr(r, "path", None) == path for m in r.methods})
        if allowed:
            raise _ApiError(405, f"{path} takes {' or '.join(allowed)}, not {request.method}")
        raise _ApiError(404, f"no endpoint {request.method} {path}; the API is described at /openapi.json")

    return api


class _BodyLimit:
    """ASGI middleware: refuse API request bodies over ``max_bytes``, by Content-Length before reading any
    of it, or while it streams in when the length is not declared."""

    def __init__(self, app, max_bytes: int, prefix: str = "/api/"):
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        too_big = f"request body is larger than the {self.max_bytes:,}-byte upload limit"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _error(413, too_big)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _ApiError(413, too_big)
            return message

        await self.app(scope, counted, send)


# --- the page --------------------------------------------------------------------------------

_CSS = """
.digit-result .digit { font-size: 7rem; font-weight: 700; line-height: 1; text-align: center; }
.digit-result .confidence { text-align: center; font-size: 1.1rem; }
.digit-result .none { font-size: 1.6rem; text-align: center; padding: 2.5rem 0; opacity: .75; }
.number-result .digit { font-size: 4rem; letter-spacing: .05em; }
"""
# Gradio's sketchpad starts, and restarts after its bin button, with no tool chosen ("select the draw
# tool to start"): choose the brush, so that the user can just draw.
_PICK_BRUSH = """() => {
  const since = Date.now();
  const wait = setInterval(() => {
    const brush = document.querySelector('#sketchpad .toolbar-wrap button');
    if (brush || Date.now() - since > 30000) { clearInterval(wait); if (brush) brush.click(); }
  }, 100);
}"""
_NO_DIGIT = '<div class="none">no digit found</div>'
_SEEN_SCALE = 10  # the 28x28 model input is shown at 280x280, pixels kept sharp


def _page_result(x28: np.ndarray | None, pred: Prediction | None, note: str = ""):
    """The three outputs a tab shows: the digit (large) with its confidence, the top-3 bars, the 28x28 input."""
    seen = None if x28 is None else np.kron((x28 * 255).astype(np.uint8), np.ones((_SEEN_SCALE,) * 2, np.uint8))
    if pred is None or pred.digit is None:
        html = _NO_DIGIT if not note else f'<div class="none">no digit found<br><small>{escape(note)}</small></div>'
        return html, None, seen
    html = (f'<div class="digit">{pred.digit}</div>'
            f'<div class="confidence">confidence {pred.confidence:.1%}</div>')
    return html, {str(d): p for d, p in pred.top3}, seen


def _result_components(tab: str) -> list:
    html = gr.HTML(_NO_DIGIT, elem_id=f"{tab}-result", elem_classes=["digit-result"], label="Digit")
    top3 = gr.Label(num_top_classes=3, label="Top 3", elem_id=f"{tab}-top3")
    seen = gr.Image(label="What the model saw (28x28)", type="numpy", format="png", interactive=False,
                    height=220, elem_id=f"{tab}-seen", buttons=[])
    return [html, top3, seen]


async def _read_page_image(engine: _Engine, src):
    if src is None:
        return _page_result(None, None)
    try:
        (x28,) = await engine.preprocess([src], [""])
    except (InputError, _ApiError) as e:
        return _page_result(None, None, note=str(e))
    (pred,) = await engine.predict([x28])
    return _page_result(x28, pred)


def _draw_tab(engine: _Engine) -> None:
    with gr.Tab("Draw", id="draw"), gr.Row():
        with gr.Column():
            pad = gr.Sketchpad(label="Draw one digit", type="numpy", image_mode="RGBA", canvas_size=(400, 400),
                               brush=gr.Brush(default_size=14, colors=["#000000"], color_mode="fixed"),
                               layers=False, transforms=(), elem_id="sketchpad")
        with gr.Column():
            outputs = _result_components("draw")

    async def read_drawing(value):
        # the composite flattens the RGBA layers: ink on white, or on transparent where the canvas has no
        # background, which preprocess reads from the alpha channel
        return await _read_page_image(engine, value and value.get("composite"))

    # each stroke asks again; "always_last" drops the stale requests of a fast drawer.
    # No concurrency limit: the engine, not Gradio's queue, shares out the CPU.
    pad.change(read_drawing, pad, outputs, show_progress="hidden", trigger_mode="always_last",
               concurrency_limit=None)
    pad.clear(lambda: _page_result(None, None), None, outputs, js=_PICK_BRUSH, show_progress="hidden")


def _upload_tab(engine: _Engine) -> None:
    with gr.Tab("Upload", id="upload"), gr.Row():
        with gr.Column():
            # filepath with no image_mode: Gradio hands over the file undecoded, so the pixel limit applies first
            upload = gr.Image(label="Upload a photo or scan of one digit", type="filepath", image_mode=None,
                              sources=["upload", "clipboard"], elem_id="upload")
        with gr.Column():
            outputs = _result_components("upload")

    async def read_upload(path):
        return await _read_page_image(engine, path)

    upload.change(read_upload, upload, outputs, show_progress="hidden", concurrency_limit=None)


_NO_NUMBER = '<div class="none">no digits found</div>'
# the pad's brush, picked when its tab opens (see _PICK_BRUSH)
_PICK_NUMBER_BRUSH = _PICK_BRUSH.replace("#sketchpad", "#numberpad")


def _number_result(ink: np.ndarray | None, reading) -> tuple:
    """The number tab's outputs: the text (large) with its confidence, and the writing with a box per digit."""
    if reading is None or not reading.text:
        return _NO_NUMBER, None
    html = (f'<div class="digit">{reading.text}</div>'
            f'<div class="confidence">confidence {reading.confidence:.1%}</div>')
    paper = (255 - ink * 255).astype(np.uint8)
    boxes = []
    for p in reading.digits:
        x, y, w, h = p.box
        boxes.append(((x, y, x + w, y + h), str(p.digit)))
    return html, (paper, boxes)


def _number_tab(engine: _Engine) -> None:
    with gr.Tab("Write a number", id="number") as tab:
        pad = gr.Sketchpad(label="Write a number on one line (a ZIP code, an amount)", type="numpy",
                           image_mode="RGBA", canvas_size=(1000, 250),
                           brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                           layers=False, transforms=(), elem_id="numberpad")
        with gr.Row():
            result = gr.HTML(_NO_NUMBER, elem_id="number-result",
                             elem_classes=["digit-result", "number-result"], label="Number")
            boxes = gr.AnnotatedImage(label="The digits found", format="png", show_legend=False,
                                      elem_id="number-boxes", buttons=[])
    outputs = [result, boxes]

    async def read_writing(value):
        composite = value and value.get("composite")
        if composite is None:
            return _number_result(None, None)
        try:
            reading = await engine.read_number(composite)
        except InputError as e:
            return f'<div class="none">no digits found<br><small>{escape(str(e))}</small></div>', None
        return _number_result(await engine.run(load_image, composite), reading)

    pad.change(read_writing, pad, outputs, show_progress="hidden", trigger_mode="always_last",
               concurrency_limit=None)
    pad.clear(lambda: _number_result(None, None), None, outputs, js=_PICK_NUMBER_BRUSH, show_progress="hidden")
    tab.select(None, js=_PICK_NUMBER_BRUSH)


def _page(engine: _Engine) -> gr.Blocks:
    with gr.Blocks(title="digitrec", analytics_enabled=False) as page:
        gr.Markdown("# digitrec\nDraw a digit, upload a photo or scan of one, or write a number. The REST API "
                    "under `/api/v1` is described at [/openapi.json](/openapi.json).")
        with gr.Tabs():
            _draw_tab(engine)
            _upload_tab(engine)
            _number_tab(engine)
    return page


# --- the app ---------------------------------------------------------------------------------

def create_app(recognizer: Recognizer, limits: Limits | None = None, workers: int | None = None) -> FastAPI:
    """Return the FastAPI app: the REST API under /api/v1, the spec at /openapi.json, the page at /."""
    limits = limits or Limits()
    # Gradio decodes sketchpad uploads itself; PIL's own bomb check (an error at twice this) guards that path
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    engine = _Engine(recognizer, limits.max_pixels, workers or os.cpu_count() or 2)
    app = FastAPI(title="digitrec", version="1", docs_url=None, redoc_url=None,  # those pages load a CDN
                  description="Handwritten digit recognition. Errors are JSON {\"error\": ...} with 4xx/5xx codes.")
    for exc in (_ApiError, InputError, RequestValidationError, HTTPException):
        app.add_exception_handler(exc, _json_error)
    app.add_middleware(_BodyLimit, max_bytes=limits.max_upload_bytes)
    app.include_router(_api(engine, limits))
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(app, _page(engine), path="/", theme=theme, css=_CSS, js=_PICK_BRUSH,
                               footer_links=[], run_history=False, max_file_size=limits.max_upload_bytes,
                               ssr_mode=False, mcp_server=False)


def serve(model=None, host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None) -> None:
    """Load the model and serve the page and the API until interrupted."""
    import torch
    import uvicorn

    from .recognizer import load

    # many small requests: threads across requests beat intra-op threads on a tiny CNN (and do not spin)
    torch.set_num_threads(1)
    app = create_app(load(model), limits or Limits.from_env())
    try:  # bound here, so that a busy port is a one-line error rather than uvicorn's log and exit
        sock = socket.create_server((host, port))
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    print(f"digitrec: serving http://{host}:{port}/ (REST API /api/v1, spec /openapi.json); Ctrl-C stops",
          flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes the Ctrl-C on: the way to stop
        print("digitrec: stopped", flush=True)
