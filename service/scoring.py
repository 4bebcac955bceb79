"""Scores of text under the synthetic-fraction scorer, computed once and kept: the scorer itself
(one per process and configuration), and the score profiles of a reference's sample, of the
generated examples and of each generator family's examples.

A reference's profiles live in its data directory; the examples' and the families' depend on
nothing there, so they are kept beside the scorer's model copy (`model_cache_dir`) and every data
directory, service container or CLI run on the machine shares them. Every key holds the scorer's
`cache_key` (its models' identities, version and settings): a changed scorer never reads
another's scores.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detectors.synthetic.binoculars import BinocularsScorer, RatioProfiles
from detectors.synthetic.curvature import CurvatureProfiles, CurvatureScorer
from detectors.synthetic.models import resolve_source
from service.schemas import ReferenceInfo

if TYPE_CHECKING:
    from service.settings import Settings
    from service.store import Store

Scorer = CurvatureScorer | BinocularsScorer
Profiles = CurvatureProfiles | RatioProfiles
_scorers: dict[tuple, Scorer] = {}


def curvature_scorer(settings: Settings) -> Scorer:
    """One scorer per process and configuration (its models load once, lazily): the curvature
    of `settings.scorer`, or with `synthetic_method="binoculars"` the Binoculars score of it and
    `binoculars_performer`."""
    binoculars = settings.synthetic_method == "binoculars"
    key = (
        settings.scorer,
        settings.binoculars_performer if binoculars else None,
        settings.scorer_device,
        settings.curvature_tokens,
        settings.embedding_precision,
        settings.model_cache_dir,
    )
    if key not in _scorers:
        source = resolve_source(settings.scorer, settings.model_cache_dir)
        tokens, precision = settings.curvature_tokens, settings.embedding_precision
        device, cache = settings.scorer_device, settings.model_cache_dir
        scorer: Scorer
        if binoculars:
            assert settings.binoculars_performer is not None  # Settings checks it
            performer = resolve_source(settings.binoculars_performer, cache)
            scorer = BinocularsScorer(
                observer=source,
                performer=performer,
                max_tokens=tokens,
                precision=precision,
                device=device,
                cache_dir=cache,
            )
        else:
            scorer = CurvatureScorer(
                source=source,
                max_tokens=tokens,
                precision=precision,
                device=device,
                cache_dir=cache,
            )
        _scorers[key] = scorer
    return _scorers[key]


def reference_profiles(
    store: Store,
    info: ReferenceInfo,
    settings: Settings,
    scorer: Scorer,
    progress: Callable[[int, int], None] | None = None,
) -> Profiles:
    """Score profiles of a seeded sample of the reference's documents, computed once per
    reference version and scorer (at `reference build`: `score_reference`), then read from the
    data directory's cache."""
    n = min(info.size, settings.curvature_reference_documents)
    parts = (
        info.id,
        info.created,
        info.size,
        *scorer.cache_key,
        n,
        settings.random_state,
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:24]
    path = settings.data_dir / "cache" / f"curvature-{digest}.npz"

    def compute() -> Profiles:
        rng = np.random.default_rng([settings.random_state, 7])
        pick = np.sort(rng.choice(info.size, n, False))
        texts, _ = store.reference_documents(info.id, pick)
        return scorer.profiles(texts, progress)

    return _cached_profiles(path, compute)


# Generated examples scored once per machine: 150 pin the generated side's shape (its median to
# about +-0.15) at ~20-40 s of scoring.
EXAMPLES_SCORED = 150


def example_profiles(settings: Settings, scorer: Scorer) -> Profiles:
    """Score profiles of a seeded sample of the generated examples (the bundled SmolLM2
    continuations, or the user's `synthetic_examples`). They depend on nothing in the data
    directory, so they are kept beside the scorer's model copy (`model_cache_dir`) and every
    data directory, service container or CLI run on the machine shares them; without a model
    cache, in the data directory."""
    from detectors.synthetic.data import smollm2_continuations

    rows = smollm2_continuations(settings.synthetic_examples)
    rng = np.random.default_rng([settings.random_state, 9])
    pick = np.sort(rng.choice(len(rows), min(EXAMPLES_SCORED, len(rows)), replace=False))
    texts = [rows[i]["text"] for i in pick]
    parts = (*scorer.cache_key, *texts)
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:24]
    folder = settings.model_cache_dir or settings.data_dir / "cache"
    return _cached_profiles(
        folder / f"examples-curvature-{digest}.npz", lambda: scorer.profiles(texts)
    )


_PROFILE_KINDS: dict[str, type[CurvatureProfiles] | type[RatioProfiles]] = {
    "curvature": CurvatureProfiles,
    "ratio": RatioProfiles,
}


# Examples scored per generator family for the what-it-can-see report: enough to place the
# family's score distribution (its median to about +-0.2), at ~20 s a family for SmolLM2.
FAMILY_SCORED = 60
YOUR_EXAMPLES = "your examples"


def family_profiles(settings: Settings, scorer: Scorer) -> dict[str, Profiles]:
    """Score profiles of each generator family the audit reports on: with the bundled examples,
    SmolLM2 (the mixture's own examples) and each chat-model family of the bundled chat text
    (a seeded sample across its genres); with the user's examples, each family their rows name
    (`family`), else all of them as one. Kept beside the model copy, like `example_profiles`."""
    from detectors.synthetic.data import SMOLLM2_FAMILY, chat_examples, smollm2_continuations

    if settings.synthetic_examples is None:
        families = {SMOLLM2_FAMILY: example_profiles(settings, scorer)}
        rows = chat_examples()
    else:
        rows = smollm2_continuations(settings.synthetic_examples)
        if not all(isinstance(r.get("family"), str) for r in rows):
            return {YOUR_EXAMPLES: example_profiles(settings, scorer)}
        families = {}
    folder = settings.model_cache_dir or settings.data_dir / "cache"
    for i, family in enumerate(sorted({str(r["family"]) for r in rows})):
        texts = [r["text"] for r in rows if r["family"] == family]
        rng = np.random.default_rng([settings.random_state, 17, i])
        pick = np.sort(rng.choice(len(texts), min(FAMILY_SCORED, len(texts)), replace=False))
        sample = [texts[j] for j in pick]
        parts = (*scorer.cache_key, *sample)
        digest = hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:24]
        families[family] = _cached_profiles(
            folder / f"family-curvature-{digest}.npz", functools.partial(scorer.profiles, sample)
        )
    return families


def _cached_profiles(path: Path, compute: Callable[[], Profiles]) -> Profiles:
    if path.is_file():
        try:
            with np.load(path) as z:
                stored = _PROFILE_KINDS[str(z["kind"]) if "kind" in z else "curvature"]
                return stored(z["num"], z["var"], z["positions"])
        except Exception:  # a damaged file is a cache miss: scored again and replaced
            pass
    profiles = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Per process: two processes scoring at once (shared cache) never write one temporary file.
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    kind = next(k for k, v in _PROFILE_KINDS.items() if isinstance(profiles, v))
    np.savez(tmp, num=profiles.num, var=profiles.var, positions=profiles.positions, kind=kind)
    tmp.replace(path)  # atomic: a crash leaves no half-written cache entry
    return profiles
