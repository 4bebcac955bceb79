"""Models shared by the REST API, the CLI's --json output and the Python client.

One `AuditResult` for all three doors: an audit run from the CLI and one run through REST on the
same input serialise to the same JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from detectors.results import Estimate, Frozen, MetricComparison, ModeRow
from service.policy import Policy, Verdict
from simulations.plans import Forecast, Plan


class ReferenceInfo(Frozen):
    id: str
    name: str
    created: str
    model: str
    dimension: int
    size: int  # documents: indexed + held out
    n_indexed: int
    n_holdout: int
    tail_quantile: float
    index: str


class FamilyVisibility(Frozen):
    """How much of one generator family's text this audit could have missed."""

    family: str  # e.g. "smollm2", "gpt-3.5-turbo", "gpt-4", or "your examples"
    examples: int  # scored examples of the family the limit was computed from
    # The smallest share of the candidate written by this family that the audit would notice
    # `power` of the time (its synthetic interval's lower end above 0), at this audit's sample
    # size; None: no share at all (the family's text scores like human text to the scorer).
    detectable_share: float | None
    power: float = 0.9


def visibility_line(visibility: Sequence[FamilyVisibility]) -> str:
    """One line of what an audit can see: the share of each generator family's text it
    notices `power` of the time (the CLI's verdict panel and the report)."""
    parts = [
        f"{v.family} not at any share"
        if v.detectable_share is None
        else f"{v.family} from {v.detectable_share:.0%}"
        for v in visibility
    ]
    power = visibility[0].power if visibility else 0.9
    return f"generated text noticed {power:.0%} of the time: " + "; ".join(parts)


class SyntheticFraction(Frozen):
    """The synthetic-fraction estimate and what else the estimator said."""

    estimate: Estimate
    out_of_domain_fraction: Estimate | None = None
    out_of_domain: bool = False
    features: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    scored_documents: int = 0  # documents the language model scored (0: embedding method)
    # The embedding signature's own estimate, for comparison: it reads human text of another
    # outlet as generated, so the verdict does not use it when the curvature method answers.
    embedding_estimate: Estimate | None = None
    # Share of the candidate whose scores the human-plus-generated mixture does not explain
    # (less probable than human text, or more predictable than the examples, beyond what the
    # mixture predicts): its origin is unknown, so the interval spans both readings of it.
    unexplained_fraction: float = 0.0
    # Per generator family among the examples: what this audit could have missed (empty in
    # audits stored before it was reported, and with the embedding method).
    visibility: tuple[FamilyVisibility, ...] = ()
    # Share of the candidate farther from the reference than its own held-out documents lie: a
    # new topic or year of the reference's source as well as another genre (None: not measured).
    # Above the policy's out-of-domain limit the forecast of the reference's tails does not
    # describe the candidate, and the verdict rests on the synthetic fraction.
    off_topic_fraction: float | None = Field(default=None, ge=0, le=1)


class TailCoverage(Frozen):
    value: float
    baseline: float  # a held-out human sample of the same size
    ratio: float
    low: float  # bootstrap interval of the ratio
    high: float
    level: float


class CoverageMetrics(Frozen):
    precision: MetricComparison
    recall: MetricComparison
    density: MetricComparison
    coverage: MetricComparison


class TopUpSearch(Frozen):
    beta: float
    documents_per_generation: int
    feasible: bool  # the forecast's lower bound at `beta` reaches the target
    achieved_relative: float
    target: float
    # `achieved_relative` with its interval over the forecast's chains (None in audits stored
    # before it was kept): an infeasible search whose interval reaches the target is a top-up
    # the data cannot rule out (`top-up-within-noise`), not a reject.
    achieved_interval: Estimate | None = None


class SamplingInfo(Frozen):
    """How the audited sample was drawn and what it cost (absent from audits stored before)."""

    method: Literal["full read", "two-stage"] = "full read"
    corpus_size_exact: bool = True  # False: estimated from the bytes of the clusters read
    bytes_read: int | None = None  # None: the documents came as texts, not files
    bytes_total: int | None = None
    draws: int = 0  # clusters drawn (two-stage)
    clusters: int = 0  # clusters there were to draw from
    design_effect: float = 1.0  # variance inflation of a mean over a simple random sample
    effective_sample_size: float | None = None  # sample size / design effect


class AuditResult(Frozen):
    id: str
    reference: str
    created: str
    model: str
    corpus_size: int  # documents in the input (estimated if sampling.corpus_size_exact is False)
    sample_size: int  # documents audited (uniform sample when the input is larger)
    synthetic_fraction: SyntheticFraction | None  # None: estimator unavailable (see notes)
    tail_coverage: TailCoverage
    coverage: CoverageMetrics
    modes: tuple[ModeRow, ...]
    plan: Plan
    policy: Policy
    forecast: Forecast
    top_up: TopUpSearch | None
    verdict: Verdict
    notes: tuple[str, ...] = ()
    sampling: SamplingInfo | None = None  # None: an audit stored before sampling was reported


class Job(Frozen):
    """Background work (a large reference build or audit): poll `GET /v1/jobs/{id}`."""

    id: str
    kind: Literal["reference", "audit"]
    state: Literal["queued", "running", "succeeded", "failed"]
    created: str
    updated: str
    done: int = 0  # progress units (documents embedded)
    total: int = 0
    error: str | None = None
    reference: ReferenceInfo | None = None  # result of a reference job
    audit: AuditResult | None = None  # result of an audit job
