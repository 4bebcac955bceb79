"""The top-up search (simulations.top_up): the smallest grid beta meeting the target on a known
curve, on the what-if model and on real text; the forecast it returns is the forecast of its beta.

Comparisons between forecasts use the seed bands' standard errors (`Band.sem`) with a normal
quantile, never fixed margins.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import norm

from simulations import top_up
from simulations.forecast import Plan, forecast, what_if
from simulations.plans import Forecast
from simulations.results import Band, Trajectory
from simulations.top_up import (
    TOP_UP_CONFIDENCE_Z,
    TOP_UP_GRID_STEPS,
    WHAT_IF_GRID_STEPS,
    _bisect,
    min_top_up,
    relative_lower_bound,
    what_if_top_up,
)

Z = float(norm.ppf(1 - 1e-3 / 2))


def test_what_if_top_up_meets_its_target_on_fresh_seeds():
    plan = Plan(generations=6, samples=1000, seeds=32)
    top = what_if_top_up(synthetic_fraction=0.4, tail_coverage=0.4, plan=plan, target=0.9)
    assert top.feasible and 0 < top.beta <= 0.5
    assert top.documents_per_generation == round(top.beta * plan.samples)
    # Re-simulate the proposed plan with seeds the search never saw.
    check = what_if(
        synthetic_fraction=0.4,
        tail_coverage=0.4,
        random_state=99,
        plan=plan.model_copy(update={"policy": "keep-real", "beta": top.beta}),
    )
    human = what_if(synthetic_fraction=0.4, tail_coverage=0.4, plan=plan, random_state=99).human
    final, human_final = check.final(), human["tail_coverage"].bands[-1]
    se = np.hypot(final.sem, 0.9 * human_final.sem)
    assert final.mean >= 0.9 * human_final.mean - Z * se


@pytest.mark.slow
def test_min_top_up_beta_meets_the_target_when_simulated(wiki_split):
    reference, core, _ = wiki_split
    plan = Plan(generations=3, samples=300, seeds=6)
    base = forecast(reference, core, plan, random_state=2)
    most = forecast(  # read against the plan's own human start, as the search reads every beta
        reference,
        core,
        plan.model_copy(update={"policy": "keep-real", "beta": 0.5}),
        random_state=2,
        human=base.human,
    )
    # The target is what the most allowed top-up reaches at the search's confidence bound, so a
    # top-up is feasible by construction, whatever the seeds make of this candidate (how much a
    # top-up restores is the forecast's answer, not the test's; the search's choice of the
    # smallest beta is tested on a known curve below).
    target = relative_lower_bound(most, TOP_UP_CONFIDENCE_Z)
    top = min_top_up(reference, core, plan, target=target, random_state=2)
    assert top.feasible and 0 <= top.beta <= 0.5
    assert relative_lower_bound(top.forecast, TOP_UP_CONFIDENCE_Z) >= target
    assert top.achieved_relative > target  # the point, above its lower bound
    check = forecast(
        reference,
        core,
        plan.model_copy(update={"policy": "keep-real", "beta": top.beta}),
        random_state=3,
    )
    human_final = forecast(reference, core, plan, random_state=3).human["tail_coverage"].bands[-1]
    se = np.hypot(check.final().sem, target * human_final.sem)
    assert check.final().mean >= target * human_final.mean - Z * se


def test_relative_lower_bound_combines_both_standard_errors():
    f = what_if(synthetic_fraction=0.5, tail_coverage=0.6, plan=Plan(seeds=6))
    cand, human = f.final(), f.human["tail_coverage"].bands[-1]
    ratio = cand.mean / human.mean
    se = ratio * np.sqrt((cand.sem / cand.mean) ** 2 + (human.sem / human.mean) ** 2)
    assert relative_lower_bound(f, 0.0) == f.relative_final()
    assert relative_lower_bound(f, 2.0) == pytest.approx(ratio - 2.0 * se, rel=1e-12)
    assert relative_lower_bound(f, 2.0) < relative_lower_bound(f, 1.0) < f.relative_final()


def _known_curve(
    slope: float, shape: Callable[[float], float] | None = None
) -> tuple[Plan, list[float], Callable[[float], Forecast]]:
    """A forecast per beta with relative final coverage 0.6 + slope x beta (or 0.6 +
    shape(beta)), chains' SE 0.02 (candidate) and 0.01 (human start); the betas asked for are
    recorded."""
    plan = Plan(generations=1, samples=200, seeds=4)
    asked: list[float] = []
    rise = shape or (lambda beta: slope * beta)

    def band(mean: float, sem: float) -> Band:
        return Band(mean=mean, median=mean, low=mean, high=mean, sem=sem, level=0.9, n=4)

    def curve(mean: float, sem: float) -> dict[str, Trajectory]:
        bands = (band(mean, sem), band(mean, sem))
        return {"tail_coverage": Trajectory(metric="tail_coverage", description="", bands=bands)}

    def run(beta: float) -> Forecast:
        asked.append(beta)
        return Forecast(
            plan=plan.model_copy(update={"policy": "keep-real", "beta": beta}) if beta else plan,
            method="test",
            trajectories=curve(0.6 + rise(beta), 0.02),
            human=curve(1.0, 0.01),
            elapsed_seconds=0.0,
        )

    return plan, asked, run


def grid(steps: int) -> list[float]:
    return [0.5 * k / 2**steps for k in range(2**steps + 1)]


# The embedding search's grid (max_beta / 8) and the what-if search's (max_beta / 32).
STEPS = [TOP_UP_GRID_STEPS, WHAT_IF_GRID_STEPS]


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("target", [0.65, 0.8, 0.9, 1.05])
def test_the_search_takes_the_smallest_grid_beta_whose_lower_bound_meets_the_target(target, steps):
    """On a known curve the search returns the smallest beta of its grid (max_beta / 2**steps)
    whose `relative_lower_bound` reaches the target, and a smaller one on the mean alone (z = 0;
    on the fine grid, where the two differ); max_beta is simulated only when the answer is in
    the upper half."""
    _, asked, run = _known_curve(slope=1.0)
    base = run(0.0)
    found = {}
    for z in (TOP_UP_CONFIDENCE_Z, 0.0):
        asked.clear()
        top = _bisect(run, base, target=target, max_beta=0.5, progress=None, z=z, steps=steps)
        simulated = len(asked)
        smallest = min(b for b in grid(steps) if relative_lower_bound(run(b), z) >= target)
        assert top.feasible and top.beta == smallest
        assert top.documents_per_generation == round(smallest * 200)
        assert simulated == steps + (smallest > 0.25)
        found[z] = top.beta
    if steps == TOP_UP_GRID_STEPS:  # the bound asks for more, or the same coarse grid step
        assert found[0.0] <= found[TOP_UP_CONFIDENCE_Z]
        return
    assert found[0.0] < found[TOP_UP_CONFIDENCE_Z]  # the bound asks for more fresh data


SHAPES: dict[str, Callable[[float], float]] = {
    "concave": lambda b: 0.9 * np.sqrt(b / 0.5),  # steep first, flat near max_beta
    "convex": lambda b: 0.9 * (b / 0.5) ** 3,  # flat first, steep near max_beta
    "step": lambda b: 0.9 * float(b >= 0.3),  # nothing, then everything
    "plateau": lambda b: 0.3 * min(b, 0.1) / 0.1 + 0.6 * max(0.0, b - 0.45) / 0.05,
}


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("target", [0.7, 0.9, 1.1, 1.3])
def test_on_any_monotone_curve_the_search_finds_the_smallest_beta(shape, target, steps):
    """Curved, stepped and flat stretches: the smallest grid beta that meets the target (or
    max_beta, infeasible), in `steps` forecasts and max_beta when needed."""
    _, asked, run = _known_curve(slope=0.0, shape=SHAPES[shape])
    base = run(0.0)
    meeting = [
        b for b in grid(steps) if relative_lower_bound(run(b), TOP_UP_CONFIDENCE_Z) >= target
    ]
    asked.clear()
    top = _bisect(
        run,
        base,
        target=target,
        max_beta=0.5,
        progress=None,
        z=TOP_UP_CONFIDENCE_Z,
        steps=steps,
    )
    if not meeting:
        assert not top.feasible and top.beta == 0.5
        assert asked == [0.25, 0.5]
        return
    assert top.feasible and top.beta == min(meeting)
    assert len(asked) == steps + (min(meeting) > 0.25)
    assert len(set(asked)) == len(asked)  # no beta forecast twice


@pytest.mark.parametrize(
    ("steps", "wiggle", "target"),
    [
        (TOP_UP_GRID_STEPS, {0.25: -0.3}, 0.75),  # the first midpoint dips
        (WHAT_IF_GRID_STEPS, {0.25: -0.2, 0.3125: -0.25}, 0.9),  # two betas dip
    ],
)
def test_on_a_non_monotone_curve_the_beta_meets_and_the_one_below_misses(steps, wiggle, target):
    """Seeds' noise can make the curve dip: the search then returns a grid beta that meets the
    target with its grid neighbour below missing (not necessarily the smallest that meets)."""
    _, _, run = _known_curve(slope=0.0, shape=lambda b: 0.8 * b / 0.5 + wiggle.get(b, 0.0))
    top = _bisect(
        run,
        run(0.0),
        target=target,
        max_beta=0.5,
        progress=None,
        z=TOP_UP_CONFIDENCE_Z,
        steps=steps,
    )
    assert top.feasible
    betas = grid(steps)
    below = betas[betas.index(top.beta) - 1]
    assert relative_lower_bound(top.forecast, TOP_UP_CONFIDENCE_Z) >= target
    assert relative_lower_bound(run(below), TOP_UP_CONFIDENCE_Z) < target
    meeting = [b for b in betas if relative_lower_bound(run(b), TOP_UP_CONFIDENCE_Z) >= target]
    assert top.beta > min(meeting)  # a crossing above the dips, not the smallest beta


@pytest.mark.parametrize("target", [0.75, 0.95])  # answer in the lower, upper half
def test_the_progress_bar_ends_full_at_the_forecasts_asked_for(target):
    _, asked, run = _known_curve(slope=1.0)
    calls: list[tuple[int, int]] = []
    _bisect(
        run,
        run(0.0),
        target=target,
        max_beta=0.5,
        progress=lambda done, total: calls.append((done, total)),
        z=TOP_UP_CONFIDENCE_Z,
        steps=TOP_UP_GRID_STEPS,
    )
    forecasts = len(asked) - 1  # the base was run here, not by the search
    assert calls[-1] == (forecasts, forecasts)
    assert [done for done, _ in calls[:-1]] == list(range(1, forecasts + 1))
    assert all(total == TOP_UP_GRID_STEPS + 1 for _, total in calls[:-1])


def test_an_unreachable_target_is_reported_infeasible_at_max_beta():
    _, asked, run = _known_curve(slope=0.2)  # at most 0.7 at beta 0.5
    top = _bisect(
        run,
        run(0.0),
        target=0.9,
        max_beta=0.5,
        progress=None,
        z=TOP_UP_CONFIDENCE_Z,
        steps=TOP_UP_GRID_STEPS,
    )
    assert not top.feasible and top.beta == 0.5 and top.forecast.plan.beta == 0.5
    assert top.achieved_relative == pytest.approx(0.7)
    assert asked == [0.0, 0.25, 0.5]  # the base, the first midpoint, max_beta: no more


@pytest.mark.parametrize("deferred_bytes", [top_up.DEFERRED_BYTES, 0])
def test_the_top_up_forecast_is_the_forecast_of_its_beta(
    toy_reference, toy_candidate, monkeypatch, deferred_bytes
):
    """The search measures the betas it tries at their final generation only (or, for a plan
    too large to keep their samples, every generation); the forecast it returns has every
    generation measured, equal to the last digit to forecasting that beta."""
    monkeypatch.setattr(top_up, "DEFERRED_BYTES", deferred_bytes)
    plan = Plan(generations=3, samples=150, seeds=4)
    # The toy's tail coverage falls to ~0.05 after one generation, so its ratio to the human
    # start is mostly noise and moves with the CPU's rounding (0.5-2.3 over random states on
    # one machine). What this test needs is a search that runs: the first random state whose
    # ratio leaves room for a target above it (the largest target is 1.5).
    for seed in range(10):
        base = forecast(toy_reference, toy_candidate, plan, random_state=seed)
        if base.relative_final() + 0.05 <= 1.5:
            break
    else:
        pytest.fail("no random state of 10 leaves the toy's ratio below 1.45")
    target = base.relative_final() + 0.05  # just out of reach: the search runs
    top = min_top_up(
        toy_reference, toy_candidate, plan, target=target, random_state=seed, base=base
    )
    assert top.beta > 0
    at_beta = plan.model_copy(update={"policy": "keep-real", "beta": top.beta})
    want = forecast(toy_reference, toy_candidate, at_beta, random_state=seed, human=base.human)
    assert top.forecast.plan == want.plan
    assert top.forecast.trajectories == want.trajectories
    assert top.forecast.human == base.human
    for trajectory in top.forecast.trajectories.values():
        assert all(np.isfinite(b.mean) for b in trajectory.bands)
