"""The smallest top-up: how much fresh human data per generation a plan needs to meet a target.

- `min_top_up(reference, candidate, plan, target=...)`: on the embedding forecast
  (`simulations.forecast.forecast`), the smallest fraction beta of fresh human data per
  generation (policy keep-real) whose forecast ends with a relative tail coverage at or above the
  target with one-sided 95% confidence (`relative_lower_bound`);
- `what_if_top_up(...)`: the same on the what-if model, on the mean.

Both bisect a grid of betas with common random numbers: every beta is simulated with the same
seeds and starting samples, so the comparison between betas is not swamped by seed noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.errors import InvalidInputError
from detectors.index import as_matrix
from simulations.chain_pool import ChainOutput, MeasureTask, measure_chain, run_chains
from simulations.forecast import (
    EMBEDDING_DESCRIPTIONS,
    ProgressCallback,
    chain_starts,
    forecast,
    run_chain_tasks,
    score_starts,
    stacked_records,
    trajectories_of,
    what_if,
    with_start,
)
from simulations.models.embedding import (
    RETRAINING_ERROR,
    ProjectedReference,
    RetrainingError,
)
from simulations.plans import Forecast, Plan, TopUp

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus

# The embedding search's grid: max_beta / 2**TOP_UP_GRID_STEPS (0.5 / 8: 62 documents in 1,000
# per generation), found in three bisection forecasts (and max_beta when the answer is in the
# upper half). The beta's own noise over the forecast's seeds is 0.07-0.09 (below), more than a
# step: a finer grid reported digits the forecast does not know, at a forecast per halving, and
# the search was four fifths of an audit's time outside embedding and language-model scoring.
# It was max_beta / 32 (five halvings; the same path stopped two steps earlier: a beta now is the
# upper end of the bracket the finer search went on to narrow, never below its answer, on
# recorded forecasts 0.021 above on average and at most 0.047) and max_beta / 64 before that
# (benchmarks/top_up_search.py, README "Audit stages").
TOP_UP_GRID_STEPS = 3
# The what-if search's grid, max_beta / 32: its forecasts take milliseconds.
WHAT_IF_GRID_STEPS = 5
# The top-up search asks for the smallest beta whose relative final tail coverage is above the
# target with one-sided 95% confidence over the forecast's chains, not only on average: near the
# target the coverage rises by about 1 per unit of beta, so the chains' noise alone (0.02 in the
# relative, candidate and human start together) moved the beta found by 0.07-0.09, and real
# retraining with the smaller betas fell short (README "Top-up that works?").
TOP_UP_CONFIDENCE_Z = 1.645
# The search keeps the samples of the generations it has not measured yet (see `min_top_up`) up
# to this size per beta (the default plan: 2 MB).
DEFERRED_BYTES = 64 * 2**20


def _with_policy(plan: Plan, beta: float) -> Plan:
    return plan.model_copy(update={"policy": "keep-real", "beta": float(beta)})


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
    `projected` the reference's projection it used (saves building it again).

    The returned forecast is `forecast(reference, candidate, plan with beta, human=base.human)`
    to the last digit; the betas tried on the way are measured at their final generation only
    (all the search compares; a search forecast costs a fifth less)."""
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
    cand = proj.project(as_matrix(candidate, name="candidate vectors", dim=reference.dim_))
    # Every beta starts from the same samples as the base forecast (stream 7 of `forecast`), so
    # generation 0 is measured once for the whole search.
    starts = chain_starts(cand, plan, 7, random_state)
    with threadpool_limits(limits=1):
        first = score_starts(proj, starts, random_state, error)
    # A deferred generation's samples are kept until the search ends: for the beta that may be
    # returned only (the smallest that met the target so far, and max_beta), and only while
    # they are small; a larger plan measures every generation of every beta, as before.
    pending_bytes = (
        plan.seeds * (plan.generations - 1) * plan.samples * cand.shape[1] * cand.itemsize
    )
    final_only = pending_bytes <= DEFERRED_BYTES
    kept: dict[float, tuple[list[ChainOutput], float]] = {}

    def run(beta: float) -> Forecast:
        t0 = time.perf_counter()
        at_beta = _with_policy(plan, beta)
        with threadpool_limits(limits=1):
            outputs = run_chain_tasks(
                proj, starts, at_beta, random_state, None, error, processes, final_only=final_only
            )
        record = with_start(first, stacked_records(outputs, at_beta))
        elapsed = time.perf_counter() - t0
        f = Forecast(
            plan=at_beta,
            method="embedding-gmm",
            trajectories=trajectories_of(record, EMBEDDING_DESCRIPTIONS),
            human=base.human,
            elapsed_seconds=elapsed,
        )
        if final_only and (beta == max_beta or _meets(f, target, TOP_UP_CONFIDENCE_Z)):
            for larger in [b for b in kept if beta < b < max_beta]:
                del kept[larger]  # bisection only ever returns a smaller one now
            kept[beta] = (outputs, elapsed)
        return f

    found = _bisect(
        run,
        base,
        target=target,
        max_beta=max_beta,
        progress=progress,
        z=TOP_UP_CONFIDENCE_Z,
        steps=TOP_UP_GRID_STEPS,
    )
    if found.forecast is base or not final_only:
        return found
    outputs, elapsed = kept[found.beta]
    return found.model_copy(
        update={
            "forecast": _measured(
                found.forecast, outputs, first, proj, random_state, error, elapsed, processes
            )
        }
    )


