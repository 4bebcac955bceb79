"""A forecast's relative final with its interval over the chains.

`Forecast.relative_final_estimate`. Chains are drawn here from known normal laws, so the true
ratio is known: the interval's coverage over many forecasts is checked against its nominal level
within the binomial standard error.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from simulations.plans import Forecast, Plan
from simulations.results import summarise

Z = float(norm.ppf(1 - 1e-3 / 2))


def forecast_of(candidate: np.ndarray, human: np.ndarray) -> Forecast:
    """A forecast whose final tail coverage per chain is `candidate`, the human start's `human`."""

    def trajectory(finals: np.ndarray) -> dict:
        return {"tail_coverage": summarise(finals[None, :], metric="tail_coverage", description="")}

    plan = Plan(generations=1, samples=100, seeds=max(2, len(candidate)))
    return Forecast(
        plan=plan,
        method="test",
        trajectories=trajectory(candidate),
        human=trajectory(human),
        elapsed_seconds=0.0,
    )


def test_interval_covers_the_true_ratio_at_its_level():
    rng = np.random.default_rng(0)
    true_cand, true_human, sd, chains, runs = 0.45, 0.5, 0.04, 8, 2000
    covered = 0
    for _ in range(runs):
        f = forecast_of(
            rng.normal(true_cand, sd, chains), rng.normal(true_human, sd, chains)
        ).relative_final_estimate(level=0.9)
        assert f.low <= f.point <= f.high
        covered += f.low <= true_cand / true_human <= f.high
    # The delta method is near exact at this spread (coefficient of variation 3%).
    assert abs(covered / runs - 0.9) < Z * math.sqrt(0.9 * 0.1 / runs)


def test_two_chains_give_a_wide_interval_and_one_chain_the_point_alone():
    rng = np.random.default_rng(1)
    cand, human = rng.normal(0.45, 0.04, 8), rng.normal(0.5, 0.04, 8)
    eight = forecast_of(cand, human).relative_final_estimate()
    two = forecast_of(cand[:2], human[:2]).relative_final_estimate()
    # Student t with one or two degrees of freedom against about 14: several times wider.
    assert two.high - two.low > 2 * (eight.high - eight.low)
    one = forecast_of(cand[:1], human[:1]).relative_final_estimate()
    assert one.low == one.point == one.high == cand[0] / human[0]
