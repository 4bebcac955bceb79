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


def test_a_narrower_generator_is_not_read_confidently(fitted):
    """A generator sampled at low temperature with a repetition penalty scores in a band 0.6x as
    wide as the examples' (measured: sd 1.09 vs 1.81). Mixed at 0.8 with human text it looks like
    the examples alone; profiled over the spread the interval sat at [0.84, 1.00] and missed 0.8
    in 7 of 10 draws. The spread band admits the ambiguity: the intervals must cover at their
    level (more than 4 misses of 10 has probability < 0.013 if they are honest), and the
    estimator without the band must fail the same check, or the case tests nothing."""

    def misses(estimator: CurvatureFractionEstimator) -> int:
        out = 0
        for seed in range(10):
            x = mix(0.8, 100, np.random.default_rng(200 + seed), generated=(0.3, 0.9))
            e = estimator.estimate(profiles(x)).estimate
            out += not (e.low <= 0.8 <= e.high)
        return out

    rng = np.random.default_rng(0)
    reference = profiles(rng.normal(*HUMAN, 300))
    examples = profiles(rng.normal(*GENERATED, 150))
    unbanded = CurvatureFractionEstimator(random_state=0, spread_ratios=()).fit(reference, examples)
    assert binom.sf(misses(fitted) - 1, 10, 0.1) > 0.01
    assert binom.sf(misses(unbanded) - 1, 10, 0.1) <= 0.01


def test_text_neither_side_explains_widens_the_interval_both_ways(fitted):
    """High-temperature SmolLM2 text (t=1.2, top-p 1) scores far below human text (measured:
    -5.4 vs -1.9, sd 1.3), where the human side's tail reads it as human. Half of such a
    candidate must be counted as unexplained, and the interval must admit both readings."""
    x = mix(0.5, 200, np.random.default_rng(6), generated=(-5.4, 1.3))
    fit = fitted.estimate(profiles(x))
    # About 0.5 * 0.99 of the candidate lies below the human side's 5% cut (-3.3 to -3.8 as
    # the side moves); less the 5% of human text expected there and the test's one-sided
    # margin (1.28 SE): at least 0.3 with room for the shifts.
    assert fit.unexplained >= 0.3
    assert fit.estimate.low <= 0.5 <= fit.estimate.high
    # Human text of another outlet (ABC news -1.95, sd 1.1) is explained: the human side's
    # shift absorbs it, and what is left in the tails is noise: within two standard errors of
    # a 5% tail share over 200 documents.
    other = fitted.estimate(profiles(np.random.default_rng(7).normal(-2.0, 1.1, 200)))
    assert other.unexplained <= 2 * np.sqrt(0.05 * 0.95 / 200)
    assert other.estimate.point <= 0.05


def test_an_unknown_component_partly_inside_the_human_range_leaves_the_share_unbounded(fitted):
    """Generated text centred just below the human tail (-4.5, sd 1.3): about a quarter of it
    lies inside the human range and reads as human, so no count of the tail bounds the share
    from above. At 0.8 generated the interval must reach 0.8, which only an upper end of 1 can
    promise, since the data cannot say how much of it hides in the human range."""
    x = mix(0.8, 200, np.random.default_rng(8), generated=(-4.5, 1.3))
    fit = fitted.estimate(profiles(x))
    assert fit.unexplained >= fitted.material_unexplained
    assert fit.estimate.high == 1.0 and fit.estimate.low <= 0.8


def test_a_few_odd_documents_do_not_blank_the_interval(fitted):
    """Real corpora hold a few percent of odd text (tables, boilerplate) scoring far below
    prose. 2% of such in 1,000 human documents: the excess (0.02 less 1.645 SE of a 5% tail,
    0.011) is below the material share, so only the tail documents count both ways and the
    interval stays informative: its upper end within the clean candidate's plus the share in
    the low tail (5% expected + 2% odd + 3 SE of a 5% tail share, 0.021)."""
    rng = np.random.default_rng(9)
    clean = rng.normal(*HUMAN, 980)
    odd = fitted.estimate(profiles(np.r_[clean, rng.normal(-9.0, 1.0, 20)]))
    assert odd.unexplained < fitted.material_unexplained
    assert odd.estimate.high < 1.0
    base = fitted.estimate(profiles(clean)).estimate
    assert odd.estimate.high <= base.high + 0.05 + 0.02 + 3 * np.sqrt(0.05 * 0.95 / 1000)


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


def test_the_detectable_share_of_a_family_like_the_examples_is_small_and_shrinks_with_n(fitted):
    family = profiles(np.random.default_rng(5).normal(*GENERATED, 120))
    lengths = np.ones(200, int)
    at_200 = fitted.detectable_share(family, lengths, 200)
    at_50 = fitted.detectable_share(family, lengths, 50)
    assert at_200 is not None and at_50 is not None
    assert at_200 <= 0.15 and at_50 > at_200


def test_a_family_that_scores_like_human_text_is_seen_at_no_share(fitted):
    family = profiles(np.random.default_rng(6).normal(*HUMAN, 120))
    assert fitted.detectable_share(family, np.ones(200, int), 200) is None


def test_at_its_detectable_share_a_family_is_found_about_nine_times_in_ten(fitted):
    """Simulated audits at the share the expected likelihood gives: 20 draws. Its interval's
    widening (bootstrap of the components, the spread band) is not in that calculation, so the
    real rate may fall a little short of 0.9: three binomial standard errors below it (0.70)
    is the floor; and a third of the share is found far less often."""
    family_mean, family_sd = (-0.3, 1.2)  # between human and the examples, as chat text is
    rng = np.random.default_rng(7)
    share = fitted.detectable_share(
        profiles(rng.normal(family_mean, family_sd, 150)), np.ones(200, int), 200
    )
    assert share is not None and share < 1.0

    def found(a: float, seed: int) -> bool:
        draw = np.random.default_rng(200 + seed)
        x = mix(a, 200, draw, generated=(family_mean, family_sd))
        return fitted.estimate(profiles(x)).estimate.low > 0

    rate = np.mean([found(share, s) for s in range(20)])
    assert rate >= 0.9 - 3 * np.sqrt(0.9 * 0.1 / 20), rate
    assert np.mean([found(share / 3, s) for s in range(20)]) < rate
