"""The embedding recursion's retraining error (simulations.models.embedding.RetrainingError).

Synthetic Gaussian vectors (fast); the real-text checks of the forecast are in test_forecast and
test_ground_truth. Tolerances are standard errors of the sample moments with a normal quantile.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from detectors.reference import ReferenceCorpus
from simulations.models.embedding import (
    EmbeddingMixtureModel,
    ProjectedReference,
    RetrainingError,
)

Z = float(norm.ppf(1 - 1e-3 / 2))
N = 4000


@pytest.fixture(scope="module")
def projected() -> ProjectedReference:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1200, 24)).astype(np.float32)
    reference = ReferenceCorpus(holdout_fraction=0.25, random_state=0).fit(vectors)
    return ProjectedReference.build(reference, dims=6, seed=0)


def clusters(projected: ProjectedReference) -> tuple[np.ndarray, np.ndarray]:
    """Two tight clusters in the projection, far apart: the start and a later generation."""
    rng = np.random.default_rng(1)
    d = projected.core.shape[1]
    a = (rng.standard_normal((600, d)) * 0.1 + 3.0).astype(np.float32)
    b = (rng.standard_normal((600, d)) * 0.1 - 3.0).astype(np.float32)
    return a, b


def test_no_error_is_the_plain_mixture_recursion(projected):
    start, later = clusters(projected)
    plain = EmbeddingMixtureModel(projected).fit(start).fit(later)
    off = EmbeddingMixtureModel(projected, error=RetrainingError()).fit(start).fit(later)
    a = plain.sample(500, np.random.default_rng(3))
    b = off.sample(500, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert abs(a.mean() - (-3.0)) < Z * a.std() / np.sqrt(a.size)  # the last fit only


def test_anchor_ties_every_generation_to_the_starting_corpus(projected):
    """Output = anchor x a starting point + (1 - anchor) x a draw of the current fit: its mean
    sits between the start (the first fit's data) and the current data, at the anchor weight."""
    start, later = clusters(projected)
    for anchor in (0.3, 0.8):
        model = EmbeddingMixtureModel(projected, error=RetrainingError(anchor=anchor))
        model.fit(start).fit(later)  # the second fit must not move the anchor
        out = model.sample(N, np.random.default_rng(4))
        expected = anchor * start.mean(axis=0) + (1 - anchor) * later.mean(axis=0)
        se = out.std(axis=0, ddof=1) / np.sqrt(N)
        assert (np.abs(out.mean(axis=0) - expected) < Z * se + 1e-3).all(), (anchor, expected)


def test_spread_adds_the_models_own_scatter(projected):
    """Spread s adds isotropic noise of s reference standard deviations per dimension: the
    output's variance is the fit's plus s^2 x the reference's, per dimension."""
    _, later = clusters(projected)
    s = 0.5
    model = EmbeddingMixtureModel(projected, error=RetrainingError(spread=s)).fit(later)
    out = model.sample(N, np.random.default_rng(5))
    expected = later.var(axis=0, ddof=1) + s**2 * np.diag(projected.cov)
    # Sample variance of N normal draws: standard error var * sqrt(2 / (N - 1)).
    se = expected * np.sqrt(2 / (N - 1))
    assert (np.abs(out.var(axis=0, ddof=1) - expected) < Z * se).all()


def _mixture_variance(model: EmbeddingMixtureModel) -> np.ndarray:
    """The fitted mixture's per-dimension variance (law of total variance)."""
    g = model.gmm_
    mean = g.weights_ @ g.means_
    within = np.einsum("k,kdd->d", g.weights_, g.covariances_)
    return within + g.weights_ @ (g.means_ - mean) ** 2


@pytest.mark.parametrize("toward", ["component", "centre"])
def test_concentration_shrinks_draws_towards_the_mixtures_means(projected, toward):
    """Concentration c moves each draw c of the way to its component's mean (or the mixture's).
    Two far clusters, one component each: every cluster's draws keep (1 - c)^2 of its
    component's variance, and its mean stays (component) or moves c of the way to the
    mixture's mean (centre)."""
    start, later = clusters(projected)
    c = 0.4
    error = RetrainingError(concentration=c, toward=toward)
    model = EmbeddingMixtureModel(projected, components=2, error=error)
    model.fit(np.vstack([start, later]))
    out = model.sample(N, np.random.default_rng(6)).astype(np.float64)
    g = model.gmm_
    centre = g.weights_ @ g.means_
    for k in range(2):
        mine = out[np.sign(out[:, 0]) == np.sign(g.means_[k, 0])]
        n = len(mine)
        var = (1 - c) ** 2 * np.diag(g.covariances_[k])
        mean = g.means_[k] if toward == "component" else g.means_[k] - c * (g.means_[k] - centre)
        assert (np.abs(mine.mean(axis=0) - mean) < Z * np.sqrt(var / n)).all(), (toward, k)
        se = var * np.sqrt(2 / (n - 1))
        assert (np.abs(mine.var(axis=0, ddof=1) - var) < Z * se).all(), (toward, k)


def test_spread_of_data_scales_the_scatter_by_the_fit(projected):
    """spread_of="data": the scatter is s fitted-mixture standard deviations, so the output's
    variance is (1 + s^2) x the mixture's, per dimension, whatever the reference's."""
    _, later = clusters(projected)
    s = 0.5
    error = RetrainingError(spread=s, spread_of="data")
    model = EmbeddingMixtureModel(projected, error=error).fit(later)
    out = model.sample(N, np.random.default_rng(7))
    expected = (1 + s**2) * _mixture_variance(model)
    se = expected * np.sqrt(2 / (N - 1))
    assert (np.abs(out.var(axis=0, ddof=1) - expected) < Z * se).all()
    # The reference's scale (about 1 per dimension here) is far above this cluster's (0.1).
    assert (np.diag(projected.cov) > 10 * expected).all()


def test_constants_are_validated():
    for bad in ({"anchor": 1.0}, {"anchor": -0.1}, {"concentration": 1.0}):
        with pytest.raises(ValueError, match="anchor and concentration must be in"):
            RetrainingError(**bad)
    with pytest.raises(ValueError, match="spread must be >= 0"):
        RetrainingError(spread=-1.0)
    for bad in ({"toward": "reference"}, {"spread_of": "centre"}):
        with pytest.raises(ValueError, match="toward must be"):
            RetrainingError(**bad)  # type: ignore[arg-type]
