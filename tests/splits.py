"""Reference / candidate splits of real vectors that several test modules share."""

from __future__ import annotations

import numpy as np

from detectors.reference import ReferenceCorpus


def reference_and_dense_core(
    vectors: np.ndarray,
    rng: np.random.Generator,
    *,
    reference_size: int,
    pool_size: int,
    core_size: int,
    holdout_fraction: float,
) -> tuple[ReferenceCorpus, np.ndarray, np.ndarray]:
    """Shuffle `vectors` with `rng`; fit a reference on the first `reference_size`, take the next
    `pool_size` as unseen documents, and their `core_size` nearest the reference's dense core (the
    smallest k-NN radius): what a collapsing generator keeps, the tails removed. Returns the
    reference, the pool and the core."""
    order = rng.permutation(len(vectors))
    reference = ReferenceCorpus(holdout_fraction=holdout_fraction, random_state=0).fit(
        vectors[order[:reference_size]]
    )
    pool = vectors[order[reference_size : reference_size + pool_size]]
    radius = reference.neighbours(pool)[0][:, -1]
    return reference, pool, pool[np.argsort(radius)[:core_size]]
