"""Categorical recursion: absorbing states, rare categories lost first, martingale fixation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from detectors.errors import InvalidInputError, NotFittedError
from simulations.loop import run_generations
from simulations.models.discrete import CategoricalModel, zipf_probabilities
from simulations.theory import categorical_expected_support, categorical_loss_probability

Z = float(norm.ppf(1 - 1e-3 / 2))


def test_support_never_grows_under_replace_and_tail_goes_first():
    model = CategoricalModel(probabilities=zipf_probabilities(200), n_chains=500)
    record = run_generations(model, generations=60, samples=500, random_state=0)
    support = record.metrics["support_size"]
    assert np.all(np.diff(support, axis=0) <= 0)  # a lost category never comes back
    assert support[-1].mean() < support[0].mean()
    # The tail (rarest 10% of the mass) loses a larger share of its mass than the whole does.
    assert np.all(record.metrics["tail_mass_lost"][-1] >= record.metrics["mass_lost"][-1])
    assert record.metrics["tail_mass_lost"][-1].mean() > record.metrics["mass_lost"][-1].mean()
    kl = record.metrics["kl_model_to_original"]
    assert kl[-1].mean() > kl[0].mean()


def test_first_generation_support_and_loss_match_theory():
    p = zipf_probabilities(100)
    chains, samples = 4000, 200
    record = run_generations(
        CategoricalModel(probabilities=p, n_chains=chains),
        generations=0,
        samples=samples,
        random_state=1,
    )
    support = record.metrics["support_size"][0]
    expected = categorical_expected_support(p, samples)
    assert abs(support.mean() - expected) <= Z * support.std(ddof=1) / np.sqrt(chains)
    # The rarest category (p < 1/M) is lost with probability (1 - p)^M, per chain independently.
    model = CategoricalModel(probabilities=p, n_chains=chains).fit(
        np.random.default_rng(2).multinomial(samples, p, size=chains)
    )
    lost = (model.probabilities_[:, -1] == 0).mean()
    q = categorical_loss_probability(p, samples)[-1]
    assert p[-1] < 1 / samples
    assert abs(lost - q) <= Z * np.sqrt(q * (1 - q) / chains)


def test_chains_fix_on_a_state_with_its_original_probability():
    p = np.array([0.5, 0.3, 0.15, 0.05])
    chains, samples = 3000, 10
    model = CategoricalModel(probabilities=p, n_chains=chains)
    record = run_generations(model, generations=300, samples=samples, random_state=3)
    assert np.all(record.metrics["support_size"][-1] == 1)  # every chain is absorbed
    winners = model.probabilities_.argmax(axis=1)
    share = np.bincount(winners, minlength=len(p)) / chains
    se = np.sqrt(p * (1 - p) / chains)
    assert np.all(np.abs(share - p) <= float(norm.ppf(1 - 1e-3 / (2 * len(p)))) * se)


def test_keep_real_keeps_the_support():
    p = zipf_probabilities(100)
    common: dict[str, Any] = {"generations": 40, "samples": 300, "random_state": 4}
    rep = run_generations(CategoricalModel(probabilities=p, n_chains=400), **common)
    keep = run_generations(
        CategoricalModel(probabilities=p, n_chains=400), policy="keep-real", beta=0.1, **common
    )
    a, b = rep.metrics["support_size"][-1], keep.metrics["support_size"][-1]
    se = np.hypot(a.std(ddof=1), b.std(ddof=1)) / np.sqrt(len(a))
    assert b.mean() - a.mean() > Z * se


def test_bad_input_is_explained():
    with pytest.raises(InvalidInputError, match="summing to 1"):
        CategoricalModel(probabilities=[0.5, 0.6])
    with pytest.raises(NotFittedError, match="fit"):
        CategoricalModel().sample(10, np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="beta"):
        run_generations(CategoricalModel(), generations=2, samples=10, policy="replace", beta=0.1)
    with pytest.raises(InvalidInputError, match="policy"):
        run_generations(CategoricalModel(), generations=2, samples=10, policy="forget")
