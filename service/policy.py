"""Thresholds -> keep | top-up | reject | inconclusive, every reason carrying the numbers behind it.

First the synthetic fraction and the domain alone (`early_verdict`), in this order:

- reject: the synthetic fraction's lower bound exceeds `hard_max_synthetic_fraction`; or the
  candidate's in-domain part reads as mostly generated: synthetic point / (1 - out-of-domain
  point) > `reject_generated_share` (the synthetic point is a share of the whole candidate).
- inconclusive: more of the candidate than `max_unexplained_fraction` scores where neither
  human text nor the generated examples do (garbled or high-temperature text, not prose).
- inconclusive: the reference cannot judge this corpus, or the synthetic fraction is unknown:
  the out-of-domain share exceeds `max_out_of_domain_fraction` (build a reference of the
  candidate's own domain); no synthetic-fraction estimate could be made; or its interval is wider
  than `max_synthetic_interval_width` (audit more documents, or give labelled examples).

Otherwise the forecast decides (`decide`):

- keep: the synthetic fraction's upper bound is within `max_synthetic_fraction` and the forecast
  final tail coverage, relative to fresh human data under the same plan, is at least
  `min_relative_tail_coverage`, or not distinguishable from it: a point below the limit whose
  interval over the forecast's chains reaches it is the forecast's noise, not a shortfall (reason
  `forecast-within-noise`; more seeds narrow it). A shortfall of a candidate that lies mostly
  farther from the reference than its own held-out documents (in the domain, on topics the
  reference does not hold) is the topics', not collapse: the forecast is not judged and the
  synthetic fraction decides (reason `forecast-off-topic`).
- top-up: outside those limits, but adding fresh human documents fixes it: enough to dilute the
  synthetic share below the limit, and the fresh fraction per generation that the simulator finds
  (`simulations.top_up.min_top_up`) within `max_top_up_fraction`.
- reject: no allowed top-up brings the forecast back: even `max_top_up_fraction`'s interval
  stays below the limit. Inconclusive instead when the out-of-domain share's upper bound exceeds
  `max_out_of_domain_fraction` (the forecast reads the reference's tails, and the shortfall may be
  the domain, not collapse), or when the largest top-up's interval reaches the limit though its
  lower bound does not (`top-up-within-noise`: neither shown to work nor to fail; near that edge
  the answer moved between top-up and reject with the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import ConfigDict, Field, model_validator

from detectors.results import Estimate, Frozen

Decision = Literal["keep", "top-up", "reject", "inconclusive"]


class Policy(Frozen):
    # Strict: a request's `false` or `"5"` is an error, not silently 0.0 or 5 (REST input).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_synthetic_fraction: float = Field(default=0.3, ge=0, le=1)
    hard_max_synthetic_fraction: float = Field(default=0.6, ge=0, le=1)
    min_relative_tail_coverage: float = Field(default=0.9, gt=0, le=1.5)
    max_top_up_fraction: float = Field(default=0.5, gt=0, le=1)
    # Above this out-of-domain share (point) the reference does not represent the candidate.
    max_out_of_domain_fraction: float = Field(default=0.5, ge=0, le=1)
    # A synthetic-fraction interval wider than this (high - low) is not an identified fraction.
    max_synthetic_interval_width: float = Field(default=0.5, gt=0, le=1)
    # Reject when the in-domain part reads as generated above this share.
    reject_generated_share: float = Field(default=0.5, gt=0, le=1)
    # Above this share of scores the human-plus-generated mixture does not explain, the reading
    # of the synthetic fraction rests on text neither side describes.
    max_unexplained_fraction: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _limits_in_order(self) -> Policy:
        if self.max_synthetic_fraction > self.hard_max_synthetic_fraction:
            raise ValueError(
                f"max_synthetic_fraction ({self.max_synthetic_fraction:g}) is above "
                f"hard_max_synthetic_fraction ({self.hard_max_synthetic_fraction:g}): the share "
                "a top-up dilutes to must not exceed the share that rejects outright"
            )
        return self


class FamilyVisibilityLike(Protocol):
    """What `blind_spots` reads of a family's visibility (`service.schemas.FamilyVisibility`)."""

    @property
    def family(self) -> str: ...

    @property
    def detectable_share(self) -> float | None: ...

    @property
    def power(self) -> float: ...


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


