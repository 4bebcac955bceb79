"""`collapse-guard simulate`: one entry point over the simulator's models, returning bands."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from detectors.errors import InvalidInputError
from simulations import theory
from simulations.loop import run_generations, run_seeds, validate_plan
from simulations.models import discrete, gaussian, gmm
from simulations.results import SimulationResult, Trajectory, summarise

KINDS = ("gaussian", "discrete", "gmm", "lm")
ProgressCallback = Callable[[int, int], None]


def _bands(
    metrics: dict[str, np.ndarray],
    descriptions: dict[str, str],
    theory_rows: dict[str, tuple[np.ndarray, str]] | None = None,
) -> dict[str, Trajectory]:
    theory_rows = theory_rows or {}
    return {
        name: summarise(
            values,
            metric=name,
            description=descriptions.get(name, name),
            theory=theory_rows.get(name, (None, None))[0],
            theory_label=theory_rows.get(name, (None, None))[1],
        )
        for name, values in metrics.items()
    }


def run_simulation(
    kind: str,
    *,
    generations: int,
    samples: int,
    policy: str = "replace",
    beta: float = 0.0,
    seeds: int = 100,
    estimator: str = "unbiased",
    random_state: int = 0,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    if kind not in KINDS:
        raise InvalidInputError(f"unknown model {kind!r}: choose one of {', '.join(KINDS)}")
    validate_plan(generations, samples, policy, beta)
    if seeds < 2:
        raise InvalidInputError(f"seeds must be at least 2 (bands need a spread), got {seeds}")
    start = time.perf_counter()
    settings: dict[str, float | int | str] = {}
    loop: dict[str, Any] = {
        "generations": generations,
        "samples": samples,
        "policy": policy,
        "beta": beta,
        "random_state": random_state,
        "progress": progress,
    }
    if kind == "gaussian":
        est = cast(gaussian.Estimator, estimator)  # GaussianModel rejects other names
        rec = run_generations(gaussian.GaussianModel(estimator=est, n_chains=seeds), **loop)
        rows = {}
        if policy == "replace":
            n = generations + 1  # generation g's model was estimated g + 1 times
            rows = {
                "variance": (
                    theory.expected_variance(n, samples, estimator=est)[1:],
                    "E[sigma^2] (closed form)",
                ),
                "w2_squared": (
                    theory.expected_w2_squared(n, samples, estimator=est)[1:],
                    "E[W2^2] (closed form)",
                ),
            }
        trajectories = _bands(rec.metrics, gaussian.DESCRIPTIONS, rows)
        settings["estimator"] = estimator
    elif kind == "discrete":
        model = discrete.CategoricalModel(n_chains=seeds)
        trajectories = _bands(run_generations(model, **loop).metrics, discrete.DESCRIPTIONS)
        settings["categories"] = len(model.probabilities)
    elif kind == "gmm":
        rec = run_seeds(gmm.MixtureModel, seeds=seeds, **loop)
        trajectories = _bands(rec.metrics, gmm.DESCRIPTIONS)
    else:
        trajectories = _lm(generations, policy, beta, seeds, random_state, progress, settings)
    return SimulationResult(
        kind=kind,
        policy=policy,
        beta=beta,
        generations=generations,
        samples=samples,
        seeds=seeds,
        random_state=random_state,
        trajectories=trajectories,
        settings=settings,
        elapsed_seconds=time.perf_counter() - start,
    )


def _lm(
    generations: int,
    policy: str,
    beta: float,
    seeds: int,
    random_state: int,
    progress: ProgressCallback | None,
    settings: dict[str, float | int | str],
    documents: int = 300,
) -> dict[str, Trajectory]:
    """The n-gram LM experiment on BBC News; `samples` does not apply (blocks of the corpus)."""
    from detectors.corpora import bbc_news
    from simulations.lm import run_lm_collapse
    from simulations.models.ngram import KneserNeyLM
    from simulations.text import prepare_corpus

    docs = bbc_news()
    pick = np.random.default_rng(random_state).choice(len(docs), documents, replace=False)
    corpus = prepare_corpus([docs[i].text for i in pick], block_size=64, random_state=random_state)
    vocab = len(corpus.vocabulary)
    ppl, repeats, gen_ppl = [], [], []
    for s in range(seeds):

        def tick(done: int, total: int, offset: int = s * (generations + 1)) -> None:
            if progress is not None:
                progress(offset + done, seeds * (generations + 1))

        rec = run_lm_collapse(
            corpus,
            lambda: KneserNeyLM(vocab_size=vocab, order=3),
            generations=generations,
            policy=policy,
            beta=beta,
            random_state=random_state + s,
            progress=tick,
        )
        ppl.append(rec.heldout_perplexity)
        repeats.append(rec.repeated_trigram_rate)
        gen_ppl.append([np.median(x) for x in rec.train_perplexity_under_gen0])
    settings.update(
        documents=documents,
        vocabulary=vocab,
        model="Kneser-Ney trigram",
        training_blocks=len(corpus.train_blocks),
    )
    metrics = {
        "heldout_perplexity": np.array(ppl).T,
        "median_train_perplexity_under_gen0": np.array(gen_ppl).T,
        "repeated_trigram_rate": np.array(repeats).T,
    }
    descriptions = {
        "heldout_perplexity": "perplexity of held-out original BBC text",
        "median_train_perplexity_under_gen0": "median per-block perplexity of each generation's "
        "training text under the generation-0 model",
        "repeated_trigram_rate": "share of trigrams repeated within a block",
    }
    return _bands(metrics, descriptions)
