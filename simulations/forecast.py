"""Forecasts for the service: what recursive retraining on a corpus like this one would do.

- `forecast(reference, candidate, plan)`: the recursion in the corpus's embedding space (PCA +
  Gaussian mixture per generation, `simulations.models.embedding`), starting from the candidate,
  with a language model's retraining error (generated points tied to the starting corpus's
  prompts and scattered by the model's own error) fitted to real recursive training.
- `what_if(synthetic_fraction=..., tail_coverage=..., plan=...)`: no embeddings; the categorical
  what-if model (`simulations.whatif`), in milliseconds.
- `min_top_up(...)` / `what_if_top_up(...)`: the smallest fraction beta of fresh human data per
  generation (policy keep-real) whose forecast keeps the final generation's mean tail coverage
  ratio at or above a target, by bisection with common random numbers (every beta is simulated
  with the same seeds, so the comparison between betas is not swamped by seed noise).

Trajectories "tail_coverage", "recall", "precision" and "coverage" are ratios to a fresh human
sample of the same size (1.0 = as good as human data), "divergence" a distance to the reference;
each band is over `plan.seeds` independent chains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.errors import InvalidInputError
from detectors.index import as_matrix
from simulations.chain_pool import ChainTask, run_chains
from simulations.loop import ChainRecord, run_generations
from simulations.models.embedding import DESCRIPTIONS as EMBEDDING_DESCRIPTIONS
from simulations.models.embedding import (
    RETRAINING_ERROR,
    EmbeddingMixtureModel,
    ProjectedReference,
    RetrainingError,
)
from simulations.plans import Forecast, Plan, TopUp
from simulations.results import Trajectory, summarise
from simulations.whatif import DESCRIPTIONS as WHATIF_DESCRIPTIONS
from simulations.whatif import WhatIfCorpus, WhatIfModel

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus

ProgressCallback = Callable[[int, int], None]
BISECTION_STEPS = 6  # beta resolution max_beta / 64
# The top-up search asks for the smallest beta whose relative final tail coverage is above the
# target with one-sided 95% confidence over the forecast's chains, not only on average: near the
# target the coverage rises by about 1 per unit of beta, so the chains' noise alone (0.02 in the
# relative, candidate and human start together) moved the beta found by 0.07-0.09, and real
# retraining with the smaller betas fell short (README "Top-up that works?").
TOP_UP_CONFIDENCE_Z = 1.645


def _trajectories(record: ChainRecord, descriptions: dict[str, str]) -> dict[str, Trajectory]:
    return {
        name: summarise(values, metric=name, description=descriptions.get(name, name))
        for name, values in record.metrics.items()
    }


def _with_start(start: dict[str, np.ndarray], record: ChainRecord) -> ChainRecord:
    """Prepend the measured starting data (row 0) to a run's per-generation rows."""
    metrics = {k: np.vstack([start[k][None, :], v]) for k, v in record.metrics.items()}
    return ChainRecord(
        metrics=metrics, policy=record.policy, beta=record.beta, samples=record.samples
    )


def _with_policy(plan: Plan, beta: float) -> Plan:
    return plan.model_copy(update={"policy": "keep-real", "beta": float(beta)})


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
    """`plan.seeds` chains of the recursion, seed s starting from plan.samples points drawn from
    `points` (with replacement if short) on random stream [random_state, s, stream].

    Callers run this on one thread (threadpool_limits): the recursion's linear algebra is
    hundreds of 16x16 Cholesky solves and k-NN in 16 dimensions per generation, too small for
    BLAS or OpenMP threads, whose hand-offs dominated (a forecast plus top-up search took 4x as
    long on two busy cores, with identical numbers; benchmarks/audit_stages.py)."""
    m = plan.samples

    def initial(seed: int) -> np.ndarray:
        rng = np.random.default_rng([random_state, seed, stream])
        return points[rng.choice(len(points), m, replace=m > len(points))]

    starts = [initial(seed) for seed in range(plan.seeds)]
    model = EmbeddingMixtureModel(proj, baseline_seed=random_state, error=error)
    # Row 0: the starting data itself, as audited, for every seed (this also computes the human
    # baseline the chains score against, which the worker processes then receive with `proj`).
    scored = [model.score(start, np.random.default_rng(0)) for start in starts]
    first = {k: np.concatenate([row[k] for row in scored]) for k in scored[0]}
    # Chain s: seed SeedSequence(random_state).spawn(seeds)[s], as `run_seeds` gives it.
    children = np.random.SeedSequence(random_state).spawn(plan.seeds)
    tasks = [
        ChainTask(
            projected=proj,
            error=error,
            baseline_seed=random_state,
            generations=plan.generations - 1,
            samples=m,
            policy=plan.policy,
            beta=plan.beta,
            seed=child,
            initial=start,
        )
        for child, start in zip(children, starts, strict=True)
    ]
    finished = 0

    def done() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished * plan.generations, plan.seeds * plan.generations)

    records = run_chains(tasks, processes=processes, done=done)
    metrics = {
        k: np.concatenate([r.metrics[k] for r in records], axis=1) for k in records[0].metrics
    }
    record = ChainRecord(metrics=metrics, policy=plan.policy, beta=plan.beta, samples=m)
    return _trajectories(_with_start(first, record), EMBEDDING_DESCRIPTIONS)


