"""The one place domain errors become HTTP answers: a 4xx with the error's own message."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from detectors.errors import (
    CollapseGuardError,
    CorruptReferenceError,
    InvalidInputError,
    ModelNotFoundError,
    ReferenceMismatchError,
)
from service.store import ConflictError, NotFoundError
from service.workpool import PoolFullError


class LimitError(InvalidInputError):
    """A request over one of the service's size limits (the message names the setting)."""


_STATUS: tuple[tuple[type[CollapseGuardError], int], ...] = (
    (NotFoundError, 404),
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


def install(app: FastAPI) -> None:
    @app.exception_handler(CollapseGuardError)
    async def domain_error(_: Request, exc: CollapseGuardError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, PoolFullError) else None
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc), headers=headers)