# Estimates whose model reads every candidate document, whatever its domain (the language-model
# curvature): their point already is the generated share, no in-domain rescaling.
WHOLE_CANDIDATE_METHODS = frozenset({"curvature-mixture"})


def in_domain_generated_share(synthetic: Estimate, out_of_domain: Estimate | None) -> float:
    """The synthetic point as a share of the text it judges: the whole candidate for a
    whole-candidate method, else (embedding methods, which can only call in-domain documents
    generated) its in-domain part."""
    if synthetic.method in WHOLE_CANDIDATE_METHODS:
        return synthetic.point
    outside = 0.0 if out_of_domain is None else out_of_domain.point
    return synthetic.point / max(1.0 - outside, 1e-9)


def _mostly_generated(
    policy: Policy, synthetic: Estimate | None, out_of_domain: Estimate | None
) -> Verdict | None:
    """Reject when the generated share of the text the estimate judges is above the limit."""
    if synthetic is None:
        return None
    share = in_domain_generated_share(synthetic, out_of_domain)
    if share > policy.reject_generated_share:
        interval = f"{synthetic.level:.0%} interval {synthetic.low:.2f}-{synthetic.high:.2f}"
        if synthetic.method in WHOLE_CANDIDATE_METHODS:
            message = f"{share:.0%} of the candidate reads as generated ({interval})"
        else:
            outside = (
                "not estimated, taken as 0"
                if out_of_domain is None
                else f"{out_of_domain.point:.2f}"
            )
            message = (
                f"{share:.0%} of the candidate's in-domain part reads as generated "
                f"(synthetic fraction {synthetic.point:.2f} of the whole candidate, {interval}; "
                f"out-of-domain share {outside})"
            )
        return _verdict(
            "reject",
            code="mostly-generated",
            message=f"{message}, above the limit {policy.reject_generated_share:.0%}",
            value=share,
            limit=policy.reject_generated_share,
        )
    return None


