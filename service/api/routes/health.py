"""Liveness, readiness and Prometheus metrics (no API key: probes and scrapers have none)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import EmbedderDep, GuardedRoute, StoreDep

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Model not loaded or store unreachable"}})
def readyz(store: StoreDep, loader: EmbedderDep) -> JSONResponse:
    """Ready to audit: the embedding model is loaded and the store answers."""
    checks = {"model": loader.loaded, "store": store.ping()}
    body: dict[str, object] = {"ready": all(checks.values()), **checks}
    if loader.error:
        body["model_error"] = loader.error
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    state = request.app.state
    state.in_flight.labels(pool="work").set(state.pool.in_flight)
    state.in_flight.labels(pool="forecast").set(state.forecast_pool.in_flight)
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
