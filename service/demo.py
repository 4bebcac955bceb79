"""The bundled demo: audit three candidate corpora against a reference of real BBC News articles.

A is a fresh uniform sample of unseen articles; B keeps only the unseen articles from the dense
core of the reference (what a collapsing generator keeps when it forgets the rare topics): the
coverage report must tell them apart by tail coverage, not by precision. C is machine text
(bundled SmolLM2-135M continuations of the first words of BBC stories) and D human news of another
outlet and year (ABC, 2001): the synthetic fraction, read as the service reads it (SmolLM2-135M's
curvature against the reference and the bundled examples, reference-only mode), must call C
generated and A, B and D human; the out-of-domain share comes from the embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console

from detectors.corpora import bbc_news
from detectors.coverage import coverage_report
from detectors.embedding import Embedder
from detectors.reference import ReferenceCorpus
from detectors.results import CoverageReport, Estimate, SyntheticReport
from detectors.synthetic import SyntheticFractionEstimator
from detectors.synthetic.curvature import CurvatureProfiles, CurvatureScorer
from detectors.synthetic.curvature_fraction import CurvatureFractionEstimator
from detectors.synthetic.data import lee_news, smollm2_continuations
from service.render import coverage_table, modes_table, progress_bar, synthetic_table

N_EXAMPLES = 400  # generic generated examples the estimator learns from (as the service uses)
# Documents the language model scores (~0.25 s each on 2 cores): the reference's human side, the
# generated examples, and each candidate (a seeded subsample, as the service does).
N_SCORED_REFERENCE, N_SCORED_EXAMPLES, N_SCORED_CANDIDATE = 150, 120, 80


@dataclass(frozen=True)
class DemoResult:
    fresh: CoverageReport
    core_only: CoverageReport
    synthetic: dict[str, SyntheticReport]  # candidate label -> estimate


def run_demo(
    console: Console,
    *,
    embedder: Embedder,
    n_reference: int = 1000,
    n_pool: int = 500,
    random_state: int = 0,
    quiet: bool = False,
) -> DemoResult:
    docs = bbc_news()
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(docs))
    reference_texts = [docs[i].text for i in order[:n_reference]]
    pool_texts = [docs[i].text for i in order[n_reference : n_reference + n_pool]]

    if not quiet:
        console.print(
            f"[bold]Reference[/]: {len(reference_texts)} BBC News articles (2004-05), "
            f"25% held out as the human baseline. [bold]Candidates[/]: drawn from "
            f"{len(pool_texts)} unseen articles."
        )
    with progress_bar(console, "embedding reference", quiet=quiet) as update:
        reference_vectors = embedder.embed(reference_texts, progress=update).vectors
    reference = ReferenceCorpus(
        holdout_fraction=0.25, model=embedder.model_name, random_state=random_state
    ).fit(reference_vectors, texts=reference_texts)
    with progress_bar(console, "embedding candidates", quiet=quiet) as update:
        pool = embedder.embed(pool_texts, progress=update).vectors

    size = len(reference.holdout_)
    fresh_ids = rng.choice(len(pool), size, replace=False)
    # The dense core: unseen articles whose k-th nearest reference neighbour is closest.
    radius = reference.neighbours(pool)[0][:, -1]
    core_ids = np.argsort(radius)[:size]

    generated = [r["text"] for r in smollm2_continuations() if r["stratum"].startswith("bbc")]
    generated = [generated[i] for i in rng.permutation(len(generated))]
    examples, machine = generated[:N_EXAMPLES], generated[N_EXAMPLES : N_EXAMPLES + size]
    with progress_bar(console, "embedding generated text", quiet=quiet) as update:
        both = embedder.embed(examples + machine, progress=update).vectors
    estimator = SyntheticFractionEstimator(
        generic_synthetic=examples,
        embed=lambda docs: embedder.embed(docs).vectors,
        random_state=random_state,
    )
    estimator.fit(reference_texts, reference_vectors, example_vectors=both[:N_EXAMPLES])
    other_outlet = [d.text for d in lee_news()]
    other_outlet = [
        other_outlet[i] for i in rng.permutation(len(other_outlet))[:N_SCORED_CANDIDATE]
    ]
    with progress_bar(console, "embedding another outlet", quiet=quiet) as update:
        other_vectors = embedder.embed(other_outlet, progress=update).vectors
    candidates = {
        "A fresh": ([pool_texts[i] for i in fresh_ids], pool[fresh_ids]),
        "B core only": ([pool_texts[i] for i in core_ids], pool[core_ids]),
        "C generated": (machine, both[N_EXAMPLES:]),
        "D another outlet": (other_outlet, other_vectors),
    }
    curvature = _curvature_estimates(
        console,
        reference_texts,
        examples,
        {k: t for k, (t, _) in candidates.items()},
        random_state=random_state,
        quiet=quiet,
    )
    result = DemoResult(
        fresh=coverage_report(reference, pool[fresh_ids], random_state=random_state),
        core_only=coverage_report(reference, pool[core_ids], random_state=random_state),
        synthetic={
            k: estimator.estimate(t, v).model_copy(update={"synthetic": curvature[k], "notes": ()})
            for k, (t, v) in candidates.items()
        },
    )
    if not quiet:
        console.print(coverage_table("Candidate A: fresh human articles", result.fresh))
        console.print(
            coverage_table("Candidate B: dense core only (tails dropped)", result.core_only)
        )
        console.print(modes_table(result.core_only, limit=6))
        a, b = result.fresh.tail_coverage, result.core_only.tail_coverage
        console.print(
            f"Tail coverage vs the human baseline: A {a.ratio:.2f} [{a.low:.2f}, {a.high:.2f}], "
            f"B {b.ratio:.2f} [{b.low:.2f}, {b.high:.2f}]. "
            + ("B has lost the human tails." if b.high < 1 else "B is not distinguishable yet.")
        )
        console.print(synthetic_table(result.synthetic))
        console.print(CURVATURE_NOTE)
    return result


CURVATURE_NOTE = (
    "synthetic: SmolLM2-135M curvature mixture (the service's default); out of domain: embeddings"
)


def _curvature_estimates(
    console: Console,
    reference_texts: list[str],
    examples: list[str],
    candidates: dict[str, list[str]],
    *,
    random_state: int,
    quiet: bool,
) -> dict[str, Estimate]:
    """Each candidate's synthetic fraction as the service's curvature stage reads it."""
    from service.settings import Settings

    settings = Settings()
    scorer = CurvatureScorer(
        max_tokens=settings.curvature_tokens,
        precision=settings.embedding_precision,
        cache_dir=settings.model_cache_dir,
    )
    rng = np.random.default_rng([random_state, 8])

    def sample(texts: list[str], n: int) -> list[str]:
        return [texts[i] for i in np.sort(rng.choice(len(texts), min(n, len(texts)), False))]

    texts = {
        "reference": sample(reference_texts, N_SCORED_REFERENCE),
        "examples": sample(examples, N_SCORED_EXAMPLES),
        **{k: sample(t, N_SCORED_CANDIDATE) for k, t in candidates.items()},
    }
    total = sum(len(t) for t in texts.values())
    profiles: dict[str, CurvatureProfiles] = {}
    with progress_bar(console, "scoring with the language model", quiet=quiet) as update:
        done = 0

        def step(i: int, _n: int) -> None:
            update(done + i, total)

        for key, batch in texts.items():
            profiles[key] = scorer.profiles(batch, step)
            done += len(batch)
    fitted = CurvatureFractionEstimator(random_state=random_state).fit(
        profiles["reference"], profiles["examples"]
    )
    return {k: fitted.estimate(profiles[k]).estimate for k in candidates}
