"""Forecasts for the service: what recursive retraining on a corpus like this one would do.

- `forecast(reference, candidate, plan)`: the recursion in the corpus's embedding space (PCA +
  Gaussian mixture per generation, `simulations.models.embedding`), starting from the candidate,
  with a language model's retraining error (generated points tied to the starting corpus's
  prompts and scattered by the model's own error) fitted to real recursive training.
- `what_if(synthetic_fraction=..., tail_coverage=..., plan=...)`: no embeddings; the categorical
  what-if model (`simulations.whatif`), in milliseconds.
- the top-up searches built on them are in `simulations.top_up`.

Trajectories "tail_coverage", "recall", "precision" and "coverage" are ratios to a fresh human
sample of the same size (1.0 = as good as human data), "divergence" a distance to the reference;
each band is over `plan.seeds` independent chains.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.index import as_matrix
from simulations.chain_pool import ChainOutput, ChainTask, run_chains
from simulations.loop import ChainRecord, run_generations
from simulations.models.embedding import DESCRIPTIONS as EMBEDDING_DESCRIPTIONS
from simulations.models.embedding import (
    RETRAINING_ERROR,
    EmbeddingMixtureModel,
    ProjectedReference,
    RetrainingError,
)
from simulations.plans import Forecast, Plan
from simulations.results import Trajectory, summarise
from simulations.whatif import DESCRIPTIONS as WHATIF_DESCRIPTIONS
from simulations.whatif import WHAT_IF_CONSTANTS, WhatIfConstants, WhatIfCorpus, WhatIfModel

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus

ProgressCallback = Callable[[int, int], None]


def trajectories_of(record: ChainRecord, descriptions: dict[str, str]) -> dict[str, Trajectory]:
    return {
        name: summarise(values, metric=name, description=descriptions.get(name, name))
        for name, values in record.metrics.items()
    }


def with_start(start: dict[str, np.ndarray], record: ChainRecord) -> ChainRecord:
    """Prepend the measured starting data (row 0) to a run's per-generation rows."""
    metrics = {k: np.vstack([start[k][None, :], v]) for k, v in record.metrics.items()}
    return ChainRecord(
        metrics=metrics, policy=record.policy, beta=record.beta, samples=record.samples
    )


# ---------------------------------------------------------------- embedding-space forecasts
def forecast(
    reference: ReferenceCorpus,
    candidate: np.ndarray,
    plan: Plan,
    *,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
    projected: ProjectedReference | None = None,
    human: dict[str, Trajectory] | None = None,
    error: RetrainingError = RETRAINING_ERROR,
    processes: int = 1,
) -> Forecast:
    """Forecast `plan` from `candidate` (embedding vectors) against a fitted reference. `error`:
    what a language model's retraining adds to the mixture refit (default: fitted to real
    recursive training, README "The forecast against real retraining"). `processes`: how many
    processes run the chains (`simulations.chain_pool`; the same numbers with any count)."""
    start = time.perf_counter()
    cand = as_matrix(candidate, name="candidate vectors", dim=reference.dim_)
    proj = projected or ProjectedReference.build(reference, seed=random_state)
    with threadpool_limits(limits=1):  # see _chains
        trajectories = _chains(
            proj, proj.project(cand), plan, 7, random_state, progress, error, processes
        )
        if human is None:
            human = _chains(proj, proj.holdout, plan, 11, random_state, progress, error, processes)
    return Forecast(
        plan=plan,
        method="embedding-gmm",
        trajectories=trajectories,
        human=human,
        elapsed_seconds=time.perf_counter() - start,
    )


def human_start(
    reference: ReferenceCorpus,
    plan: Plan,
    *,
    random_state: int = 0,
    projected: ProjectedReference | None = None,
    error: RetrainingError = RETRAINING_ERROR,
    processes: int = 1,
) -> dict[str, Trajectory]:
    """The plan started from fresh human data (the reference's held-out part): the `human` of
    every forecast of `plan` against this reference with this `random_state`, whatever the
    candidate, so a caller may compute it once and pass it to `forecast(human=...)`."""
    proj = projected or ProjectedReference.build(reference, seed=random_state)
    with threadpool_limits(limits=1):  # see _chains
        return _chains(proj, proj.holdout, plan, 11, random_state, None, error, processes)


def chain_starts(
    points: np.ndarray, plan: Plan, stream: int, random_state: int
) -> list[np.ndarray]:
    """Seed s's starting sample: plan.samples points drawn from `points` (with replacement if
    short) on random stream [random_state, s, stream]."""
    m = plan.samples
    out = []
    for seed in range(plan.seeds):
        rng = np.random.default_rng([random_state, seed, stream])
        out.append(points[rng.choice(len(points), m, replace=m > len(points))])
    return out


# How many sets of measured starting samples a projection keeps (an audit needs two: the
# candidate's and the human start's).
SCORED_STARTS_KEPT = 8


