"""The stacked EM (simulations.models.em) is scikit-learn's GaussianMixture, computed faster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from simulations.models.em import fit_full_mixture


def clusters(rng: np.random.Generator, dim: int = 16) -> np.ndarray:
    """Six Gaussian clusters of different sizes and scales, some overlapping."""
    parts = [
        rng.normal(rng.normal(0, 2, dim), rng.uniform(0.5, 2), (int(rng.integers(60, 250)), dim))
        for _ in range(6)
    ]
    return np.vstack(parts)


def sklearn_fit(x: np.ndarray, components: int) -> GaussianMixture:
    return GaussianMixture(
        n_components=components,
        covariance_type="full",
        reg_covar=1e-6,
        max_iter=100,
        random_state=0,
    ).fit(x)


@pytest.mark.parametrize("seed", range(4))
def test_float64_fits_equal_scikit_learns_to_rounding(seed):
    x = clusters(np.random.default_rng(seed))
    ours, theirs = fit_full_mixture(x, 8), sklearn_fit(x, 8)
    # The same algorithm step by step: the same iteration count, parameters equal up to the
    # summation order's rounding (float64: ~1e-15 per step, amplified by the Cholesky solves).
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        ours.precisions_cholesky_, theirs.precisions_cholesky_, rtol=1e-8, atol=1e-9
    )
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-12)
    # Sampling is scikit-learn's own code on the fitted parameters: the same draws.
    ours.random_state = theirs.random_state = 7
    np.testing.assert_allclose(ours.sample(500)[0], theirs.sample(500)[0], atol=1e-8)


def test_float32_fits_stay_in_float32_and_agree_to_its_precision():
    x = clusters(np.random.default_rng(11)).astype(np.float32)
    ours, theirs = fit_full_mixture(x, 8), sklearn_fit(x, 8)
    assert ours.means_.dtype == theirs.means_.dtype == np.float32
    assert ours.n_iter_ == theirs.n_iter_
    # float32 keeps 24 bits (6e-8 relative): a few hundred roundings on values of order 10.
    scale = float(np.abs(theirs.means_).max())
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=0, atol=1e-5)


def test_degenerate_data_fail_as_in_scikit_learn():
    x = np.zeros((40, 3))
    x[:20, 0] = 1.0  # two points repeated: every covariance is singular but for reg_covar
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        fit_full_mixture(x, 2, reg_covar=0.0)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        fit_full_mixture(x[:1], 2)
