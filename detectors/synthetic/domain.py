"""k-NN balls: the reference's, and the caller's synthetic examples' as part of the domain.

In labelled mode the question is "human (like the reference) or generated (like these
examples)?". Text from a collapsed model can lie far from every human document (repetitive, off
the human manifold) and yet be exactly what the caller fears: outside the reference's balls it
would pass for another genre. When the examples themselves lie off the reference's balls
(`estimator.OFF_REFERENCE_Z`), the domain where the question can be answered is the union of the
reference's balls and the examples' balls, and text inside the latter is counted as what it is.
"""

from __future__ import annotations

import numpy as np

from detectors.index import build_index, knn, knn_radii


class Balls:
    """k-NN balls over a set of vectors: each ball has the radius of its point's k-th nearest
    other point (prdc's rule), optionally capped. The estimator keeps one over the reference and,
    in labelled mode, one over the examples.

    The examples' balls are never wider than the median reference ball: a few hundred examples
    spread over the reference's domain would otherwise get balls wide enough to swallow another
    genre (Usenet posts fell inside SmolLM2 examples' balls at half the rate of generated news),
    while text from a collapsed model sits in tight clusters that the cap does not touch."""

    def __init__(self, vectors: np.ndarray, k: int, *, max_radius: float = np.inf) -> None:
        self.vectors = vectors
        self.index = build_index(vectors, "exact")
        self.radii = np.minimum(knn_radii(self.index, vectors, k), max_radius)

    def __getstate__(self) -> dict:
        # A FAISS index does not pickle; an exact one is rebuilt from the vectors in milliseconds.
        return {"vectors": self.vectors, "radii": self.radii}

    def __setstate__(self, state: dict) -> None:
        self.vectors, self.radii = state["vectors"], state["radii"]
        self.index = build_index(self.vectors, "exact")

    def nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to, and id of, each vector's nearest point."""
        dist, ids = knn(self.index, self.vectors, vectors, 1)
        return dist[:, 0], ids[:, 0]

    def inside(self, vectors: np.ndarray) -> np.ndarray:
        """Whether each vector lies in the ball of its nearest point."""
        dist, ids = self.nearest(vectors)
        return dist < self.radii[ids]

    def inside_leave_one_out(self) -> np.ndarray:
        """The same for the examples themselves, each judged as unseen text of their kind: not
        by its own ball, and against its nearest example's radius as if it were not among that
        example's neighbours. If it is among them, that radius grows to the next neighbour's
        distance, which keeps it inside; so the test is d <= r rather than d < r."""
        dist, ids = knn(self.index, self.vectors, self.vectors, 2)
        own = ids[:, 0] == np.arange(len(ids))
        nearest = np.where(own, ids[:, 1], ids[:, 0])
        d = np.where(own, dist[:, 1], dist[:, 0])
        return d <= self.radii[nearest]
