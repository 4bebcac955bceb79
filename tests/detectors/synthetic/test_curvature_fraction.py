"""The curvature mixture's estimate and interval, on scores drawn from known distributions.

Fast: no language model. The scores' shapes follow what the scorer measured on real text
(human news about -1.7 with sd 1, SmolLM2 text about +0.5 with sd 1.5); the real-model tests are
in test_curvature.py.
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
    reference = profiles(np.random.default_rng(0).normal(*HUMAN, 300))
    return CurvatureFractionEstimator(random_state=0).fit(reference)


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
    """Human text of another outlet scores lower (Usenet -2.4 vs BBC -1.7): not generation."""
    e = fitted.estimate(profiles(np.random.default_rng(1).normal(-2.4, 1.2, 200))).estimate
    assert e.point <= 0.05 and e.low == 0.0
    assert e.high > 0.0  # a sample never proves a share of exactly zero


def test_pure_generated_reads_near_one(fitted):
    e = fitted.estimate(profiles(mix(1.0, 200, np.random.default_rng(2)))).estimate
    # the free generated side may borrow a few of its low scores to the human side: the
    # truth must be inside the interval and the point within 3 binomial standard errors
    assert e.high == pytest.approx(1.0)
    assert e.point >= 1 - 3 * np.sqrt(0.1 * 0.9 / 200)


def test_labelled_examples_narrow_the_interval(fitted):
    rng = np.random.default_rng(3)
    candidate = profiles(mix(0.5, 200, rng))
    labelled = profiles(rng.normal(*GENERATED, 200))
    free = fitted.estimate(candidate).estimate
    known = fitted.estimate(candidate, labelled=labelled).estimate
    assert known.mode == "labelled" and free.mode == "reference-only"
    assert known.high - known.low < free.high - free.low
    assert known.low <= 0.5 <= known.high


def test_overlapping_generator_widens_the_interval(fitted):
    """A generator whose text scores nearly like human text cannot be told apart: the interval
    says so by its width."""
    rng = np.random.default_rng(4)
    clear = fitted.estimate(profiles(mix(0.5, 200, rng, generated=(1.5, 1.0)))).estimate
    faint = fitted.estimate(profiles(mix(0.5, 200, rng, generated=(-0.5, 1.0)))).estimate
    assert faint.high - faint.low > 1.5 * (clear.high - clear.low)


def test_reference_scores_follow_the_candidates_lengths():
    """A short document's score is over its first positions only: the human side is taken at
    the candidate's lengths, so short human text is not compared with long."""
    rng = np.random.default_rng(5)
    n, width = 300, 40
    steps = rng.normal(-0.2, 1.0, (n, width))
    ref = CurvatureProfiles(
        np.cumsum(steps, 1), np.cumsum(np.ones((n, width)), 1), np.full(n, width)
    )
    est = CurvatureFractionEstimator(random_state=0).fit(ref)
    short = est.human_scores(np.full(10, 4))
    long = est.human_scores(np.full(10, 40))
    # score over L positions: mean -0.2 sqrt(L), sd 1
    assert short.mean() == pytest.approx(-0.2 * 2, abs=4 / np.sqrt(len(short)))
    assert long.mean() == pytest.approx(-0.2 * np.sqrt(40), abs=4 / np.sqrt(len(long)))


def test_bad_input_is_named():
    with pytest.raises(NotFittedError):
        CurvatureFractionEstimator().estimate(profiles(np.zeros(50)))
    with pytest.raises(InsufficientDataError, match="need 20"):
        CurvatureFractionEstimator().fit(profiles(np.zeros(5)))
    est = CurvatureFractionEstimator().fit(profiles(np.zeros(50)))
    with pytest.raises(InsufficientDataError, match="could be scored"):
        est.estimate(profiles(np.zeros(10)))
