"""/v1/forecasts: what-if collapse forecasts from numbers, or from a stored audit's numbers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import ForecastPoolDep, GuardedRoute, ReadAccess, StoreDep
from service.api.errors import ERROR_RESPONSES
from service.api.routes.common import in_pool
from simulations.forecast import Forecast, Plan, what_if

router = APIRouter(
    prefix="/v1", tags=["forecasts"], responses=ERROR_RESPONSES, route_class=GuardedRoute
)


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error

    synthetic_fraction: float = Field(ge=0, le=1, description="Share of generated documents")
    tail_coverage: float = Field(ge=0, le=1.5, description="Audited tail coverage vs human")
    plan: Plan = Field(default_factory=Plan)


class PlanRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")  # a misspelt field is an error

    plan: Plan


@router.post("/forecasts/what-if", response_model=Forecast, dependencies=[ReadAccess])
async def forecast_what_if(body: WhatIfRequest, pool: ForecastPoolDep) -> Forecast:
    """Trajectories with seed bands for a mix given by two numbers (no documents)."""
    return await in_pool(
        pool,
        what_if,
        synthetic_fraction=body.synthetic_fraction,
        tail_coverage=body.tail_coverage,
        plan=body.plan,
    )


@router.post("/audits/{audit_id}/forecast", response_model=Forecast, dependencies=[ReadAccess])
async def forecast_audit(
    audit_id: str, body: PlanRequest, store: StoreDep, pool: ForecastPoolDep
) -> Forecast:
    """A stored audit under another plan, from its synthetic fraction and tail coverage (the
    candidate's vectors are not kept, so this is the what-if model, not the embedding one)."""
    audit = store.get_audit(audit_id)
    synthetic = audit.synthetic_fraction
    return await in_pool(
        pool,
        what_if,
        synthetic_fraction=0.0 if synthetic is None else synthetic.estimate.point,
        tail_coverage=min(max(audit.tail_coverage.ratio, 0.0), 1.5),
        plan=body.plan,
    )
