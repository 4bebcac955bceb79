"""The audit core on real BBC text, a real SQLite store and the real embedding model (cached)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest

from detectors.embedding import Embedder, EmbeddingResult
from detectors.errors import EmptyCorpusError
from detectors.results import Estimate
from service.audit import (
    ForecastVerdict,
    build_reference,
    execute_audit,
    forecast_verdict,
    more_seeds,
    run_audit,
)
from service.forecast_cache import human_run
from service.policy import Policy, Reason, Verdict
from service.schemas import TopUpSearch
from service.settings import Settings
from service.store import ConflictError, NotFoundError, Store
from simulations.forecast import Forecast, Plan
from simulations.models.embedding import ProjectedReference

pytestmark = pytest.mark.slow
PLAN = Plan(generations=3, samples=200, seeds=4)


class CachedEmbedder:
    """The real model's vectors through the test cache (same API as `Embedder.embed`)."""

    model_name = "all-MiniLM-L6-v2"

    def __init__(self, embed_cached):
        self._embed = embed_cached

    def embed(self, texts, *, progress=None):
        vectors = self._embed(list(texts))
        if progress is not None:
            progress(len(texts), len(texts))
        return EmbeddingResult(
            vectors=vectors,
            n_documents=len(texts),
            n_long=0,
            n_windows=len(texts),
            long_documents="truncate",
            model=self.model_name,
        )


@pytest.fixture(scope="module")
def corpus(bbc_sample):
    return bbc_sample[:700], bbc_sample[700:1100]


@pytest.fixture(scope="module")
def audit_env(tmp_path_factory, corpus, embed_cached):
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), audit_size=300)
    store = Store(settings)
    embedder = cast(Embedder, CachedEmbedder(embed_cached))  # duck-typed: embed, model_name
    info = build_reference(store, "bbc", corpus[0], embedder=embedder, settings=settings)
    yield settings, store, embedder, info
    store.close()


def test_reference_is_stored_and_survives_a_restart(audit_env, corpus):
    settings, store, _, info = audit_env
    assert info.size == 700 and info.n_holdout == 140 and info.model == "all-MiniLM-L6-v2"
    with pytest.raises(ConflictError, match="exists"):
        store.create_reference("bbc", ["x"], np.zeros((1, 384), np.float32), None)
    reopened = Store(settings)
    try:
        assert [r.name for r in reopened.list_references()] == ["bbc"]
        assert reopened.reference_texts("bbc") == corpus[0]
        assert reopened.reference_vectors("bbc").shape == (700, 384)
        _, ref = reopened.load_reference("bbc")
        assert len(ref) == 700
    finally:
        reopened.close()
    with pytest.raises(NotFoundError, match="no reference named 'nope'"):
        store.reference_info("nope")


@pytest.fixture(scope="module")
def by_radius(audit_env, corpus, embed_cached):
    """The 400 unseen articles, nearest the reference's dense core first: a prefix is a
    candidate with the reference's tails dropped."""
    store = audit_env[1]
    pool = corpus[1]
    _, reference = store.load_reference("bbc")
    radius = reference.neighbours(embed_cached(pool))[0][:, -1]
    return [pool[i] for i in np.argsort(radius)]


def test_fresh_articles_beat_a_tails_dropped_candidate(audit_env, corpus, by_radius):
    settings, store, embedder, _ = audit_env
    pool = corpus[1]
    fresh = execute_audit(
        store, "bbc", iter(pool[:200]), embedder=embedder, settings=settings, plan=PLAN
    )
    core = execute_audit(
        store,
        "bbc",
        by_radius[:200],
        embedder=embedder,
        settings=settings,
        plan=PLAN,
        policy=Policy(min_relative_tail_coverage=1.2),
    )
    a, b = fresh.result, core.result
    assert a.sample_size == b.sample_size == 140  # matched to the held-out part
    assert b.tail_coverage.ratio < a.tail_coverage.ratio
    assert b.forecast.final().mean < a.forecast.final().mean
    # An unreachable target (1.2 x human) cannot be met by any allowed top-up: reject, with
    # the numbers behind it.
    assert b.verdict.decision == "reject"
    assert {r.code for r in b.verdict.reasons} >= {"forecast-tail-coverage", "top-up-insufficient"}
    assert b.top_up is not None and not b.top_up.feasible
    # Shown, not only missed on the lower bound: even the maximum's interval stays below 1.2.
    reached = b.top_up.achieved_interval
    assert reached is not None and reached.point == b.top_up.achieved_relative
    assert reached.high < 1.2
    assert store.get_audit(b.id) == b  # persisted as returned


