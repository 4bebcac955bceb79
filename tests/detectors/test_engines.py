"""The Ray engine against the local one: real model, real BBC text, a real local Ray (2 CPUs).

Ray runs as a small local cluster started once for the module (`num_cpus=2`): the same code
path as a cluster named by RAY_ADDRESS, with the actors as separate worker processes.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from detectors.embedding import Embedder
from detectors.engines import INSTALL_HINT, RayEmbedder, get_engine, ray_neighbours
from detectors.errors import InvalidInputError
from detectors.ray_search import RaySearch
from detectors.reference import ReferenceCorpus
from service.commands.backend import LocalBackend, parse_plan

pytestmark = pytest.mark.slow

N_DOCS = 64  # four Ray batches of 16 over two actors: reassembly order is really exercised


@pytest.fixture(scope="module")
def ray_local():
    import ray

    assert not ray.is_initialized()
    ray.init(
        address="local",  # a fresh Ray, even if `ray start` left a cluster on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=256 * 2**20,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def texts(bbc_docs) -> list[str]:
    return [d.text for d in bbc_docs[:N_DOCS]]


def assert_same_vectors(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    assert float(np.abs(got - want).max()) < 1e-5
    cosine = (got * want).sum(axis=1)
    assert float(cosine.min()) > 0.99999
    # Same order: each row's nearest local vector is its own row (BBC articles are distinct).
    np.testing.assert_array_equal(np.argmax(got @ want.T, axis=1), np.arange(len(want)))


def test_ray_embedding_equals_local(ray_local, embedder, texts):
    want = embedder.embed(texts)
    calls: list[tuple[int, int]] = []
    engine = get_engine("ray", actors=2, batch=16)
    assert isinstance(engine, RayEmbedder) and engine.actors == 2
    got = engine.embed(texts, progress=lambda done, total: calls.append((done, total)))
    assert_same_vectors(got.vectors, want.vectors)
    assert 0 < want.n_long < N_DOCS  # most BBC articles pass 256 tokens, not all
    assert (got.n_long, got.n_windows, got.n_documents) == (want.n_long, N_DOCS, N_DOCS)
    assert (got.model, got.long_documents) == (want.model, "truncate")
    assert len(calls) >= 2 and calls[-1] == (N_DOCS, N_DOCS)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert {t for _, t in calls} == {N_DOCS}
    # The actors live on: another engine of the same configuration, and another call, use the
    # same ones (their model stays loaded), and between them they have embedded every call.
    again = get_engine("ray", actors=2, batch=16)
    assert again.pool() is engine.pool() and len(engine.pool()) == 2
    assert_same_vectors(again.embed(texts).vectors, want.vectors)
    counts = ray_local.get([actor.count.remote() for actor in engine.pool()])
    assert sum(counts) == 2 * N_DOCS


def test_ray_chunked_long_documents_equal_local(ray_local, texts):
    docs = sorted(texts, key=len)[-16:]  # the longest articles: several windows each
    want = Embedder(long_documents="chunk").embed(docs)
    got = RayEmbedder(actors=2, batch=8, long_documents="chunk").embed(docs)
    assert_same_vectors(got.vectors, want.vectors)
    assert want.n_windows > want.n_long == len(docs)
    assert (got.n_long, got.n_windows, got.long_documents) == (want.n_long, want.n_windows, "chunk")


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_ray_neighbours_equal_local_faiss_search(ray_local, bbc_sample_vectors, kind):
    reference = ReferenceCorpus(k=5, index=kind, holdout_fraction=0.0).fit(bbc_sample_vectors[:200])
    queries = bbc_sample_vectors[200:]  # 900 real articles

    def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]):
        np.testing.assert_array_equal(got[0], want[0])  # float64 distances, bit for bit
        # Ids too: the BBC corpus has duplicate articles, at identical distances from every
        # query; FAISS orders such ties by its thread count, `knn` puts them in id order.
        np.testing.assert_array_equal(got[1], want[1])

    # Default block: for k=50 knn searches 840 queries at a time, so two tasks on two actors.
    got = ray_neighbours(reference, queries, 50, actors=2)
    assert got[0].shape == got[1].shape == (len(queries), 50) and (np.diff(got[0]) >= 0).all()
    assert_same(got, reference.neighbours(queries, 50))
    assert_same(ray_neighbours(reference, queries, 7, block=128), reference.neighbours(queries, 7))
    # The reference's own k by default; a bare index with its vectors, or rebuilding them.
    few = queries[:50]
    assert_same(ray_neighbours(reference, few), reference.neighbours(few))
    want = reference.neighbours(few, 3)
    assert_same(ray_neighbours(reference.index_, few, 3, data=reference.vectors_), want)
    assert_same(ray_neighbours(reference.index_, few, 3), want)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_coverage_scored_through_ray_equals_local(ray_local, bbc_sample_vectors, kind):
    """Every k-NN search of a coverage report on Ray actors: the same report, figure for figure
    (the float64 boundary checks stay in the driver)."""
    from detectors.coverage import coverage_report

    reference = ReferenceCorpus(k=5, index=kind).fit(bbc_sample_vectors[:700])
    candidate = bbc_sample_vectors[700:900]
    search = RaySearch(actors=2)
    before = search.blocks_searched()
    got = coverage_report(reference, candidate, random_state=3, search=search)
    assert got == coverage_report(reference, candidate, random_state=3)
    assert search.blocks_searched() > before  # it did run there
    with pytest.raises(InvalidInputError, match="actors must be at least 1"):
        RaySearch(actors=0)


def test_unknown_engine_and_bad_arguments(ray_local, bbc_sample_vectors):
    with pytest.raises(InvalidInputError, match="unknown engine 'spark': choose local or ray"):
        get_engine("spark")
    with pytest.raises(InvalidInputError, match="at least 1"):
        RayEmbedder(actors=0)
    with pytest.raises(InvalidInputError, match="dimension"):
        ray_neighbours(
            ReferenceCorpus(holdout_fraction=0.0).fit(bbc_sample_vectors[:50]),
            bbc_sample_vectors[:5, :10],
        )


def test_without_ray_the_engine_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    for call in (lambda: get_engine("ray"), lambda: ray_neighbours(None, np.ones((1, 2)), 1)):
        with pytest.raises(InvalidInputError) as info:
            call()
        message = str(info.value)
        assert INSTALL_HINT in message and "\n" not in message
    # Importing the module needs no Ray at all.
    code = "import sys; sys.modules['ray'] = None; import detectors.engines; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def assert_close(got: Any, want: Any, where: str = "result") -> None:
    """Same structure, same strings, numbers equal within float tolerance."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and math.isnan(want):  # undefined figures stay undefined
        assert isinstance(got, float) and math.isnan(got), (where, got)
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6), (where, got, want)
    else:
        assert got == want, (where, got, want)