def min_top_up(
    reference: ReferenceCorpus,
    candidate: np.ndarray,
    plan: Plan,
    *,
    target: float,
    max_beta: float = 0.5,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
    base: Forecast | None = None,
    projected: ProjectedReference | None = None,
    error: RetrainingError = RETRAINING_ERROR,
    processes: int = 1,
) -> TopUp:
    """Smallest keep-real beta whose embedding forecast ends with a tail coverage of at least
    `target` x that of fresh human data under the original plan, with one-sided 95% confidence
    over the chains (`TOP_UP_CONFIDENCE_Z`, `relative_lower_bound`). `base`, if given, is the
    forecast of `plan` itself with the same `random_state` (saves running it again), and
    `projected` the reference's projection it used (saves building it again)."""
    proj = projected or ProjectedReference.build(reference, seed=random_state)
    if base is None or base.plan != plan:
        base = forecast(
            reference,
            candidate,
            plan,
            random_state=random_state,
            projected=proj,
            error=error,
            processes=processes,
        )

    def run(beta: float) -> Forecast:
        return forecast(
            reference,
            candidate,
            _with_policy(plan, beta),
            random_state=random_state,
            projected=proj,
            human=base.human,
            error=error,
            processes=processes,
        )

    return _bisect(
        run, base, target=target, max_beta=max_beta, progress=progress, z=TOP_UP_CONFIDENCE_Z
    )


def relative_lower_bound(f: Forecast, z: float, metric: str = "tail_coverage") -> float:
    """`f.relative_final(metric)` minus z standard errors: the candidate's and the human start's
    chain standard errors combined for their ratio (first order, as independent: their chains
    start from different data)."""
    cand, human = f.final(metric), f.human[metric].bands[-1]
    relative = f.relative_final(metric)
    if not (cand.mean > 0 and human.mean > 0):
        return relative
    se = relative * float(np.hypot(cand.sem / cand.mean, human.sem / human.mean))
    return relative - z * se


# ---------------------------------------------------------------- what-if forecasts
def what_if(
    *,
    synthetic_fraction: float,
    tail_coverage: float,
    plan: Plan,
    random_state: int = 0,
    human: dict[str, Trajectory] | None = None,
) -> Forecast:
    """Forecast from two audit numbers alone (see `simulations.whatif`); milliseconds. `human`,
    if given, is the human-start run to report (a top-up search compares every beta with the
    original plan's human start, so it is not run again)."""
    start = time.perf_counter()
    corpus = WhatIfCorpus(
        synthetic_fraction=synthetic_fraction, tail_coverage=tail_coverage, samples=plan.samples
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
        return _trajectories(_with_start(first, record), WHATIF_DESCRIPTIONS)

    return Forecast(
        plan=plan,
        method="what-if",
        trajectories=run(corpus.candidate),
        human=human if human is not None else run(corpus.human),
        elapsed_seconds=time.perf_counter() - start,
    )


def what_if_top_up(
    *,
    synthetic_fraction: float,
    tail_coverage: float,
    plan: Plan,
    target: float,
    max_beta: float = 0.5,
    random_state: int = 0,
) -> TopUp:
    base = what_if(
        synthetic_fraction=synthetic_fraction,
        tail_coverage=tail_coverage,
        plan=plan,
        random_state=random_state,
    )

    def run(beta: float) -> Forecast:
        return what_if(
            synthetic_fraction=synthetic_fraction,
            tail_coverage=tail_coverage,
            plan=_with_policy(plan, beta),
            random_state=random_state,
            human=base.human,
        )

    # On the mean: the what-if model is not checked against real retraining, so a margin for
    # its chains' noise (a relative SE of 0.05-0.07) would be precision it has not earned.
    return _bisect(run, base, target=target, max_beta=max_beta, progress=None, z=0.0)


# ---------------------------------------------------------------- the search
def _bisect(
    run: Callable[[float], Forecast],
    base: Forecast,
    *,
    target: float,
    max_beta: float,
    progress: ProgressCallback | None,
    z: float,
) -> TopUp:
    """The smallest beta on the max_beta / 64 grid whose forecast meets the target: its relative
    final tail coverage minus `z` standard errors (`relative_lower_bound`) at or above it."""
    if not 0.0 < target <= 1.5:
        raise InvalidInputError(
            f"target (relative tail coverage) must be in (0, 1.5], got {target}"
        )
    if not 0.0 < max_beta <= 1.0:
        raise InvalidInputError(f"max_beta must be in (0, 1], got {max_beta}")
    plan = base.plan
    total = BISECTION_STEPS + 1
    done = 0

    def evaluate(beta: float) -> Forecast:
        nonlocal done
        result = run(beta)
        done += 1
        if progress is not None:
            progress(done, total)
        return result

    def meets(f: Forecast) -> bool:
        return relative_lower_bound(f, z) >= target

    def top_up(beta: float, f: Forecast, feasible: bool) -> TopUp:
        return TopUp(
            beta=beta,
            documents_per_generation=round(beta * plan.samples),
            target=target,
            feasible=feasible,
            achieved=f.final(),
            achieved_relative=f.relative_final(),
            forecast=f,
        )

    if meets(base):  # the plan as given already meets the target: no top-up needed
        return top_up(plan.beta if plan.policy == "keep-real" else 0.0, base, True)
    high_forecast = evaluate(max_beta)
    if not meets(high_forecast):
        return top_up(max_beta, high_forecast, False)
    low, high = 0.0, max_beta
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        f = evaluate(mid)
        if meets(f):
            high, high_forecast = mid, f
        else:
            low = mid
    return top_up(high, high_forecast, True)
