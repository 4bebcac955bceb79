"""FAISS searches run by a pool of Ray actors: the audit's k-NN scoring on a cluster.

`RaySearch` has the contract of `detectors.index.local_search` (an index, a block of queries,
k -> float32 squared distances and ids), so it plugs into every search of `coverage_report`
(`search=`): the reference's points against the candidate's index, the candidate against the
reference's index, the k-NN radii. The float64 re-checks stay in the driver, so the membership
matrices, and every figure of the report, equal the local ones (FAISS's float32 distances may
differ in the last bits with the block shape; the re-check decides every pair near a boundary in
float64 either way).

Each index is serialised once and put in Ray's object store; each actor deserialises it on its
first block and keeps the last few (an audit searches the reference's index and two small sample
indexes). The actors live as long as the process (one pool per Ray session and size), so a call
pays the blocks' transfer, not actor start-up. They ask for no CPUs: they run while the embedding
actors, which hold the CPUs, are idle (an audit embeds, then scores), and a pool that reserved
CPUs would wait forever for those the embedding pool holds; "SPREAD" places them across nodes.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

import numpy as np

from detectors.engines import ensure_ray
from detectors.errors import InvalidInputError
from detectors.index import local_search

KEPT_INDEXES = 4  # per actor and in the driver: the reference's and an audit's two sample indexes


class _IndexSearcher:
    """A Ray actor searching the indexes it is sent, each deserialised once."""

    def __init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # an actor without a CPU reservation must not fan out
        self.indexes: OrderedDict[str, Any] = OrderedDict()
        self.blocks = 0  # blocks searched by this actor (what the tests read)

    def search(
        self, token: str, boxed: list[Any], queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss
        import ray

        if token not in self.indexes:
            # `boxed` holds the object ref in a list so Ray does not fetch the index bytes for
            # every block: only here, once per index and actor.
            self.indexes[token] = faiss.deserialize_index(ray.get(boxed[0]))
            while len(self.indexes) > KEPT_INDEXES:
                self.indexes.popitem(last=False)
        self.indexes.move_to_end(token)
        self.blocks += 1
        return local_search(self.indexes[token], queries, k)

    def count(self) -> int:
        return self.blocks


_POOLS: dict[tuple, list[Any]] = {}


class RaySearch:
    """`local_search` on `actors` Ray actors (default: one per CPU of the cluster); a block of
    queries is split evenly between them and reassembled in order."""

    def __init__(self, *, actors: int | None = None) -> None:
        if actors is not None and actors < 1:
            raise InvalidInputError(f"actors must be at least 1, got {actors}")
        self.ray = ensure_ray()
        self.actors = actors or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        # The driver's side of the index cache: id(index) is only unique while the index is
        # alive, so the entry holds the index itself; ntotal in the key catches an index grown
        # in place (a reference's append).
        self._deployed: OrderedDict[tuple[int, int], tuple[Any, str, Any]] = OrderedDict()

    def pool(self) -> list[Any]:
        key = (self.ray.get_runtime_context().get_job_id(), self.actors)
        if key not in _POOLS:
            actor = self.ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(_IndexSearcher)
            _POOLS[key] = [actor.remote() for _ in range(self.actors)]
        return _POOLS[key]

    def blocks_searched(self) -> int:
        """Blocks the pool's actors have searched in this process (all `RaySearch`es of it)."""
        return int(sum(self.ray.get([a.count.remote() for a in self.pool()])))

    def _deploy(self, index: Any) -> tuple[str, Any]:
        import faiss

        key = (id(index), int(index.ntotal))
        if key not in self._deployed:
            ref = self.ray.put(faiss.serialize_index(index))
            self._deployed[key] = (index, uuid.uuid4().hex, ref)
            while len(self._deployed) > KEPT_INDEXES:
                self._deployed.popitem(last=False)
        self._deployed.move_to_end(key)
        _, token, ref = self._deployed[key]
        return token, ref

    def __call__(self, index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(queries) == 0:
            return local_search(index, queries, k)
        token, ref = self._deploy(index)
        pool = self.pool()
        parts = np.array_split(queries, min(len(pool), len(queries)))
        results = self.ray.get(
            [
                actor.search.remote(token, [ref], part, k)
                for actor, part in zip(pool[: len(parts)], parts, strict=True)
            ]
        )
        return np.vstack([d for d, _ in results]), np.vstack([i for _, i in results])
