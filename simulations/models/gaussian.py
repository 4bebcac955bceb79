"""Multivariate Gaussian chains, all vectorised: the paper's theory case (Shumailov et al. §4.2).

Data are kept as per-chain sufficient statistics (count, mean, scatter matrix), merged with Chan's
pairwise formula, so the `accumulate` policy costs O(1) memory per chain however many generations
pile up, and 1,000 chains x 1,000 generations run as a handful of array operations per generation.
Samples are still drawn one by one (M normal draws per chain per generation) and then reduced: the
simulation is the recursion itself, not its distributional shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np

from detectors.errors import InvalidInputError, NotFittedError

Estimator = Literal["mle", "unbiased"]


@dataclass(frozen=True)
class GaussianStats:
    """Sufficient statistics of `count` points per chain: mean [chains, d], scatter [chains, d, d]
    (sum of outer products of deviations from the mean)."""

    count: int
    mean: np.ndarray
    scatter: np.ndarray

    @classmethod
    def from_values(cls, values: np.ndarray) -> GaussianStats:
        """Statistics of raw points [chains, n, d]."""
        mean = values.mean(axis=1)
        centred = values - mean[:, None, :]
        return cls(values.shape[1], mean, np.einsum("cnd,cne->cde", centred, centred))

    def merge(self, other: GaussianStats) -> GaussianStats:
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        cross = np.einsum("cd,ce->cde", delta, delta) * (self.count * other.count / n)
        return GaussianStats(n, mean, self.scatter + other.scatter + cross)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square roots of a stack of PSD matrices (eigenvalues clipped at 0: a collapsed
    covariance is singular, which Cholesky would refuse)."""
    w, v = np.linalg.eigh(cov)
    return np.einsum("...ij,...j,...kj->...ik", v, np.sqrt(np.clip(w, 0.0, None)), v)


def gaussian_w2_squared(
    mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray
) -> np.ndarray:
    """Squared 2-Wasserstein distance between Gaussians, batched over leading axes:
    |m_a - m_b|^2 + tr(A + B - 2 (A^1/2 B A^1/2)^1/2)."""
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.clip(np.linalg.eigvalsh((middle + np.swapaxes(middle, -1, -2)) / 2), 0.0, None)
    trace = np.trace(cov_a, axis1=-2, axis2=-1) + np.trace(cov_b, axis1=-2, axis2=-1)
    w2 = np.sum((mean_a - mean_b) ** 2, axis=-1) + trace - 2 * np.sqrt(eig).sum(axis=-1)
    return np.clip(w2, 0.0, None)


class GaussianModel:
    """N(mean, cov) re-estimated each generation by maximum likelihood (divide by M, as the
    authors' notebook's np.std) or unbiasedly (divide by M - 1, the theorem's case)."""

    def __init__(
        self,
        *,
        mean: float | Sequence[float] | np.ndarray = 0.0,
        cov: float | Sequence[Sequence[float]] | np.ndarray = 1.0,
        estimator: Estimator = "unbiased",
        n_chains: int = 1000,
    ) -> None:
        mu = np.atleast_1d(np.asarray(mean, dtype=float))
        sigma = np.asarray(cov, dtype=float)
        if sigma.ndim == 0:
            sigma = sigma * np.eye(len(mu))
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
            raise InvalidInputError(
                f"mean must be a vector of length d and cov a d x d matrix; got {mu.shape} and "
                f"{sigma.shape}"
            )
        if not np.allclose(sigma, sigma.T) or np.linalg.eigvalsh(sigma).min() <= 0:
            raise InvalidInputError("cov must be symmetric positive definite")
        if estimator not in ("mle", "unbiased"):
            raise InvalidInputError(f"estimator must be 'mle' or 'unbiased', got {estimator!r}")
        if n_chains < 1:
            raise InvalidInputError(f"n_chains must be at least 1, got {n_chains}")
        self.mean = mu
        self.cov = sigma
        self.estimator = estimator
        self.n_chains = n_chains
        self._root = _psd_sqrt(sigma)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def _draw(
        self, mean: np.ndarray, root: np.ndarray, n: int, rng: np.random.Generator
    ) -> GaussianStats:
        z = rng.standard_normal((self.n_chains, n, self.dim))
        if self.dim == 1:
            values = mean[:, None, :] + z * root[:, :, 0][:, None, :]
        else:
            values = mean[:, None, :] + np.einsum("cnd,ced->cne", z, root)
        return GaussianStats.from_values(values)

    def sample_original(self, n: int, rng: np.random.Generator) -> GaussianStats:
        mean = np.broadcast_to(self.mean, (self.n_chains, self.dim))
        root = np.broadcast_to(self._root, (self.n_chains, self.dim, self.dim))
        return self._draw(mean, root, n, rng)

    def fit(self, data: GaussianStats) -> Self:
        divisor = data.count if self.estimator == "mle" else data.count - 1
        if divisor < 1:
            raise InvalidInputError(
                f"the unbiased estimator needs at least 2 samples per generation, got {data.count}"
            )
        self.mean_ = data.mean
        self.cov_ = data.scatter / divisor
        self.n_fitted_ = data.count
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "cov_"):
            raise NotFittedError("GaussianModel is not fitted: call fit() first")

    def sample(self, n: int, rng: np.random.Generator) -> GaussianStats:
        self._check_fitted()
        root = np.sqrt(np.clip(self.cov_, 0, None)) if self.dim == 1 else _psd_sqrt(self.cov_)
        return self._draw(self.mean_, root, n, rng)

    def concat(self, parts: Sequence[GaussianStats]) -> GaussianStats:
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.merge(part)
        return merged

    def score(self, samples: GaussianStats, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per chain: the fitted mean (first coordinate), variance (mean of the diagonal), the
        squared distance of the mean from the original, and W2^2 to the original Gaussian."""
        self._check_fitted()
        variance = np.trace(self.cov_, axis1=1, axis2=2) / self.dim
        return {
            "mean": self.mean_[:, 0].copy(),
            "variance": variance,
            "log_variance": np.log(np.clip(variance, 1e-300, None)),
            "mean_drift_squared": np.sum((self.mean_ - self.mean) ** 2, axis=1),
            "w2_squared": gaussian_w2_squared(self.mean, self.cov, self.mean_, self.cov_),
        }


DESCRIPTIONS = {
    "mean": "fitted mean (first coordinate)",
    "variance": "fitted variance (mean of the covariance diagonal)",
    "log_variance": "log of the fitted variance",
    "mean_drift_squared": "squared distance of the fitted mean from the original mean",
    "w2_squared": "squared 2-Wasserstein distance to the original Gaussian",
}
