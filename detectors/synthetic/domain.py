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
from sklearn.cluster import KMeans

from detectors.index import build_index, knn, knn_radii
from detectors.synthetic.mixture import UnseenTopics

# Topic clusters of the reference for `unseen_topics`: at most this many, of this many documents
# each at least. Ten clusters of BBC News are about half a section each; a left-out cluster of
# Wikipedia paragraphs is a few whole articles.
MAX_TOPICS = 10
MIN_TOPIC_SIZE = 30


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


def unseen_topics(vectors: np.ndarray, k: int, *, random_state: int) -> UnseenTopics | None:
    """How often each topic cluster of `vectors` (k-means) lands inside the balls of the other
    clusters: text of the reference's own source on a topic it does not hold. None when the
    reference is too small for two clusters of `MIN_TOPIC_SIZE`."""
    n_topics = min(MAX_TOPICS, len(vectors) // MIN_TOPIC_SIZE)
    if n_topics < 2:
        return None
    labels = KMeans(n_topics, n_init=3, random_state=random_state).fit_predict(vectors)
    inside, sizes = [], []
    for topic in range(n_topics):
        members = labels == topic
        if members.any() and (~members).sum() > k:
            inside.append(int(Balls(vectors[~members], k).inside(vectors[members]).sum()))
            sizes.append(int(members.sum()))
    if len(sizes) < 2:
        return None
    return UnseenTopics(inside=np.array(inside), sizes=np.array(sizes))
