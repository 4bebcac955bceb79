"""The audit's synthetic-fraction stage: which share of the candidate is generated, and which
share lies outside the reference's domain.

Two detectors, each for what it sees (README, "Synthetic fraction under domain shift"):
- the **domain** (out-of-domain share) from the embedding estimator's k-NN balls: embeddings
  see the outlet and genre, which is what "does the reference represent this corpus" asks;
- the **synthetic fraction** from a language model's conditional probability curvature
  (`detectors.synthetic.curvature`), which sees the origin and hardly the outlet, on a seeded
  subsample of `curvature_documents` of the audit sample (the forward passes cost ~10x an
  embedding; the subsample's sampling error is inside the interval). With
  `synthetic_method="embedding"` the embedding signature answers instead (the earlier design:
  it reads human text of another outlet as generated).

Beside the estimate, the audit says what it could have missed: per generator family among the
examples (SmolLM2 and the bundled chat models, or the user's), the smallest share of that
family's text it would notice nine times in ten at its own sample size
(`CurvatureFractionEstimator.detectable_share`); a family the scorer reads as human has none.

Fitting reads the reference's texts and vectors and fits an n-gram model and a classifier (seconds
for thousands of documents), so fitted estimators are kept per reference version for the life
of the process: repeated audits against one reference pay for it once. Scores are computed once
and kept (`service.scoring`).
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detectors.errors import InsufficientDataError
from detectors.results import Estimate
from detectors.synthetic import SyntheticFractionEstimator
from detectors.synthetic.curvature_fraction import CurvatureFit, CurvatureFractionEstimator
from service.schemas import FamilyVisibility, ReferenceInfo, SyntheticFraction
from service.scoring import (
    curvature_scorer,
    example_profiles,
    family_profiles,
    reference_profiles,
)

if TYPE_CHECKING:
    from detectors.embedding import Embedder
    from service.settings import Settings
    from service.store import Store

_CACHE_SIZE = 4
# Generated examples the signature is learned from, embedded once per data directory: a few
# hundred are enough (benchmarks/estimation.py) and pin down how often generated text falls
# inside the reference's domain (binomial standard error < 0.025).
EXAMPLES_EMBEDDED = 400


def embedded_examples(
    examples: Sequence[dict], embedder: Embedder, settings: Settings
) -> tuple[list[dict], np.ndarray]:
    """A seeded sample of the example rows and its embeddings (cached in the data directory)."""
    rng = np.random.default_rng(settings.random_state)
    pick = rng.choice(len(examples), min(EXAMPLES_EMBEDDED, len(examples)), replace=False)
    rows = [examples[i] for i in np.sort(pick)]
    sample = [row["text"] for row in rows]
    digest = hashlib.sha256("\0".join([embedder.model_name, *sample]).encode()).hexdigest()[:24]
    path = settings.data_dir / "cache" / f"examples-{digest}.npy"
    if path.is_file():
        return rows, np.load(path)
    vectors = embedder.embed(sample).vectors
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)  # atomic: a crash leaves no half-written cache entry
    return rows, vectors


_fitted: OrderedDict[tuple[str, str, int, int, str], SyntheticFractionEstimator] = OrderedDict()


def _estimator(
    store: Store, info: ReferenceInfo, settings: Settings, embedder: Embedder
) -> SyntheticFractionEstimator:
    key = (
        info.id,
        info.created,
        info.size,
        settings.random_state,
        str(settings.synthetic_examples),
    )
    if key in _fitted:
        _fitted.move_to_end(key)
        return _fitted[key]
    from detectors.synthetic.data import smollm2_continuations

    rows, sample_vectors = embedded_examples(
        smollm2_continuations(settings.synthetic_examples), embedder, settings
    )
    path = _fit_path(key, rows, embedder, settings)
    estimator = _load_fit(path)
    if estimator is None:
        estimator = _fit_estimator(store, info, settings, embedder, rows, sample_vectors)
        _save_fit(path, estimator)
    _fitted[key] = estimator
    if len(_fitted) > _CACHE_SIZE:
        _fitted.popitem(last=False)
    return estimator


def _fit_estimator(
    store: Store,
    info: ReferenceInfo,
    settings: Settings,
    embedder: Embedder,
    rows: list[dict],
    sample_vectors: np.ndarray,
) -> SyntheticFractionEstimator:
    # A reference of millions of documents says no more about the signature than a uniform
    # sample of audit_size of them, and fitting on the sample keeps an audit's cost bounded
    # (only the sampled documents are read).
    if info.size > settings.audit_size:
        keep = np.sort(
            np.random.default_rng(settings.random_state).choice(
                info.size, settings.audit_size, replace=False
            )
        )
        texts, vectors = store.reference_documents(info.id, keep)
    else:
        texts, vectors = store.reference_texts(info.id), store.reference_vectors(info.id)
    from detectors.synthetic.examples import texts_and_sources

    # Rows that all name their source (the bundled ones do: BBC category or Wikipedia) let the
    # estimator leave out whole sources of another domain than the reference's.
    examples, sources = texts_and_sources(rows)
    estimator = SyntheticFractionEstimator(
        generic_synthetic=examples,
        generic_sources=sources,
        embed=lambda docs: embedder.embed(docs).vectors,
        random_state=settings.random_state,
    ).fit(texts, vectors, example_vectors=sample_vectors)
    return estimator


def _fit_path(key: tuple, rows: list[dict], embedder: Embedder, settings: Settings) -> Path:
    """Where a fit is kept: keyed by the reference version, the examples, the embedding model
    and the estimator's own source code, so a changed estimator never reads an old fit."""
    parts = [repr(key), embedder.model_name, _estimator_code_digest()]
    parts += [row["text"] for row in rows]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    return settings.data_dir / "cache" / f"synthetic-fit-{digest}.pkl"


