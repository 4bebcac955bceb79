"""Fill a `ReportData` from the service's `AuditResult` and, when the audit ran here, its vectors.

`extras` (from the CLI's local backend) may hold `reference` (the fitted `ReferenceCorpus`),
`candidate_vectors` (the audited sample's embeddings) and `top_up_forecast` (the forecast under
the proposed top-up). Without them (an audit fetched from a remote service) the report leaves out
the projection and the top-up line and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from detectors.results import MetricComparison
from service.report.figures import project_2d
from service.report.model import ForecastSeries, Projection, ReportData
from service.schemas import visibility_line

if TYPE_CHECKING:
    from service.schemas import AuditResult

FORECAST_METRIC = "tail_coverage"


def _tail_metric(result: AuditResult) -> MetricComparison:
    # The result reports the tail ratio's interval; the value's own interval is not kept.
    t = result.tail_coverage
    return MetricComparison(
        value=t.value,
        value_low=float("nan"),
        value_high=float("nan"),
        baseline=t.baseline,
        ratio=t.ratio,
        low=t.low,
        high=t.high,
        level=t.level,
    )


def _projection(reference: Any, candidate: np.ndarray) -> Projection:
    from detectors.index import ball_membership, build_index

    ref_xy, cand_xy = project_2d(reference.vectors_, candidate)
    # Tail points "covered" as the coverage metric counts them: a candidate inside the ball.
    cand_index = build_index(candidate, "exact")
    hits = ball_membership(cand_index, candidate, reference.vectors_, reference.radii_)
    return Projection(
        reference_xy=ref_xy,
        candidate_xy=cand_xy,
        tail_mask=np.asarray(reference.tail_mask_, dtype=bool),
        tail_covered=np.asarray(hits.getnnz(axis=1) > 0),
    )


def report_data(
    result: AuditResult,
    *,
    reference_name: str,
    candidate_name: str,
    reference_size: int | None = None,
    extras: dict[str, Any] | None = None,
) -> ReportData:
    extras = extras or {}
    fc = result.forecast
    plan = result.plan
    plan_text = f"{plan.policy}" + (f" beta={plan.beta:g}" if plan.policy == "keep-real" else "")
    series = [
        ForecastSeries(
            label=f"candidate, plan {plan_text}", trajectory=fc.trajectories[FORECAST_METRIC]
        ),
        ForecastSeries(label="fresh human data, same plan", trajectory=fc.human[FORECAST_METRIC]),
    ]
    top_up_fc = extras.get("top_up_forecast")
    if top_up_fc is not None and result.top_up is not None:
        series.append(
            ForecastSeries(
                label=f"candidate + top-up {result.top_up.documents_per_generation:,} "
                f"human docs/generation",
                trajectory=top_up_fc.trajectories[FORECAST_METRIC],
            )
        )
    facts = [
        ("audit id", result.id),
        ("corpus size", f"{result.corpus_size:,} documents"),
        (
            "plan",
            f"{plan.generations} generations of {plan.samples:,} samples, {plan_text}, "
            f"{plan.seeds} seeds",
        ),
        ("forecast method", fc.method),
        ("policy", ", ".join(f"{k}={v}" for k, v in result.policy.model_dump().items())),
    ]
    if result.top_up is not None:
        t, i = result.top_up, result.top_up.achieved_interval
        interval = "" if i is None else f" ({i.level:.0%} interval {i.low:.2f}-{i.high:.2f})"
        # The verdict's reading of the search (service.policy), not a second copy of its rule.
        codes = {r.code for r in result.verdict.reasons}
        if t.feasible:
            status = ""
        elif "top-up-within-noise" in codes:
            status = ": the target is within the forecast's noise, not shown"
        else:
            status = ": NOT feasible"
        facts.append(
            (
                "top-up search",
                f"beta={t.beta:.3f} ({t.documents_per_generation:,} docs/generation), "
                f"reaches {t.achieved_relative:.2f}{interval} of human tail coverage "
                f"(target {t.target:.2f}){status}",
            )
        )
    facts += [("note", n) for n in result.notes]
    synthetic = result.synthetic_fraction
    if synthetic is not None:
        facts += [("estimator note", n) for n in synthetic.notes]
        if synthetic.visibility:
            facts.append(("what it can see", visibility_line(synthetic.visibility)))
    reference = extras.get("reference")
    candidate = extras.get("candidate_vectors")
    c = result.coverage
    return ReportData(
        title=f"collapse-guard audit of {candidate_name}",
        created=result.created,
        decision=result.verdict.decision,
        reasons=[r.message for r in result.verdict.reasons],
        top_up_documents=result.verdict.top_up_documents or None,
        reference_name=reference_name,
        reference_size=reference_size
        if reference_size is not None
        else (len(reference) if reference is not None else 0),
        candidate_name=candidate_name,
        candidate_size=result.corpus_size,
        sample_size=result.sample_size,
        model=result.model,
        synthetic_fraction=None if synthetic is None else synthetic.estimate,
        synthetic_fraction_limit=result.policy.max_synthetic_fraction,
        metrics=[
            ("tail coverage", _tail_metric(result)),
            ("coverage", c.coverage),
            ("precision", c.precision),
            ("recall", c.recall),
            ("density", c.density),
        ],
        modes=list(result.modes),
        projection=None
        if reference is None or candidate is None
        else _projection(reference, candidate),
        forecast=series,
        # No limit line: the policy's limit is relative to the human-start line drawn beside.
        forecast_limit=None,
        facts=facts,
    )