def test_audit_with_the_ray_engine_equals_local(ray_local, bbc_docs, tmp_path, monkeypatch):
    """What `collapse-guard audit --engine ray|local` runs, in-process (the CLI's LocalBackend)."""
    from service import synthetic

    monkeypatch.setenv("COLLAPSE_GUARD_DATA_DIR", str(tmp_path / "data"))
    reference = [d.text for d in bbc_docs[200:300]]
    candidate = [d.text for d in bbc_docs[300:400]]
    plan = parse_plan("generations=2,samples=200,seeds=2")
    results = {}
    for engine in ("local", "ray"):
        # Each engine builds its own reference (`reference build --engine`) and so fits its own
        # synthetic-fraction estimator, embedding through the engine.
        monkeypatch.setattr(synthetic, "_fitted", OrderedDict())
        backend = LocalBackend(engine=engine)
        calls: list[tuple[int, int]] = []

        def record(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
            calls.append((done, total))

        try:
            backend.build_reference(engine, reference, progress=lambda done, total: None)
            outcome = backend.audit(
                engine,
                candidate,
                policy=None,
                plan=plan,
                progress=record,
                keep_vectors=False,
            )
            if engine == "ray":
                # The next audit finds the reference loaded and its index already on the actors.
                _, loaded = backend.store.load_reference("ray")
                search = backend.embedder.neighbour_search()
                assert search is backend.embedder.neighbour_search()
                assert (id(loaded.index_), loaded.index_.ntotal) in search._deployed
        finally:
            backend.close()
        assert isinstance(backend.embedder, RayEmbedder if engine == "ray" else Embedder)
        assert calls[-1] == (100, 100)
        results[engine] = outcome.result.model_dump(mode="json")
    for result in results.values():
        for volatile in ("id", "created", "reference"):
            result.pop(volatile)
        result["forecast"].pop("elapsed_seconds")
    # The Ray audit's k-NN scoring ran on the search actors (the same pool for the process).
    assert RaySearch().blocks_searched() > 0
    local, ray = results["local"], results["ray"]
    assert ray["corpus_size"] == 100 and ray["synthetic_fraction"] is not None
    assert "86 documents were longer than the model window" in " ".join(ray["notes"])
    assert_close(ray, local)
