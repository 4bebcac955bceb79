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
of tens of generations over dozens of seeds takes milliseconds. Each generation's fit keeps a
`smoothing` share spread over the human support, as a language model's smoothing does. The
constants are fitted to real recursive retraining (below).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from detectors.errors import InvalidInputError
from simulations.models.discrete import CategoricalModel, tail_categories, zipf_probabilities

# Fitted to real recursive retraining (benchmarks/fit_what_if.py: a Kneser-Ney trigram and a GRU
# retrained for five generations on nine candidates of real text, replace and keep-real 10%; 36
# runs): mean absolute error 0.086 on the relative final tail coverage (0.098 choosing the
# constants without the candidate scored), against 0.143 for the assumed 2,000 categories, Zipf
# exponent 1, tail mass 0.1 and no smoothing. README "The what-if model's constants".
CATEGORIES = 1000
ZIPF_EXPONENT = 0.8
TAIL_MASS = 0.2
# Share of generated text's mass off the human support: an assumption still. It moves precision
# only, and against real retraining's precision (benchmarks/fit_what_if.py --precision-only) the
# best share is 0 and none orders the candidates: retraining raised generated text's precision,
# which this model cannot express. Kept so that the synthetic share has an effect at all.
OFF_REFERENCE = 0.05
# Each generation's fitted law keeps this share spread evenly over the human support: a language
# model's smoothing gives unseen continuations mass, so real retraining brings rare content back
# where a maximum-likelihood categorical model only loses it (without it, thinned candidates
# stayed at 0.42-0.54 where retraining reached 0.68-0.87).
SMOOTHING = 0.01
DESCRIPTIONS = {
    "tail_coverage": "tail categories present / expected for a fresh human sample of that size",
    "recall": "human mass on categories present / expected for a fresh human sample",
    "precision": "share of the sample on the human support / that of human data (1); the "
    "off-reference mass behind it is an assumption real retraining did not support",
    "coverage": "categories present / expected for a fresh human sample of that size",
    "divergence": "total variation distance of the fitted distribution to the human one",
}


def _presence(p: np.ndarray, n: int) -> np.ndarray:
    """Chance each category appears at least once among n draws."""
    return 1.0 - (1.0 - p) ** n


@dataclass(frozen=True)
class WhatIfConstants:
    """The what-if model's assumptions about human text (benchmarks/fit_what_if.py fits them to
    real recursive retraining)."""

    categories: int = CATEGORIES
    exponent: float = ZIPF_EXPONENT
    tail_mass: float = TAIL_MASS
    off_reference: float = OFF_REFERENCE
    smoothing: float = SMOOTHING


WHAT_IF_CONSTANTS = WhatIfConstants()


class WhatIfCorpus:
    """The human law, its tail, and a candidate law matching the measured numbers."""

    def __init__(
        self,
        *,
        synthetic_fraction: float,
        tail_coverage: float,
        samples: int,
        constants: WhatIfConstants = WHAT_IF_CONSTANTS,
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
        human = zipf_probabilities(constants.categories, constants.exponent)
        self.constants = constants
        self.human = np.append(human, 0.0)  # last category: off the human support
        self.tail = np.append(tail_categories(human, constants.tail_mass), False)
        self.samples = samples
        self.baseline_tail = float(_presence(self.human[self.tail], samples).mean())
        scale = self._solve_tail_scale(min(tail_coverage, 1.0))
        cand = self.human.copy()
        cand[self.tail] *= scale
        cand /= cand.sum()
        off = synthetic_fraction * constants.off_reference
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

    def __init__(
        self, corpus: WhatIfCorpus, *, n_chains: int, smoothing: float | None = None
    ) -> None:
        """`smoothing`: the corpus's constants' unless given."""
        super().__init__(
            probabilities=corpus.human, tail_mass=corpus.constants.tail_mass, n_chains=n_chains
        )
        smoothing = corpus.constants.smoothing if smoothing is None else smoothing
        if not 0.0 <= smoothing < 1.0:
            raise InvalidInputError(f"smoothing must be in [0, 1), got {smoothing}")
        self.corpus = corpus
        self.smoothing = smoothing
        self.tail_ = corpus.tail
        support = corpus.human > 0
        self._even = support / support.sum()  # the smoothing's share, once, not every fit

    def fit(self, data: np.ndarray) -> WhatIfModel:
        super().fit(data)
        if self.smoothing > 0:
            self.probabilities_ = (
                1 - self.smoothing
            ) * self.probabilities_ + self.smoothing * self._even
        return self

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
