"""Coverage metrics: equal to the `prdc` package with exact search; bounded memory; clear errors."""

from __future__ import annotations

import numpy as np
import prdc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.coverage import compute_prdc, coverage_report, memberships
from detectors.errors import (
    DimensionMismatchError,
    EmptyCorpusError,
    InsufficientDataError,
    InvalidInputError,
)
from detectors.index import (
    ball_membership,
    build_index,
    covered_by_balls,
    dense_memberships,
    knn_radii,
)
from detectors.reference import ReferenceCorpus

METRICS = ("precision", "recall", "density", "coverage")


def _assert_equal_to_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> None:
    expected = prdc.compute_prdc(real, fake, k)
    ours = compute_prdc(real, fake, k=k, index="exact")
    for name in METRICS:
        assert getattr(ours, name) == pytest.approx(float(expected[name]), abs=1e-6), name


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "k", "shift"),
    [
        (1000, 800, 64, 5, 0.3),
        (600, 900, 16, 3, 0.0),
        (500, 500, 384, 10, 1.0),
        (3200, 150, 32, 5, 0.5),  # few fakes: recall flags from distances (covered_by_balls)
    ],
)
def test_equal_to_prdc_on_random_vectors(n_real, n_fake, dim, k, shift):
    rng = np.random.default_rng(n_real + dim)
    real = rng.normal(size=(n_real, dim)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, dim)) * 1.2 + shift).astype(np.float32)
    _assert_equal_to_prdc(real, fake, k)


