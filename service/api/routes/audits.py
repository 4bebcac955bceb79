"""/v1/audits: audit a candidate corpus against a stored reference; fetch a stored audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import (
    EmbedderDep,
    EmbedderLoader,
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
from service.api.strict_json import StrictJSONRoute
from service.audit import run_audit
from service.jobs import Progress
from service.policy import Policy
from service.schemas import AuditResult, Job
from service.settings import Settings
from service.store import Store
from service.workpool import WorkPool
from simulations.forecast import Plan

router = APIRouter(
    prefix="/v1/audits", tags=["audits"], responses=ERROR_RESPONSES, route_class=StrictJSONRoute
)


class AuditRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    reference: str = Field(description="Name or id of a stored reference")
    texts: list[Document] = Field(description="The candidate corpus", min_length=1)
    policy: Policy | None = Field(default=None, description="Default: the service's settings")
    plan: Plan | None = Field(default=None, description="The retraining plan to forecast")


async def _audit(
    request: AuditRequest,
    response: Response,
    store: Store,
    pool: WorkPool,
    loader: EmbedderLoader,
    settings: Settings,
) -> AuditResult | Job:
    check_documents(request.texts, settings)
    store.reference_info(request.reference)  # an unknown reference is a 404 now, not in a job

    def work(progress: Progress | None = None) -> AuditResult:
        return run_audit(
            store,
            request.reference,
            request.texts,
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
