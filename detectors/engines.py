"""Embedding and neighbour search in this process (`local`) or on a Ray cluster (`ray`).

Embedding a pre-training-scale corpus is embarrassingly parallel. `RayEmbedder` keeps a pool of
Ray actors, each holding one loaded model, for the life of the process (one pool per Ray session
and configuration, shared by every `RayEmbedder` made with it): an audit embeds two or three
times, and Ray Data's `map_batches` started its actors, and loaded the model in each, on every
call (8-10 s). Batches go to whichever actor is free (`ray.util.ActorPool`) with the same
`Embedder` code as the local engine; each carries its start row, so the output is reassembled in
input order whatever order the actors finish in, and each reports its long-document and window
counts, which the driver sums. The vectors equal the local engine's up to float rounding
(sentence-transformers pads each batch to its longest document, and batches differ from the
local blocks).

`ray_neighbours` is the scoring side: the reference's FAISS index is serialised once
(`faiss.serialize_index`), put in Ray's object store with its vectors, and a few search actors
deserialise it once each and run `detectors.index.knn` (the reference's own search, float64
re-ranked) on blocks of queries. The answer is that of `ReferenceCorpus.neighbours`.

Ray is optional (`pip install 'collapse-guard[ray]'`). Ray's own rule picks the cluster: the one
named by `RAY_ADDRESS`, else one started with `ray start` on this machine, else a new local Ray.
Workers import this package and the model from their own installation: install collapse-guard on
every node (a custom model folder must exist at the same path on every node).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from detectors.embedding import (
    Embedder,
    EmbeddingResult,
    LongDocuments,
    Precision,
    ProgressCallback,
    resolve_model_path,
    resolve_precision,
    validate_texts,
)
from detectors.errors import InvalidInputError

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus

ENGINES = ("local", "ray")
BATCH = 256  # documents per Ray batch: amortises scheduling, still fine-grained for progress
INSTALL_HINT = "pip install 'collapse-guard[ray]'"


def _ray() -> ModuleType:
    """Import Ray (and Ray Data), or say in one line how to install it."""
    try:
        import ray
        import ray.data  # needs pandas and pyarrow too: a partial install counts as missing
    except ImportError:
        raise InvalidInputError(
            f"the ray engine needs Ray Data, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def ensure_ray() -> ModuleType:
    """Ray, initialised (by the caller, or here by Ray's rule: RAY_ADDRESS, `ray start`, local)."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            include_dashboard=False,
            log_to_driver=False,  # worker chatter would interleave with the CLI's progress bars
            logging_level=logging.ERROR,
        )
    # Ray Data's bars and per-run console lines would interleave with the CLI's bars: the
    # progress callback reports instead (Ray Data's full logs stay in the Ray session folder).
    ray.data.DataContext.get_current().enable_progress_bars = False
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)
    return ray


def _worker_cpus(ray: ModuleType, per_worker: int) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // per_worker)


class _EmbedActor:
    """One model per Ray actor, loaded when the actor starts."""

    def __init__(self, model: str | None, threads: int, **embedder: Any) -> None:
        import torch

        torch.set_num_threads(threads)  # an actor owns its CPUs: no oversubscription
        self.embedder = Embedder(model=model, **embedder)
        self.embedded = 0  # documents this actor has embedded (what the pool's reuse shows)

    def embed(self, start: int, texts: list[str]) -> tuple[int, np.ndarray, int, int]:
        result = self.embedder.embed(texts)
        self.embedded += len(texts)
        return start, result.vectors, result.n_long, result.n_windows

    def count(self) -> int:
        return self.embedded


# The live actor pool by (Ray session, configuration): alive until the process ends, Ray shuts
# down, or an engine of another configuration needs the CPUs (one pool at a time: each actor
# holds its CPUs, and a second pool on a full cluster would wait for them forever).
_POOLS: dict[tuple, list[Any]] = {}


def release_pools(ray: ModuleType, cpus: float) -> None:
    """Stop the embedding actors if the cluster has fewer than `cpus` CPUs free: other Ray work
    (the search actors) would otherwise wait forever for the CPUs an idle pool holds."""
    if ray.available_resources().get("CPU", 0.0) >= cpus:
        return
    for key in list(_POOLS):
        for handle in _POOLS.pop(key):
            ray.kill(handle)


