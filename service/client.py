"""Python client of the collapse-guard REST API (httpx), returning the service's pydantic models.

    from service.client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as cg:
        ref = cg.create_reference("bbc", texts)
        result = cg.audit(ref.id, candidate_texts)          # AuditResult, as the CLI's --json
        print(result.verdict.decision)

Every method raises `ServiceError` (a `CollapseGuardError`) for a 4xx/5xx answer, carrying the
status code and the service's message; 429 answers are retried after the server's Retry-After
(seconds or an HTTP date), up to `max_retries` times. Long work runs as a job: `wait_for_job`
polls it and reports progress through a callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from detectors.errors import CollapseGuardError

M = TypeVar("M", bound=BaseModel)
JobProgress = Callable[[int, int], None]  # (done, total), as the CLI's progress bars take
DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 carries no usable Retry-After
MAX_RETRY_AFTER = 60.0  # never sleep longer than this on one server hint


class ServiceError(CollapseGuardError):
    """The service answered with an error status; `status_code` and the service's message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        seconds = when - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _message(response: httpx.Response) -> str:
    """The service's own error text (FastAPI puts it in `detail`), else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # pydantic validation errors: "field: message; ..."
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class BaseClient:
    """Transport, authentication, 429 retries and error mapping; endpoints live in `Client`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self.max_retries = max_retries
        self._sleep = sleep

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; wait and retry on 429; raise `ServiceError` for any other error."""
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise ServiceError(
                    0, f"cannot reach the service at {self._http.base_url}: {exc}"
                ) from None
            if response.status_code == 429 and attempt < self.max_retries:
                self._sleep(retry_after_seconds(response.headers.get("retry-after")))
                continue
            if response.is_error:
                raise ServiceError(
                    response.status_code,
                    f"{response.status_code} from {method} {path}: {_message(response)}",
                )
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_model(self, model: type[M], path: str, **kwargs: Any) -> M:
        return model.model_validate(self.request("GET", path, **kwargs).json())

    def send_model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self.request(method, path, **kwargs).json())
