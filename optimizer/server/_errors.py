"""Every error the API returns is one JSON shape with a status that says whose fault it is; none is a 500
unless the server itself is broken."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from promptopt.errors import InputError, ModelCallError, NotFound, OptimizeError
from promptopt.registry import LabelConflict
from promptopt.secrets import scrub_secrets

log = logging.getLogger("promptopt.server")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """``{"error": {"code": "not_found", "message": "...", "field": null}}``"""

    model_config = ConfigDict(frozen=True)
    error: ErrorDetail


class ApiError(Exception):
    """An HTTP error raised by a route or a dependency (auth)."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=scrub_secrets(message), field=field))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field(first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return error_response(422, "invalid_request", f"{field or 'request'}: {first.get('msg')}{more}", field=field)


async def _input(_request: Request, exc: InputError) -> JSONResponse:
    return error_response(422, "invalid_request", exc.message, field=exc.field or None)


async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def _conflict(_request: Request, exc: LabelConflict) -> JSONResponse:
    return error_response(409, "conflict", str(exc))


async def _model_call(_request: Request, exc: ModelCallError) -> JSONResponse:
    if exc.status == 429:
        headers = None if exc.retry_after is None else {"Retry-After": str(max(1, round(exc.retry_after)))}
        return error_response(429, "model_rate_limited", str(exc), headers=headers)
    return error_response(502, "model_call_failed", str(exc))


async def _api(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8...): a bad body, as 422 says
        return error_response(422, "invalid_request", f"body: {exc.detail}", field="body")
    return error_response(
        exc.status_code, f"http_{exc.status_code}", str(exc.detail), headers=getattr(exc, "headers", None)
    )


async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
    log.error("store error: %s", scrub_secrets(str(exc.orig)))
    return error_response(
        503, "store_unavailable", "the store did not answer; try again later", headers={"Retry-After": "5"}
    )


async def _optimize(_request: Request, exc: OptimizeError) -> JSONResponse:
    return error_response(400, "rejected", f"{type(exc).__name__}: {exc}")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal", "unexpected server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Map our exceptions (and FastAPI's) to :class:`ErrorBody` responses."""
    handlers: list[tuple[Any, Any]] = [
        (RequestValidationError, _validation),
        (InputError, _input),
        (NotFound, _not_found),
        (LabelConflict, _conflict),
        (ModelCallError, _model_call),
        (ApiError, _api),
        (OptimizeError, _optimize),
        (StarletteHTTPException, _http),
        (DBAPIError, _database),
        (Exception, _unexpected),
    ]
    for exc_type, handler in handlers:
        app.add_exception_handler(exc_type, handler)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: these statuses answer with :class:`ErrorBody`."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


_DESCRIPTIONS = {
    401: "No bearer token",
    403: "Wrong bearer token",
    404: "Unknown prompt, label or version",
    409: "The label moved meanwhile",
    422: "Invalid request (the field is named)",
    429: "The model provider is rate limiting",
    502: "The model call failed",
    503: "The store did not answer",
}
