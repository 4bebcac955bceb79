"""The audit's sample: drawn from texts, a file reader, or sent already drawn (`audit --url`),
and what its design costs the intervals.

A `CorpusReader` samples itself (a full reservoir read when small, two-stage otherwise, see
`detectors.shard_sampling`); any other iterable of texts is reservoir-sampled as before; a
`ShardedSample` (a client's sample, sent with the corpus size it came from) is used as it is, or
subsampled uniformly when larger than the audit size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from detectors.results import Estimate
from detectors.sampling import reservoir_sample
from detectors.shard_sampling import ShardedSample, embedding_design_effect, widen
from service.schemas import SamplingInfo, SyntheticFraction, TailCoverage

if TYPE_CHECKING:
    from service.settings import Settings


def draw_sample(
    texts: Iterable[str] | ShardedSample, settings: Settings, rng: np.random.Generator
) -> ShardedSample:
    if isinstance(texts, ShardedSample):
        return texts.subsample(settings.audit_size, rng)
    sample = getattr(texts, "sample", None)
    if callable(sample):  # a service.inputs.CorpusReader
        drawn: ShardedSample = sample(
            settings.audit_size,
            rng,
            full_read_bytes=settings.full_read_bytes,
            block_bytes=settings.sample_block_bytes,
        )
        # A two-stage sample's size is random (the pilot's documents per byte is an estimate):
        # a uniform subsample keeps every document equally likely and the audit at its size.
        return drawn.subsample(settings.audit_size, rng)
    picked, seen = reservoir_sample(texts, settings.audit_size, rng)
    return ShardedSample(
        texts=picked,
        corpus_size=seen,
        corpus_size_exact=True,
        bytes_read=None,
        bytes_total=None,
        clusters=np.arange(len(picked)),
        sampling="full read",
    )


def sampling_info(drawn: ShardedSample, vectors: np.ndarray) -> SamplingInfo:
    """The sample's description; the design effect from the embeddings' top components."""
    deff = 1.0
    if drawn.sampling == "two-stage":
        deff = max(1.0, embedding_design_effect(vectors, drawn.clusters))
    return SamplingInfo(
        method=drawn.sampling,
        corpus_size_exact=drawn.corpus_size_exact,
        bytes_read=drawn.bytes_read,
        bytes_total=drawn.bytes_total,
        draws=drawn.n_draws,
        clusters=drawn.n_clusters,
        design_effect=deff,
        effective_sample_size=len(vectors) / deff,
    )


def sampling_note(info: SamplingInfo, n: int, corpus_size: int) -> str | None:
    if info.method == "full read":
        if corpus_size > n:
            return f"audited a uniform random sample of {n} of {corpus_size} documents"
        return None
    size = f"{corpus_size:,}" if info.corpus_size_exact else f"an estimated {corpus_size:,}"
    read = ""
    if info.bytes_read is not None and info.bytes_total:
        read = (
            f"; read {format_bytes(info.bytes_read)} of {format_bytes(info.bytes_total)} "
            f"({info.bytes_read / info.bytes_total:.2%})"
        )
    return (
        f"audited a two-stage sample of {n:,} of {size} documents ({info.draws:,} draws of "
        f"{info.clusters:,} shard blocks, row groups or batches, by size{read}); documents of a "
        f"draw share their shard, design effect {info.design_effect:.2f} (effective sample size "
        f"{info.effective_sample_size:,.0f}): the synthetic-fraction and tail-coverage intervals "
        f"are widened by its square root"
    )


def format_bytes(n: int) -> str:
    size, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


def widen_synthetic(synthetic: SyntheticFraction | None, deff: float) -> SyntheticFraction | None:
    """The synthetic-fraction (and out-of-domain) intervals stretched by sqrt(design effect)."""
    if synthetic is None or deff <= 1.0:
        return synthetic

    def stretch(e: Estimate | None) -> Estimate | None:
        if e is None:
            return None
        low, high = widen(e.point, e.low, e.high, math.sqrt(deff), lower=0.0, upper=1.0)
        return e.model_copy(update={"low": low, "high": high})

    return synthetic.model_copy(
        update={
            "estimate": stretch(synthetic.estimate),
            "out_of_domain_fraction": stretch(synthetic.out_of_domain_fraction),
        }
    )


def widen_tail(tail: TailCoverage, deff: float) -> TailCoverage:
    """The tail-coverage ratio's interval stretched by sqrt(design effect) (never below 0)."""
    if deff <= 1.0:
        return tail
    low, high = widen(tail.ratio, tail.low, tail.high, math.sqrt(deff), lower=0.0)
    return tail.model_copy(update={"low": low, "high": high})
