"""The paper's Gaussian-mixture experiment: a 2-component, full-covariance mixture refitted by EM
(scikit-learn) on 1000 of its own samples per generation (Shumailov et al., Section 4.2).

The original is a 2-D mixture of two well-separated Gaussians. Each generation is measured by the
mean log-likelihood of a fixed held-out sample of the original under the fitted model (what the
paper plots as the fit degrading), by the squared 2-Wasserstein distance between the moment-matched
Gaussians of model and original, and by the mean component variance (the collapse to a point).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
from sklearn.mixture import GaussianMixture

from detectors.errors import NotFittedError
from simulations.models.gaussian import gaussian_w2_squared

MEANS = np.array([[-2.0, 0.0], [2.0, 0.5]])
COVS = np.array([[[1.0, 0.3], [0.3, 0.6]], [[0.5, -0.2], [-0.2, 1.2]]])
WEIGHTS = np.array([0.6, 0.4])
DESCRIPTIONS = {
    "heldout_loglik": "mean log-likelihood of held-out original samples under the fitted mixture",
    "w2_squared": "squared W2 between moment-matched Gaussians of model and original",
    "component_variance": "mean of the components' covariance traces / dimension",
}


def _moments(
    means: np.ndarray, covs: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    mean = weights @ means
    centred = means - mean
    cov = np.einsum("k,kij->ij", weights, covs) + np.einsum(
        "k,ki,kj->ij", weights, centred, centred
    )
    return mean, cov


class MixtureModel:
    """One chain: GaussianMixture(2, full) refitted each generation."""

    n_chains = 1

    def __init__(self, *, heldout: int = 2000, seed: int = 0) -> None:
        self._test = self._draw(heldout, np.random.default_rng([seed, 99]))
        self._mean, self._cov = _moments(MEANS, COVS, WEIGHTS)

    @staticmethod
    def _draw(n: int, rng: np.random.Generator) -> np.ndarray:
        labels = rng.choice(2, size=n, p=WEIGHTS)
        z = rng.standard_normal((n, 2))
        roots = np.linalg.cholesky(COVS)
        return MEANS[labels] + np.einsum("nij,nj->ni", roots[labels], z)

    def sample_original(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._draw(n, rng)

    def fit(self, data: np.ndarray) -> Self:
        self.gmm_ = GaussianMixture(
            n_components=2, covariance_type="full", reg_covar=1e-9, random_state=0
        ).fit(data)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not hasattr(self, "gmm_"):
            raise NotFittedError("MixtureModel is not fitted: call fit() first")
        self.gmm_.random_state = int(rng.integers(2**31 - 1))
        points, _ = self.gmm_.sample(n)
        return points[rng.permutation(n)]

    def concat(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.vstack(parts)

    def score(self, samples: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        g = self.gmm_
        mean, cov = _moments(g.means_, g.covariances_, g.weights_)
        return {
            "heldout_loglik": np.array([g.score(self._test)]),
            "w2_squared": np.atleast_1d(gaussian_w2_squared(self._mean, self._cov, mean, cov)),
            "component_variance": np.array([np.trace(g.covariances_, axis1=1, axis2=2).mean() / 2]),
        }
