"""Frozen result types of the simulator: a band per generation, a trajectory per metric.

Pydantic models, like `detectors.results`, so the service and the CLI return them without a
translation layer; frozen so a computed result cannot be edited.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from pydantic import Field

from detectors.results import Frozen  # the one frozen base of every result model


class Band(Frozen):
    """One metric at one generation, summarised over independent chains (seeds).

    `low`/`high` are the central `level` quantiles of the chains: the spread of outcomes a single
    run may land on. `sem` is the standard error of `mean`, for comparisons with theory.

    `n` counts the chains that gave a finite value. With none (a metric undefined there, say a
    ratio to a baseline of 0) every number is absent (null in JSON); with one, `sem` is: a single
    chain has no spread. Never NaN: JSON has no NaN, and a stored band must read back.
    """

    mean: float | None = Field(description="Mean over the chains; null: no chain was finite")
    median: float | None
    low: float | None
    high: float | None
    sem: float | None = Field(default=None, description="null: fewer than two finite chains")
    level: float = Field(gt=0, lt=1)
    n: int = Field(ge=0, description="Chains with a finite value at this generation")

    @property
    def defined(self) -> bool:
        return self.mean is not None


class Trajectory(Frozen):
    """A metric over generations 0..G (generation 0 = the model fitted on the original data)."""

    metric: str
    description: str
    bands: tuple[Band, ...]
    theory: tuple[float, ...] | None = None  # closed-form expectation per generation, if known
    theory_label: str | None = None
    # Why some generations have no band numbers (`Band.defined` False there); None: all have.
    note: str | None = None

    # Arrays over generations for plotting and arithmetic: NaN where a band is undefined.
    def means(self) -> np.ndarray:
        return _floats(b.mean for b in self.bands)

    def medians(self) -> np.ndarray:
        return _floats(b.median for b in self.bands)

    def lows(self) -> np.ndarray:
        return _floats(b.low for b in self.bands)

    def highs(self) -> np.ndarray:
        return _floats(b.high for b in self.bands)


def _floats(values: Iterable[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def number(value: float | None) -> float:
    """A band's number for arithmetic: NaN where it is absent."""
    return math.nan if value is None else float(value)


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
    undefined = []
    q = ((1 - level) / 2, (1 + level) / 2)
    for g, row in enumerate(values):
        finite = row[np.isfinite(row)]
        if len(finite) == 0:
            undefined.append(g)
            bands.append(
                Band(mean=None, median=None, low=None, high=None, sem=None, level=level, n=0)
            )
            continue
        lo, hi = np.quantile(finite, q)
        sem = float(finite.std(ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else None
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
        note=_undefined_note(metric, undefined, len(values)) if undefined else None,
    )


def _undefined_note(metric: str, generations: list[int], total: int) -> str:
    where = (
        "every generation"
        if len(generations) == total
        else ("generation " + ", ".join(map(str, generations)))
    )
    return f"{metric} is undefined at {where}: no chain gave a finite value"
