"""ReferenceCorpus: index choice, radii, tails, append, and crash-safe persistence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from detectors.coverage import coverage_report
from detectors.errors import (
    CorruptReferenceError,
    DimensionMismatchError,
    EmptyCorpusError,
    InsufficientDataError,
    InvalidInputError,
    NotFittedError,
    ReferenceMismatchError,
)
from detectors.index import build_index, knn_radii
from detectors.reference import ReferenceCorpus


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1000, 16)).astype(np.float32)


def test_fit_splits_holdout_and_labels_the_sparsest_points_as_tail(vectors):
    ref = ReferenceCorpus(k=5, tail_quantile=0.1, holdout_fraction=0.2).fit(vectors)
    assert (len(ref.vectors_), len(ref.holdout_)) == (800, 200)
    assert ref.index_kind_ == "exact"
    assert ref.tail_mask_.sum() == pytest.approx(80, abs=2)
    assert ref.radii_[ref.tail_mask_].min() >= ref.radii_[~ref.tail_mask_].max()
    # Radii are the k-th neighbour distance excluding the point itself (prdc's convention).
    d = np.linalg.norm(ref.vectors_[:5, None].astype(np.float64) - ref.vectors_[None], axis=2)
    np.testing.assert_allclose(ref.radii_[:5], np.sort(d, axis=1)[:, 5], rtol=1e-9)


def test_auto_index_switches_to_hnsw_above_threshold(vectors):
    ref = ReferenceCorpus(exact_threshold=500).fit(vectors)
    assert ref.index_kind_ == "hnsw"
    exact = ReferenceCorpus(index="exact", exact_threshold=500).fit(vectors)
    assert exact.index_kind_ == "exact"
    # On 800 points HNSW finds (nearly) the same radii.
    assert np.mean(np.isclose(ref.radii_, exact.radii_)) > 0.95


def test_ivf_append_reuses_trained_cells():
    # IVF's recall rests on cluster structure (as sentence embeddings have), not on isotropic noise.
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(12, 16)) * 4
    clustered = (centres[rng.integers(12, size=1500)] + rng.normal(size=(1500, 16))).astype(
        np.float32
    )
    ref = ReferenceCorpus(index="ivf").fit(clustered[:1000])
    index_before = ref.index_
    ref.append(clustered[1000:])
    assert ref.index_ is index_before and ref.index_.ntotal == len(ref.vectors_)
    exact = knn_radii(build_index(ref.vectors_, "exact"), ref.vectors_, ref.k)
    assert np.mean(np.isclose(ref.radii_, exact)) > 0.95


def test_append_without_rebuild_matches_a_fresh_fit(vectors):
    ref = ReferenceCorpus().fit(vectors[:600])
    index_before, vectors_before = ref.index_, ref.vectors_
    copy_before = vectors_before.copy()
    _ = ref.radii_
    ref.append(vectors[600:])
    # Added to a copy of the index: an array handed out before the append still reads what it did.
    assert index_before.ntotal == 480 and ref.index_.ntotal == len(ref.vectors_) == 480 + 320
    np.testing.assert_array_equal(vectors_before, copy_before)
    np.testing.assert_array_equal(ref.vectors_[:480], copy_before)  # the old rows, then the new
    fresh_radii = knn_radii(build_index(ref.vectors_, "exact"), ref.vectors_, ref.k)
    np.testing.assert_allclose(ref.radii_, fresh_radii)  # stale radii were recomputed
    assert len(ref) == 1000


def test_save_load_round_trip_gives_identical_audits(tmp_path, vectors):
    texts = [f"document number {i}" for i in range(len(vectors))]
    ref = ReferenceCorpus(model="test-model").fit(vectors, texts=texts)
    ref.save(tmp_path / "ref")
    loaded = ReferenceCorpus.load(tmp_path / "ref", model="test-model", dim=16)
    cand = np.random.default_rng(1).normal(size=(150, 16)).astype(np.float32)
    assert coverage_report(loaded, cand, n_bootstrap=50) == coverage_report(
        ref, cand, n_bootstrap=50
    )
    assert loaded.mode_exemplars_ is not None and loaded.mode_exemplars_ == ref.mode_exemplars_
    assert loaded.mode_exemplars_[0].startswith("document number")


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_reference_round_trip(tmp_path, vectors, kind):
    ref = ReferenceCorpus(index=kind).fit(vectors)
    ref.save(tmp_path / "ref")
    loaded = ReferenceCorpus.load(tmp_path / "ref")
    assert loaded.index_kind_ == kind
    np.testing.assert_array_equal(
        loaded.neighbours(vectors[:20])[1], ref.neighbours(vectors[:20])[1]
    )


def test_resave_replaces_atomically_and_cleans_up(tmp_path, vectors):
    ref = ReferenceCorpus().fit(vectors[:500])
    ref.save(tmp_path / "ref")
    ref.append(vectors[500:])
    ref.save(tmp_path / "ref")
    assert len(ReferenceCorpus.load(tmp_path / "ref")) == 1000
    hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".ref.v-")]
    assert len(hidden) == 1  # the previous version is gone


def test_save_after_append_writes_only_the_new_part(tmp_path, vectors):
    texts = [f"document {i}" for i in range(len(vectors))]
    ReferenceCorpus().fit(vectors[:600], texts=texts[:600]).save(tmp_path / "ref")
    first = {p.name: p.stat().st_ino for p in (tmp_path / "ref").resolve().iterdir()}
    ref = ReferenceCorpus.load(tmp_path / "ref")
    ref.append(vectors[600:], texts=texts[600:])
    ref.save(tmp_path / "ref")
    folder = (tmp_path / "ref").resolve()
    for name in ("vectors-0000.npy", "holdout-0000.npy", "snippets-0000.json"):
        assert (folder / name).stat().st_ino == first[name]  # linked: not written again
    assert (folder / "vectors-0001.npy").stat().st_ino not in first.values()
    loaded = ReferenceCorpus.load(tmp_path / "ref")
    np.testing.assert_array_equal(loaded.vectors_, ref.vectors_)
    np.testing.assert_array_equal(loaded.holdout_, ref.holdout_)
    assert loaded.snippets_ == ref.snippets_ and loaded.parts_ == ref.parts_ and len(loaded) == 1000


def test_format_1_folder_still_loads_and_appends(tmp_path, vectors):
    """A reference saved before parts existed (one vectors.npy, holdout.npy, snippets.json)."""
    import json

    from detectors.storage import write_dir_atomic

    texts = [f"document {i}" for i in range(len(vectors))]
    ref = ReferenceCorpus().fit(vectors[:600], texts=texts[:600])
    meta = {k: v for k, v in ref.meta().items() if k != "parts"} | {"format_version": 1}

    def write_v1(folder):
        np.save(folder / "vectors.npy", ref.vectors_)
        np.save(folder / "holdout.npy", ref.holdout_)
        np.save(folder / "radii.npy", ref.radii_)
        (folder / "snippets.json").write_text(json.dumps(ref.snippets_))
        (folder / "meta.json").write_text(json.dumps(meta))

    write_dir_atomic(tmp_path / "ref", write_v1)
    old_vectors = (tmp_path / "ref").resolve() / "vectors.npy"
    inode = old_vectors.stat().st_ino
    loaded = ReferenceCorpus.load(tmp_path / "ref")
    np.testing.assert_array_equal(loaded.vectors_, ref.vectors_)
    assert loaded.snippets_ == ref.snippets_ and loaded.parts_ == ref.parts_
    loaded.append(vectors[600:], texts=texts[600:])
    loaded.save(tmp_path / "ref")  # now format 2; the old file becomes part 0 by a link
    assert ((tmp_path / "ref").resolve() / "vectors-0000.npy").stat().st_ino == inode
    again = ReferenceCorpus.load(tmp_path / "ref")
    assert again.meta()["format_version"] == 2 and len(again) == 1000
    np.testing.assert_array_equal(again.vectors_, loaded.vectors_)


def test_kill_during_save_leaves_previous_version_loadable(tmp_path, vectors):
    ref = ReferenceCorpus().fit(vectors[:300])
    ref.save(tmp_path / "ref")
    before = ReferenceCorpus.load(tmp_path / "ref").vectors_.copy()
    # A child process saves a much larger reference and is killed (SIGKILL) while it writes.
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import detectors.reference as r
        big = np.random.default_rng(0).normal(size=(20000, 16)).astype(np.float32)
        ref = r.ReferenceCorpus().fit(big)
        real_save = r.np.save
        def save_then_die(path, arr):
            real_save(path, arr)
            os.kill(os.getpid(), signal.SIGKILL)  # dies after the first file of the new version
        r.np.save = save_then_die
        ref.save({str(tmp_path / "ref")!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".ref.v-")]
    assert len(partial) == 2  # the published version and the half-written one
    np.testing.assert_array_equal(ReferenceCorpus.load(tmp_path / "ref").vectors_, before)
    ref.save(tmp_path / "ref")  # the next save removes the debris
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".ref.v-")]) == 1


def test_load_rejects_other_model_or_dimension(tmp_path, vectors):
    ReferenceCorpus(model="all-MiniLM-L6-v2").fit(vectors).save(tmp_path / "ref")
    with pytest.raises(ReferenceMismatchError, match="built with model 'all-MiniLM-L6-v2'"):
        ReferenceCorpus.load(tmp_path / "ref", model="other-model")
    with pytest.raises(ReferenceMismatchError, match="dimension 16"):
        ReferenceCorpus.load(tmp_path / "ref", dim=384)


def test_load_detects_corruption(tmp_path, vectors):
    ReferenceCorpus().fit(vectors).save(tmp_path / "ref")
    np.save(tmp_path / "ref" / "radii.npy", np.zeros(3))
    with pytest.raises(CorruptReferenceError, match="disagree"):
        ReferenceCorpus.load(tmp_path / "ref")
    with pytest.raises(CorruptReferenceError, match=r"meta\.json missing"):
        ReferenceCorpus.load(tmp_path / "nothing-here")


def test_save_refuses_to_overwrite_foreign_folder(tmp_path, vectors):
    (tmp_path / "mine").mkdir()
    with pytest.raises(InvalidInputError, match="not written by collapse-guard"):
        ReferenceCorpus().fit(vectors).save(tmp_path / "mine")


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (np.zeros((0, 8)), EmptyCorpusError, "empty"),
        (np.zeros(8), InvalidInputError, "2-D"),
        (np.full((20, 4), np.nan), InvalidInputError, "NaN"),
        (np.ones((5, 4)), InsufficientDataError, "at least 7"),
        ([["a", "b"], ["c", "d"]], InvalidInputError, "numeric"),
    ],
)
def test_fit_bad_input(bad, error, message):
    with pytest.raises(error, match=message):
        ReferenceCorpus().fit(bad)


def test_misuse_is_explained(vectors):
    with pytest.raises(NotFittedError, match="call fit"):
        _ = ReferenceCorpus().radii_
    ref = ReferenceCorpus().fit(vectors)
    with pytest.raises(DimensionMismatchError, match="dimension 8 but the reference has 16"):
        ref.append(np.ones((10, 8)))
    with pytest.raises(InvalidInputError, match="append without texts"):
        ref.append(vectors[:10], texts=["x"] * 10)
    with pytest.raises(InvalidInputError, match="tail_quantile"):
        ReferenceCorpus(tail_quantile=1.5)
