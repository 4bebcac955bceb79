"""The REST service: `create_app()` wires settings, store, model and work pool into FastAPI.

collapse-guard serve                     # or: uvicorn --factory service.main:create_app
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from service.api import errors
from service.api.deps import EmbedderLoader
from service.api.middleware import BodyLimit, LoopbackOnly, Metrics
from service.api.routes import audits, forecasts, health, jobs, references
from service.build_jobs import resumable_builds, resume_builds
from service.settings import Settings, load_settings
from service.store import Store
from service.workpool import WorkPool
from simulations.chain_pool import start_workers, stop_workers

_log = logging.getLogger("collapse_guard.service")


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> FastAPI:
    settings = settings or load_settings()

    store = Store(settings)
    # A service starting: no earlier job can still be running. Staged reference builds resume;
    # every other interrupted job is marked failed.
    resumable = resumable_builds(store, settings)
    store.fail_interrupted_jobs(keep={build.job.id for build in resumable})

    def new_pool() -> WorkPool:
        return WorkPool(workers=settings.workers, queue=settings.queue_size)

    def new_forecast_pool() -> WorkPool:
        return WorkPool(workers=settings.forecast_workers, queue=settings.forecast_queue_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = new_pool()  # each start-up (test clients start and stop many times)
        app.state.forecast_pool = new_forecast_pool()
        if resumable:  # queued once, in the first start-up's pool
            resume_builds(store, app.state.pool, app.state.embedder, settings, resumable)
            resumable.clear()
        if load_model:  # in the background: /healthz answers at once, /readyz once loaded
            threading.Thread(target=_load, args=(app.state.embedder,), daemon=True).start()
            start_workers(settings.forecast_processes)  # the forecast's, likewise
        yield
        app.state.pool.shutdown()
        app.state.forecast_pool.shutdown()
        stop_workers()  # the forecast's worker processes end with the service

    app = FastAPI(
        title="collapse-guard",
        version="0.1.0",
        summary="Guard training corpora against model collapse before you train on them.",
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    app.state.settings = settings
    app.state.store = store
    app.state.pool = new_pool()  # audits, reference builds and their jobs
    app.state.forecast_pool = new_forecast_pool()  # what-if forecasts: a lane of their own
    app.state.registry = registry
    app.state.embedder = EmbedderLoader(settings)
    app.state.in_flight = Gauge(
        "collapse_guard_work_in_flight",
        "Tasks running or queued in a work pool",
        ["pool"],
        registry=registry,
    )
    errors.install(app)
    for module in (health, references, audits, forecasts, jobs):
        app.include_router(module.router)
    app.add_middleware(Metrics, registry=registry)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if not settings.api_keys:
        _log.warning(
            "no API keys (COLLAPSE_GUARD_API_KEYS): answering clients on this machine only"
        )
        app.add_middleware(LoopbackOnly)  # outermost: nothing runs for a refused caller
    return app


def _load(loader: EmbedderLoader) -> None:
    # A failure is recorded in loader.error (reported by /readyz) and raised again on use.
    with contextlib.suppress(Exception):
        loader.get()
