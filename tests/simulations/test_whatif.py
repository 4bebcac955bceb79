"""The what-if model's smoothing and constants (forecast-level behaviour: test_forecast.py).

Comparisons between forecasts use the seed bands' standard errors (`Band.sem`) with a normal
quantile, never fixed margins.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from detectors.errors import InvalidInputError
from simulations.forecast import Plan, what_if
from simulations.whatif import WHAT_IF_CONSTANTS, WhatIfCorpus, WhatIfModel

Z = float(norm.ppf(1 - 1e-3 / 2))


def corpus() -> WhatIfCorpus:
    return WhatIfCorpus(synthetic_fraction=0.5, tail_coverage=0.4, samples=400)


def test_smoothing_gives_every_human_category_mass_and_none_off_the_support():
    c = corpus()
    rng = np.random.default_rng(0)
    data = rng.multinomial(400, c.candidate, size=4)
    assert (data[:, :-1] == 0).any()  # categories this sample lost
    plain = WhatIfModel(c, n_chains=4, smoothing=0.0).fit(data)
    smooth = WhatIfModel(c, n_chains=4, smoothing=0.01).fit(data)
    lost = data == 0
    assert np.all(plain.probabilities_[lost] == 0)  # maximum likelihood: lost for good
    assert np.all(smooth.probabilities_[:, :-1] > 0)  # every human category can come back
    # The off-reference category keeps only what the data gave it, scaled by 1 - smoothing.
    assert np.allclose(smooth.probabilities_[:, -1], 0.99 * plain.probabilities_[:, -1])
    assert np.allclose(smooth.probabilities_.sum(axis=1), 1.0)
    with pytest.raises(InvalidInputError, match="smoothing"):
        WhatIfModel(c, n_chains=4, smoothing=1.0)


def test_smoothing_lets_a_thinned_candidate_recover_as_real_retraining_does():
    # Real retraining (benchmarks/recursion_truth.py) brought thinned candidates up to 0.68-0.87
    # of human data after five generations; a maximum-likelihood model can only lose categories.
    plan = Plan(generations=5, samples=400, seeds=64)
    fitted = what_if(synthetic_fraction=0.0, tail_coverage=0.4, plan=plan)
    plain = what_if(
        synthetic_fraction=0.0,
        tail_coverage=0.4,
        plan=plan,
        constants=dataclasses.replace(WHAT_IF_CONSTANTS, smoothing=0.0),
    )
    a, b = fitted.final(), plain.final()
    assert a.mean - b.mean > Z * np.hypot(a.sem, b.sem)
    # Against human data under the same plan (what a verdict reads), the smoothed candidate ends
    # closer to human than it started. The relative's standard error by the delta method.
    start = fitted.trajectories["tail_coverage"].bands[0]
    human = fitted.human["tail_coverage"].bands[-1]
    relative = fitted.relative_final()
    sem = relative * np.hypot(a.sem / a.mean, human.sem / human.mean)
    assert relative - start.mean > Z * np.hypot(sem, start.sem)


def test_the_default_constants_are_the_fitted_ones():
    # what_if without constants uses the module's (fitted) defaults, not a stale copy.
    plan = Plan(generations=3, samples=400, seeds=8)
    a = what_if(synthetic_fraction=0.2, tail_coverage=0.6, plan=plan)
    b = what_if(synthetic_fraction=0.2, tail_coverage=0.6, plan=plan, constants=WHAT_IF_CONSTANTS)
    assert a.trajectories == b.trajectories
    other = dataclasses.replace(WHAT_IF_CONSTANTS, categories=2 * WHAT_IF_CONSTANTS.categories)
    c = what_if(synthetic_fraction=0.2, tail_coverage=0.6, plan=plan, constants=other)
    assert c.trajectories != a.trajectories
