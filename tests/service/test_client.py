"""The Python client: retry and error handling on an in-process transport, then a real server."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from service.client import MAX_RETRY_AFTER, BaseClient, ServiceError, retry_after_seconds


def test_the_client_starts_without_the_numerical_stack():
    # A pipeline runs one `collapse-guard audit --url` process per shard: it must not pay the
    # seconds of importing torch, scikit-learn or the simulator only to send text to a service.
    heavy = ("torch", "sklearn", "scipy", "faiss", "transformers", "simulations.chain_pool")
    code = (
        "import sys, service.client, service.commands.backend; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_retry_after_header_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(7.0)
    assert retry_after_seconds("-4") == 0.0  # a date in the past: retry at once
    assert retry_after_seconds("9999") == MAX_RETRY_AFTER
    assert retry_after_seconds(None) == retry_after_seconds("soon") == 1.0


def _client(handler, **kwargs) -> tuple[BaseClient, list[float]]:
    slept: list[float] = []
    client = BaseClient(
        "http://testserver",
        api_key="k",
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
        **kwargs,
    )
    return client, slept


def test_429_is_retried_after_the_servers_hint_then_succeeds():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": str(len(calls))}, json={})
        return httpx.Response(200, json={"ok": True})

    client, slept = _client(handler)
    assert client.request("GET", "/v1/x").json() == {"ok": True}
    assert slept == [1.0, 2.0] and len(calls) == 3
    assert calls[0].headers["X-API-Key"] == "k"


def test_429_gives_up_after_max_retries_with_the_services_message():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "queue full"})

    client, slept = _client(handler, max_retries=2)
    with pytest.raises(ServiceError) as err:
        client.request("POST", "/v1/audits")
    assert err.value.status_code == 429 and "queue full" in str(err.value)
    assert slept == [2.0, 2.0]


def test_error_detail_is_surfaced_for_plain_and_validation_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/a":
            return httpx.Response(404, json={"detail": "no reference named 'bbc'"})
        return httpx.Response(
            422,
            json={"detail": [{"loc": ["body", "texts", 0], "msg": "must not be empty"}]},
        )

    client, _ = _client(handler)
    with pytest.raises(ServiceError, match="404 from GET /v1/a: no reference named 'bbc'"):
        client.request("GET", "/v1/a")
    with pytest.raises(ServiceError, match=r"422 .*texts\.0: must not be empty"):
        client.request("POST", "/v1/b")


def test_unreachable_service_is_a_service_error():
    client = BaseClient("http://127.0.0.1:9", timeout=2)  # discard port: nothing listens
    with pytest.raises(ServiceError, match="cannot reach the service"):
        client.request("GET", "/healthz")