def test_a_top_up_within_noise_is_forecast_again_with_more_seeds(audit_env, by_radius):
    """A target inside the largest top-up's interval (its lower bound misses the target, its
    upper end reaches it): at the plan's 4 seeds the verdict is `top-up-within-noise`. With
    `edge_seeds` the audit runs the forecast stage again with that many, records the
    plan it used and says why, and decides as the stage does at that plan."""
    settings, store, embedder, info = audit_env
    # The core 100: the forecast alone reads about 0.67 x human (interval 0.51-0.83), the top-up
    # at max_top_up_fraction about 0.92 (0.77-1.07), so a target between them exists.
    core_texts = by_radius[:100]

    def audit(policy: Policy, seeds: int):
        return execute_audit(
            store,
            "bbc",
            core_texts,
            embedder=embedder,
            settings=settings.model_copy(update={"edge_seeds": seeds}),
            plan=PLAN,
            policy=policy,
        ).result

    probe = audit(Policy(min_relative_tail_coverage=1.2), 0)  # the largest top-up's interval
    assert probe.top_up is not None and probe.top_up.achieved_interval is not None
    reached = probe.top_up.achieved_interval
    target = (reached.point + reached.high) / 2
    assert probe.forecast.relative_final_estimate().high < target  # the forecast alone is short
    policy = Policy(min_relative_tail_coverage=target)

    noisy = audit(policy, 0)
    assert noisy.verdict.decision == "inconclusive"
    assert noisy.verdict.reasons[-1].code == "top-up-within-noise"
    assert noisy.plan == PLAN and not any("forecast again" in n for n in noisy.notes)
    judged = ForecastVerdict(noisy.forecast, noisy.top_up, None, noisy.verdict)
    assert more_seeds(judged, PLAN, policy, 4) is None  # the plan already has that many

    again = audit(policy, 16)
    more = Plan(generations=PLAN.generations, samples=PLAN.samples, seeds=16)
    assert more_seeds(judged, PLAN, policy, 16) == more
    assert again.plan == more and again.forecast.plan == more
    assert f"target at {PLAN.seeds} seeds: forecast again with 16" in " ".join(again.notes)
    _, reference = store.load_reference("bbc")
    projected = ProjectedReference.build(reference, seed=settings.random_state)
    stage = forecast_verdict(
        reference,
        embedder.embed(core_texts).vectors,
        plan=more,
        policy=policy,
        synthetic=again.synthetic_fraction,
        n_documents=len(core_texts),
        random_state=settings.random_state,
        projected=projected,
        human=human_run(reference, info, more, settings, projected),
        processes=settings.forecast_processes,
    )
    assert again.verdict == stage.verdict and again.top_up == stage.top_up
    assert again.forecast.trajectories == stage.forecast.trajectories
    assert store.get_audit(again.id) == again


def test_more_seeds_only_at_the_edge_of_the_largest_top_up():
    """Forecast again when the verdict rests on max_top_up_fraction's forecast within two of its
    half-widths of the target (half-width 0.04 here, target 0.9): top-up, within noise or
    reject alike; not for a smaller top-up, a shortfall far from the target, a verdict the
    forecast did not reach or a domain in doubt."""
    policy = Policy()  # target 0.9, max_top_up_fraction 0.5
    plan = Plan(generations=2, samples=60, seeds=8)

    def stage(point, beta=0.5, codes=("forecast-tail-coverage",), decision="reject"):
        reached = Estimate(point=point, low=point - 0.04, high=point + 0.04, level=0.9, method="t")
        top_up = TopUpSearch(
            beta=beta,
            documents_per_generation=30,
            feasible=point - 0.04 >= 0.9,
            achieved_relative=point,
            target=0.9,
            achieved_interval=reached,
        )
        reasons = tuple(Reason(code=c, message=c) for c in codes)
        verdict = Verdict(decision=decision, reasons=reasons)
        return ForecastVerdict(cast(Forecast, None), top_up, None, verdict)

    more = Plan(generations=2, samples=60, seeds=32)
    for point in (0.83, 0.86, 0.9, 0.95, 0.97):  # |point - 0.9| < 0.08
        assert more_seeds(stage(point), plan, policy, 32) == more
        assert more_seeds(stage(point), plan, policy, 8) is None  # the plan has as many
        assert more_seeds(stage(point), plan, policy, 0) is None
    for point in (0.7, 0.81, 0.99, 1.1):
        assert more_seeds(stage(point), plan, policy, 32) is None
    assert more_seeds(stage(0.93, beta=0.375), plan, policy, 32) is None
    doubt = ("forecast-tail-coverage", "forecast-out-of-domain")
    assert more_seeds(stage(0.88, codes=doubt, decision="inconclusive"), plan, policy, 32) is None
    early = ForecastVerdict(cast(Forecast, None), None, None, Verdict(decision="keep", reasons=()))
    assert more_seeds(early, plan, policy, 32) is None