def early_verdict(
    policy: Policy,
    *,
    synthetic: Estimate | None,
    out_of_domain: Estimate | None,
    unexplained: float = 0.0,
) -> Verdict | None:
    """The verdict the synthetic fraction and the domain decide alone, or None (the forecast then
    decides): reject on the hard limit or a mostly generated candidate, inconclusive when the
    reference does not represent the candidate or the synthetic fraction is not identified.
    `unexplained` is the candidate's share whose scores neither side of the mixture explains."""
    if synthetic is not None and synthetic.low > policy.hard_max_synthetic_fraction:
        return _verdict(
            "reject",
            code="synthetic-hard-limit",
            message=f"synthetic fraction is at least {synthetic.low:.2f} "
            f"({synthetic.level:.0%} interval {synthetic.low:.2f}-{synthetic.high:.2f}), above "
            f"the hard limit {policy.hard_max_synthetic_fraction:.2f}",
            value=synthetic.low,
            limit=policy.hard_max_synthetic_fraction,
        )
    if synthetic is not None and unexplained > policy.max_unexplained_fraction:
        return _verdict(
            "inconclusive",
            code="unexplained-text",
            message=f"{unexplained:.0%} of the candidate scores beyond both human text and the "
            f"generated examples (limit {policy.max_unexplained_fraction:.0%}): less probable "
            "under the language model than human prose (garbled or high-temperature text, "
            "tables, code, another language) or more predictable than any example; its synthetic "
            f"fraction is only known to lie in {synthetic.low:.2f}-{synthetic.high:.2f}. Inspect "
            "those documents, or give labelled examples of their generator "
            "(COLLAPSE_GUARD_SYNTHETIC_EXAMPLES)",
            value=unexplained,
            limit=policy.max_unexplained_fraction,
        )
    whole = synthetic is not None and synthetic.method in WHOLE_CANDIDATE_METHODS
    # A whole-candidate estimate stands even where the reference does not describe the text, so
    # "mostly generated" comes first; an embedding estimate is only as good as the domain match,
    # so a candidate the reference does not represent is inconclusive before its share is read.
    if whole and (mostly := _mostly_generated(policy, synthetic, out_of_domain)) is not None:
        return mostly
    if out_of_domain is not None and out_of_domain.point > policy.max_out_of_domain_fraction:
        o = out_of_domain
        return _verdict(
            "inconclusive",
            code="out-of-domain",
            message=f"{o.point:.0%} of the candidate lies outside the reference's domain "
            f"({o.level:.0%} interval {o.low:.0%}-{o.high:.0%}; limit "
            f"{policy.max_out_of_domain_fraction:.0%}): the reference does not represent this "
            "corpus, so its tail coverage and collapse forecast cannot be judged against it; build "
            "a reference from the candidate's own domain (collapse-guard reference build NAME "
            "FILES) and audit against that",
            value=o.point,
            limit=policy.max_out_of_domain_fraction,
        )
    if not whole and (mostly := _mostly_generated(policy, synthetic, out_of_domain)) is not None:
        return mostly
    if synthetic is None:
        return _verdict(
            "inconclusive",
            code="no-synthetic-estimate",
            message="the synthetic fraction could not be estimated (the audit notes say why), so "
            "the share of generated text is unknown; audit a larger sample, or against a "
            "reference of the candidate's own domain",
        )
    width = synthetic.high - synthetic.low
    if width > policy.max_synthetic_interval_width:
        odd = (
            f" ({unexplained:.0%} of the candidate scores where neither human text nor the "
            "generated examples do, and how much more of that kind reads as human is unknown)"
            if unexplained > 0
            else ""
        )
        return _verdict(
            "inconclusive",
            code="synthetic-not-identifiable",
            message=f"the synthetic fraction is not identifiable from this sample: its "
            f"{synthetic.level:.0%} interval {synthetic.low:.2f}-{synthetic.high:.2f} is "
            f"{width:.2f} wide, wider than the limit {policy.max_synthetic_interval_width:.2f}"
            f"{odd}; audit more documents, or give labelled examples of the generator you fear "
            "(COLLAPSE_GUARD_SYNTHETIC_EXAMPLES)",
            value=width,
            limit=policy.max_synthetic_interval_width,
        )
    return None


def _verdict(
    decision: Decision,
    *,
    code: str,
    message: str,
    value: float | None = None,
    limit: float | None = None,
) -> Verdict:
    reason = Reason(code=code, message=message, value=value, limit=limit)
    return Verdict(decision=decision, reasons=(reason,))


def forecast_off_topic(policy: Policy, off_topic: float | None) -> bool:
    """Whether the candidate lies mostly farther from the reference than its own held-out
    documents, so that the forecast of the reference's tails does not describe it (`decide`)."""
    return off_topic is not None and off_topic > policy.max_out_of_domain_fraction


def tail_short(policy: Policy, relative_tail_coverage: float, high: float | None) -> bool:
    """Whether the forecast shows a tail-coverage shortfall: its interval's upper end (or, with
    no interval, its point) below the limit."""
    return (relative_tail_coverage if high is None else high) < policy.min_relative_tail_coverage


