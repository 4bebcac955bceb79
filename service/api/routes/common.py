"""Helpers the routes share: run work in the pool, check request limits, read uploads."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Response, UploadFile, status
from pydantic import StringConstraints

from detectors.errors import InvalidInputError
from service.api.errors import LimitError
from service.inputs import read_documents
from service.jobs import Progress, start_job
from service.schemas import AuditResult, Job, ReferenceInfo
from service.settings import Settings
from service.store import Store
from service.workpool import WorkPool

T = TypeVar("T")
R = TypeVar("R", ReferenceInfo, AuditResult)
# A document: any text with at least one non-blank character (JSON Schema patterns search).
Document = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]


async def in_pool(pool: WorkPool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU-bound `fn` in the bounded pool (429 when full) without blocking the event loop."""
    return await asyncio.wrap_future(pool.submit(fn, *args, **kwargs))


JOB_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"model": Job, "description": "Large input: a background job (poll /v1/jobs/{id})"}
}


async def run_or_queue(
    work: Callable[[Progress], R],
    *,
    kind: Literal["reference", "audit"],
    n_documents: int,
    response: Response,
    store: Store,
    pool: WorkPool,
    settings: Settings,
) -> R | Job:
    """Run `work` now (in the pool) for a small input, or queue it as a job and answer 202."""
    if n_documents > settings.sync_documents:
        response.status_code = status.HTTP_202_ACCEPTED
        return start_job(store, pool, kind, work, total=n_documents)
    return await in_pool(pool, work)


def check_documents(texts: list[str], settings: Settings) -> None:
    if len(texts) > settings.max_documents:
        raise LimitError(
            f"{len(texts)} documents in one request; the limit is {settings.max_documents} "
            "(setting COLLAPSE_GUARD_MAX_DOCUMENTS): split the corpus into several requests"
        )
    for i, text in enumerate(texts):
        if len(text) > settings.max_document_chars:
            raise LimitError(
                f"document {i} has {len(text)} characters; the limit is "
                f"{settings.max_document_chars} (setting COLLAPSE_GUARD_MAX_DOCUMENT_CHARS): "
                "split long documents"
            )


async def read_upload(upload: UploadFile, text_field: str, settings: Settings) -> list[str]:
    """The documents of an uploaded JSONL / Parquet / text file (format from its name)."""
    name = Path(upload.filename or "upload.jsonl").name
    suffix = "".join(Path(name).suffixes) or ".jsonl"
    with tempfile.TemporaryDirectory(prefix="cg-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with open(path, "wb") as fh:
            while chunk := await upload.read(2**20):
                fh.write(chunk)
        try:
            texts = await asyncio.to_thread(read_documents, [path], text_field=text_field)
        except InvalidInputError as exc:
            # Messages name the temporary path; the caller knows the file by its own name.
            exc.args = (str(exc).replace(str(path), name).replace(tmp, "<upload>"),)
            raise exc from None
    check_documents(texts, settings)
    return texts
