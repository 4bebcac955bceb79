"""/v1/jobs: state, progress and result of background work."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import GuardedRoute, ReadAccess, StoreDep
from service.api.errors import ERROR_RESPONSES
from service.schemas import Job

router = APIRouter(
    prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES, route_class=GuardedRoute
)


@router.get("/{job_id}", response_model=Job, dependencies=[ReadAccess])
def get_job(job_id: str, store: StoreDep) -> Job:
    return store.get_job(job_id)
