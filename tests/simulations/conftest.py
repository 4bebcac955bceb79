"""Fixtures shared by the simulator's tests."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.reference import ReferenceCorpus
from tests.splits import reference_and_dense_core


@pytest.fixture(scope="module")
def wiki_split(wiki_vectors):
    rng = np.random.default_rng(0)
    reference, pool, core = reference_and_dense_core(
        wiki_vectors, rng, reference_size=1500, pool_size=1200, core_size=400, holdout_fraction=0.3
    )
    faithful = pool[rng.choice(len(pool), 400, replace=False)]
    return reference, core, faithful


@pytest.fixture(scope="module")
def toy_reference() -> ReferenceCorpus:
    """Six Gaussian modes in 32 dimensions (fast; no model)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 32)) * 2
    vectors = centres[rng.integers(6, size=1500)] + rng.standard_normal((1500, 32))
    return ReferenceCorpus(holdout_fraction=0.25, random_state=0).fit(vectors.astype(np.float32))


@pytest.fixture(scope="module")
def toy_candidate(toy_reference: ReferenceCorpus) -> np.ndarray:
    """Two of the toy reference's six modes: a candidate missing most of its tails."""
    vectors = toy_reference.vectors_
    labels = np.argmin(((vectors[:, None, :2] - vectors[None, :6, :2]) ** 2).sum(-1), axis=1)
    return vectors[np.isin(labels, [0, 1])][:300]
