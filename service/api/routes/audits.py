"""/v1/audits: audit a candidate corpus against a stored reference; fetch a stored audit."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from detectors.errors import InvalidInputError
from detectors.shard_sampling import ShardedSample
from service.api.deps import (
    EmbedderDep,
    EmbedderLoader,
    GuardedRoute,
    PoolDep,
    ReadAccess,
    SettingsDep,
    StoreDep,
    WriteAccess,
)
from service.api.errors import ERROR_RESPONSES
from service.api.routes.common import (
    JOB_RESPONSE,
    Document,
    check_documents,
    read_upload,
    run_or_queue,
)
from service.audit import run_audit
from service.jobs import Progress
from service.policy import Policy
from service.schemas import AuditResult, Job
from service.settings import Settings
from service.store import Store
from service.workpool import WorkPool
from simulations.forecast import Plan

router = APIRouter(
    prefix="/v1/audits", tags=["audits"], responses=ERROR_RESPONSES, route_class=GuardedRoute
)


MAX_COUNT = 2**62  # documents, bytes, draws: beyond any corpus, within a 64-bit integer


class SampleOrigin(BaseModel):
    """Where `texts` came from when the client drew them as a sample (`audit --url`)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    corpus_size: int = Field(
        ge=1, le=MAX_COUNT, description="Documents in the corpus the sample came from"
    )
    corpus_size_exact: bool = Field(default=True, description="False: an estimate")
    sampling: Literal["full read", "two-stage"] = "full read"
    bytes_read: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="Bytes the client read"
    )
    bytes_total: int | None = Field(
        default=None, ge=0, le=MAX_COUNT, description="Bytes of the corpus"
    )
    clusters: list[Annotated[int, Field(ge=0, le=MAX_COUNT)]] | None = Field(
        default=None, description="Per document, the draw it came from (two-stage)"
    )
    draws: int = Field(default=0, ge=0, le=MAX_COUNT)
    n_clusters: int = Field(
        default=0, ge=0, le=MAX_COUNT, description="Clusters there were to draw from"
    )


class AuditRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error

    reference: str = Field(description="Name or id of a stored reference")
    texts: list[Document] = Field(description="The candidate corpus", min_length=1)
    policy: Policy | None = Field(default=None, description="Default: the service's settings")
    plan: Plan | None = Field(default=None, description="The retraining plan to forecast")
    sample: SampleOrigin | None = Field(
        default=None,
        description="Set when `texts` is a sample the client drew from a larger corpus: the "
        "audit then reports that corpus's size and the bytes read, as a local audit does",
    )


async def _audit(
    request: AuditRequest,
    response: Response,
    store: Store,
    pool: WorkPool,
    loader: EmbedderLoader,
    settings: Settings,
) -> AuditResult | Job:
    check_documents(request.texts, settings)
    texts = sent_sample(request)
    store.reference_info(request.reference)  # an unknown reference is a 404 now, not in a job

    def work(progress: Progress | None = None) -> AuditResult:
        return run_audit(
            store,
            request.reference,
            texts,
            embedder=loader.get(),
            settings=settings,
            policy=request.policy,
            plan=request.plan,
            progress=progress,
        )

    return await run_or_queue(
        work,
        kind="audit",
        n_documents=len(request.texts),
        response=response,
        store=store,
        pool=pool,
        settings=settings,
    )


def sent_sample(request: AuditRequest) -> list[str] | ShardedSample:
    """The texts, or the client's sample with the corpus it came from (422 if inconsistent)."""
    origin = request.sample
    if origin is None:
        return request.texts
    n = len(request.texts)
    if origin.corpus_size < n:
        raise InvalidInputError(
            f"sample.corpus_size is {origin.corpus_size}, fewer than the {n} texts sent"
        )
    if origin.clusters is not None and len(origin.clusters) != n:
        raise InvalidInputError(
            f"sample.clusters has {len(origin.clusters)} entries for {n} texts: one per text"
        )
    if origin.clusters is None and origin.sampling == "two-stage":
        raise InvalidInputError("a two-stage sample needs sample.clusters (one per text)")
    return ShardedSample(
        texts=request.texts,
        corpus_size=origin.corpus_size,
        corpus_size_exact=origin.corpus_size_exact,
        bytes_read=origin.bytes_read,
        bytes_total=origin.bytes_total,
        clusters=np.asarray(origin.clusters if origin.clusters is not None else range(n)),
        sampling=origin.sampling,
        n_draws=origin.draws,
        n_clusters=origin.n_clusters,
    )


@router.post(
    "",
    response_model=AuditResult | Job,
    dependencies=[WriteAccess],
    responses=JOB_RESPONSE,
)
async def create_audit(
    body: AuditRequest,
    response: Response,
    store: StoreDep,
    pool: PoolDep,
    loader: EmbedderDep,
    settings: SettingsDep,
) -> AuditResult | Job:
    """Synthetic fraction, coverage, modes, forecast and verdict (200), or a job (202)."""
    return await _audit(body, response, store, pool, loader, settings)


@router.post(
    "/upload",
    response_model=AuditResult | Job,
    dependencies=[WriteAccess],
    responses=JOB_RESPONSE,
)
async def upload_audit(
    reference: Annotated[str, Form()],
    file: Annotated[UploadFile, File(description="JSONL, Parquet or plain text")],
    response: Response,
    store: StoreDep,
    pool: PoolDep,
    loader: EmbedderDep,
    settings: SettingsDep,
    text_field: Annotated[str, Form()] = "text",
) -> AuditResult | Job:
    """Like POST /v1/audits, from an uploaded file (format from its extension)."""
    texts = await read_upload(file, text_field, settings)
    request = AuditRequest(reference=reference, texts=texts)
    return await _audit(request, response, store, pool, loader, settings)


@router.get("/{audit_id}", response_model=AuditResult, dependencies=[ReadAccess])
def get_audit(audit_id: str, store: StoreDep) -> AuditResult:
    return store.get_audit(audit_id)
