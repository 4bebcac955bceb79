"""Two-stage sampling: unbiased over shards of unequal size and composition, honest intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import norm

from detectors.shard_sampling import (
    design_effect,
    pack,
    proportion_interval,
    two_stage_sample,
    widen,
)


@dataclass
class MemoryPiece:
    """A shard held in memory: its documents, bytes = their lengths, rows known or not."""

    docs: list[str | None]
    know_rows: bool = False
    fixed_cost: int = 0

    @property
    def nbytes(self) -> int:
        return sum(len(d or "") + 1 for d in self.docs)

    @property
    def rows(self) -> int | None:
        return len(self.docs) if self.know_rows else None

    @property
    def cost(self) -> int:
        return self.fixed_cost if self.know_rows else self.nbytes

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        if rows is None:
            return list(self.docs), self.nbytes
        got = [self.docs[i] for i in rows]
        return got, sum(len(d or "") + 1 for d in got)


def known_corpus(seed: int = 0) -> list[list[str | None]]:
    """40 shards of 10-400 documents; a shard's label share (0.05-0.95) and document length
    (20-2000 characters) both differ, and labelled documents are longer: a length-biased or
    shard-biased draw would miss the truth. A document reads '1 ...' or '0 ...'."""
    rng = np.random.default_rng(seed)
    shards = []
    for _ in range(40):
        n = int(rng.integers(10, 400))
        share = rng.uniform(0.05, 0.95)
        base = int(rng.integers(20, 1000))
        docs: list[str | None] = []
        for _ in range(n):
            label = int(rng.random() < share)
            docs.append(f"{label} " + "x" * (base * (1 + label) + int(rng.integers(0, 50))))
        shards.append(docs)
    return shards


def labels(texts: list[str]) -> np.ndarray:
    return np.array([t[0] == "1" for t in texts], dtype=float)


@pytest.fixture(scope="module")
def corpus() -> list[list[str | None]]:
    return known_corpus()


@pytest.mark.parametrize("know_rows", [False, True], ids=["bytes", "rows"])
def test_estimated_fraction_is_unbiased_and_its_interval_covers(corpus, know_rows):
    truth = labels([d for shard in corpus for d in shard if d]).mean()
    n_docs = sum(len(s) for s in corpus)
    pieces = [MemoryPiece(s, know_rows=know_rows) for s in corpus]
    reps, level = 400, 0.9
    estimates, covered, naive_covered, sizes, deffs = [], 0, 0, [], []
    z = norm.ppf((1 + level) / 2)
    for seed in range(reps):
        s = two_stage_sample(
            pieces, 150, np.random.default_rng(seed), block_bytes=20_000, per_draw_rows=16
        )
        y = labels(s.texts)
        p, lo, hi = proportion_interval(y, s.clusters, level)
        estimates.append(p)
        covered += lo <= truth <= hi
        half = z * np.sqrt(p * (1 - p) / len(y))  # as if the documents were drawn one by one
        naive_covered += p - half <= truth <= p + half
        sizes.append(s.corpus_size)
        deffs.append(design_effect(y, s.clusters))
    estimates_arr = np.array(estimates)
    se = estimates_arr.std(ddof=1) / np.sqrt(reps)
    assert abs(estimates_arr.mean() - truth) < 4 * se, (estimates_arr.mean(), truth, se)
    # the interval covers at about its level (binomial sd over 400 runs: 0.015)
    assert abs(covered / reps - level) < 0.05, covered / reps
    # documents of a draw share their shard: ignoring that under-covers clearly
    assert np.mean(deffs) > 1.5
    assert naive_covered / reps < level - 0.08, naive_covered / reps
    if know_rows:
        assert set(sizes) == {n_docs}  # row counts from metadata: exact
    else:
        sizes_arr = np.array(sizes, dtype=float)
        assert abs(sizes_arr.mean() - n_docs) < 4 * sizes_arr.std(ddof=1) / np.sqrt(reps)


def test_every_document_is_equally_likely_whatever_its_length_or_shard():
    # Shards of 1 to 60 documents whose lengths differ 100-fold: per document, the number of
    # times it is drawn over many seeds must not depend on either.
    rng = np.random.default_rng(1)
    shards: list[list[str | None]] = [
        [f"{s}-{i} " + "y" * int(rng.integers(10, 1000)) for i in range(int(rng.integers(1, 60)))]
        for s in range(12)
    ]
    docs = [d for shard in shards for d in shard]
    pieces = [MemoryPiece(s) for s in shards]
    counts = dict.fromkeys(docs, 0)
    reps = 3000
    total = 0
    for seed in range(reps):
        s = two_stage_sample(pieces, 40, np.random.default_rng(seed), block_bytes=4000)
        for t in s.texts:
            counts[t] += 1
        total += len(s.texts)
    c = np.array([counts[d] for d in docs], dtype=float)
    mean = total / len(docs)
    # Each count is a sum over seeds of (nearly) Poisson draws: Bonferroni over the documents.
    zmax = norm.ppf(1 - 1e-3 / (2 * len(docs)))
    assert np.all(np.abs(c - mean) <= zmax * np.sqrt(mean) * 1.2), (c.min(), c.max(), mean)
    lengths = np.array([len(d) for d in docs if d])
    assert abs(np.corrcoef(lengths, c)[0, 1]) < 0.15


def test_empty_documents_are_not_sampled_and_not_counted():
    shards: list[list[str | None]] = [[None, "  ", "a real one", "another"] * 50 for _ in range(6)]
    s = two_stage_sample([MemoryPiece(x) for x in shards], 50, np.random.default_rng(2))
    assert s.texts and all(t.strip() for t in s.texts)
    assert not s.corpus_size_exact
    rows = two_stage_sample(
        [MemoryPiece(x, know_rows=True) for x in shards], 50, np.random.default_rng(2)
    )
    assert not rows.corpus_size_exact  # empty rows were met: the row count is not the answer
    assert 400 < rows.corpus_size < 800  # 600 non-empty of 1200 rows


def test_costly_row_reads_keep_more_documents_per_draw():
    shards: list[list[str | None]] = [[f"d{s}-{i}" for i in range(500)] for s in range(40)]
    cheap = two_stage_sample(
        [MemoryPiece(x, know_rows=True) for x in shards], 400, np.random.default_rng(3)
    )
    costly = two_stage_sample(
        [MemoryPiece(x, know_rows=True, fixed_cost=10**7) for x in shards],
        400,
        np.random.default_rng(3),
        read_budget=10**8,
    )
    assert cheap.n_draws == 25  # 400 / 16 per draw
    assert costly.n_draws == 10  # 400 * 1e7 / 1e8 = 40 per draw
    assert 300 < len(costly.texts) < 500


def test_pack_groups_small_units_and_keeps_every_unit_once():
    groups = pack([5, 1, 1, 1, 10, 2, 1], 3)
    assert groups == [[0], [1, 2, 3], [4], [5, 6]]
    assert pack([1, 1], 10) == [[0, 1]]
    assert pack([1, 1, 9, 1], 3) == [[0, 1, 2, 3]]


def test_design_effect_of_independent_and_of_identical_cluster_members():
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.arange(200), 10)
    independent = rng.normal(size=2000)
    assert 0.7 < design_effect(independent, clusters) < 1.3
    shared = np.repeat(rng.normal(size=200), 10)  # a cluster's members are one value
    assert 8 < design_effect(shared + 1e-9 * independent, clusters) < 12
    assert design_effect(independent, np.arange(2000)) == 1.0


def test_widen_stretches_about_the_point_and_clips():
    assert widen(0.5, 0.4, 0.7, 2.0) == pytest.approx((0.3, 0.9))
    assert widen(0.1, 0.05, 0.2, 4.0, lower=0, upper=1) == pytest.approx((0.0, 0.5))
    assert widen(0.5, 0.4, 0.7, 0.5) == (0.4, 0.7)  # never narrower
