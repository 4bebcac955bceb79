"""Thresholds -> keep | top-up | reject, with every reason carrying the numbers behind it.

- keep: the synthetic fraction's upper bound is within `max_synthetic_fraction` and the forecast
  final tail coverage, relative to fresh human data under the same plan, is at least
  `min_relative_tail_coverage`.
- top-up: outside those limits, but adding fresh human documents fixes it: enough to dilute the
  synthetic share below the limit, and the fresh fraction per generation that the simulator finds
  (`simulations.forecast.min_top_up`) within `max_top_up_fraction`.
- reject: the synthetic fraction's lower bound exceeds `hard_max_synthetic_fraction`, or no
  allowed top-up brings the forecast back within the limit.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import ConfigDict, Field

from detectors.results import Estimate, Frozen

Decision = Literal["keep", "top-up", "reject"]


class Policy(Frozen):
    # Strict: a request's `false` or `"5"` is an error, not silently 0.0 or 5 (REST input).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_synthetic_fraction: float = Field(default=0.3, ge=0, le=1)
    hard_max_synthetic_fraction: float = Field(default=0.6, ge=0, le=1)
    min_relative_tail_coverage: float = Field(default=0.9, gt=0, le=1.5)
    max_top_up_fraction: float = Field(default=0.5, gt=0, le=1)


class Reason(Frozen):
    code: str  # stable identifier a pipeline can branch on
    message: str  # the sentence shown to a person, numbers included
    value: float | None = None
    limit: float | None = None


class Verdict(Frozen):
    decision: Decision
    reasons: tuple[Reason, ...]
    top_up_documents: int = 0  # fresh human documents to add (0 unless top-up)


def dilution_documents(n: int, synthetic_high: float, limit: float) -> int:
    """Fresh human documents that bring a synthetic share `synthetic_high` of n documents down to
    `limit`: a n / (n + N) <= limit  <=>  N >= n (a / limit - 1)."""

    if synthetic_high <= limit:
        return 0
    if limit <= 0:
        return -1  # no amount of human text makes a non-zero share zero
    return math.ceil(n * (synthetic_high / limit - 1))


def decide(
    policy: Policy,
    *,
    n_documents: int,
    synthetic: Estimate | None,
    relative_tail_coverage: float,
    top_up_beta: float | None,
    top_up_per_generation: int | None,
    top_up_feasible: bool,
) -> Verdict:
    """The verdict from the audit's numbers. `relative_tail_coverage` is the forecast's final mean
    tail coverage / that of fresh human data under the plan; the top-up arguments describe the
    smallest fresh fraction the simulator found (None when no search was needed)."""
    reasons: list[Reason] = []
    if synthetic is not None and synthetic.low > policy.hard_max_synthetic_fraction:
        reasons.append(
            Reason(
                code="synthetic-hard-limit",
                message=f"synthetic fraction is at least {synthetic.low:.2f} "
                f"({synthetic.level:.0%} interval {synthetic.low:.2f}-{synthetic.high:.2f}), above "
                f"the hard limit {policy.hard_max_synthetic_fraction:.2f}",
                value=synthetic.low,
                limit=policy.hard_max_synthetic_fraction,
            )
        )
        return Verdict(decision="reject", reasons=tuple(reasons))

    dilute = 0
    if synthetic is not None and synthetic.high > policy.max_synthetic_fraction:
        dilute = dilution_documents(n_documents, synthetic.high, policy.max_synthetic_fraction)
        reasons.append(
            Reason(
                code="synthetic-fraction",
                message=f"synthetic fraction may be as high as {synthetic.high:.2f} (point "
                f"{synthetic.point:.2f}), above the limit {policy.max_synthetic_fraction:.2f}",
                value=synthetic.high,
                limit=policy.max_synthetic_fraction,
            )
        )
    tail_ok = relative_tail_coverage >= policy.min_relative_tail_coverage
    if not tail_ok:
        reasons.append(
            Reason(
                code="forecast-tail-coverage",
                message=f"forecast final tail coverage is {relative_tail_coverage:.2f} x that of "
                f"fresh human data under the plan, below {policy.min_relative_tail_coverage:.2f}",
                value=relative_tail_coverage,
                limit=policy.min_relative_tail_coverage,
            )
        )
    if not reasons:
        reasons.append(
            Reason(
                code="within-limits",
                message=f"forecast final tail coverage is {relative_tail_coverage:.2f} x human"
                + (
                    ""
                    if synthetic is None
                    else f"; synthetic fraction at most {synthetic.high:.2f} "
                    f"(limit {policy.max_synthetic_fraction:.2f})"
                ),
                value=relative_tail_coverage,
                limit=policy.min_relative_tail_coverage,
            )
        )
        return Verdict(decision="keep", reasons=tuple(reasons))

    per_generation = 0
    if not tail_ok:
        if not top_up_feasible or top_up_beta is None or top_up_beta > policy.max_top_up_fraction:
            reasons.append(
                Reason(
                    code="top-up-insufficient",
                    message="no fresh-human fraction up to "
                    f"{policy.max_top_up_fraction:.0%} per generation brings the forecast back",
                    value=top_up_beta,
                    limit=policy.max_top_up_fraction,
                )
            )
            return Verdict(decision="reject", reasons=tuple(reasons))
        per_generation = top_up_per_generation or 0
        reasons.append(
            Reason(
                code="top-up-forecast",
                message=f"adding {per_generation} fresh human documents per generation "
                f"(beta {top_up_beta:.3f}) restores the forecast tail coverage",
                value=top_up_beta,
                limit=policy.max_top_up_fraction,
            )
        )
    if dilute < 0:
        return Verdict(decision="reject", reasons=tuple(reasons))
    if dilute:
        reasons.append(
            Reason(
                code="top-up-dilution",
                message=f"adding {dilute} fresh human documents brings the synthetic share of "
                f"{n_documents} documents under {policy.max_synthetic_fraction:.2f}",
                value=float(dilute),
                limit=policy.max_synthetic_fraction,
            )
        )
    return Verdict(
        decision="top-up", reasons=tuple(reasons), top_up_documents=max(dilute, per_generation)
    )