class RayEmbedder:
    """`Embedder`'s interface (`embed`, `model_name`) with the work done by Ray actors.

    `actors` defaults to one per `cpus_per_actor` CPUs of the cluster; each actor runs torch
    with `cpus_per_actor` threads. `batch_size` (the encoder's), `long_documents` and
    `precision` are the local `Embedder`'s options, applied on the actors.
    """

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        actors: int | None = None,
        cpus_per_actor: int = 1,
        batch: int = BATCH,
        batch_size: int = 64,
        long_documents: LongDocuments = "truncate",
        precision: Precision = "auto",  # resolved on each actor, for the CPU it runs on
    ) -> None:
        if cpus_per_actor < 1 or batch < 1 or (actors is not None and actors < 1):
            raise InvalidInputError("actors, cpus_per_actor and batch must be at least 1")
        if long_documents not in ("truncate", "chunk"):
            raise InvalidInputError(
                f"long_documents must be 'truncate' or 'chunk', got {long_documents!r}"
            )
        # Resolved in the driver so a bad setting fails here, with the local message.
        _, self.model_name = resolve_model_path(model)
        resolve_precision(precision, "cpu")
        self.model = None if model is None else str(model)
        self.ray = ensure_ray()
        self.actors = actors or _worker_cpus(self.ray, cpus_per_actor)
        self.cpus_per_actor = cpus_per_actor
        self.batch = batch
        self.long_documents: LongDocuments = long_documents
        self._embedder_options = {
            "batch_size": batch_size,
            "long_documents": long_documents,
            "precision": precision,
        }
        self._search: Any = None  # the RaySearch of `neighbour_search`, made on first use

    def pool(self) -> list[Any]:
        """This configuration's actors in the current Ray session, started on first use."""
        key = self._pool_key()
        if key not in _POOLS:
            for other in list(_POOLS):
                actors = _POOLS.pop(other)
                if other[0] == key[0]:  # same session: free the CPUs (an ended one freed them)
                    for handle in actors:
                        self.ray.kill(handle)
            actor = self.ray.remote(num_cpus=self.cpus_per_actor)(_EmbedActor)
            _POOLS[key] = [
                actor.remote(self.model, self.cpus_per_actor, **self._embedder_options)
                for _ in range(self.actors)
            ]
        return _POOLS[key]

    def neighbour_search(self) -> Any:
        """A `RaySearch` on the same cluster: the audit's k-NN scoring through Ray actors."""
        from detectors.ray_search import RaySearch

        # One per embedder: its deployments (indexes put in the object store) outlive an
        # audit, so a loaded reference's index is sent to the cluster once, not per audit.
        if self._search is None:
            self._search = RaySearch()
        return self._search

    def close(self) -> None:
        """Stop this configuration's actors and free their CPUs (the next call starts new ones)."""
        for actor in _POOLS.pop(self._pool_key(), []):
            self.ray.kill(actor)

    def _pool_key(self) -> tuple:
        return (
            self.ray.get_runtime_context().get_job_id(),
            self.model,
            self.actors,
            self.cpus_per_actor,
            tuple(sorted(self._embedder_options.items())),
        )

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> EmbeddingResult:
        from ray.util import ActorPool

        docs = validate_texts(texts)
        starts = range(0, len(docs), self.batch)
        vectors: np.ndarray | None = None
        seen = np.zeros(len(docs), dtype=bool)
        n_long = n_windows = 0
        batches = ActorPool(self.pool()).map_unordered(
            lambda actor, s: actor.embed.remote(s, docs[s : s + self.batch]), list(starts)
        )
        for start, block, long_count, window_count in batches:
            if vectors is None:
                vectors = np.empty((len(docs), block.shape[1]), dtype=np.float32)
            vectors[start : start + len(block)] = block
            seen[start : start + len(block)] = True
            n_long += long_count
            n_windows += window_count
            if progress is not None:
                progress(int(seen.sum()), len(docs))
        if vectors is None or not seen.all():
            raise InvalidInputError(f"Ray returned {int(seen.sum())} of {len(docs)} documents")
        return EmbeddingResult(
            vectors=vectors,
            n_documents=len(docs),
            n_long=n_long,
            n_windows=n_windows,
            long_documents=self.long_documents,
            model=self.model_name,
        )