def decide(
    policy: Policy,
    *,
    n_documents: int,
    synthetic: Estimate | None,
    relative_tail_coverage: float,
    relative_tail_coverage_high: float | None = None,
    top_up_beta: float | None,
    top_up_per_generation: int | None,
    top_up_feasible: bool,
    top_up_relative: Estimate | None = None,
    out_of_domain: Estimate | None = None,
    unexplained: float = 0.0,
    off_topic: float | None = None,
) -> Verdict:
    """The verdict from the audit's numbers: `early_verdict`'s if it decides, else the forecast's.
    `relative_tail_coverage` is the forecast's final mean tail coverage / that of fresh human data
    under the plan, `relative_tail_coverage_high` its interval's upper end (None: the point
    alone decides); the top-up arguments describe the smallest fresh fraction the simulator found
    (None when no search was needed), `top_up_relative` the relative tail coverage its forecast
    reaches, with its interval (None: an infeasible search rejects on its lower bound alone);
    `out_of_domain` is the candidate's share outside the reference's domain; `unexplained` the
    share the synthetic mixture does not explain; `off_topic` the share farther from the
    reference than its own held-out documents (in the domain, on topics the reference does not
    hold): above `max_out_of_domain_fraction` a tail shortfall is the topics', not collapse,
    and the synthetic fraction decides alone (reason `forecast-off-topic`)."""
    early = early_verdict(
        policy, synthetic=synthetic, out_of_domain=out_of_domain, unexplained=unexplained
    )
    if early is not None:
        return early
    if not math.isfinite(relative_tail_coverage):
        return Verdict(decision="inconclusive", reasons=(_undefined_forecast(),))

    reasons: list[Reason] = []
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
    tail_ok = not tail_short(policy, relative_tail_coverage, relative_tail_coverage_high)
    if not tail_ok and forecast_off_topic(policy, off_topic):
        # The forecast reads the reference's tails; a candidate on other topics of the same
        # source covers few of them whatever its origin (human BBC sport and tech against the
        # other sections read top-up), so the shortfall says nothing of collapse.
        tail_ok = True
        reasons.append(
            Reason(
                code="forecast-off-topic",
                message=f"{off_topic:.0%} of the candidate lies farther from the reference than "
                "its own held-out documents: the reference's source on topics it does not hold "
                "(in its domain, so the synthetic fraction is judged). The forecast's tail "
                f"coverage ({relative_tail_coverage:.2f} x fresh human data) reads the "
                "reference's topics and is not judged; to forecast collapse, build a reference "
                "that holds these topics (collapse-guard reference build NAME FILE)",
                value=off_topic,
                limit=policy.max_out_of_domain_fraction,
            )
        )
    elif not tail_ok:
        reasons.append(
            Reason(
                code="forecast-tail-coverage",
                message=f"forecast final tail coverage is {relative_tail_coverage:.2f} x that of "
                f"fresh human data under the plan, below {policy.min_relative_tail_coverage:.2f}",
                value=relative_tail_coverage,
                limit=policy.min_relative_tail_coverage,
            )
        )
    if all(r.code == "forecast-off-topic" for r in reasons):
        if not reasons and relative_tail_coverage < policy.min_relative_tail_coverage:
            reasons.append(
                Reason(
                    code="forecast-within-noise",
                    message=f"forecast final tail coverage is {relative_tail_coverage:.2f} x "
                    f"that of fresh human data, below {policy.min_relative_tail_coverage:.2f}, but "
                    f"its interval over the forecast's chains reaches "
                    f"{relative_tail_coverage_high:.2f}: not a shortfall the forecast can tell "
                    "from its own noise (more seeds narrow it)",
                    value=relative_tail_coverage_high,
                    limit=policy.min_relative_tail_coverage,
                )
            )
        reasons.append(
            Reason(
                code="within-limits",
                message=(
                    "the forecast is not judged (forecast-off-topic)"
                    if reasons
                    else f"forecast final tail coverage is {relative_tail_coverage:.2f} x human"
                )
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
            return _no_top_up(
                policy, reasons, top_up_beta, top_up_per_generation, top_up_relative, out_of_domain
            )
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


def blind_spots(
    policy: Policy, verdict: Verdict, visibility: Sequence[FamilyVisibilityLike]
) -> Verdict:
    """A keep names each generator family it could not rule out: one whose text the audit
    would not notice at the policy's synthetic limit (`detectable_share` above it, or none),
    so that a low interval never stands for all generated text. Other verdicts are unchanged."""
    if verdict.decision != "keep":
        return verdict
    limit = policy.max_synthetic_fraction
    unseen = [v for v in visibility if v.detectable_share is None or v.detectable_share > limit]
    if not unseen:
        return verdict
    parts = [
        f"{v.family} (not at any share)"
        if v.detectable_share is None
        else f"{v.family} (below {v.detectable_share:.0%})"
        for v in unseen
    ]
    reason = Reason(
        code="not-ruled-out",
        message="keep does not rule out text of " + ", ".join(parts) + f" above the limit "
        f"{limit:.0%}: this audit notices those families {unseen[0].power:.0%} of the time "
        "only from the shares given; audit more documents, or use a scorer that sees them "
        "(COLLAPSE_GUARD_SCORER, e.g. a 7B model on a GPU)",
        value=max(1.0 if v.detectable_share is None else v.detectable_share for v in unseen),
        limit=limit,
    )
    return verdict.model_copy(update={"reasons": (*verdict.reasons, reason)})


def _undefined_forecast() -> Reason:
    return Reason(
        code="forecast-undefined",
        message="the forecast cannot measure tail coverage under this plan: fresh human data "
        "retrained the same way ends with none of the reference's tails covered (or no chain "
        "gave a number), so there is nothing to compare the candidate with; the reference's "
        "held-out part is too small for this plan: build a larger reference",
    )


def _no_top_up(
    policy: Policy,
    reasons: list[Reason],
    beta: float | None,
    per_generation: int | None,
    relative: Estimate | None,
    out_of_domain: Estimate | None,
) -> Verdict:
    """No allowed top-up can be shown to bring the forecast back: inconclusive when the domain
    may explain the shortfall or the largest top-up's interval reaches the target, else reject."""
    o, target = out_of_domain, policy.min_relative_tail_coverage
    if o is not None and o.high > policy.max_out_of_domain_fraction:
        # The forecast measures the reference's tails. When more of the candidate than the limit
        # may lie outside the reference's domain, a shortfall no top-up fixes can be the domain,
        # not collapse (human news of another outlet): cannot tell.
        reason = Reason(
            code="forecast-out-of-domain",
            message=f"no fresh-human fraction up to {policy.max_top_up_fraction:.0%} per "
            f"generation brings the forecast back, but up to {o.high:.0%} of the candidate may "
            f"lie outside the reference's domain ({o.level:.0%} interval {o.low:.0%}-"
            f"{o.high:.0%}; limit {policy.max_out_of_domain_fraction:.0%}), so the shortfall in "
            "the reference's tails may be the domain rather than collapse; audit against a "
            "reference of the candidate's own domain",
            value=o.high,
            limit=policy.max_out_of_domain_fraction,
        )
        return Verdict(decision="inconclusive", reasons=(*reasons, reason))
    if (
        relative is not None
        and beta is not None
        and beta <= policy.max_top_up_fraction
        and relative.high >= target
    ):
        # Neither shown to work (its lower bound misses) nor shown to fail: near this edge the
        # answer moved between top-up and reject with the CPU the forecast ran on.
        reason = Reason(
            code="top-up-within-noise",
            message=f"the largest allowed fresh fraction, {beta:.0%} per generation "
            f"({per_generation or 0} documents), brings the forecast to {relative.point:.2f} x "
            f"human ({relative.level:.0%} interval {relative.low:.2f}-{relative.high:.2f}): "
            f"whether it reaches {target:.2f} is inside the forecast's noise. Forecast with more "
            "seeds than the audit's plan to tell (e.g. four times as many: --plan seeds=...), "
            "or allow a larger max_top_up_fraction",
            value=relative.high,
            limit=target,
        )
        return Verdict(decision="inconclusive", reasons=(*reasons, reason))
    reason = Reason(
        code="top-up-insufficient",
        message=f"no fresh-human fraction up to {policy.max_top_up_fraction:.0%} per generation "
        "brings the forecast back",
        value=beta,
        limit=policy.max_top_up_fraction,
    )
    return Verdict(decision="reject", reasons=(*reasons, reason))
