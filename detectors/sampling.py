"""Uniform sampling of streams too large to hold in memory."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def reservoir_sample(
    items: Iterable[T], size: int, rng: np.random.Generator
) -> tuple[list[T], int]:
    """Draw `size` items uniformly without replacement from a stream of unknown length.

    Uses Li's Algorithm L, which skips ahead geometrically instead of drawing one random number per
    item, so a stream of N items costs O(size * log(N / size)) random draws. Returns the sample (in
    stream order of arrival into the reservoir, not shuffled) and how many items the stream held.
    """
    if size < 1:
        raise ValueError(f"sample size must be at least 1, got {size}")
    iterator = iter(items)
    reservoir: list[T] = []
    for item in iterator:
        reservoir.append(item)
        if len(reservoir) == size:
            break
    seen = len(reservoir)
    if seen < size:
        return reservoir, seen

    w = math.exp(math.log(rng.random()) / size)
    while True:
        skip = math.floor(math.log(rng.random()) / math.log1p(-w))
        # Advance past `skip` items; the next one replaces a random reservoir slot.
        for _ in range(skip):
            if next(iterator, _SENTINEL) is _SENTINEL:
                return reservoir, seen
            seen += 1
        nxt = next(iterator, _SENTINEL)
        if nxt is _SENTINEL:
            return reservoir, seen
        seen += 1
        reservoir[int(rng.integers(size))] = nxt  # type: ignore[assignment]
        w *= math.exp(math.log(rng.random()) / size)


_SENTINEL = object()