def test_large_input_is_sampled_and_the_sample_size_stated(audit_env, corpus):
    settings, store, embedder, _ = audit_env
    result = run_audit(
        store, "bbc", (t for t in corpus[1]), embedder=embedder, settings=settings, plan=PLAN
    )
    assert result.corpus_size == 400
    assert any("sample of 300 of 400" in n for n in result.notes)
    assert result.verdict.decision in ("keep", "top-up", "reject")
    assert result.verdict.reasons and all(r.message for r in result.verdict.reasons)


def test_the_forecasts_human_start_is_kept_per_reference_version(audit_env, corpus, monkeypatch):
    """An audit keeps its plan's human start; a new process reads it instead of simulating
    again, with the same forecast as computing it afresh; a damaged file is computed again."""
    from service import forecast_cache
    from simulations.forecast import forecast, human_start
    from simulations.models.embedding import ProjectedReference

    settings, store, embedder, info = audit_env
    texts = corpus[1][:150]
    first = execute_audit(store, "bbc", texts, embedder=embedder, settings=settings, plan=PLAN)
    mine = forecast_cache._path(info, PLAN, settings)
    assert mine.is_file()

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated the human start although the data directory keeps it")

    monkeypatch.setattr(forecast_cache, "human_start", no_simulation)
    again = execute_audit(store, "bbc", texts, embedder=embedder, settings=settings, plan=PLAN)
    assert again.result.forecast.human == first.result.forecast.human
    assert again.result.forecast.trajectories == first.result.forecast.trajectories
    # ... and it is the forecast computed from scratch, human start included.
    _, reference = store.load_reference("bbc")
    seed = settings.random_state
    fresh = forecast(reference, embedder.embed(texts).vectors, PLAN, random_state=seed)
    assert again.result.forecast.human == fresh.human
    assert again.result.forecast.trajectories == fresh.trajectories

    mine.write_text("{not json")
    monkeypatch.setattr(forecast_cache, "human_start", human_start)
    projected = ProjectedReference.build(reference, seed=seed)
    assert forecast_cache.human_run(reference, info, PLAN, settings, projected) == fresh.human
    assert json.loads(mine.read_text()).keys() == fresh.human.keys()


def test_bad_input_is_explained_and_nothing_is_lost(audit_env):
    settings, store, embedder, _ = audit_env
    with pytest.raises(EmptyCorpusError, match="empty"):
        run_audit(store, "bbc", [], embedder=embedder, settings=settings, plan=PLAN)
    with pytest.raises(NotFoundError):
        run_audit(store, "missing", ["some text"], embedder=embedder, settings=settings)
    assert [r.name for r in store.list_references()] == ["bbc"]


def test_orphan_files_of_an_interrupted_ingest_are_removed(tmp_path):
    settings = Settings(data_dir=tmp_path)
    Store(settings).close()
    refs = tmp_path / "references"
    (refs / "abc123.texts.jsonl").write_text('"half"\n')
    (refs / ".abc123.v-0001").mkdir()
    Store(settings).close()
    assert not (refs / "abc123.texts.jsonl").exists()
    assert not (refs / ".abc123.v-0001").exists()


