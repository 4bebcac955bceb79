"""A forecast's chains on several processes, with the sequential run's numbers.

The chains of a forecast are independent (chain s has its own random stream and starting sample)
and each is hundreds of small linear-algebra calls (16x16 Cholesky solves, EM steps on 1,000
points) that one core runs best: threads only add hand-offs (`simulations.forecast._chains`), and
the GIL serialises the Python between the calls. So with P processes, this one runs chains
0, P, 2P, ... and P - 1 persistent worker processes (spawned on first use, kept for the life of
this process) run the others. Chain s always goes to the same process, so a per-process cache --
a chain's first mixture fit, which every forecast of a top-up search shares
(`simulations.models.embedding.first_fit`) -- keeps hitting. Every chain runs the same code on
the same seeds as in one process: the results are the sequential run's, bit for bit.

Workers are spawned, not forked: the parent may hold torch's and FAISS's OpenMP thread pools,
which a forked child cannot use safely. A worker that dies (killed, out of memory) is replaced
and its chains are run here instead: a forecast never fails because a worker did.

Workers never outlive this process. `stop_workers` ends them (the service's shutdown, and at
interpreter exit); and each watches its parent, exiting as soon as it is gone, so a parent killed
with SIGKILL, or by a signal Python does not turn into an exit, leaves no worker behind (a
spawned worker holds both ends of its task queue, so it would otherwise wait on it forever).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from simulations.loop import ChainRecord, run_generations
from simulations.models.embedding import (
    SCORED,
    EmbeddingMixtureModel,
    ProjectedReference,
    RetrainingError,
)

ChainDone = Callable[[], None]


@dataclass(frozen=True)
class ChainTask:
    """One chain of a forecast: everything a worker process needs (all of it picklable)."""

    projected: ProjectedReference
    error: RetrainingError
    baseline_seed: int
    generations: int  # after generation 0
    samples: int
    policy: str
    beta: float
    seed: np.random.SeedSequence
    initial: np.ndarray  # generation 0's data
    # Measure only the final generation now; keep the earlier generations' samples for later
    # (`ChainOutput.pending`): a top-up search decides on the final generation alone and
    # measures the whole trajectory of the one beta it returns (`simulations.top_up`).
    final_only: bool = False


@dataclass(frozen=True)
class ChainOutput:
    """A chain's per-generation metrics; with `final_only`, NaN before the final generation,
    whose samples are in `pending` (one array per generation, in order)."""

    record: ChainRecord
    pending: tuple[np.ndarray, ...] = ()


class _FinalOnly:
    """A model whose measurements before the last of `total` are deferred: `score` keeps the
    sample and reports NaN. Scoring draws nothing from the chain's random stream, so the chain
    (and its final measurement) is the same as when every generation is measured."""

    def __init__(self, model: EmbeddingMixtureModel, total: int) -> None:
        self.model, self.remaining = model, total - 1
        self.kept: list[np.ndarray] = []
        self.n_chains = model.n_chains

    def sample_original(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.model.sample_original(n, rng)

    def fit(self, data: np.ndarray) -> _FinalOnly:
        self.model.fit(data)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.model.sample(n, rng)

    def concat(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return self.model.concat(parts)

    def score(self, samples: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.remaining == 0:
            return self.model.score(samples, rng)
        self.remaining -= 1
        self.kept.append(samples.copy())
        return {name: np.array([np.nan]) for name in SCORED}


def run_chain(task: ChainTask) -> ChainOutput:
    with threadpool_limits(limits=1):  # see simulations.forecast._chains
        model = EmbeddingMixtureModel(
            task.projected, baseline_seed=task.baseline_seed, error=task.error
        )
        deferred = _FinalOnly(model, task.generations + 1) if task.final_only else None
        record = run_generations(
            deferred or model,
            generations=task.generations,
            samples=task.samples,
            policy=task.policy,
            beta=task.beta,
            random_state=np.random.default_rng(task.seed),
            initial=task.initial,
        )
        return ChainOutput(record, tuple(deferred.kept) if deferred else ())


@dataclass(frozen=True)
class MeasureTask:
    """A chain run with `final_only`, whose deferred generations are now to be measured."""

    projected: ProjectedReference
    error: RetrainingError
    baseline_seed: int
    output: ChainOutput


def measure_chain(task: MeasureTask) -> ChainOutput:
    """`task.output` with its pending generations measured, as `run_chain` would have."""
    model = EmbeddingMixtureModel(
        task.projected, baseline_seed=task.baseline_seed, error=task.error
    )
    rng = np.random.default_rng(0)  # the model's scoring draws nothing
    record = task.output.record
    metrics = {name: rows.copy() for name, rows in record.metrics.items()}
    with threadpool_limits(limits=1):
        for g, samples in enumerate(task.output.pending):
            for name, value in model.score(samples, rng).items():
                metrics[name][g] = np.asarray(value, dtype=float).reshape(model.n_chains)
    return ChainOutput(
        ChainRecord(metrics=metrics, policy=record.policy, beta=record.beta, samples=record.samples)
    )


# What a worker runs: a module-level function, so that it pickles by name.
Work = Callable[[Any], ChainOutput]


def _run_group(tasks: Sequence[Any], work: Work = run_chain) -> list[ChainOutput]:
    return [work(t) for t in tasks]


_lock = threading.Lock()
_workers: list[ProcessPoolExecutor] = []
PARENT_POLL_SECONDS = 0.5  # how soon a worker notices that its parent is gone


def _watch_parent(parent: int) -> None:
    """A worker's initializer: a daemon thread that ends this process once `parent` is gone
    (re-parented: getppid() changes). os._exit, not sys.exit: nothing is left to clean up, and a
    chain in progress has nobody to return to."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="cg-parent-watch", daemon=True).start()


