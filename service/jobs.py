"""Background jobs: large reference builds and audits run in the work pool and persist their state.

A job is stored `queued` when accepted, `running` once a worker takes it, then `succeeded` with its
result or `failed` with a reason; progress (documents embedded) is saved as it goes, at most once a
second. Jobs a dead process left behind are marked failed when the service starts
(`Store.fail_interrupted_jobs`), except reference builds, which resume from their staging
(`service.build_jobs`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Literal

from detectors.errors import CollapseGuardError
from service.schemas import AuditResult, Job, ReferenceInfo
from service.store import Store, now
from service.workpool import PoolFullError, WorkPool

Progress = Callable[[int, int], None]
Work = Callable[[Progress], ReferenceInfo | AuditResult]

# The id of the job the current worker thread runs (None outside a job): a reference build keeps
# its input under this id so that a restarted service can resume it.
current_job: ContextVar[str | None] = ContextVar("current_job", default=None)


def start_job(
    store: Store, pool: WorkPool, kind: Literal["reference", "audit"], work: Work, total: int
) -> Job:
    """Queue `work` (which reports progress through its argument) and return the queued job."""
    stamp = now()
    job = Job(
        id=uuid.uuid4().hex[:12],
        kind=kind,
        state="queued",
        created=stamp,
        updated=stamp,
        total=total,
    )
    store.save_job(job)  # before the worker can save "running" over it
    try:
        pool.submit(_run, store, job, work)
    except PoolFullError:
        store.delete_job(job.id)  # refused (429): no trace of a job that never existed
        raise
    return job


def resume_job(store: Store, pool: WorkPool, job: Job, work: Work) -> None:
    """Queue again a job a dead process left running (its `work` picks up where it stopped)."""
    queued = job.model_copy(update={"state": "queued", "updated": now()})
    store.save_job(queued)
    try:
        pool.submit(_run, store, queued, work)
    except PoolFullError:  # more interrupted builds than the queue holds
        error = (
            "the service restarted with more interrupted jobs than its queue holds: submit again"
        )
        store.save_job(queued.model_copy(update={"state": "failed", "error": error}))


def _run(store: Store, job: Job, work: Work) -> None:
    # Set for this job only: the pool thread runs other work (synchronous requests) after it.
    token = current_job.set(job.id)
    try:
        _run_job(store, job, work)
    finally:
        current_job.reset(token)


def _run_job(store: Store, job: Job, work: Work) -> None:
    current = job.model_copy(update={"state": "running", "updated": now()})
    store.save_job(current)
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last, current
        if time.monotonic() - last < 1.0 and done < total:
            return
        last = time.monotonic()
        current = current.model_copy(update={"done": done, "total": total, "updated": now()})
        store.save_job(current)

    try:
        result = work(progress)
        field = "reference" if isinstance(result, ReferenceInfo) else "audit"
        update = {"state": "succeeded", field: result, "done": current.total, "updated": now()}
        store.save_job(current.model_copy(update=update))
    except CollapseGuardError as exc:
        store.save_job(
            current.model_copy(update={"state": "failed", "error": str(exc), "updated": now()})
        )
    except Exception as exc:  # a bug: the job says so rather than staying "running" forever
        store.save_job(
            current.model_copy(
                update={
                    "state": "failed",
                    "error": f"internal error: {type(exc).__name__}: {exc}",
                    "updated": now(),
                }
            )
        )
