"""The reference's domain: k-NN balls, and how often text of a topic the reference does not hold
still lands in them (`unseen_topics`), on points with known structure and on real text."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.synthetic import SyntheticFractionEstimator
from detectors.synthetic.data import smollm2_continuations, usenet_posts
from detectors.synthetic.domain import MAX_TOPICS, MIN_TOPIC_SIZE, Balls, unseen_topics
from detectors.synthetic.mixture import UnseenTopics

OOD_LIMIT = 0.5  # the policy's default max_out_of_domain_fraction


def clustered(rng: np.random.Generator, n_topics: int, per_topic: int) -> np.ndarray:
    """Unit vectors in tight topic clusters far apart: a reference of distinct topics."""
    centres = rng.normal(size=(n_topics, 16))
    points = np.repeat(centres, per_topic, axis=0) + 0.25 * rng.normal(
        size=(n_topics * per_topic, 16)
    )
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_a_left_out_topic_lands_in_the_balls_less_often_than_a_random_document():
    rng = np.random.default_rng(0)
    # As many topics as `unseen_topics` makes clusters (MAX_TOPICS), so each cluster is a topic.
    vectors = clustered(rng, n_topics=MAX_TOPICS, per_topic=40)
    order = rng.permutation(len(vectors))
    held, rest = vectors[order[:60]], vectors[order[60:]]
    random_rate = Balls(rest, 5).inside(held).mean()
    topics = unseen_topics(rest, 5, random_state=0)
    assert topics is not None and topics.sizes.sum() == len(rest)
    # Clusters far apart: a left-out topic's documents lie in no other topic's balls.
    assert topics.rate() < 0.1 < random_rate
    assert topics.scale(float(random_rate)) == pytest.approx(topics.rate() / random_rate)


def test_too_small_a_reference_has_no_topic_split():
    rng = np.random.default_rng(1)
    assert unseen_topics(clustered(rng, 2, MIN_TOPIC_SIZE - 1), 5, random_state=0) is None


def test_resampled_topics_come_from_the_clusters():
    topics = UnseenTopics(inside=np.array([1, 5, 9]), sizes=np.array([10, 10, 10]))
    draws = [topics.resample(np.random.default_rng(s)).rate() for s in range(50)]
    assert min(draws) >= 0.1 and max(draws) <= 0.9
    assert len(set(draws)) > 3  # the clusters' spread, not one value
    assert topics.scale(0.0) == 1.0  # no held-out rate to compare with: no scaling
    assert UnseenTopics(inside=np.array([9]), sizes=np.array([10])).scale(0.5) == 1.0


@pytest.fixture(scope="module")
def examples(embed_cached):
    rows = [r for i, r in enumerate(smollm2_continuations()) if i % 6 == 0]
    texts = [r["text"] for r in rows]
    return texts, [r["stratum"] for r in rows], embed_cached(texts)


def fit_reference(texts, vectors, examples, embed_cached) -> SyntheticFractionEstimator:
    """Reference-only mode, as the service fits it: bundled examples with their sources."""
    ex_texts, ex_sources, ex_vectors = examples
    est = SyntheticFractionEstimator(
        generic_synthetic=ex_texts, generic_sources=ex_sources, embed=embed_cached, random_state=0
    )
    return est.fit(texts, vectors, example_vectors=ex_vectors)


@pytest.mark.slow
def test_other_articles_of_the_same_encyclopedia_are_in_its_domain(
    wiki_docs, wiki_vectors, examples, embed_cached
):
    """A reference of 74 Wikipedia articles, a candidate of paragraphs of the others: in domain
    (it read 0.67 out of domain when held-out paragraphs of the reference's own articles set the
    in-domain rate)."""
    articles = sorted({d.source.split("#")[0] for d in wiki_docs})
    chosen = set(np.random.default_rng(0).choice(articles, 74, replace=False).tolist())
    inside = np.array([d.source.split("#")[0] in chosen for d in wiki_docs])
    ref_ids = np.random.default_rng(1).permutation(np.flatnonzero(inside))[:800]
    est = fit_reference(
        [wiki_docs[i].text for i in ref_ids], wiki_vectors[ref_ids], examples, embed_cached
    )
    assert est.unseen_topics_ is not None
    assert est.unseen_topics_.rate() < np.mean(est.holdout_region_ == 0)
    other = np.random.default_rng(2).permutation(np.flatnonzero(~inside))[:100]
    report = est.estimate([wiki_docs[i].text for i in other], wiki_vectors[other])
    assert report.out_of_domain.point <= OOD_LIMIT
    assert not report.flagged_out_of_domain


@pytest.mark.slow
def test_other_sections_of_the_outlet_are_in_domain_and_usenet_is_not(
    bbc_docs, examples, embed_cached
):
    """BBC business, entertainment and politics as the reference; sport and tech articles are the
    same outlet on new topics (0.65 out of domain before), Usenet posts another genre."""
    order = np.random.default_rng(0).permutation(len(bbc_docs))
    docs = [bbc_docs[i] for i in order[:1100]]  # the session's embedded BBC sample
    three = ("business", "entertainment", "politics")
    ref = [d.text for d in docs if d.source.split("/")[1] in three][:600]
    new = [d.text for d in docs if d.source.split("/")[1] not in three][:100]
    est = fit_reference(ref, embed_cached(ref), examples, embed_cached)
    report = est.estimate(new, embed_cached(new))
    assert report.out_of_domain.point <= OOD_LIMIT
    posts = [d.text for d in usenet_posts()][:100]
    far = est.estimate(posts, embed_cached(posts))
    assert far.out_of_domain.point > OOD_LIMIT and far.flagged_out_of_domain
