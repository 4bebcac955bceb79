"""/v1/references: create (JSON body or file upload), list, show, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

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
from service.audit import append_documents, build_reference
from service.building import check_rest_build_name
from service.jobs import Progress, current_job
from service.schemas import Job, ReferenceInfo
from service.settings import Settings
from service.store import NAME_PATTERN, Store
from service.workpool import WorkPool

router = APIRouter(
    prefix="/v1/references",
    tags=["references"],
    responses=ERROR_RESPONSES,
    route_class=GuardedRoute,
)


class ReferenceCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error

    name: str = Field(
        description="1-100 letters, digits, '-', '_' or '.'",
        pattern=NAME_PATTERN,
        examples=["bbc-news"],
    )
    texts: list[Document] = Field(description="The human documents", min_length=1)


async def _create(
    name: str,
    texts: list[str],
    response: Response,
    store: Store,
    pool: WorkPool,
    loader: EmbedderLoader,
    settings: Settings,
) -> ReferenceInfo | Job:
    check_documents(texts, settings)
    check_rest_build_name(store, name, settings.data_dir)  # fails now, not in a job

    def work(progress: Progress | None = None) -> ReferenceInfo:
        job = current_job.get()
        return build_reference(
            store,
            name,
            texts,
            embedder=loader.get(),
            settings=settings,
            progress=progress,
            # A job keeps its documents in its staging, so a restarted service resumes it; a
            # request answered at once (at most sync_documents) is one chunk.
            keep_input_for_job=job,
            chunk_documents=settings.build_chunk_documents if job else max(len(texts), 1),
        )

    response.status_code = status.HTTP_201_CREATED  # unless queued (202)
    return await run_or_queue(
        work,
        kind="reference",
        n_documents=len(texts),
        response=response,
        store=store,
        pool=pool,
        settings=settings,
    )


@router.post(
    "",
    response_model=ReferenceInfo | Job,
    status_code=201,
    dependencies=[WriteAccess],
    responses=JOB_RESPONSE,
)
async def create_reference(
    body: ReferenceCreate,
    response: Response,
    store: StoreDep,
    pool: PoolDep,
    loader: EmbedderDep,
    settings: SettingsDep,
) -> ReferenceInfo | Job:
    """Embed the documents and store them as a reference (201), or start a job (202)."""
    return await _create(body.name, body.texts, response, store, pool, loader, settings)


@router.post(
    "/upload",
    response_model=ReferenceInfo | Job,
    status_code=201,
    dependencies=[WriteAccess],
    responses=JOB_RESPONSE,
)
async def upload_reference(
    name: Annotated[str, Form()],
    file: Annotated[UploadFile, File(description="JSONL, Parquet or plain text")],
    response: Response,
    store: StoreDep,
    pool: PoolDep,
    loader: EmbedderDep,
    settings: SettingsDep,
    text_field: Annotated[str, Form()] = "text",
) -> ReferenceInfo | Job:
    """Like POST /v1/references, from an uploaded file (format from its extension)."""
    texts = await read_upload(file, text_field, settings)
    return await _create(name, texts, response, store, pool, loader, settings)


class DocumentsAppend(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error

    texts: list[Document] = Field(description="Human documents to add", min_length=1)


@router.post(
    "/{name}/documents",
    response_model=ReferenceInfo | Job,
    dependencies=[WriteAccess],
    responses=JOB_RESPONSE,
)
async def append_to_reference(
    name: str,
    body: DocumentsAppend,
    response: Response,
    store: StoreDep,
    pool: PoolDep,
    loader: EmbedderDep,
    settings: SettingsDep,
) -> ReferenceInfo | Job:
    """Add documents to a reference without rebuilding its index (200), or start a job (202)."""
    check_documents(body.texts, settings)
    store.reference_info(name)  # 404 now, not in a job

    def work(progress: Progress | None = None) -> ReferenceInfo:
        return append_documents(
            store,
            name,
            body.texts,
            embedder=loader.get(),
            settings=settings,
            progress=progress,
        )

    return await run_or_queue(
        work,
        kind="reference",
        n_documents=len(body.texts),
        response=response,
        store=store,
        pool=pool,
        settings=settings,
    )


@router.get("", response_model=list[ReferenceInfo], dependencies=[ReadAccess])
def list_references(store: StoreDep) -> list[ReferenceInfo]:
    return store.list_references()


@router.get("/{name}", response_model=ReferenceInfo, dependencies=[ReadAccess])
def show_reference(name: str, store: StoreDep) -> ReferenceInfo:
    return store.reference_info(name)


@router.delete("/{name}", status_code=204, dependencies=[WriteAccess])
def delete_reference(name: str, store: StoreDep) -> Response:
    store.delete_reference(name)
    return Response(status_code=204)
