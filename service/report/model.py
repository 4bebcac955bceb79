"""What the report shows, as one frozen model: the audit's numbers plus the display extras.

The audit result itself comes from the service (`service.schemas.AuditResult`); the report also
needs things the JSON result does not carry (the embeddings' 2-D projection, forecast trajectories
under the chosen plan and under the proposed top-up). `ReportData` gathers both so the renderer
depends on one shape, and `service.report.build` fills it from an audit.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from detectors.results import Estimate, MetricComparison, ModeRow
from simulations.results import Trajectory


class Projection(BaseModel):
    """2-D display coordinates of reference and candidate embeddings, with the reference's tail."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    reference_xy: np.ndarray  # [n_reference, 2]
    candidate_xy: np.ndarray  # [n_candidate, 2]
    tail_mask: np.ndarray  # [n_reference] bool: the sparsest reference points
    tail_covered: np.ndarray | None = None  # [n_reference] bool: inside a candidate's k-NN ball

    @field_validator("reference_xy", "candidate_xy")
    @classmethod
    def _two_columns(cls, value: np.ndarray) -> np.ndarray:
        if value.ndim != 2 or value.shape[1] != 2:
            raise ValueError(f"expected [n, 2] coordinates, got shape {value.shape}")
        return value


class ForecastSeries(BaseModel):
    """One plan's forecast of one metric over generations, with its band."""

    model_config = ConfigDict(frozen=True)

    label: str  # e.g. "chosen plan", "with top-up of 1,200 human documents"
    trajectory: Trajectory


class ReportData(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    title: str
    created: str  # ISO timestamp of the audit
    decision: str  # keep | top-up | reject | inconclusive
    reasons: list[str]
    top_up_documents: int | None = None
    reference_name: str
    reference_size: int
    candidate_name: str
    candidate_size: int
    sample_size: int
    model: str
    synthetic_fraction: Estimate | None = None
    synthetic_fraction_limit: float | None = None
    metrics: list[tuple[str, MetricComparison]]  # tail coverage first
    modes: list[ModeRow]
    projection: Projection | None = None
    forecast: list[ForecastSeries] = []
    forecast_limit: float | None = None
    facts: list[tuple[str, str]] = []  # extra "label: value" lines (plan, policy, audit id...)