def _definition_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The PRDC definitions computed literally, with float64 differences (a test oracle)."""

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(
            ((a[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1)
        )

    r_real = np.sort(dist(real, real), axis=1)[:, k]
    r_fake = np.sort(dist(fake, fake), axis=1)[:, k]
    d = dist(real, fake)
    inside = d < r_real[:, None]
    return {
        "precision": inside.any(axis=0).mean(),
        "recall": (d < r_fake[None, :]).any(axis=1).mean(),
        "density": inside.sum(axis=0).mean() / k,
        "coverage": (d.min(axis=1) < r_real).mean(),
    }


def test_exact_on_unit_vectors_with_duplicates():
    # Exact copies give zero radii and zero distances, where the strict "<" decides. prdc's
    # sklearn distances put ~3e-8 between identical rows of two arrays, so prdc itself is off by
    # a few points here; the definition computed in float64 is the oracle.
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 32)).astype(np.float32)
    real[200:260] = real[0]
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    fake = np.vstack([real[:100], rng.normal(size=(300, 32)).astype(np.float32)])
    fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    expected = _definition_prdc(real, fake, 5)
    ours = compute_prdc(real, fake, k=5)
    for name in METRICS:
        assert getattr(ours, name) == pytest.approx(expected[name], abs=1e-12), name


@settings(max_examples=25, deadline=None)
@given(
    n_real=st.integers(12, 120),
    n_fake=st.integers(12, 120),
    dim=st.integers(2, 12),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.2, 3.0),
)
def test_equal_to_prdc_property(n_real, n_fake, dim, k, seed, scale):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, dim)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, dim)) * scale).astype(np.float32)
    _assert_equal_to_prdc(real, fake, k)


def test_ball_membership_matches_brute_force_and_doubles_k():
    rng = np.random.default_rng(2)
    data = rng.normal(size=(700, 8)).astype(np.float32)
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    radii = rng.uniform(0.5, 4.0, size=50)  # big radii hold hundreds of points: k must double
    got = ball_membership(build_index(data, "exact"), data, queries, radii, k0=4).toarray()
    dist = np.linalg.norm(queries[:, None, :].astype(np.float64) - data[None], axis=2)
    np.testing.assert_array_equal(got, dist < radii[:, None])
    assert got.sum(axis=1).max() > 100


def test_covered_by_balls_matches_brute_force_at_the_boundary():
    """Wide balls (each holds most points, the case a search from the centres handles badly),
    and points placed exactly on a boundary: the flags equal float64 brute force."""
    rng = np.random.default_rng(6)
    centres = rng.normal(size=(40, 24)).astype(np.float32)
    points = rng.normal(size=(3000, 24)).astype(np.float32) * 2
    dist = np.linalg.norm(points[:, None, :].astype(np.float64) - centres[None], axis=2)
    # Each ball's radius is the distance of its 16th nearest point: 15 points inside, and the
    # 16th exactly on the boundary (outside: membership is strict).
    radii = np.sort(dist, axis=0)[15]
    got = covered_by_balls(centres, radii, points)
    want = (dist < radii[None, :]).any(axis=1)
    np.testing.assert_array_equal(got, want)
    assert 0.05 < want.mean() < 0.9  # a real mix of covered and uncovered points
    with pytest.raises(InvalidInputError, match="one radius per ball"):
        covered_by_balls(centres, radii[:-1], points)


def test_dense_memberships_match_brute_force_at_both_boundaries():
    """Small sets take one dense distance matrix for both sides of PRDC: B (fake in a real ball)
    and the recall flags (real in a fake ball), with radii placed exactly on a point of the
    other side (strict membership: that point is outside). Equal to float64 brute force."""
    rng = np.random.default_rng(8)
    real = rng.normal(size=(700, 16)).astype(np.float32)
    fake = (rng.normal(size=(300, 16)) * 1.3 + 0.2).astype(np.float32)
    fake[:20] = real[:20]  # exact copies: zero distances
    dist = np.sqrt(((real[:, None, :].astype(np.float64) - fake[None]) ** 2).sum(-1))
    real_radii = np.sort(dist, axis=1)[:, 3]  # the 4th nearest fake on the boundary
    fake_radii = np.sort(dist, axis=0)[5]  # the 6th nearest real point on the boundary
    hits, recalled = dense_memberships(real, real_radii, fake, fake_radii)
    np.testing.assert_array_equal(hits.toarray(), dist < real_radii[:, None])
    np.testing.assert_array_equal(recalled, (dist < fake_radii[None, :]).any(axis=1))
    assert 0.05 < recalled.mean() < 0.95
    with pytest.raises(InvalidInputError, match="one radius per point"):
        dense_memberships(real, real_radii[:-1], fake, fake_radii)


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "unit"), [(1500, 900, 16, False), (600, 400, 384, True)]
)
def test_dense_and_search_memberships_agree(n_real, n_fake, dim, unit):
    """The forecast's and small audits' dense path gives the searches' result, pair for pair."""
    rng = np.random.default_rng(n_real)
    real = rng.normal(size=(n_real, dim)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, dim)) * 1.1 + 0.1).astype(np.float32)
    real[30:50] = real[0]  # duplicates: zero radii
    fake[:10] = real[100:110]
    if unit:
        real /= np.linalg.norm(real, axis=1, keepdims=True)
        fake /= np.linalg.norm(fake, axis=1, keepdims=True)
    index = build_index(real, "exact")
    radii = knn_radii(index, real, 5)
    searched = memberships(real, index, radii, fake, k=5, index="exact", dense_pairs=0)
    dense = memberships(real, index, radii, fake, k=5, index="exact")
    assert (searched[0] != dense[0]).nnz == 0
    np.testing.assert_array_equal(searched[1], dense[1])
    assert dense[0].nnz > 0 and 0 < dense[1].mean() < 1


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_close_to_exact(kind):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 48)) * 3
    real = (centres[rng.integers(20, size=3000)] + rng.normal(size=(3000, 48))).astype(np.float32)
    fake = (centres[rng.integers(20, size=2000)] + rng.normal(size=(2000, 48))).astype(np.float32)
    exact = compute_prdc(real, fake, k=5, index="exact")
    approx = compute_prdc(real, fake, k=5, index=kind)
    for name in METRICS:
        assert getattr(approx, name) == pytest.approx(getattr(exact, name), abs=0.01), name


def test_tail_mask_restricts_coverage():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(500, 4)).astype(np.float32)
    far = np.linalg.norm(real, axis=1) > 2.5
    fake_core = real[~far] + 0.01  # shadows every non-tail point, none of the tail points
    res = compute_prdc(real, fake_core.astype(np.float32), k=3, tail_mask=far)
    brute = prdc.compute_prdc(real[far], fake_core.astype(np.float32), 3)  # not the same radii
    assert res.tail_coverage < res.coverage
    assert 0 <= res.tail_coverage <= 1 and brute["coverage"] >= 0


