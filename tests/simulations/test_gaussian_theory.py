"""Monte Carlo of the Gaussian recursion against the closed forms (Shumailov et al., Theorem 3.1).

Tolerances come from standard errors: for a Monte Carlo mean over C chains the error is compared
with Z * SE, SE = sqrt(Var / C) from the exact variance where it is known (else the sample one),
and Z is a two-sided normal quantile Bonferroni-corrected for the number of checks, so a correct
implementation fails with probability below 1e-3 per test (and never, with the fixed seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from simulations.loop import run_generations
from simulations.models.gaussian import GaussianModel
from simulations.theory import (
    expected_log_variance,
    expected_variance,
    expected_w2_squared,
    first_order_w2_squared,
    variance_of_log_variance,
    variance_of_variance,
)

ALPHA = 1e-3


def z_for(n_checks: int) -> float:
    return float(norm.ppf(1 - ALPHA / (2 * n_checks)))


@pytest.mark.parametrize("estimator", ["mle", "unbiased"])
def test_expected_variance_matches_closed_form(estimator):
    chains, samples, generations = 4000, 50, 20
    record = run_generations(
        GaussianModel(estimator=estimator, n_chains=chains),
        generations=generations,
        samples=samples,
        random_state=1,
    )
    observed = record.metrics["variance"]  # [G + 1, chains]; generation g was fitted g + 1 times
    expected = expected_variance(generations + 1, samples, estimator=estimator)[1:]
    se = np.sqrt(variance_of_variance(generations + 1, samples, estimator=estimator)[1:] / chains)
    z = z_for(generations + 1)
    assert np.all(np.abs(observed.mean(axis=1) - expected) <= z * se)
    if estimator == "mle":
        # The MLE shrinks the variance geometrically: (1 - 1/M)^n, visibly below 1 by the end.
        assert expected[-1] < 1 - 10 * se[-1]
        assert observed[-1].mean() < 1 - 5 * se[-1]


def test_unbiased_mean_variance_stays_while_the_median_collapses():
    """E[sigma_n^2] = sigma^2, but log sigma_n^2 drifts down: sigma_n^2 -> 0 almost surely."""
    chains, samples, generations = 2000, 10, 200
    record = run_generations(
        GaussianModel(estimator="unbiased", n_chains=chains),
        generations=generations,
        samples=samples,
        random_state=2,
    )
    log_var = record.metrics["log_variance"]
    expected = expected_log_variance(generations + 1, samples)[1:]
    se = np.sqrt(variance_of_log_variance(generations + 1, samples)[1:] / chains)
    picks = [0, 49, 99, 199]
    z = z_for(len(picks))
    assert np.all(np.abs(log_var[picks].mean(axis=1) - expected[picks]) <= z * se[picks])
    # log sigma_n^2 is a sum of n independent terms, close to normal, so its median is close to its
    # mean: the median variance collapses to exp(E[log sigma_n^2]) (about e^-23 here), while the
    # mean variance stays near 1 in expectation.
    median_log = np.log(np.median(record.metrics["variance"][-1]))
    sd_log = np.sqrt(variance_of_log_variance(generations + 1, samples)[-1])
    median_se = 1.2533 * sd_log / np.sqrt(chains)  # SE of a sample median of a normal
    assert abs(median_log - expected[-1]) <= z * sd_log
    assert median_log + z * median_se < np.log(0.01)  # confidently below 1% of the start


def test_w2_grows_under_replace_as_theory_says():
    chains, samples, generations = 3000, 100, 40
    record = run_generations(
        GaussianModel(estimator="unbiased", n_chains=chains),
        generations=generations,
        samples=samples,
        random_state=3,
    )
    w2 = record.metrics["w2_squared"]
    expected = expected_w2_squared(generations + 1, samples)[1:]
    picks = [0, 9, 19, 39]
    se = w2[picks].std(axis=1, ddof=1) / np.sqrt(chains)
    z = z_for(len(picks))
    assert np.all(np.abs(w2[picks].mean(axis=1) - expected[picks]) <= z * se)
    # It grows without bound, and to first order as (3/2) sigma^2 sum 1/M_i.
    assert w2[-1].mean() - w2[0].mean() > z * np.hypot(se[0], se[-1])
    first_order = first_order_w2_squared(generations + 1, samples)[-1]
    assert abs(expected[-1] - first_order) < 0.1 * first_order  # closed form ~ first order


def test_accumulating_data_keeps_the_mean_drift_bounded():
    """Under `accumulate` the fitted mean moves by sigma_j Z / ((j + 1) sqrt(M)) per generation, so
    E[(mu_n - mu)^2] <= (pi^2 / 6) max_j E[sigma_j^2] / M for every n; `replace` grows as n / M."""
    chains, samples, generations = 3000, 100, 40
    runs = {
        policy: run_generations(
            GaussianModel(estimator="unbiased", n_chains=chains),
            generations=generations,
            samples=samples,
            policy=policy,
            random_state=4,
        )
        for policy in ("replace", "accumulate")
    }
    acc = runs["accumulate"].metrics
    drift = acc["mean_drift_squared"][-1]
    max_var = acc["variance"].mean(axis=1).max()
    bound = (np.pi**2 / 6) * max_var / samples
    se = drift.std(ddof=1) / np.sqrt(chains)
    assert drift.mean() <= bound + z_for(1) * se
    replace_drift = runs["replace"].metrics["mean_drift_squared"][-1]
    replace_se = replace_drift.std(ddof=1) / np.sqrt(chains)
    assert replace_drift.mean() - z_for(1) * replace_se > 5 * bound  # ~ (G + 1) / M = 0.41
    w2_acc, w2_rep = acc["w2_squared"][-1], runs["replace"].metrics["w2_squared"][-1]
    gap_se = np.hypot(w2_acc.std(ddof=1), w2_rep.std(ddof=1)) / np.sqrt(chains)
    assert w2_rep.mean() - w2_acc.mean() > z_for(1) * gap_se


def test_keep_real_fresh_data_limits_the_drift():
    chains, samples, generations = 2000, 100, 40
    common: dict[str, Any] = {"generations": generations, "samples": samples, "random_state": 5}
    rep = run_generations(GaussianModel(n_chains=chains), **common)
    keep = run_generations(GaussianModel(n_chains=chains), policy="keep-real", beta=0.1, **common)
    a, b = rep.metrics["w2_squared"][-1], keep.metrics["w2_squared"][-1]
    se = np.hypot(a.std(ddof=1), b.std(ddof=1)) / np.sqrt(chains)
    assert a.mean() - b.mean() > z_for(1) * se


def test_multivariate_trace_and_reproducibility():
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    model = GaussianModel(mean=[1.0, -1.0, 0.0], cov=cov, estimator="mle", n_chains=1500)
    a = run_generations(model, generations=10, samples=40, random_state=6)
    b = run_generations(
        GaussianModel(mean=[1.0, -1.0, 0.0], cov=cov, estimator="mle", n_chains=1500),
        generations=10,
        samples=40,
        random_state=6,
    )
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name])
    # E[tr Sigma_n] = tr Sigma (1 - 1/M)^n for the MLE in any dimension; "variance" is tr / d.
    observed = a.metrics["variance"][-1]
    expected = np.trace(cov) / 3 * (1 - 1 / 40) ** 11
    se = observed.std(ddof=1) / np.sqrt(len(observed))
    assert abs(observed.mean() - expected) <= z_for(1) * se
