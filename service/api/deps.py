"""What routes depend on: settings, store, embedder, work pool and the caller's role.

Everything comes from `app.state` (set up once by `service.main.create_app`) through
`Annotated[..., Depends()]`, so tests override any of them with `app.dependency_overrides`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, Header, HTTPException, Request, Response

from service.api.strict_json import StrictJSONRoute
from service.settings import Settings
from service.store import Store
from service.workpool import WorkPool

if TYPE_CHECKING:
    from detectors.embedding import Embedder

Role = Literal["read", "write"]


class EmbedderLoader:
    """Loads the embedding model once, in whichever thread first needs it (or at start-up)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self.error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    def get(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from detectors.embedding import Embedder

                try:
                    self._embedder = Embedder(
                        model=self.settings.embedding_model,
                        precision=self.settings.embedding_precision,
                    )
                except Exception as exc:  # reported by /readyz; re-raised to the caller
                    self.error = str(exc)
                    raise
            return self._embedder


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_embedder(request: Request) -> EmbedderLoader:
    loader: EmbedderLoader = request.app.state.embedder
    return loader


def get_pool(request: Request) -> WorkPool:
    pool: WorkPool = request.app.state.pool
    return pool


def get_forecast_pool(request: Request) -> WorkPool:
    pool: WorkPool = request.app.state.forecast_pool
    return pool


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
EmbedderDep = Annotated[EmbedderLoader, Depends(get_embedder)]
PoolDep = Annotated[WorkPool, Depends(get_pool)]
ForecastPoolDep = Annotated[WorkPool, Depends(get_forecast_pool)]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_role(settings: Settings, x_api_key: str | None) -> Role:
    """The role of the caller's key: 401 without a valid key. No keys configured = open (and
    then the service answers loopback clients only: `service.api.middleware.LoopbackOnly`)."""
    if not settings.api_keys:
        return "write"
    if not x_api_key:
        raise HTTPException(401, "missing API key: send it in the X-API-Key header")
    digest = hash_key(x_api_key)
    role: Role | None = None
    for stored, stored_role in settings.api_keys.items():
        # Compare against every key, in constant time each, so timing says nothing of which
        # stored digest shares a prefix with the offered one.
        if hmac.compare_digest(stored.lower(), digest):
            role = stored_role
    if role is None:
        raise HTTPException(401, "invalid API key")
    return role


def caller_role(
    settings: SettingsDep,
    x_api_key: Annotated[
        str | None, Header(description="An API key (see COLLAPSE_GUARD_API_KEYS)")
    ] = None,
) -> Role:
    return key_role(settings, x_api_key)


def _check_write(role: Role) -> None:
    if role != "write":
        raise HTTPException(403, "this API key is read-only: writing needs a key with role 'write'")


def require_write(role: Annotated[Role, Depends(caller_role)]) -> None:
    _check_write(role)


ReadAccess = Depends(caller_role)
WriteAccess = Depends(require_write)


class GuardedRoute(StrictJSONRoute):
    """A route that checks the caller's key before anything reads the request's body: a caller
    without a valid key gets 401 (a read-only key on a write, 403), never the parse errors of a
    body it may not send. The route's `ReadAccess` / `WriteAccess` dependency says which it
    needs; the dependency still runs (and documents the header in the OpenAPI schema)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        callables = {d.dependency for d in self.dependencies}
        needs_write = require_write in callables
        if not needs_write and caller_role not in callables:
            return handler

        async def guarded(request: Request) -> Response:
            role = key_role(request.app.state.settings, request.headers.get("x-api-key"))
            if needs_write:
                _check_write(role)
            return await handler(request)

        return guarded
