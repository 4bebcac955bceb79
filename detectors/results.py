"""Frozen result models returned by the detectors.

They are pydantic models so the service, the CLI's JSON output and the Python client share them
without a translation layer; frozen so a result cannot be edited after it was computed.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Estimate(Frozen):
    """A point estimate with its interval: `level` is the interval's nominal coverage."""

    point: float
    low: float
    high: float
    level: float = Field(gt=0, lt=1)
    method: str
    mode: str | None = None


class PRDC(Frozen):
    """Precision, recall, density, coverage (prdc semantics) and coverage of the tail points."""

    precision: float
    recall: float
    density: float
    coverage: float
    tail_coverage: float = float("nan")
    k: int


class MetricComparison(Frozen):
    """A candidate's metric beside a size-matched held-out human sample's (the baseline).

    `ratio` = value / baseline; `low`/`high` bound the ratio, `value_low`/`value_high` the value,
    both percentile-bootstrap intervals at `level`.
    """

    value: float
    value_low: float
    value_high: float
    baseline: float
    ratio: float
    low: float
    high: float
    level: float


class ModeRow(Frozen):
    """One k-means mode (cluster) of the reference and how much of the candidate falls in it."""

    mode: int
    reference_mass: float
    candidate_mass: float
    candidate_low: float
    candidate_high: float
    baseline_mass: float
    status: str  # "missing" | "under" | "ok" | "over"
    exemplar: str | None = None  # start of the reference document nearest the mode's centre


class CoverageReport(Frozen):
    k: int
    sample_size: int  # candidate documents the metrics were computed on (size-matched baseline)
    candidate_size: int  # candidate vectors passed in
    reference_size: int
    index: str
    tail_quantile: float
    n_tail: int
    precision: MetricComparison
    recall: MetricComparison
    density: MetricComparison
    coverage: MetricComparison
    tail_coverage: MetricComparison
    modes: list[ModeRow]
    n_bootstrap: int


class SyntheticReport(Frozen):
    """How much of a candidate is generated text, and how much lies outside the reference.

    `synthetic` is the share of the whole candidate that is inside the reference's domain and
    carries the synthetic signature; `out_of_domain` the share outside the reference's support
    (another genre or source: not evidence of generation). `flagged_out_of_domain` is set when
    that share dominates, in which case the synthetic figure covers the in-domain part only.
    Text of the reference's own source on topics it does not hold is in the domain; `off_topic`
    is the share farther from the reference than its own held-out documents (a new topic or
    year lies there too), so a forecast of the reference's tails does not describe it.
    """

    synthetic: Estimate
    out_of_domain: Estimate
    flagged_out_of_domain: bool
    mode: str  # "labelled" | "reference-only"
    features: tuple[str, ...]
    validation_mae: dict[str, float]  # per quantifier, on held-out labelled mixes
    n_candidate: int
    n_labelled_synthetic: int
    n_reference: int
    notes: tuple[str, ...] = ()
    off_topic: float | None = None


def non_finite_paths(model: BaseModel) -> list[str]:
    """Dotted paths of the NaN and infinite numbers in `model`. JSON has neither (pydantic
    writes them as null), so a stored or returned result holding one would not read back as the
    number its schema promises."""
    found: list[str] = []
    stack: list[tuple[str, object]] = [("", model.model_dump())]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            found.append(path or "<root>")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
    return sorted(found)
