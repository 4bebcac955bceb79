"""The one place domain errors become HTTP answers: a 4xx with the error's own message."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from detectors.errors import (
    CollapseGuardError,
    CorruptReferenceError,
    InvalidInputError,
    ModelNotFoundError,
    ReferenceMismatchError,
)
from service.store import ConflictError, NotFoundError, UnreadableRecordError
from service.workpool import PoolFullError


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx: `detail` is a message saying what to fix, or (422 from request validation)
    FastAPI's list of field errors."""

    detail: str | list[ValidationIssue]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "A body that cannot be parsed (bytes that are not UTF-8 JSON)"),
        (401, "Missing or invalid API key"),
        (403, "Read-only API key"),
        (404, "Unknown reference, audit or job"),
        (409, "Name taken, or reference built with another model"),
        (410, "A stored audit or job this version cannot read: run the work again"),
        (413, "Request body over COLLAPSE_GUARD_MAX_BODY_BYTES"),
        (422, "Invalid input; the message says what to fix"),
        (429, "Busy: retry after the Retry-After header's seconds"),
    )
}


class LimitError(InvalidInputError):
    """A request over one of the service's size limits (the message names the setting)."""


_STATUS: tuple[tuple[type[CollapseGuardError], int], ...] = (
    (NotFoundError, 404),
    (UnreadableRecordError, 410),
    (ConflictError, 409),
    (ReferenceMismatchError, 409),
    (PoolFullError, 429),
    (InvalidInputError, 422),
    (ModelNotFoundError, 503),
    (CorruptReferenceError, 503),
)


def status_of(exc: CollapseGuardError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of the OpenAPI path that `path` is (public, unlike the router's nesting of
    included routers). Concrete paths match before templated ones (OpenAPI's rule):
    /v1/references/upload is the upload, not a reference named "upload"."""
    matches: list[tuple[int, set[str]]] = []
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            matches.append((template.count("{"), {m.upper() for m in operations}))
    fewest = min((n for n, _ in matches), default=0)
    methods = set().union(*(m for n, m in matches if n == fewest))
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow lists the first matching route's methods only; a path served by
            # several routes (GET and POST /v1/references) must list them all (RFC 9110).
            allowed = ", ".join(_allowed_methods(app, request.url.path))
            return JSONResponse(
                {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allowed}
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(CollapseGuardError)
    async def domain_error(_: Request, exc: CollapseGuardError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, PoolFullError) else None
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc), headers=headers)
