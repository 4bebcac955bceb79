"""The curvature mixture's estimate and interval, on scores drawn from known distributions.

Fast: no language model. The scores' shapes follow what the scorer measured on real text
(human news about -1.7 with sd 1, SmolLM2 text about +0.5 with sd 1.5); the real-model tests are
tests/service/test_audit_curvature.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from detectors.errors import InsufficientDataError, NotFittedError
from detectors.synthetic.curvature import CurvatureProfiles
from detectors.synthetic.curvature_fraction import CurvatureFractionEstimator

HUMAN = (-1.7, 1.0)
GENERATED = (0.5, 1.5)


def profiles(scores: np.ndarray) -> CurvatureProfiles:
    """Profiles with one scored position each, whose score is the given one."""
    scores = np.asarray(scores, dtype=float)[:, None]
    return CurvatureProfiles(
        num=scores, var=np.ones_like(scores), positions=np.ones(len(scores), int)
    )


def mix(a: float, n: int, rng: np.random.Generator, human=HUMAN, generated=GENERATED) -> np.ndarray:
    k = round(a * n)
    return np.r_[rng.normal(*generated, k), rng.normal(*human, n - k)]


@pytest.fixture(scope="module")
def fitted() -> CurvatureFractionEstimator:
    rng = np.random.default_rng(0)
    reference = profiles(rng.normal(*HUMAN, 300))
    examples = profiles(rng.normal(*GENERATED, 150))
    return CurvatureFractionEstimator(random_state=0).fit(reference, examples)


def test_interval_covers_the_truth_at_its_level(fitted):
    """20 independent mixes at 0.3: a 90% interval misses about 2; 6 or more misses has
    probability 0.011 if the interval is honest."""
    misses = 0
    for seed in range(20):
        e = fitted.estimate(profiles(mix(0.3, 200, np.random.default_rng(100 + seed)))).estimate
        assert e.low <= e.point <= e.high
        misses += not (e.low <= 0.3 <= e.high)
    assert binom.sf(misses - 1, 20, 0.1) > 0.01, f"{misses} of 20 intervals missed 0.3"


def test_human_text_shifted_away_from_generated_reads_zero(fitted):
    """Human text of another outlet scores a little lower (ABC news -1.95 vs BBC -1.74)."""
    e = fitted.estimate(profiles(np.random.default_rng(1).normal(-2.0, 1.1, 200))).estimate
    assert e.point <= 0.05 and e.low == 0.0
    assert e.high > 0.0  # a sample never proves a share of exactly zero


def test_pure_generated_reads_near_one(fitted):
    e = fitted.estimate(profiles(mix(1.0, 200, np.random.default_rng(2)))).estimate
    # a few generated documents score like human ones, so the point may sit a little below 1:
    # within 3 binomial standard errors of a 10% confusion rate
    se = np.sqrt(0.1 * 0.9 / 200)
    assert e.point >= 1 - 3 * se and e.high >= 1 - 3 * se and e.low > 0.5


def test_a_generator_scoring_higher_than_the_examples_is_still_counted(fitted):
    """Another source moves the generated scores (SmolLM2 on ABC news +1.1 vs +0.4 on BBC): the
    generated side moves with it, within its bounds."""
    e = fitted.estimate(
        profiles(mix(0.5, 200, np.random.default_rng(3), generated=(1.3, 1.5)))
    ).estimate
    assert e.low <= 0.5 <= e.high


def test_labelled_examples_narrow_the_interval(fitted):
    candidate = profiles(mix(0.5, 200, np.random.default_rng(4)))
    free = fitted.estimate(candidate).estimate
    known = fitted.estimate(candidate, labelled=True).estimate
    assert known.mode == "labelled" and free.mode == "reference-only"
    assert known.high - known.low <= free.high - free.low
    assert known.low <= 0.5 <= known.high


def test_reference_scores_follow_the_candidates_lengths():
    """A short document's score is over its first positions only: the components are taken at
    the candidate's lengths, so short human text is not compared with long."""
    rng = np.random.default_rng(5)
    n, width = 300, 40
    steps = rng.normal(-0.2, 1.0, (n, width))
    ref = CurvatureProfiles(
        np.cumsum(steps, 1), np.cumsum(np.ones((n, width)), 1), np.full(n, width)
    )
    est = CurvatureFractionEstimator(random_state=0)
    short = est.scores_at(ref, np.full(10, 4))
    long = est.scores_at(ref, np.full(10, 40))
    # score over L positions: mean -0.2 sqrt(L), sd 1
    assert short.mean() == pytest.approx(-0.2 * 2, abs=4 / np.sqrt(len(short)))
    assert long.mean() == pytest.approx(-0.2 * np.sqrt(40), abs=4 / np.sqrt(len(long)))


def test_bad_input_is_named():
    with pytest.raises(NotFittedError):
        CurvatureFractionEstimator().estimate(profiles(np.zeros(50)))
    with pytest.raises(InsufficientDataError, match="need 20"):
        CurvatureFractionEstimator().fit(profiles(np.zeros(5)), profiles(np.zeros(50)))
    est = CurvatureFractionEstimator().fit(profiles(np.zeros(50)), profiles(np.ones(50)))
    with pytest.raises(InsufficientDataError, match="could be scored"):
        est.estimate(profiles(np.zeros(10)))
