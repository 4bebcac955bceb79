"""Frozen result types of the simulator: a band per generation, a trajectory per metric.

Pydantic models, like `detectors.results`, so the service and the CLI return them without a
translation layer; frozen so a computed result cannot be edited.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from detectors.results import Frozen  # the one frozen base of every result model


class Band(Frozen):
    """One metric at one generation, summarised over independent chains (seeds).

    `low`/`high` are the central `level` quantiles of the chains: the spread of outcomes a single
    run may land on. `sem` is the standard error of `mean`, for comparisons with theory.
    """

    mean: float
    median: float
    low: float
    high: float
    sem: float
    level: float = Field(gt=0, lt=1)
    n: int = Field(ge=1)


class Trajectory(Frozen):
    """A metric over generations 0..G (generation 0 = the model fitted on the original data)."""

    metric: str
    description: str
    bands: tuple[Band, ...]
    theory: tuple[float, ...] | None = None  # closed-form expectation per generation, if known
    theory_label: str | None = None

    def means(self) -> np.ndarray:
        return np.array([b.mean for b in self.bands])

    def medians(self) -> np.ndarray:
        return np.array([b.median for b in self.bands])

    def lows(self) -> np.ndarray:
        return np.array([b.low for b in self.bands])

    def highs(self) -> np.ndarray:
        return np.array([b.high for b in self.bands])


class SimulationResult(Frozen):
    """A simulation run: one trajectory per metric, plus the run's settings."""

    kind: str
    policy: str
    beta: float
    generations: int
    samples: int
    seeds: int
    random_state: int
    trajectories: dict[str, Trajectory]
    settings: dict[str, float | int | str]
    elapsed_seconds: float


def summarise(
    values: np.ndarray,
    *,
    metric: str,
    description: str,
    level: float = 0.9,
    theory: np.ndarray | None = None,
    theory_label: str | None = None,
) -> Trajectory:
    """Bands over chains of a [generations + 1, chains] array (NaN entries are left out)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"expected [generations, chains] values, got shape {values.shape}")
    bands = []
    q = ((1 - level) / 2, (1 + level) / 2)
    for row in values:
        finite = row[np.isfinite(row)]
        if len(finite) == 0:
            nan = float("nan")
            bands.append(Band(mean=nan, median=nan, low=nan, high=nan, sem=nan, level=level, n=1))
            continue
        lo, hi = np.quantile(finite, q)
        sem = float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else math.nan
        bands.append(
            Band(
                mean=float(finite.mean()),
                median=float(np.median(finite)),
                low=float(lo),
                high=float(hi),
                sem=sem,
                level=level,
                n=len(finite),
            )
        )
    return Trajectory(
        metric=metric,
        description=description,
        bands=tuple(bands),
        theory=None if theory is None else tuple(float(t) for t in theory),
        theory_label=theory_label,
    )
