"""The REST API under ``/api/v1``: typed responses, uploads as multipart files or base64 JSON, limits
checked at the boundary, every error JSON ``{"error": ...}``."""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import threading
import time
from dataclasses import asdict
from typing import Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from ..errors import InputError
from .engine import Engine
from .limits import ApiError, ErrorOut, Limits, log
from .schemas import (
    BatchIn,
    BatchItemOut,
    CorrectionIn,
    CorrectionOut,
    HealthOut,
    ImageIn,
    NumberOut,
    PredictionOut,
)
from .store import Store, StoreError

__all__ = ["api_router"]


_FILE = {"type": "string", "format": "binary"}


def _body_doc(field: str, many: bool, model: type[BaseModel]) -> dict:
    prop = {"type": "array", "items": _FILE} if many else _FILE
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": [field], "properties": {field: prop}}},
        "application/json": {"schema": model.model_json_schema()}}}}


ERRORS = {code: {"model": ErrorOut, "description": why} for code, why in {
    400: "not an image, damaged, empty, bad base64 or bad JSON", 401: "the server wants its API key",
    429: "this client has its share of large work in progress already",
    403: "a cross-origin request from an origin not allowed", 408: "body not received in time",
    413: "body, image or batch over its limit", 415: "neither multipart/form-data nor application/json",
    422: "a query parameter of the wrong type", 500: "a bug in the server (logged there)",
    503: "not finished within the request time limit"}.items()}


def _b64(text: str, name: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{name}: not valid base64") from None


async def _read_images(request: Request, many: bool, max_count: int, names: list | None = None) -> list[bytes]:
    """Return the uploaded images: multipart files or base64 JSON, under 'images' if ``many`` else 'image';
    each one's name (a file's name, else images[i]) goes into ``names``."""
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    field = "images" if many else "image"
    if ctype == "multipart/form-data":
        try:
            async with request.form(max_files=max_count) as form:  # closes the spooled files after
                parts = form.getlist(field)
                if not parts or any(isinstance(p, str) for p in parts):
                    raise ApiError(400, f"multipart body needs a file field named {field!r}")
                images = [await p.read() for p in parts]
                if names is not None:
                    names += [(p.filename or f"images[{i}]")[:200] for i, p in enumerate(parts)]
        except HTTPException as e:
            if "Too many files" not in str(e.detail):
                raise ApiError(400, f"malformed multipart body: {e.detail}") from None
            if many:
                raise ApiError(413, f"more than {max_count} images in one request") from None
            raise ApiError(400, "one image per request here; send more to /api/v1/predict/batch") from None
    elif ctype == "application/json":
        body = await request.body()
        if not body:
            raise ApiError(400, "empty request body")
        try:
            doc = (BatchIn if many else ImageIn).model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):  # RecursionError: JSON nested past Python's stack
            shape = '{"images": ["<base64>", ...]}' if many else '{"image": "<base64>"}'
            raise ApiError(400, f"JSON body must be {shape}") from None
        texts = doc.images if many else [doc.image]
        if len(texts) > max_count:
            raise ApiError(413, f"{len(texts)} images in one request; the limit is {max_count}")
        images = [_b64(t, f"images[{i}]" if many else "image") for i, t in enumerate(texts)]
        if names is not None:
            names += [f"images[{i}]" for i in range(len(texts))]
    elif not ctype and request.headers.get("content-length", "0") == "0":
        raise ApiError(400, "empty request body")
    else:
        raise ApiError(415, f"content type {ctype or 'missing'}: send multipart/form-data with a file "
                             f"field {field!r}, or application/json with base64 in {field!r}")
    if not images:
        raise ApiError(400, "no images in the request")
    for i, data in enumerate(images):
        if not data:
            raise ApiError(400, f"{f'images[{i}]' if many else 'image'}: empty file")
    return images


async def _in_time(awaitable, when: float, status: int, what: str):
    """``awaitable``'s result, or an ``ApiError(status)`` once ``time.monotonic()`` passes ``when``."""
    try:
        return await asyncio.wait_for(awaitable, max(when - time.monotonic(), 0))
    except asyncio.TimeoutError:
        raise ApiError(status, f"{what} did not finish within the request timeout") from None