@pytest.fixture(scope="module")
def synthetic_env(tmp_path_factory, corpus, embed_cached):
    """A store whose estimator learns the signature from half of the SmolLM2 continuations; the
    other half (never seen in fitting) is candidate text."""
    import json

    from detectors.synthetic.data import smollm2_continuations

    rows = [r for r in smollm2_continuations() if r["stratum"].startswith("bbc")]
    examples = tmp_path_factory.mktemp("examples") / "twins.jsonl"
    examples.write_text("".join(json.dumps(r) + "\n" for r in rows[:800]))
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), audit_size=300, synthetic_examples=examples
    )
    store = Store(settings)
    embedder = cast(Embedder, CachedEmbedder(embed_cached))  # duck-typed: embed, model_name
    build_reference(store, "bbc", corpus[0], embedder=embedder, settings=settings)
    yield settings, store, embedder, [r["text"] for r in rows[800:]]
    store.close()


def test_three_verdicts_on_real_text(synthetic_env, corpus):
    """Fresh human news is kept; a 40% synthetic mix needs a top-up; generated text is rejected
    on its synthetic fraction alone, each with the numbers behind it."""
    settings, store, embedder, generated = synthetic_env
    policy = Policy(max_synthetic_fraction=0.15, hard_max_synthetic_fraction=0.6)

    def audit(texts):
        return run_audit(
            store, "bbc", texts, embedder=embedder, settings=settings, plan=PLAN, policy=policy
        )

    human = audit(corpus[1][:200])
    mixed = audit(corpus[1][200:320] + generated[:80])
    machine = audit(generated[80:280])
    for result in (human, mixed, machine):
        assert result.synthetic_fraction is not None
        assert result.synthetic_fraction.estimate.mode == "reference-only"
    h, m, g = (r.synthetic_fraction.estimate for r in (human, mixed, machine))
    assert h.low <= 0.02 and h.point < m.point < g.point
    assert m.low <= 0.4 <= m.high + 0.15  # short generated text sits a little out of domain
    assert human.verdict.decision == "keep", human.verdict.reasons
    assert mixed.verdict.decision == "top-up"
    assert "synthetic-fraction" in {r.code for r in mixed.verdict.reasons}
    assert mixed.verdict.top_up_documents > 0
    assert machine.verdict.decision == "reject", (g, machine.synthetic_fraction)
    reason = next(r for r in machine.verdict.reasons if r.code == "synthetic-hard-limit")
    assert reason.value == pytest.approx(g.low) and reason.limit == 0.6


def test_the_examples_sources_reach_the_estimator(synthetic_env):
    """Rows that name their stratum let the estimator drop whole sources of another domain."""
    from service.synthetic import _estimator

    settings, store, embedder, _ = synthetic_env
    est = _estimator(store, store.reference_info("bbc"), settings, embedder)
    assert est.generic_sources is not None and len(est.generic_sources) == len(
        est.generic_synthetic or ()
    )
    assert {s.split("/")[0] for s in est.generic_sources} == {"bbc"}


def test_a_fit_is_kept_on_disk_for_the_next_process(synthetic_env, monkeypatch):
    """A new process (empty in-memory cache) reads the fit its data directory keeps instead of
    fitting again, and estimates exactly as the fitted one; a damaged file is fitted anew."""
    from collections import OrderedDict

    from service import synthetic

    settings, store, embedder, generated = synthetic_env
    info = store.reference_info("bbc")
    fitted = synthetic._estimator(store, info, settings, embedder)
    (kept,) = (settings.data_dir / "cache").glob("synthetic-fit-*.pkl")
    texts = generated[:60]
    vectors = embedder.embed(texts).vectors
    refit = synthetic._fit_estimator

    def no_refit(*args, **kwargs):
        raise AssertionError("fitted again although the data directory keeps the fit")

    monkeypatch.setattr(synthetic, "_fitted", OrderedDict())
    monkeypatch.setattr(synthetic, "_fit_estimator", no_refit)
    loaded = synthetic._estimator(store, info, settings, embedder)
    assert loaded is not fitted and loaded.embed is None
    assert loaded.estimate(texts, vectors) == fitted.estimate(texts, vectors)

    kept.write_bytes(b"not a pickle")
    calls = []
    monkeypatch.setattr(synthetic, "_fitted", OrderedDict())
    monkeypatch.setattr(synthetic, "_fit_estimator", lambda *a: calls.append(1) or refit(*a))
    again = synthetic._estimator(store, info, settings, embedder)
    assert calls == [1] and again.estimate(texts, vectors) == fitted.estimate(texts, vectors)