class _Searcher:
    """A Ray actor holding one deserialised copy of the index and the vectors it indexes."""

    def __init__(self, index_bytes: np.ndarray, data: np.ndarray, threads: int) -> None:
        import faiss

        faiss.omp_set_num_threads(threads)
        self.index = faiss.deserialize_index(index_bytes)
        self.data = data  # read-only view on the object store's single copy

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from detectors.index import knn

        return knn(self.index, self.data, queries, k)


def ray_neighbours(
    index_or_reference: ReferenceCorpus | Any,
    queries: np.ndarray,
    k: int | None = None,
    *,
    data: np.ndarray | None = None,
    block: int | None = None,
    actors: int | None = None,
    cpus_per_actor: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and ids of each query's k nearest indexed points, searched on Ray.

    Takes a fitted `ReferenceCorpus` (k defaults to its k) or a bare FAISS index with the
    `data` it indexes (used for the float64 re-ranking; rebuilt from the index when omitted,
    which flat, HNSW and IVF-Flat indexes allow). Rows come back in query order.

    Each Ray task searches `block` queries (default: the block `knn` itself searches at once for
    this k, the same memory budget) with `knn`, so the distances are bit-identical to the local
    search's. So are the ids, except the order among exactly tied neighbours (duplicate
    documents), which FAISS breaks differently for another thread count or batch shape.
    """
    import faiss

    from detectors.index import _pairs_per_block, as_matrix
    from detectors.reference import ReferenceCorpus

    _ray()  # no Ray installed: say so first, whatever else is wrong
    if isinstance(index_or_reference, ReferenceCorpus):
        ref = index_or_reference
        ref._check_fitted()
        index, data, dim = ref.index_, ref.vectors_, ref.dim_
        k = k or ref.k
    elif isinstance(index_or_reference, faiss.Index):
        index, dim = index_or_reference, index_or_reference.d
        if data is None:
            try:
                data = index.reconstruct_n(0, index.ntotal)
            except RuntimeError:
                raise InvalidInputError(
                    "this FAISS index cannot return its vectors: pass data="
                ) from None
        data = as_matrix(data, name="indexed vectors", dim=dim)
        if len(data) != index.ntotal:
            raise InvalidInputError(f"data has {len(data)} rows, the index {index.ntotal}")
    else:
        raise InvalidInputError(
            f"expected a ReferenceCorpus or a FAISS index, got {type(index_or_reference).__name__}"
        )
    if k is None or k < 1 or (block is not None and block < 1) or cpus_per_actor < 1:
        raise InvalidInputError("k, block and cpus_per_actor must be at least 1")
    queries = as_matrix(queries, name="query vectors", dim=dim)
    if block is None:  # knn's own block for this k (detectors.index.knn)
        block = max(1, _pairs_per_block(dim) // min(min(k, index.ntotal) + 2, index.ntotal))
    ray = ensure_ray()
    starts = range(0, len(queries), block)
    n_actors = min(actors or _worker_cpus(ray, cpus_per_actor), len(starts))
    # Broadcast once: every actor gets the same object-store copy, not one per task.
    index_ref = ray.put(faiss.serialize_index(index))
    data_ref = ray.put(np.ascontiguousarray(data))
    release_pools(ray, n_actors * cpus_per_actor)
    searcher = ray.remote(num_cpus=cpus_per_actor)(_Searcher)
    pool = [searcher.remote(index_ref, data_ref, cpus_per_actor) for _ in range(n_actors)]
    try:
        futures = [
            pool[j % n_actors].search.remote(queries[s : s + block], k)
            for j, s in enumerate(starts)
        ]
        parts = ray.get(futures)
    finally:
        for actor in pool:
            ray.kill(actor)
    return np.vstack([d for d, _ in parts]), np.vstack([i for _, i in parts])


def get_engine(name: str, *, model: str | Path | None = None, **kwargs: Any) -> Any:
    """The embedding engine called `name`: "local" (`Embedder`) or "ray" (`RayEmbedder`)."""
    if name == "local":
        return Embedder(model=model, **kwargs)
    if name == "ray":
        return RayEmbedder(model=model, **kwargs)
    raise InvalidInputError(f"unknown engine {name!r}: choose {' or '.join(ENGINES)}")