@pytest.mark.parametrize(
    ("real", "fake", "error", "message"),
    [
        (np.zeros((0, 4)), np.ones((10, 4)), EmptyCorpusError, "empty"),
        (np.ones((10, 4)), np.ones((10, 5)), DimensionMismatchError, "dimension 5"),
        (
            np.random.default_rng(0).normal(size=(3, 4)),
            np.ones((10, 4)),
            InsufficientDataError,
            "k\\+1",
        ),
    ],
)
def test_bad_input(real, fake, error, message):
    with pytest.raises(error, match=message):
        compute_prdc(real, fake, k=5)


def test_report_compares_with_size_matched_baseline():
    rng = np.random.default_rng(5)
    ref = ReferenceCorpus(k=5, random_state=0).fit(rng.normal(size=(2500, 16)).astype(np.float32))
    same = rng.normal(size=(5000, 16)).astype(np.float32)
    report = coverage_report(ref, same, n_bootstrap=100, random_state=1)
    assert report.sample_size == len(ref.holdout_) == 500  # larger candidate: subsampled
    assert report.candidate_size == 5000
    for metric in (report.coverage, report.tail_coverage, report.precision, report.recall):
        # Same distribution as the reference: the ratio's interval contains 1.
        assert metric.low <= 1.0 <= metric.high
        assert metric.value_low <= metric.value <= metric.value_high
    assert sum(m.reference_mass for m in report.modes) == pytest.approx(1.0)
    assert report == coverage_report(ref, same, n_bootstrap=100, random_state=1)  # seeded


@pytest.mark.parametrize("block_values", [1, 7 * 2000])
def test_bootstrap_in_blocks_gives_the_same_report(monkeypatch, block_values):
    """The row weights are drawn a block of replicates at a time (bounded memory for a large
    reference): the report and the caller's random stream afterwards equal one block's."""
    import detectors.coverage as coverage

    rng = np.random.default_rng(8)
    ref = ReferenceCorpus(k=5, random_state=0).fit(rng.normal(size=(2500, 16)).astype(np.float32))
    cand = 1.3 * rng.normal(size=(300, 16)).astype(np.float32)
    whole_rng, blocks_rng = np.random.default_rng(3), np.random.default_rng(3)
    whole = coverage_report(ref, cand, n_bootstrap=60, random_state=whole_rng)
    monkeypatch.setattr(coverage, "BOOTSTRAP_BLOCK_VALUES", block_values)  # 1 or 7 replicates
    assert coverage_report(ref, cand, n_bootstrap=60, random_state=blocks_rng) == whole
    assert blocks_rng.random(4).tolist() == whole_rng.random(4).tolist()  # the stream left alike


def test_report_rejects_wrong_dimension():
    rng = np.random.default_rng(6)
    ref = ReferenceCorpus().fit(rng.normal(size=(200, 8)).astype(np.float32))
    with pytest.raises(DimensionMismatchError):
        coverage_report(ref, rng.normal(size=(50, 9)))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "min_recall"), [("hnsw", 0.99), ("ivf", 0.9)])
def test_approximate_index_recall_on_real_embeddings(wiki_vectors, kind, min_recall):
    """Recall@5 of each approximate index against exact search on real MiniLM embeddings.

    The floors are the documented behaviour (README, detectors/index.py): HNSW ~0.999, IVF-Flat
    with 8 probes ~0.94 on this corpus. The metrics they feed must move by less than their own
    sampling noise: two standard errors of a proportion (at its widest, p = 1/2) on this sample.
    """
    from detectors.index import knn

    data = np.ascontiguousarray(wiki_vectors, dtype=np.float32)
    queries = data[::7]
    _, exact_ids = knn(build_index(data, "exact"), data, queries, 6)
    _, approx_ids = knn(build_index(data, kind), data, queries, 6)
    hits = [len(set(a[1:]) & set(e[1:])) for a, e in zip(approx_ids, exact_ids, strict=True)]
    assert np.mean(hits) / 5 >= min_recall
    half = len(data) // 2
    exact = compute_prdc(data[:half], data[half:], k=5, index="exact")
    approx = compute_prdc(data[:half], data[half:], k=5, index=kind)
    two_se = 2 * np.sqrt(0.25 / half)
    for name in METRICS:
        assert getattr(approx, name) == pytest.approx(getattr(exact, name), abs=two_se), name