def _new_executor() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_watch_parent,
        initargs=(os.getpid(),),
    )


def _worker(i: int) -> ProcessPoolExecutor:
    """The i-th persistent worker process (a one-process executor: chains stay where sent)."""
    with _lock:
        while len(_workers) <= i:
            _workers.append(_new_executor())
        return _workers[i]


def worker_pids() -> list[int]:
    """The process ids of the workers running now (for tests and diagnostics)."""
    with _lock:
        executors = list(_workers)
    # ProcessPoolExecutor has no public accessor for its processes.
    return sorted(pid for e in executors for pid in (getattr(e, "_processes", None) or {}))


def stop_workers(timeout: float = 5.0) -> None:
    """End every worker process: queued chains are cancelled, a worker still running one after
    `timeout` seconds is terminated. The next forecast spawns workers again."""
    with _lock:
        executors = list(_workers)
        _workers.clear()
    processes = [p for e in executors for p in (getattr(e, "_processes", None) or {}).values()]
    for executor in executors:
        executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join(1.0)


atexit.register(stop_workers)


def _ready() -> None:
    """Run in a new worker: its imports (scikit-learn, FAISS, the simulator) happen here."""


def start_workers(processes: int) -> None:
    """Spawn the workers a `processes`-process forecast will use, without waiting for them. A
    new worker spends a second or two importing the simulator's stack before its first chain; an
    audit calls this before embedding, so that start overlaps the embedding instead of delaying
    the forecast (a cold 100-document forecast took 1.3 s longer than a warm one)."""
    for j in range(1, processes):
        # A dead worker is replaced by run_chains when it is needed.
        with contextlib.suppress(BrokenProcessPool, RuntimeError):
            _worker(j - 1).submit(_ready)


def _replace_worker(i: int, broken: ProcessPoolExecutor) -> None:
    with _lock:
        if i < len(_workers) and _workers[i] is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            _workers[i] = _new_executor()


def run_chains(
    tasks: Sequence[ChainTask] | Sequence[MeasureTask],
    *,
    processes: int = 1,
    done: ChainDone | None = None,
    work: Work = run_chain,
) -> list[ChainOutput]:
    """Every task's chain, in task order, on `processes` processes (this one included).
    `done()` is called as each chain finishes. `work` is what a task is run with: `run_chain`,
    or `measure_chain` for the deferred measurements of chains run earlier (task s goes to the
    process chain s ran on)."""
    p = max(1, min(processes, len(tasks)))
    groups = [list(range(j, len(tasks), p)) for j in range(p)]
    sent: list[tuple[int, ProcessPoolExecutor, Future[list[ChainOutput]] | None]] = []
    for j in range(1, p):
        executor = _worker(j - 1)
        try:
            future = executor.submit(_run_group, [tasks[i] for i in groups[j]], work)
        except (BrokenProcessPool, RuntimeError):  # died earlier, or shut down at exit
            _replace_worker(j - 1, executor)
            future = None
        sent.append((j, executor, future))
    out: list[ChainOutput | None] = [None] * len(tasks)
    for i in groups[0]:
        out[i] = work(tasks[i])
        if done is not None:
            done()
    for j, executor, future in sent:
        records = None
        if future is not None:
            try:
                records = future.result()
            except BrokenProcessPool:
                _replace_worker(j - 1, executor)
        if records is None:  # the worker is gone: run its chains here
            records = _run_group([tasks[i] for i in groups[j]], work)
        for i, record in zip(groups[j], records, strict=True):
            out[i] = record
            if done is not None:
                done()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]
