"""Categorical distributions re-estimated by counting, vectorised over chains (paper §4.1).

Under `replace` each chain is a Wright-Fisher-like Markov chain on the probability simplex whose
only absorbing states are point masses: a category that draws no sample gets fitted probability 0
and can never return. The fitted probabilities are a martingale, so a chain ends on category i with
probability p_i, and rare categories (p <= 1/M) are lost first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from detectors.errors import InvalidInputError, NotFittedError


def zipf_probabilities(n_categories: int, exponent: float = 1.0) -> np.ndarray:
    """p_i proportional to i^-exponent: a long tail of rare categories, like word frequencies."""
    if n_categories < 2:
        raise InvalidInputError(f"need at least 2 categories, got {n_categories}")
    weights = np.arange(1, n_categories + 1, dtype=float) ** -float(exponent)
    return weights / weights.sum()


def tail_categories(probabilities: np.ndarray, tail_mass: float) -> np.ndarray:
    """Mask of the rarest categories whose probabilities add up to at most `tail_mass` (at least
    the single rarest one)."""
    order = np.argsort(probabilities, kind="stable")
    cumulative = np.cumsum(probabilities[order])
    n_tail = max(1, int(np.searchsorted(cumulative, tail_mass, side="right")))
    mask = np.zeros(len(probabilities), dtype=bool)
    mask[order[:n_tail]] = True
    return mask


class CategoricalModel:
    """Maximum-likelihood categorical model; data are per-chain counts [chains, categories]."""

    def __init__(
        self,
        *,
        probabilities: Sequence[float] | np.ndarray | None = None,
        tail_mass: float = 0.1,
        n_chains: int = 1000,
    ) -> None:
        p = zipf_probabilities(100) if probabilities is None else np.asarray(probabilities, float)
        if p.ndim != 1 or len(p) < 2 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise InvalidInputError(
                "probabilities must be a vector of at least 2 non-negative numbers summing to 1"
            )
        if not 0 < tail_mass < 1:
            raise InvalidInputError(f"tail_mass must be in (0, 1), got {tail_mass}")
        if n_chains < 1:
            raise InvalidInputError(f"n_chains must be at least 1, got {n_chains}")
        self.probabilities = p / p.sum()
        self.tail_mass = tail_mass
        self.n_chains = n_chains
        self.tail_ = tail_categories(self.probabilities, tail_mass)

    def sample_original(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.multinomial(n, self.probabilities, size=self.n_chains)

    def fit(self, data: np.ndarray) -> Self:
        counts = np.asarray(data)
        self.probabilities_ = counts / counts.sum(axis=1, keepdims=True)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not hasattr(self, "probabilities_"):
            raise NotFittedError("CategoricalModel is not fitted: call fit() first")
        return rng.multinomial(n, self.probabilities_)

    def concat(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.sum(parts, axis=0)

    def score(self, samples: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per chain: support size, original mass (all and tail) of extinct categories, and the
        divergences KL(model || original) (finite: the support only shrinks) and total variation.
        KL(original || model) is infinite as soon as one category is lost, so it is not reported."""
        q, p = self.probabilities_, self.probabilities
        alive = q > 0
        lost_mass = ((~alive) * p).sum(axis=1)
        tail_lost = ((~alive[:, self.tail_]) * p[self.tail_]).sum(axis=1) / p[self.tail_].sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(alive, q * np.log(q / p), 0.0).sum(axis=1)
        return {
            "support_size": alive.sum(axis=1).astype(float),
            "mass_lost": lost_mass,
            "tail_mass_lost": tail_lost,
            "kl_model_to_original": kl,
            "total_variation": 0.5 * np.abs(q - p).sum(axis=1),
        }


DESCRIPTIONS = {
    "support_size": "categories with non-zero fitted probability",
    "mass_lost": "original probability of the extinct categories",
    "tail_mass_lost": "fraction of the tail's original mass whose categories are extinct",
    "kl_model_to_original": "KL(model || original) in nats",
    "total_variation": "total variation distance to the original",
}
