"""The audit's synthetic-fraction stage: fit the estimator on a stored reference and run it.

Fitting reads the reference's texts and vectors and fits an n-gram model and a classifier (seconds
for thousands of documents), so fitted estimators are kept per reference version for the life
of the process: repeated audits against one reference pay for it once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from detectors.errors import InsufficientDataError
from detectors.synthetic import SyntheticFractionEstimator
from service.schemas import ReferenceInfo, SyntheticFraction

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
    texts = store.reference_texts(info.id)
    vectors = store.reference_vectors(info.id)
    # A reference of millions of documents says no more about the signature than a uniform
    # sample of audit_size of them, and fitting on the sample keeps an audit's cost bounded.
    if len(texts) > settings.audit_size:
        keep = np.sort(
            np.random.default_rng(settings.random_state).choice(
                len(texts), settings.audit_size, replace=False
            )
        )
        texts, vectors = [texts[i] for i in keep], vectors[keep]
    from detectors.synthetic.data import smollm2_continuations
    from detectors.synthetic.examples import texts_and_sources

    rows, sample_vectors = embedded_examples(
        smollm2_continuations(settings.synthetic_examples), embedder, settings
    )
    # Rows that all name their source (the bundled ones do: BBC category or Wikipedia) let the
    # estimator leave out whole sources of another domain than the reference's.
    examples, sources = texts_and_sources(rows)
    estimator = SyntheticFractionEstimator(
        generic_synthetic=examples,
        generic_sources=sources,
        embed=lambda docs: embedder.embed(docs).vectors,
        random_state=settings.random_state,
    ).fit(texts, vectors, example_vectors=sample_vectors)
    _fitted[key] = estimator
    if len(_fitted) > _CACHE_SIZE:
        _fitted.popitem(last=False)
    return estimator


def estimate_synthetic(
    store: Store,
    info: ReferenceInfo,
    texts: list[str],
    vectors: np.ndarray,
    *,
    settings: Settings,
    embedder: Embedder,
) -> tuple[SyntheticFraction | None, str | None]:
    """The estimate in the audit's shape, or None and the reason it cannot be made."""
    try:
        report = _estimator(store, info, settings, embedder).estimate(texts, vectors)
    except InsufficientDataError as exc:
        return None, f"no synthetic-fraction estimate: {exc}"
    return SyntheticFraction(
        estimate=report.synthetic,
        out_of_domain_fraction=report.out_of_domain,
        out_of_domain=report.flagged_out_of_domain,
        features=report.features,
        notes=report.notes,
    ), None