def test_unreadable_synthetic_examples_file_is_explained(tmp_path):
    from detectors.errors import InvalidInputError
    from detectors.synthetic.data import smollm2_continuations

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "no text field"}\n')
    with pytest.raises(InvalidInputError, match="line 2 has no string 'text' field"):
        smollm2_continuations(bad)


class HashEmbedder:
    """Deterministic random unit vectors per text: no model (the audit's plumbing is tested)."""

    model_name = "all-MiniLM-L6-v2"

    def embed(self, texts, *, progress=None):
        import hashlib

        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=384)
            rows.append(v / np.linalg.norm(v))
        return EmbeddingResult(
            vectors=np.asarray(rows, dtype=np.float32),
            n_documents=len(texts),
            n_long=0,
            n_windows=len(texts),
            long_documents="truncate",
            model=self.model_name,
        )


def test_early_verdict_skips_the_top_up_search_but_not_the_forecast(tmp_path, monkeypatch):
    """The synthetic fraction and the domain reach the verdict; when they decide it alone, the
    top-up search is not run (the forecast still is: the result carries it)."""
    import service.audit as audit_module
    from service.schemas import SyntheticFraction

    def est(point, low, high):
        return Estimate(point=point, low=low, high=high, level=0.9, method="test")

    answer: dict[str, SyntheticFraction | None] = {}
    searches: list[float] = []

    def fake_estimate(store, info, texts, vectors, *, settings, embedder, **kwargs):
        fraction = answer["synthetic"]
        return fraction, None if fraction is not None else "no synthetic-fraction estimate: test"

    def fake_search(reference, vectors, plan, *, target, max_beta, **kwargs):
        searches.append(target)
        # Far below the target, interval and all: a shown shortfall.
        interval = Estimate(point=0.5, low=0.45, high=0.55, level=0.9, method="test")
        return SimpleNamespace(
            forecast=SimpleNamespace(relative_final_estimate=lambda: interval),
            beta=max_beta,
            documents_per_generation=30,
            feasible=False,
            achieved_relative=0.5,
            target=target,
        )

    monkeypatch.setattr(audit_module, "estimate_synthetic", fake_estimate)
    monkeypatch.setattr(audit_module, "min_top_up", fake_search)
    settings = Settings(data_dir=tmp_path, audit_size=60)
    store = Store(settings)
    embedder = cast(Embedder, HashEmbedder())
    try:
        build_reference(
            store,
            "ref",
            [f"reference {i}" for i in range(240)],
            embedder=embedder,
            settings=settings,
        )
        # An unreachable tail-coverage target: the forecast alone would always need the search.
        policy = Policy(min_relative_tail_coverage=1.5)
        plan = Plan(generations=2, samples=60, seeds=2)

        def audit(synthetic):
            answer["synthetic"] = synthetic
            texts = [f"candidate {i}" for i in range(60)]
            return execute_audit(
                store, "ref", texts, embedder=embedder, settings=settings, policy=policy, plan=plan
            ).result

        outside = audit(
            SyntheticFraction(
                estimate=est(0.1, 0.05, 0.2), out_of_domain_fraction=est(0.62, 0.55, 0.7)
            )
        )
        assert outside.verdict.decision == "inconclusive"
        assert [r.code for r in outside.verdict.reasons] == ["out-of-domain"]
        assert outside.top_up is None and outside.forecast is not None and not searches

        unknown = audit(None)
        assert [r.code for r in unknown.verdict.reasons] == ["no-synthetic-estimate"]
        assert unknown.top_up is None and not searches

        # In domain and identified: the forecast decides, after the search.
        judged = audit(
            SyntheticFraction(
                estimate=est(0.1, 0.05, 0.2), out_of_domain_fraction=est(0.1, 0.05, 0.2)
            )
        )
        assert searches == [1.5]
        assert judged.verdict.decision == "reject" and judged.top_up is not None
        assert {r.code for r in judged.verdict.reasons} >= {"top-up-insufficient"}
    finally:
        store.close()