def _measured(
    provisional: Forecast,
    outputs: list[ChainOutput],
    first: dict[str, np.ndarray],
    proj: ProjectedReference,
    random_state: int,
    error: RetrainingError,
    elapsed: float,
    processes: int,
) -> Forecast:
    """`provisional` with its deferred generations measured, as the chains would have, on the
    processes the chains ran on."""
    t0 = time.perf_counter()
    plan = provisional.plan
    tasks = [MeasureTask(proj, error, random_state, out) for out in outputs]
    measured = run_chains(tasks, processes=processes, work=measure_chain)
    record = with_start(first, stacked_records(measured, plan))
    return provisional.model_copy(
        update={
            "trajectories": trajectories_of(record, EMBEDDING_DESCRIPTIONS),
            "elapsed_seconds": elapsed + time.perf_counter() - t0,
        }
    )


def relative_lower_bound(f: Forecast, z: float, metric: str = "tail_coverage") -> float:
    """`f.relative_final(metric)` minus z standard errors: the candidate's and the human start's
    chain standard errors combined for their ratio (first order, as independent: their chains
    start from different data)."""
    relative = f.relative_final(metric)
    return relative - z * relative * float(np.hypot(*f.relative_final_errors(metric)))


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
    return _bisect(
        run,
        base,
        target=target,
        max_beta=max_beta,
        progress=None,
        z=0.0,
        steps=WHAT_IF_GRID_STEPS,
    )


# ---------------------------------------------------------------- the search
def _meets(f: Forecast, target: float, z: float) -> bool:
    return relative_lower_bound(f, z) >= target


def _bisect(
    run: Callable[[float], Forecast],
    base: Forecast,
    *,
    target: float,
    max_beta: float,
    progress: ProgressCallback | None,
    z: float,
    steps: int,
) -> TopUp:
    """The smallest beta on the max_beta / 2**steps grid whose forecast meets the
    target: its relative final tail coverage minus `z` standard errors (`relative_lower_bound`)
    at or above it, with the grid beta below it missing: the smallest such beta where meeting the
    target is monotone in beta. On real forecasts it is not, near the target (the seeds' noise is
    as large as a grid step's rise), so the answer is one crossing of several; a regula falsi
    search asked for 12% fewer forecasts but returned another crossing in 8 of 61 searches
    (benchmarks/top_up_search.py, README "Audit stages")."""
    if not 0.0 < target <= 1.5:
        raise InvalidInputError(
            f"target (relative tail coverage) must be in (0, 1.5], got {target}"
        )
    if not 0.0 < max_beta <= 1.0:
        raise InvalidInputError(f"max_beta must be in (0, 1], got {max_beta}")
    plan = base.plan
    total = steps + 1
    done = 0

    def evaluate(beta: float) -> Forecast:
        nonlocal done
        result = run(beta)
        done += 1
        if progress is not None:
            progress(done, total)
        return result

    def meets(f: Forecast) -> bool:
        return _meets(f, target, z)

    def top_up(beta: float, f: Forecast, feasible: bool) -> TopUp:
        if progress is not None and done:
            progress(done, done)  # the bar ends full (an answer in the lower half skips max_beta)
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
    # max_beta is simulated only when the first midpoint misses the target: the answer is then
    # in the upper half (or nowhere). The betas tried and the one returned are always those of
    # checking max_beta first; a top-up in the lower half costs one forecast less.
    low, high = 0.0, max_beta
    high_forecast: Forecast | None = None
    for _ in range(steps):
        mid = (low + high) / 2
        f = evaluate(mid)
        if meets(f):
            high, high_forecast = mid, f
            continue
        low = mid
        if high_forecast is None:
            high_forecast = evaluate(max_beta)
            if not meets(high_forecast):
                return top_up(max_beta, high_forecast, False)
    assert high_forecast is not None  # the first midpoint met the target, or max_beta did
    return top_up(high, high_forecast, True)