def score_starts(
    proj: ProjectedReference, starts: list[np.ndarray], random_state: int, error: RetrainingError
) -> dict[str, np.ndarray]:
    """Row 0: the starting data itself, as audited, for every seed (this also computes the human
    baseline the chains score against, which worker processes then receive with `proj`). Kept
    on `proj`: the top-up search measures the base forecast's starts again otherwise."""
    digest = hashlib.blake2b(repr((random_state, error)).encode(), digest_size=16)
    for start in starts:
        digest.update(repr(start.shape).encode() + start.dtype.str.encode())
        digest.update(np.ascontiguousarray(start).tobytes())
    key = digest.digest()
    kept = proj.scored_starts.get(key)
    if kept is None:
        model = EmbeddingMixtureModel(proj, baseline_seed=random_state, error=error)
        scored = [model.score(start, np.random.default_rng(0)) for start in starts]
        kept = {k: np.concatenate([row[k] for row in scored]) for k in scored[0]}
        proj.scored_starts[key] = kept
        while len(proj.scored_starts) > SCORED_STARTS_KEPT:
            proj.scored_starts.popitem(last=False)
    return {k: v.copy() for k, v in kept.items()}


def _chains(
    proj: ProjectedReference,
    points: np.ndarray,
    plan: Plan,
    stream: int,
    random_state: int,
    progress: ProgressCallback | None,
    error: RetrainingError,
    processes: int,
) -> dict[str, Trajectory]:
    """`plan.seeds` chains of the recursion from `chain_starts(points, plan, stream, ...)`.

    Callers run this on one thread (threadpool_limits): the recursion's linear algebra is
    hundreds of 16x16 Cholesky solves and k-NN in 16 dimensions per generation, too small for
    BLAS or OpenMP threads, whose hand-offs dominated (a forecast plus top-up search took 4x as
    long on two busy cores, with identical numbers; benchmarks/audit_stages.py)."""
    starts = chain_starts(points, plan, stream, random_state)
    first = score_starts(proj, starts, random_state, error)
    outputs = run_chain_tasks(proj, starts, plan, random_state, progress, error, processes)
    record = with_start(first, stacked_records(outputs, plan))
    return trajectories_of(record, EMBEDDING_DESCRIPTIONS)


def run_chain_tasks(
    proj: ProjectedReference,
    starts: list[np.ndarray],
    plan: Plan,
    random_state: int,
    progress: ProgressCallback | None,
    error: RetrainingError,
    processes: int,
    *,
    final_only: bool = False,
) -> list[ChainOutput]:
    """Chain s from starts[s] on seed SeedSequence(random_state).spawn(seeds)[s], as `run_seeds`
    gives it; `final_only`: see `ChainTask`."""
    children = np.random.SeedSequence(random_state).spawn(plan.seeds)
    tasks = [
        ChainTask(
            projected=proj,
            error=error,
            baseline_seed=random_state,
            generations=plan.generations - 1,
            samples=plan.samples,
            policy=plan.policy,
            beta=plan.beta,
            seed=child,
            initial=start,
            final_only=final_only,
        )
        for child, start in zip(children, starts, strict=True)
    ]
    finished = 0

    def done() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished * plan.generations, plan.seeds * plan.generations)

    return run_chains(tasks, processes=processes, done=done)


def stacked_records(outputs: list[ChainOutput], plan: Plan) -> ChainRecord:
    records = [o.record for o in outputs]
    metrics = {
        k: np.concatenate([r.metrics[k] for r in records], axis=1) for k in records[0].metrics
    }
    return ChainRecord(metrics=metrics, policy=plan.policy, beta=plan.beta, samples=plan.samples)


# ---------------------------------------------------------------- what-if forecasts
def what_if(
    *,
    synthetic_fraction: float,
    tail_coverage: float,
    plan: Plan,
    random_state: int = 0,
    human: dict[str, Trajectory] | None = None,
    constants: WhatIfConstants = WHAT_IF_CONSTANTS,
) -> Forecast:
    """Forecast from two audit numbers alone (see `simulations.whatif`); milliseconds. `human`,
    if given, is the human-start run to report (a top-up search compares every beta with the
    original plan's human start, so it is not run again). `constants`: the model's assumptions
    about human text (the defaults are the ones fitted to real retraining)."""
    start = time.perf_counter()
    corpus = WhatIfCorpus(
        synthetic_fraction=synthetic_fraction,
        tail_coverage=tail_coverage,
        samples=plan.samples,
        constants=constants,
    )

    def run(start_law: np.ndarray) -> dict[str, Trajectory]:
        model = WhatIfModel(corpus, n_chains=plan.seeds)
        rng = np.random.default_rng(random_state)
        data = rng.multinomial(plan.samples, start_law, size=plan.seeds)
        model.fit(data)
        first = {k: np.asarray(v) for k, v in model.score(data, rng).items()}
        record = run_generations(
            model,
            generations=plan.generations - 1,
            samples=plan.samples,
            policy=plan.policy,
            beta=plan.beta,
            random_state=rng,
            initial=data,
        )
        return trajectories_of(with_start(first, record), WHATIF_DESCRIPTIONS)

    return Forecast(
        plan=plan,
        method="what-if",
        trajectories=run(corpus.candidate),
        human=human if human is not None else run(corpus.human),
        elapsed_seconds=time.perf_counter() - start,
    )