def _client(request: Request) -> str | None:
    """The address a request came from: whose share of the slow lane it takes."""
    return request.client.host if request.client else None


def _png_url(x28: np.ndarray | None) -> str | None:
    if x28 is None:
        return None
    buf = io.BytesIO()
    Image.fromarray((x28 * 255).round().astype(np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


async def _predict_uploads(request: Request, engine: Engine, limits: Limits, many: bool,
                           include_input: bool) -> list[dict]:
    """The readings of the request's images; in a batch each is named, and a bad one is an item with its
    error rather than a failed request."""
    when = time.monotonic() + limits.timeout_s
    names: list[str] = []
    images = await _in_time(_read_images(request, many, limits.max_batch if many else 1, names), when, 408,
                            "receiving the request body")
    prefixes = [f"{n}: " for n in names] if many else [""]
    read = await _in_time(engine.read(images, prefixes, when, _client(request), each=many), when, 503,
                          "reading the image")
    out = []
    for item in read:
        if isinstance(item, InputError):
            out.append({"error": str(item)})
            continue
        pred, x28 = item
        d = pred.to_dict()
        if include_input:
            d["input"] = _png_url(x28)
        out.append(d)
    if many:
        for d, name in zip(out, names):
            d["file"] = name
    return out


_INCLUDE_INPUT = Query(False, description="also answer the 28x28 image the model read (a PNG data: URL in 'input')")
_KIND = Query("any", description="what the field holds: any (digits and . , - /), digits (a ZIP code, an account "
                                 "number), amount (. and , kept, and its value), date (/ - . kept), boxes (a row of "
                                 "printed boxes, one digit or none each)")


async def _read_correction(request: Request) -> tuple[CorrectionIn, bytes]:
    """The correction sent, multipart (a file 'image' and text fields) or JSON ``CorrectionIn``, and its
    picture's bytes."""
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    image = None
    if ctype == "multipart/form-data":
        try:
            async with request.form(max_files=1, max_fields=8) as form:
                part = form.get("image")
                if part is None or isinstance(part, str):
                    raise ApiError(400, "multipart body needs a file field named 'image'")
                doc = {k: form.get(k) for k in ("correct", "read", "kind", "writer", "source") if isinstance(form.get(k), str)}
                doc["image"] = ""  # the file's bytes are kept as they are, not sent through base64
                image = await part.read()
        except HTTPException as e:
            raise ApiError(400, f"malformed multipart body: {e.detail}") from None
    elif ctype == "application/json":
        try:
            doc = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise ApiError(400, "JSON body must be {\"image\": \"<base64>\", \"correct\": \"4\", ...}") from None
    else:
        raise ApiError(415, f"content type {ctype or 'missing'}: send multipart/form-data or application/json")
    try:
        doc = CorrectionIn.model_validate(doc)
    except ValidationError as e:
        where = ".".join(map(str, e.errors()[0]["loc"])) or "body"
        raise ApiError(400, f"{where}: {e.errors()[0]['msg']}") from None
    return doc, _b64(doc.image, "image") if image is None else image


class _Verdict:
    """Decided once, under a lock: the worker stores the correction (it asks while time is left) or the
    request is answered 503 (the deadline passed first), never both."""

    def __init__(self, when: float):
        self.when, self._lock, self._by = when, threading.Lock(), None

    def claim(self, who: str) -> bool:
        with self._lock:
            if self._by is None and (who == "late" or time.monotonic() <= self.when):
                self._by = who
            return self._by == who


async def _stored_in_time(verdict: _Verdict, work) -> int:
    """The stored correction's id, or a 503 once the deadline passes and the worker has not committed."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), max(verdict.when - time.monotonic(), 0))
    except asyncio.TimeoutError:
        if verdict.claim("late"):  # the worker rolls back, or decodes nothing if it has not begun
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its error is expected, not logged
            raise ApiError(503, "storing the correction did not finish within the request timeout") from None
        return await task  # it was committing as the time ran out: it is stored, and answered so


def api_router(engine: Engine, limits: Limits, store: Store | None = None) -> APIRouter:
    api = APIRouter(prefix="/api/v1")

    @api.post("/predict", response_model=PredictionOut, response_model_exclude_unset=True, responses=ERRORS,
              openapi_extra=_body_doc("image", False, ImageIn),
              summary="Read the digit in one image (multipart field 'image', or JSON base64 'image')")
    async def predict(request: Request, include_input: bool = _INCLUDE_INPUT):
        return (await _predict_uploads(request, engine, limits, False, include_input))[0]

    @api.post("/predict/batch", response_model=list[BatchItemOut], response_model_exclude_unset=True,
              responses=ERRORS,
              openapi_extra=_body_doc("images", True, BatchIn),
              summary=f"Read one digit per image, in order (up to the batch limit, default {Limits.max_batch}); "
                      "each item is named, and an image that cannot be read is an item with its error")
    async def predict_batch(request: Request, include_input: bool = _INCLUDE_INPUT):
        return await _predict_uploads(request, engine, limits, True, include_input)

    @api.post("/read", response_model=NumberOut, responses=ERRORS, openapi_extra=_body_doc("image", False, ImageIn),
              summary="Read a number, one line of handwritten digits (multipart field 'image', or JSON base64 "
                      "'image'): the text and a box per digit")
    async def read(request: Request, kind: Literal["any", "digits", "amount", "date", "boxes"] = _KIND):
        when = time.monotonic() + limits.timeout_s
        (image,) = await _in_time(_read_images(request, False, 1), when, 408, "receiving the request body")
        return (await _in_time(engine.read_number(image, when, _client(request), kind), when, 503, "reading the number")).to_dict()

    @api.get("/health", response_model=HealthOut, summary="Liveness, the model in use and the limits in force",
             responses={500: ERRORS[500]})
    async def health():
        ckpt = engine.recognizer.checkpoint
        return {"status": "ok", "model": {k: getattr(ckpt, k) for k in ("arch", "preset", "parameters", "checksum")},
                "limits": asdict(limits), "stores_corrections": store is not None}

    @api.post("/corrections", status_code=201, response_model=CorrectionOut, responses=ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": {"type": "object", "required": ["image", "correct"], "properties": {
                      "image": _FILE, **{k: {"type": "string"} for k in (
                          "correct", "read", "kind", "writer", "source")}}}},
                  "application/json": {"schema": CorrectionIn.model_json_schema()}}}},
              summary="Store a correction: the picture and what it really is (kept for fine-tuning; 403 when "
                      "this server stores none)")
    async def correct(request: Request):
        when = time.monotonic() + limits.timeout_s
        if store is None:
            raise ApiError(403, "this server does not store corrections (start it with --store-corrections)")
        doc, image = await _in_time(_read_correction(request), when, 408, "receiving the request body")
        if not image:
            raise ApiError(400, "image: empty file")
        verdict = _Verdict(when)
        try:
            ident = await _stored_in_time(verdict, engine.run_until(
                when, [image], _client(request), store.add, image, doc.correct, read=doc.read, kind=doc.kind, source=doc.source,
                model_checksum=engine.recognizer.checkpoint.checksum, writer=doc.writer, limit=limits.max_pixels,
                in_time=lambda: verdict.claim("stored")))
        except StoreError as e:  # its words name the database: they go to the server's log, not to the client
            log.error("%s", e)
            raise ApiError(503, "the correction could not be stored: the server's database failed; "
                                "try again later") from None
        return {"id": ident, "correct": doc.correct, "kind": doc.kind}

    @api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown(request: Request):
        path = request.scope["path"]
        allowed = sorted({m for r in api.routes if getattr(r, "path", None) == path for m in r.methods})
        if allowed:
            raise ApiError(405, f"{path} takes {' or '.join(allowed)}, not {request.method}",
                           {"allow": ", ".join(allowed)})
        raise ApiError(404, f"no endpoint {request.method} {path}; the API is described at /openapi.json")

    return api

