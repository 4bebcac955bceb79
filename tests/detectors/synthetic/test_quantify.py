"""Quantifiers on scores with a known prevalence: the adjusted ones are unbiased, CC is not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import InsufficientDataError
from detectors.synthetic import quantify

N_CAL, N_CAND, REPEATS = 2000, 2000, 40


MU = 0.75  # class means +-MU of a unit-variance feature: AUROC ~0.86, as on real text


def _scores(
    rng: np.random.Generator, n: int, positive: bool, overconfidence: float = 1.0
) -> np.ndarray:
    # The exact posterior at a balanced prior, as EMQ assumes of a calibrated classifier; with
    # overconfidence > 1 its logit is stretched, as a logistic regression's is out of fold.
    x = rng.normal(MU if positive else -MU, 1.0, n)
    return 1 / (1 + np.exp(-overconfidence * 2 * MU * x))


def _mix(rng: np.random.Generator, a: float, overconfidence: float = 1.0) -> np.ndarray:
    n_pos = rng.binomial(N_CAND, a)
    return np.r_[
        _scores(rng, n_pos, True, overconfidence),
        _scores(rng, N_CAND - n_pos, False, overconfidence),
    ]


@pytest.mark.parametrize("method", ["acc", "pacc", "emq", "emq-bcts"])
@pytest.mark.parametrize("a", [0.1, 0.4, 0.8])
def test_adjusted_quantifiers_are_unbiased(method, a):
    rng = np.random.default_rng(0)
    pos, neg = _scores(rng, N_CAL, True), _scores(rng, N_CAL, False)
    est = np.array([quantify.QUANTIFIERS[method](_mix(rng, a), pos, neg) for _ in range(REPEATS)])
    # The mean of REPEATS estimates is within 4 standard errors of the truth (the calibration
    # set is shared, so its error is common to all repeats: add a binomial term for it).
    se = est.std(ddof=1) / np.sqrt(REPEATS) + np.sqrt(a * (1 - a) / N_CAL)
    assert abs(est.mean() - a) < 4 * se


def test_temperature_scaling_undoes_an_overconfident_logit():
    rng = np.random.default_rng(4)
    pos, neg = _scores(rng, N_CAL, True, 3.0), _scores(rng, N_CAL, False, 3.0)
    t, b = quantify.temperature_scaling(pos, neg)
    # The calibrated logit is the true one: t = 1/3, b = 0, each within 4 standard errors from
    # the inverse Fisher information of the two-parameter logistic fit.
    x = np.log(np.r_[pos, neg] / (1 - np.r_[pos, neg]))
    X = np.c_[x, np.ones_like(x)]
    p = 1 / (1 + np.exp(-(X @ [t, b])))
    se = np.sqrt(np.diag(np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X)))
    assert abs(t - 1 / 3) < 4 * se[0]
    assert abs(b) < 4 * se[1]


@pytest.mark.parametrize("a", [0.1, 0.8])
def test_recalibrated_em_recovers_the_prior_where_plain_em_does_not(a):
    rng = np.random.default_rng(5)
    pos, neg = _scores(rng, N_CAL, True, 3.0), _scores(rng, N_CAL, False, 3.0)
    mixes = [_mix(rng, a, 3.0) for _ in range(REPEATS)]
    fixed = np.array([quantify.emq_bcts(m, pos, neg) for m in mixes])
    plain = np.array([quantify.emq(m, pos, neg) for m in mixes])
    se = fixed.std(ddof=1) / np.sqrt(REPEATS) + np.sqrt(a * (1 - a) / N_CAL)
    assert abs(fixed.mean() - a) < 4 * se
    # Overconfident posteriors push EM's prior towards the boundary it already leans to.
    assert abs(plain.mean() - a) > 4 * se


def test_the_likelihood_maximum_is_found_to_the_grid_resolution():
    rng = np.random.default_rng(6)
    for a in (0.0, 0.05, 0.5, 0.97, 1.0):
        n_pos = round(a * 500)
        ratio = np.exp(np.r_[rng.normal(1.5, 1.5, n_pos), rng.normal(-1.5, 1.5, 500 - n_pos)])
        grid = np.linspace(0, 1, 10_001)
        loglik = np.log1p(grid[:, None] * (ratio - 1)).sum(axis=1)
        assert quantify.max_likelihood_prior(ratio) == pytest.approx(
            grid[np.argmax(loglik)], abs=1e-4
        )


@pytest.mark.parametrize("a", [0.05, 0.5])
def test_the_likelihood_interval_covers_the_prior_at_its_level(a):
    rng = np.random.default_rng(7)
    # A large calibration set: the interval covers the candidate's sampling, given the calibration.
    pos, neg = _scores(rng, 20_000, True, 3.0), _scores(rng, 20_000, False, 3.0)
    n_repeats, level = 200, 0.9
    hits = []
    for _ in range(n_repeats):
        low, high = quantify.emq_bcts_interval(_mix(rng, a, 3.0), pos, neg, level)
        hits.append(low <= a <= high)
    assert abs(np.mean(hits) - level) < 4 * np.sqrt(level * (1 - level) / n_repeats)


def test_the_likelihood_interval_keeps_its_width_at_the_boundary():
    rng = np.random.default_rng(8)
    pos, neg = _scores(rng, N_CAL, True, 3.0), _scores(rng, N_CAL, False, 3.0)
    human = _scores(rng, 500, False, 3.0)
    low, high = quantify.emq_bcts_interval(human, pos, neg, 0.9)
    assert low == 0.0 < high < 0.2  # contains the truth, and says how much could hide in it
    wider = quantify.emq_bcts_interval(human, pos, neg, 0.99)
    assert wider[0] == 0.0 and wider[1] > high


def test_classify_and_count_is_biased_towards_the_error_rates():
    rng = np.random.default_rng(1)
    pos, neg = _scores(rng, N_CAL, True), _scores(rng, N_CAL, False)
    fpr = np.mean(neg > 0.5)
    est = quantify.cc(_mix(rng, 0.0), pos, neg)  # no positives at all
    assert est == pytest.approx(fpr, abs=4 * np.sqrt(fpr * (1 - fpr) / N_CAND))
    assert est > 0.05  # the bias ACC removes


def test_best_bin_finds_the_human_share_when_synthetic_avoids_the_top_bin():
    rng = np.random.default_rng(2)
    human_ref = rng.uniform(0, 1, 3000)  # human-likeness of held-out human text
    n = 3000
    cand = np.r_[rng.uniform(0, 1, int(0.6 * n)), rng.uniform(0, 0.5, int(0.4 * n))]
    share = quantify.best_bin_negative_share(cand, human_ref)
    # The top bin is chosen from data, so allow the Hoeffding slack BBE itself uses.
    slack = 2 * np.sqrt(np.log(4 / 0.1) / (2 * n))
    assert share == pytest.approx(0.6, abs=slack)


def test_validation_picks_an_adjusted_method_over_plain_counting():
    rng = np.random.default_rng(3)
    pos, neg = _scores(rng, 800, True), _scores(rng, 800, False)
    mae = quantify.validation_errors(pos, neg, rng=rng)
    assert set(mae) == set(quantify.METHODS)
    assert min(mae, key=mae.__getitem__) not in ("cc", "pcc")
    assert mae["pacc"] < mae["cc"]


def test_sizes_below_the_minimum_say_the_minimum():
    with pytest.raises(InsufficientDataError, match=f"at least {quantify.MIN_CANDIDATE}"):
        quantify.check_sizes(3, 100, 100)
    with pytest.raises(InsufficientDataError, match="labelled synthetic"):
        quantify.check_sizes(100, 0, 100)
