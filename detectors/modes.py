"""Per-mode table: which topics (k-means modes of the reference) a candidate misses or overfills."""

from __future__ import annotations

from typing import TYPE_CHECKING

import faiss
import numpy as np
from scipy.stats import norm

from detectors.results import ModeRow

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus


def fit_modes(vectors: np.ndarray, n_modes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means centroids of `vectors` and each vector's mode (FAISS k-means, seeded)."""
    kmeans = faiss.Kmeans(vectors.shape[1], n_modes, niter=25, seed=seed, verbose=False)
    kmeans.train(vectors)
    _, labels = kmeans.index.search(vectors, 1)
    centroids = np.array(kmeans.centroids, dtype=np.float32)  # a copy owned by the caller
    return centroids, labels.ravel().astype(np.int64)


def assign_modes(centroids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    _, labels = index.search(vectors, 1)
    return labels.ravel()


def wilson_interval(count: np.ndarray, n: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions; sound near 0 and 1, unlike the Wald one."""
    z = norm.ppf((1 + level) / 2)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def _status(ref_mass: float, mass: float, low: float, high: float) -> str:
    # A mode is flagged only when the candidate's share differs from the reference share both
    # confidently (the interval excludes it) and materially (by a factor), so a small candidate
    # is not called "missing" a topic merely by chance.
    if high < 0.25 * ref_mass:
        return "missing"
    if high < ref_mass and mass < 0.75 * ref_mass:
        return "under"
    if low > ref_mass and mass > 1.5 * ref_mass:
        return "over"
    return "ok"


def mode_table(
    reference: ReferenceCorpus, candidate: np.ndarray, baseline: np.ndarray, *, level: float
) -> list[ModeRow]:
    centroids, labels = reference.modes_
    n_modes = len(centroids)
    ref_mass = np.bincount(labels, minlength=n_modes) / len(labels)
    cand_counts = np.bincount(assign_modes(centroids, candidate), minlength=n_modes)
    base_counts = np.bincount(assign_modes(centroids, baseline), minlength=n_modes)
    low, high = wilson_interval(cand_counts, len(candidate), level)
    exemplars = reference.mode_exemplars_
    return [
        ModeRow(
            mode=i,
            reference_mass=float(ref_mass[i]),
            candidate_mass=float(cand_counts[i] / len(candidate)),
            candidate_low=float(low[i]),
            candidate_high=float(high[i]),
            baseline_mass=float(base_counts[i] / len(baseline)),
            status=_status(
                float(ref_mass[i]),
                float(cand_counts[i] / len(candidate)),
                float(low[i]),
                float(high[i]),
            ),
            exemplar=exemplars[i] if exemplars is not None else None,
        )
        for i in range(n_modes)
    ]
