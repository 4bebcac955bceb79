"""ASGI middleware: the request body limit (413), loopback-only answers for a service without
API keys (403), and Prometheus request metrics."""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def _reject(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over `max_bytes`: at once from Content-Length, or as soon as a chunked
    body's bytes pass the limit (so a client cannot stream an unbounded body into memory)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"request body over {self.max_bytes} bytes (setting COLLAPSE_GUARD_MAX_BODY_BYTES): "
            "send fewer documents per request or upload a file in parts"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _reject(send, 413, message)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError(message)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await _reject(send, 413, message)


class _TooLargeError(HTTPException):
    """Raised from `receive` as a chunked body passes the limit. An HTTPException, so that a
    body parser that wraps other errors in its own 400 (FastAPI's) lets it through as the 413
    it is."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def is_loopback(host: str | None) -> bool:
    """Whether a client address is this machine's own (a Unix socket has none: also local)."""
    if not host:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class LoopbackOnly:
    """A service without API keys lets every caller write. `collapse-guard serve` refuses to
    bind anything but loopback then; this holds the same rule however the app is started
    (`uvicorn --factory`, gunicorn, a process manager): a request from another address gets
    403 saying how to set keys, and nothing behind it runs."""

    message = (
        "this service has no API keys, so it answers only clients on its own machine: set "
        "COLLAPSE_GUARD_API_KEYS (digests from `collapse-guard hash-key`) to serve others"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if not is_loopback(client[0] if client else None):
                if scope["type"] == "http":
                    await _reject(send, 403, self.message)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


class Metrics:
    """Counts requests by method, route template and status, and times them."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "collapse_guard_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "collapse_guard_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def recording_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route: Any = scope.get("route")
            # The route template, not the raw path: ids must not explode the label set.
            name = getattr(route, "path", "unmatched")
            self.requests.labels(scope["method"], name, str(status["code"])).inc()
            self.latency.labels(scope["method"], name).observe(time.perf_counter() - start)
