"""A fast what-if model of a corpus for forecasts without embeddings.

The human distribution is a Zipf law over `categories` topics/phrasings (the long tail of real
text); its tail is the rarest categories holding `tail_mass` of the probability. A candidate
corpus is described by two numbers an audit measures:

- `tail_coverage`: its tail coverage as a ratio to a fresh human sample of the same size. The
  what-if candidate thins the human tail by a factor s (head renormalised), with s solved so that a
  sample of the plan's size has exactly that expected ratio.
- `synthetic_fraction`: the share of generated text. Generated text puts a fraction
  `off_reference` of its mass outside the human support (one extra "off-reference" category,
  the analogue of points outside every reference ball), which lowers precision.

The recursion then runs on the vectorised categorical model (one chain per seed), so a forecast
of tens of generations over dozens of seeds takes milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from detectors.errors import InvalidInputError
from simulations.models.discrete import CategoricalModel, tail_categories, zipf_probabilities

CATEGORIES = 2000
TAIL_MASS = 0.1
OFF_REFERENCE = 0.05  # share of generated text's mass off the human support (an assumption)
DESCRIPTIONS = {
    "tail_coverage": "tail categories present / expected for a fresh human sample of that size",
    "recall": "human mass on categories present / expected for a fresh human sample",
    "precision": "share of the sample on the human support / that of human data (1)",
    "coverage": "categories present / expected for a fresh human sample of that size",
    "divergence": "total variation distance of the fitted distribution to the human one",
}


def _presence(p: np.ndarray, n: int) -> np.ndarray:
    """Chance each category appears at least once among n draws."""
    return 1.0 - (1.0 - p) ** n


class WhatIfCorpus:
    """The human law, its tail, and a candidate law matching the measured numbers."""

    def __init__(
        self,
        *,
        synthetic_fraction: float,
        tail_coverage: float,
        samples: int,
        categories: int = CATEGORIES,
        tail_mass: float = TAIL_MASS,
        off_reference: float = OFF_REFERENCE,
    ) -> None:
        if not 0.0 <= synthetic_fraction <= 1.0:
            raise InvalidInputError(
                f"synthetic_fraction must be in [0, 1], got {synthetic_fraction}"
            )
        if not 0.0 <= tail_coverage <= 1.5:
            raise InvalidInputError(
                f"tail_coverage is a ratio to a human sample, expected in [0, 1.5], got "
                f"{tail_coverage}"
            )
        human = zipf_probabilities(categories)
        self.human = np.append(human, 0.0)  # last category: off the human support
        self.tail = np.append(tail_categories(human, tail_mass), False)
        self.samples = samples
        self.baseline_tail = float(_presence(self.human[self.tail], samples).mean())
        scale = self._solve_tail_scale(min(tail_coverage, 1.0))
        cand = self.human.copy()
        cand[self.tail] *= scale
        cand /= cand.sum()
        off = synthetic_fraction * off_reference
        cand = cand * (1 - off)
        cand[-1] = off
        self.candidate = cand

    def _tail_ratio(self, scale: float) -> float:
        p = self.human.copy()
        p[self.tail] *= scale
        p /= p.sum()
        return float(_presence(p[self.tail], self.samples).mean()) / self.baseline_tail

    def _solve_tail_scale(self, target: float) -> float:
        if target >= 1.0:
            return 1.0
        if target <= 0.0:
            return 0.0
        return float(brentq(lambda s: self._tail_ratio(s) - target, 0.0, 1.0, xtol=1e-6))


class WhatIfModel(CategoricalModel):
    """The categorical recursion scored with the audit's metrics, as ratios to human data."""

    def __init__(self, corpus: WhatIfCorpus, *, n_chains: int) -> None:
        super().__init__(probabilities=corpus.human, tail_mass=TAIL_MASS, n_chains=n_chains)
        self.corpus = corpus
        self.tail_ = corpus.tail

    def score(self, samples: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = samples.sum(axis=1)
        present = samples > 0
        human = self.corpus.human
        expected_present = _presence(human[None, :], n[:, None])  # fresh human sample, same n
        support = human > 0
        tail = self.corpus.tail
        return {
            "tail_coverage": present[:, tail].mean(axis=1) / expected_present[:, tail].mean(axis=1),
            "recall": (present * human).sum(axis=1) / (expected_present * human).sum(axis=1),
            "precision": samples[:, support].sum(axis=1) / n,
            "coverage": present[:, support].mean(axis=1)
            / expected_present[:, support].mean(axis=1),
            "divergence": 0.5 * np.abs(self.probabilities_ - human).sum(axis=1),
        }