@functools.cache
def _estimator_code_digest() -> str:
    """A digest of the estimator package's source, read once per process."""
    import detectors.synthetic as package

    code = b"".join(p.read_bytes() for p in sorted(Path(package.__path__[0]).glob("*.py")))
    return hashlib.sha256(code).hexdigest()


def _load_fit(path: Path) -> SyntheticFractionEstimator | None:
    """A kept fit, or None when there is none or it cannot be read (then it is fitted again).
    Pickle is safe here: the file is one this service wrote into its own data directory."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            fit = pickle.load(f)
    except Exception:  # a truncated or incompatible file is a cache miss, not an error
        return None
    return fit if isinstance(fit, SyntheticFractionEstimator) else None


def _save_fit(path: Path, estimator: SyntheticFractionEstimator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # atomic: a crash leaves no half-written fit


def score_reference(
    store: Store,
    info: ReferenceInfo,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    *,
    embedder: Embedder | None = None,
) -> None:
    """What the curvature stage needs of a reference and of the examples, computed now (at
    `reference build`) rather than on the first audit: a few hundred forward passes, ~40 s on
    two cores; with `embedder`, also the domain test's fit (kept in the data directory, so a
    new process's first audit does not pay it). A no-op with the embedding method."""
    if settings.synthetic_method == "embedding":
        return
    scorer = curvature_scorer(settings)
    family_profiles(settings, scorer)  # the examples' too
    reference_profiles(store, info, settings, scorer, progress)
    if embedder is not None:
        _estimator(store, info, settings, embedder)


def _curvature_estimate(
    store: Store,
    info: ReferenceInfo,
    texts: list[str],
    settings: Settings,
    progress: Callable[[int, int], None] | None,
) -> tuple[CurvatureFit, int, tuple[FamilyVisibility, ...]]:
    scorer = curvature_scorer(settings)
    reference = reference_profiles(store, info, settings, scorer)
    examples = example_profiles(settings, scorer)
    n = min(len(texts), settings.curvature_documents)
    pick = np.sort(np.random.default_rng([settings.random_state, 8]).choice(len(texts), n, False))
    candidate = scorer.profiles([texts[i] for i in pick], progress)
    estimator = CurvatureFractionEstimator(random_state=settings.random_state).fit(
        reference, examples
    )
    # The user's own examples are of the generator they fear: labelled mode. The bundled ones
    # are one small model on BBC and Wikipedia openings: the generated side may move further.
    labelled = settings.synthetic_examples is not None
    fit = estimator.estimate(candidate, labelled=labelled)
    scored = candidate.positions[candidate.positions > 0]
    visibility = tuple(
        FamilyVisibility(
            family=family,
            examples=len(profiles),
            detectable_share=estimator.detectable_share(
                profiles, scored, len(scored), labelled=labelled
            ),
        )
        for family, profiles in family_profiles(settings, scorer).items()
    )
    return fit, n, visibility


def estimate_synthetic(
    store: Store,
    info: ReferenceInfo,
    texts: list[str],
    vectors: np.ndarray,
    *,
    settings: Settings,
    embedder: Embedder,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SyntheticFraction | None, str | None]:
    """The estimate in the audit's shape, or None and the reason it cannot be made. `progress`
    follows the language model's scoring."""
    try:
        report = _estimator(store, info, settings, embedder).estimate(texts, vectors)
        notes = list(report.notes)
        visibility: tuple[FamilyVisibility, ...] = ()
        if settings.synthetic_method != "embedding":
            fit, n_scored, visibility = _curvature_estimate(store, info, texts, settings, progress)
            estimate, unexplained = fit.estimate, fit.unexplained
            notes.append(
                f"synthetic fraction from {method_note(settings)} on {n_scored} of "
                f"{len(texts)} documents"
            )
            if unexplained > 0:
                notes.append(
                    f"{unexplained:.0%} of the scored documents score beyond what human text "
                    "and the generated examples explain (garbled or high-temperature text, "
                    "tables, code, another language): the interval counts them both ways"
                    + (
                        "; a share this large is a kind of text neither side describes, and how "
                        "much of it reads as human the data cannot say, so the interval reaches 1"
                        if fit.upper_unbounded
                        else ""
                    )
                )
            embedding_estimate: Estimate | None = report.synthetic
        else:
            estimate, n_scored, embedding_estimate = report.synthetic, 0, None
            unexplained = 0.0
    except InsufficientDataError as exc:
        return None, f"no synthetic-fraction estimate: {exc}"
    return SyntheticFraction(
        estimate=estimate,
        out_of_domain_fraction=report.out_of_domain,
        out_of_domain=report.flagged_out_of_domain,
        features=report.features,
        notes=tuple(notes),
        scored_documents=n_scored,
        embedding_estimate=embedding_estimate,
        unexplained_fraction=unexplained,
        visibility=visibility,
        off_topic_fraction=report.off_topic,
    ), None


def method_note(settings: Settings) -> str:
    """What the synthetic fraction was read from, for an audit's notes."""
    if settings.synthetic_method == "binoculars":
        return f"the Binoculars score of {settings.scorer} and {settings.binoculars_performer}"
    return f"{settings.scorer}'s conditional probability curvature (Fast-DetectGPT)"
