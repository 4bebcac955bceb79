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
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from detectors.errors import CollapseGuardError
from service.policy import Policy
from service.schemas import AuditResult, Job, ReferenceInfo
from simulations.plans import Forecast, Plan

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


class Client(BaseClient):
    """Typed methods for every endpoint; each returns the model the service answers with."""

    def __enter__(self) -> Client:
        return self

    # -- health
    def healthz(self) -> bool:
        return bool(self.request("GET", "/healthz").json().get("status") == "ok")

    def ready(self) -> bool:
        """Whether /readyz says the model is loaded and the store answers (never raises 503)."""
        try:
            self.request("GET", "/readyz")
        except ServiceError as exc:
            if exc.status_code in (0, 503):
                return False
            raise
        return True

    # -- references
    def create_reference(self, name: str, texts: list[str]) -> ReferenceInfo | Job:
        """201 -> ReferenceInfo; a large input -> the background Job (see `wait_for_job`)."""
        r = self.request("POST", "/v1/references", json={"name": name, "texts": texts})
        return (
            Job.model_validate(r.json())
            if r.status_code == 202
            else ReferenceInfo.model_validate(r.json())
        )

    def upload_reference(
        self, name: str, path: str | Path, *, text_field: str = "text"
    ) -> ReferenceInfo | Job:
        with open(path, "rb") as fh:
            r = self.request(
                "POST",
                "/v1/references/upload",
                data={"name": name, "text_field": text_field},
                files={"file": (Path(path).name, fh)},
            )
        return (
            Job.model_validate(r.json())
            if r.status_code == 202
            else ReferenceInfo.model_validate(r.json())
        )

    def append_documents(self, name: str, texts: list[str]) -> ReferenceInfo | Job:
        r = self.request("POST", f"/v1/references/{name}/documents", json={"texts": texts})
        if r.status_code == 202:
            return Job.model_validate(r.json())
        return ReferenceInfo.model_validate(r.json())

    def list_references(self) -> list[ReferenceInfo]:
        return [
            ReferenceInfo.model_validate(x) for x in self.request("GET", "/v1/references").json()
        ]

    def reference(self, name: str) -> ReferenceInfo:
        return self.get_model(ReferenceInfo, f"/v1/references/{name}")

    def delete_reference(self, name: str) -> None:
        self.request("DELETE", f"/v1/references/{name}")

    # -- audits and forecasts
    def audit(
        self,
        reference: str,
        texts: list[str],
        *,
        policy: Policy | None = None,
        plan: Plan | None = None,
        sample: dict[str, Any] | None = None,
    ) -> AuditResult | Job:
        """`sample`: when `texts` is a sample of a larger corpus, where it came from (see
        `sample_origin`): the result then reports that corpus."""
        body: dict[str, Any] = {"reference": reference, "texts": texts}
        if sample is not None:
            body["sample"] = sample
        if policy is not None:
            body["policy"] = policy.model_dump(mode="json")
        if plan is not None:
            body["plan"] = plan.model_dump(mode="json")
        r = self.request("POST", "/v1/audits", json=body)
        return (
            Job.model_validate(r.json())
            if r.status_code == 202
            else AuditResult.model_validate(r.json())
        )

    def audit_files(
        self,
        reference: str,
        reader: Any,
        *,
        audit_size: int = 5000,
        full_read_bytes: int = 256 * 2**20,
        block_bytes: int = 16 * 2**10,
        seed: int = 0,
        policy: Policy | None = None,
        plan: Plan | None = None,
    ) -> AuditResult | Job:
        """Audit files of any size: `reader` (a `service.inputs.CorpusReader`) is sampled here
        (two-stage when large) and only the sample is sent, with the corpus it came from."""
        import numpy as np

        drawn = reader.sample(
            audit_size,
            np.random.default_rng(seed),
            full_read_bytes=full_read_bytes,
            block_bytes=block_bytes,
        )
        return self.audit(
            reference, drawn.texts, policy=policy, plan=plan, sample=sample_origin(drawn)
        )

    def get_audit(self, audit_id: str) -> AuditResult:
        return self.get_model(AuditResult, f"/v1/audits/{audit_id}")

    def what_if(self, synthetic_fraction: float, tail_coverage: float, plan: Plan) -> Forecast:
        body = {
            "synthetic_fraction": synthetic_fraction,
            "tail_coverage": tail_coverage,
            "plan": plan.model_dump(mode="json"),
        }
        return self.send_model(Forecast, "POST", "/v1/forecasts/what-if", json=body)

    def forecast_audit(self, audit_id: str, plan: Plan) -> Forecast:
        body = {"plan": plan.model_dump(mode="json")}
        return self.send_model(Forecast, "POST", f"/v1/audits/{audit_id}/forecast", json=body)

    # -- jobs
    def job(self, job_id: str) -> Job:
        return self.get_model(Job, f"/v1/jobs/{job_id}")

    def wait_for_job(
        self,
        job: Job | str,
        *,
        progress: JobProgress | None = None,
        poll: float = 0.5,
        timeout: float = 3600.0,
    ) -> Job:
        """Poll until the job succeeds (returned) or fails (`ServiceError` with its reason)."""
        job_id = job if isinstance(job, str) else job.id
        deadline = time.monotonic() + timeout
        while True:
            current = self.job(job_id)
            if progress is not None:
                progress(current.done, current.total)
            if current.state == "succeeded":
                return current
            if current.state == "failed":
                raise ServiceError(200, f"job {job_id} failed: {current.error}")
            if time.monotonic() > deadline:
                raise ServiceError(0, f"job {job_id} still {current.state} after {timeout:.0f} s")
            self._sleep(poll)


def sample_origin(drawn: Any) -> dict[str, Any]:
    """The request's `sample` object for a `detectors.shard_sampling.ShardedSample`."""
    return {
        "corpus_size": int(drawn.corpus_size),
        "corpus_size_exact": bool(drawn.corpus_size_exact),
        "sampling": drawn.sampling,
        "bytes_read": drawn.bytes_read,
        "bytes_total": drawn.bytes_total,
        "clusters": [int(c) for c in drawn.clusters],
        "draws": int(drawn.n_draws),
        "n_clusters": int(drawn.n_clusters),
    }
