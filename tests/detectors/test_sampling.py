"""Reservoir sampling: uniform inclusion, a stated stream length, and no copy of the stream."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.stats import norm

from detectors.sampling import reservoir_sample


def test_every_item_is_included_with_probability_size_over_n():
    n, size, reps = 60, 12, 5000
    rng = np.random.default_rng(0)
    counts = np.zeros(n)
    for _ in range(reps):
        sample, seen = reservoir_sample(range(n), size, rng)
        assert seen == n and len(sample) == size and len(set(sample)) == size
        counts[sample] += 1
    p = size / n
    z = norm.ppf(1 - 1e-3 / (2 * n))  # Bonferroni over the n items
    assert np.all(np.abs(counts - reps * p) <= z * np.sqrt(reps * p * (1 - p)))


def test_stream_of_a_million_items_is_not_held():
    tracemalloc.start()
    sample, seen = reservoir_sample(
        (f"document {i}" for i in range(1_000_000)), 100, np.random.default_rng(1)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == 1_000_000 and len(sample) == 100
    assert peak < 1_000_000  # bytes: a list of the stream alone would take ~60 MB


def test_short_streams_and_bad_sizes():
    sample, seen = reservoir_sample(iter(["a", "b"]), 5, np.random.default_rng(2))
    assert sample == ["a", "b"] and seen == 2
    assert reservoir_sample([], 3, np.random.default_rng(3)) == ([], 0)
    with pytest.raises(ValueError, match="at least 1"):
        reservoir_sample(["a"], 0, np.random.default_rng(4))
