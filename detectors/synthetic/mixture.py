"""The candidate as human + synthetic + out-of-domain text, from where its documents lie.

Every document lies in a reference ball (IN_REFERENCE), else (labelled mode, when the examples
lie off the reference) in a synthetic example's ball (IN_EXAMPLES), else ELSEWHERE. Human and
synthetic text land in the first two regions at their own rates; the quantifier answers for the
documents in reference balls; `shares` turns the counts and rates into the two shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

IN_REFERENCE, IN_EXAMPLES, ELSEWHERE = 0, 1, 2
MIN_IN_DOMAIN = 10  # documents in reference balls needed to quantify the synthetic share there


@dataclass(frozen=True)
class UnseenTopics:
    """How often the reference's own text lands in its balls when its topic is not among them:
    per topic cluster of the reference, how many of its documents lie inside the balls of the
    other clusters, and its size (`domain.unseen_topics`).

    A random held-out document has near twins in the balls (another story of the same week); a
    new topic or a later year of the same source has not, and lands inside far less often (BBC
    News: 0.78 at random, 0.30 for a left-out topic) though it is the same domain. Scaling the
    in-domain rates by `scale` makes the out-of-domain share count only what lies farther out
    than a new topic of the reference's own source does."""

    inside: np.ndarray
    sizes: np.ndarray

    def rate(self) -> float:
        return float(self.inside.sum() / self.sizes.sum())

    def scale(self, holdout_rate: float) -> float:
        """The factor from the held-out documents' inside rate to a new topic's (at most 1)."""
        return min(1.0, self.rate() / holdout_rate) if holdout_rate > 0 else 1.0

    def resample(self, rng: np.random.Generator) -> UnseenTopics:
        """The clusters drawn with replacement: a reference of few topics is a thin sample of
        how far new topics lie, and its interval says so."""
        rows = rng.integers(len(self.sizes), size=len(self.sizes))
        return UnseenTopics(inside=self.inside[rows], sizes=self.sizes[rows])


def _scaled(
    human: np.ndarray, synthetic: np.ndarray, topics: UnseenTopics | None
) -> tuple[np.ndarray, np.ndarray]:
    if topics is None:
        return human, synthetic
    f = topics.scale(float(human[0]))
    return human * f, synthetic * f


def region_rates(region: np.ndarray) -> np.ndarray:
    """(share IN_REFERENCE, share IN_EXAMPLES) of a sample of region codes."""
    return np.array([np.mean(region == IN_REFERENCE), np.mean(region == IN_EXAMPLES)])


