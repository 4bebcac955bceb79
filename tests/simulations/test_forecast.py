"""The forecast API: what-if forecasts and embedding-space forecasts on real text (the top-up
search: test_top_up.py).

Comparisons between forecasts use the seed bands' standard errors (`Band.sem`) with a normal
quantile, never fixed margins.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from detectors.errors import InvalidInputError
from simulations.forecast import Plan, chain_starts, forecast, score_starts, what_if
from simulations.models.embedding import (
    RETRAINING_ERROR,
    EmbeddingMixtureModel,
    ProjectedReference,
)

Z = float(norm.ppf(1 - 1e-3 / 2))


def separated(a, b) -> bool:
    """Band a's mean is above band b's by more than Z combined standard errors."""
    return a.mean - b.mean > Z * np.hypot(a.sem, b.sem)


# ---------------------------------------------------------------- what-if
def test_what_if_starts_at_the_audited_tail_coverage():
    plan = Plan(generations=5, samples=1000, seeds=64)
    for t in (0.3, 0.6, 1.0):
        f = what_if(synthetic_fraction=0.2, tail_coverage=t, plan=plan)
        start = f.trajectories["tail_coverage"].bands[0]
        assert abs(start.mean - t) <= Z * start.sem + 0.02  # 0.02: the law is solved to 1e-6,
        # the remaining gap is the ratio-of-expectations vs expectation-of-ratio difference
        assert len(f.trajectories["tail_coverage"].bands) == plan.generations + 1
        assert set(f.trajectories) >= {"tail_coverage", "recall", "precision", "divergence"}


def test_what_if_orders_candidates_and_policies():
    plan = Plan(generations=8, samples=1000, seeds=32)
    thin = what_if(synthetic_fraction=0.5, tail_coverage=0.3, plan=plan)
    full = what_if(synthetic_fraction=0.5, tail_coverage=0.9, plan=plan)
    assert separated(full.final(), thin.final())
    kept = what_if(
        synthetic_fraction=0.5,
        tail_coverage=0.3,
        plan=plan.model_copy(update={"policy": "keep-real", "beta": 0.1}),
    )
    assert separated(kept.final(), thin.final())  # the paper's 10% of real data helps
    # Human data degrades too under `replace` (finite samples): the tail shrinks generation by
    # generation even from a perfect start.
    human = full.human["tail_coverage"]
    assert human.bands[0].mean - human.bands[-1].mean > Z * np.hypot(
        human.bands[0].sem, human.bands[-1].sem
    )
    # More synthetic text means more mass off the human support: lower precision.
    clean = what_if(synthetic_fraction=0.0, tail_coverage=0.9, plan=plan)
    assert separated(
        clean.trajectories["precision"].bands[0], full.trajectories["precision"].bands[0]
    )


def test_what_if_is_reproducible_and_validates_input():
    plan = Plan(generations=3, seeds=8)
    a = what_if(synthetic_fraction=0.3, tail_coverage=0.5, plan=plan, random_state=4)
    b = what_if(synthetic_fraction=0.3, tail_coverage=0.5, plan=plan, random_state=4)
    assert a.trajectories == b.trajectories
    with pytest.raises(InvalidInputError, match="synthetic_fraction"):
        what_if(synthetic_fraction=1.5, tail_coverage=0.5, plan=plan)
    with pytest.raises(InvalidInputError, match="tail_coverage"):
        what_if(synthetic_fraction=0.1, tail_coverage=-0.1, plan=plan)
    with pytest.raises(ValueError, match="keep-real"):  # pydantic wraps it: a 422 in the API
        Plan(policy="replace", beta=0.1)
    with pytest.raises(ValueError, match="generations"):
        Plan(generations=0)


# ---------------------------------------------------------------- embedding space, real text
@pytest.mark.slow
def test_candidate_missing_its_tails_starts_lower_and_retraining_narrows_the_gap(wiki_split):
    """What real retraining does (README, "The forecast against real retraining"): a candidate
    missing its tails covers them less as audited (and after one generation), but a language
    model's own error spreads its text back out, so the gap to a faithful candidate narrows over
    the generations (Kneser-Ney retraining of BBC's core third: 0.33 -> 0.71 x human)."""
    reference, core, faithful = wiki_split
    plan = Plan(generations=4, samples=400, seeds=8)
    f_core = forecast(reference, core, plan, random_state=1)
    f_faithful = forecast(reference, faithful, plan, random_state=1)
    core_tc, faithful_tc = (f.trajectories["tail_coverage"].bands for f in (f_core, f_faithful))
    assert separated(faithful_tc[0], core_tc[0])  # (one generation on: test_ground_truth)
    start_gap = faithful_tc[0].mean - core_tc[0].mean
    final_gap = faithful_tc[-1].mean - core_tc[-1].mean
    se = np.sqrt(sum(b.sem**2 for b in (faithful_tc[0], core_tc[0], faithful_tc[-1], core_tc[-1])))
    assert start_gap - final_gap > Z * se, (start_gap, final_gap, se)


def test_starting_samples_are_measured_once_per_projection(toy_reference, monkeypatch):
    """A top-up search measures the base forecast's starts again: `score_starts` keeps them on
    the projection, by content (other samples, seed or retraining error are measured anew)."""
    proj = ProjectedReference.build(toy_reference, seed=0)
    starts = chain_starts(proj.holdout, Plan(samples=100, seeds=3), 7, 0)
    calls = []
    real_score = EmbeddingMixtureModel.score

    def counted(self, samples, rng):
        calls.append(len(samples))
        return real_score(self, samples, rng)

    monkeypatch.setattr(EmbeddingMixtureModel, "score", counted)
    first = score_starts(proj, starts, 0, RETRAINING_ERROR)
    assert len(calls) == 3
    first["tail_coverage"][:] = -1.0  # a caller's copy: the kept measurement is untouched
    again = score_starts(proj, [s.copy() for s in starts], 0, RETRAINING_ERROR)
    assert len(calls) == 3 and np.all(again["tail_coverage"] >= 0)
    fresh = EmbeddingMixtureModel(proj, baseline_seed=0, error=RETRAINING_ERROR)
    want = [real_score(fresh, s, np.random.default_rng(0)) for s in starts]
    for name, values in again.items():
        np.testing.assert_array_equal(values, np.concatenate([w[name] for w in want]))
    score_starts(proj, starts, 1, RETRAINING_ERROR)  # another seed: measured anew
    score_starts(proj, starts[::-1], 0, RETRAINING_ERROR)  # other samples in seed order
    assert len(calls) == 9
