"""What one request may ask of the server, and the JSON error every failure is answered with."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ..deadline import DeadlineExceeded
from ..errors import ImageTooLarge, InputError
from ..imaging.decode import MAX_PIXELS

__all__ = ["Limits", "ApiError", "ErrorOut", "error_response", "json_error"]

log = logging.getLogger("digitrec.serve")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server; each field can be set by an environment variable."""
    max_upload_bytes: int = 10_000_000  # request body in bytes (base64 JSON counts as sent); DIGITREC_MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS        # width x height of one image, read from its header; DIGITREC_MAX_PIXELS
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


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def json_error(request: Request, e: Exception) -> JSONResponse:
    """Every API failure as ``{"error": message}``, FastAPI's own (validation, 404, 405) included; a bug is
    a 500 whose message says nothing of the server (the traceback goes to the server's log). A client's
    mistake is one debug line in the log, not a traceback: a client sending bad requests cannot fill it."""
    response = _answer(request, e)
    if response.status_code < 500:
        log.debug("%s %s: %d %s", request.method, request.url.path, response.status_code, e)
    return response


def _answer(request: Request, e: Exception) -> JSONResponse:
    if isinstance(e, ApiError):
        return error_response(e.status, str(e), e.headers)
    if isinstance(e, ImageTooLarge):
        return error_response(413, str(e))
    if isinstance(e, InputError):
        return error_response(400, str(e))
    if isinstance(e, DeadlineExceeded):
        return error_response(503, "the request did not finish within the server's time limit")
    if isinstance(e, RequestValidationError):
        return error_response(422, "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))
    if isinstance(e, HTTPException):
        return error_response(e.status_code, str(e.detail), e.headers)  # a 405's Allow among them
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=e)
    return error_response(500, "internal error; the server has logged it")


class ErrorOut(BaseModel):
    """Every error the server answers: a 4xx or 5xx status and this body."""
    error: str = Field(description="what is wrong, in words",
                       examples=["image bytes: not an image file; send PNG, JPEG, GIF, TIFF, BMP, WebP or PPM"])