def scaled_rates(holdout: np.ndarray, kept: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Synthetic rates from examples kept by a distance cut, judged like with like: their rate
    times (all held-out documents' rate / the rate of the held-out documents the same cut keeps).
    The cut keeps the examples nearest the reference, which fall inside its balls more often
    than generated text at large."""
    h_near = np.mean(holdout[near] == IN_REFERENCE) if near.any() else 0.0
    scale = np.mean(holdout == IN_REFERENCE) / h_near if h_near > 0 else 1.0
    return region_rates(kept) * scale


def shares(
    quantify_in_reference: Callable[[np.ndarray], float],
    region: np.ndarray,
    human: np.ndarray,
    synthetic: np.ndarray,
) -> tuple[float, float]:
    """(synthetic share of the whole candidate, out-of-domain share).

    `human` and `synthetic` are the rates (h_R, h_X) and (s_R, s_X) at which each kind of text
    lands IN_REFERENCE and IN_EXAMPLES. `quantify_in_reference(mask)` gives a_in, the synthetic
    share among the n_R documents in reference balls, so the candidate holds
    H = n_R (1 - a_in) / h_R human text and n_R a_in + max(n_X - H h_X, 0) synthetic text in the
    domain, which is the share S (s_R + s_X) of all its synthetic text; the out-of-domain share is
    what H and S leave unexplained. Without example balls this is a' = a_in h / (a_in h +
    (1 - a_in) s) within the inside rate (1 - o)((1 - a') h + a' s).
    """
    in_ref = region == IN_REFERENCE
    n_ref, n_ex = float(in_ref.mean()), float(np.mean(region == IN_EXAMPLES))
    if human[0] <= 0:
        return 0.0, float(np.clip(1 - (n_ref + n_ex) / max(human.sum(), 1e-12), 0, 1))
    # Too few documents in the reference's balls to quantify: count them all as human (the
    # synthetic share is then a lower bound, from the examples' balls alone).
    a_in = quantify_in_reference(in_ref) if in_ref.sum() >= MIN_IN_DOMAIN else 0.0
    n_human = n_ref * (1 - a_in) / human[0]
    found = n_ref * a_in + max(n_ex - n_human * human[1], 0.0)
    s_in = float(synthetic.sum())
    n_synthetic = found / s_in if s_in > 0 else found
    total = n_human + n_synthetic
    if total > 1:  # more in the domain than expected: nothing is out of it
        return n_synthetic / total, 0.0
    return n_synthetic, 1 - total


def _synthetic_rates(
    holdout: np.ndarray, synthetic: np.ndarray, near: np.ndarray | None
) -> np.ndarray:
    return region_rates(synthetic) if near is None else scaled_rates(holdout, synthetic, near)


def point_rates(
    holdout: np.ndarray, synthetic: np.ndarray | None, near: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(human, synthetic) region rates of the point estimate (see `bootstrap_shares`)."""
    syn = holdout if synthetic is None else synthetic
    return region_rates(holdout), _synthetic_rates(holdout, syn, near)


def shares_at(
    a_in: float,
    region: np.ndarray,
    holdout: np.ndarray,
    synthetic: np.ndarray | None,
    near: np.ndarray | None,
    topics: UnseenTopics | None = None,
) -> tuple[float, float]:
    """`shares` with the synthetic share in the reference's balls set to `a_in` (e.g. an end of
    its own interval), at the point estimate's rates."""
    return shares(lambda _: a_in, region, *_scaled(*point_rates(holdout, synthetic, near), topics))


def bootstrap_shares(
    quantifier: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
    scores: np.ndarray,
    region: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    holdout: np.ndarray,
    synthetic: np.ndarray | None,
    near: np.ndarray | None,
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
    topics: UnseenTopics | None = None,
) -> tuple[tuple[float, float], np.ndarray]:
    """`shares` for the candidate and for `n_bootstrap` percentile-bootstrap replicates [n, 2].

    Each replicate resamples the candidate, the labelled out-of-fold scores (`pos`, `neg`), the
    held-out reference documents' regions and the synthetic examples' regions (None: synthetic
    text lands as human text does); `near` marks the held-out documents a distance cut keeps
    (`scaled_rates`), None when no cut applied. With `topics`, every rate is scaled to a new
    topic's (`UnseenTopics`), whose clusters are resampled too.
    """

    def one(
        rows: np.ndarray, p: np.ndarray, n: np.ndarray, h: np.ndarray, s: np.ndarray
    ) -> tuple[float, float]:
        return shares(lambda in_ref: quantifier(scores[rows][in_ref], p, n), region[rows], h, s)

    syn = holdout if synthetic is None else synthetic
    point = one(
        np.arange(len(region)), pos, neg, *_scaled(*point_rates(holdout, synthetic, near), topics)
    )
    # Its own stream: the other draws stay as they were without topics.
    topic_rng = rng.spawn(1)[0]
    reps = np.empty((n_bootstrap, 2))
    for b in range(n_bootstrap):
        rows = rng.integers(len(region), size=len(region))
        pos_b, neg_b = rng.choice(pos, len(pos)), rng.choice(neg, len(neg))
        hold_rows = rng.integers(len(holdout), size=len(holdout))  # the draws rng.choice makes
        h = region_rates(holdout[hold_rows])
        if synthetic is None:  # synthetic text lands as this very resample of human text does
            s_b = h
        else:
            keep = None if near is None else near[hold_rows]
            s_b = _synthetic_rates(holdout[hold_rows], rng.choice(syn, len(syn)), keep)
        topics_b = None if topics is None else topics.resample(topic_rng)
        reps[b] = one(rows, pos_b, neg_b, *_scaled(h, s_b, topics_b))
    return point, reps
