"""A forecast's plan and result models, apart from the numerical stack that computes them.

`service.schemas` and `service.client` import these; a CLI process that only talks to a running
service (`collapse-guard audit --url`) then starts without scikit-learn and the simulator
(about a second of imports). `simulations.forecast` computes them and re-exports them.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import ConfigDict, Field

from detectors.errors import InvalidInputError
from detectors.results import Estimate
from simulations.results import Band, Frozen, Trajectory, number


class Plan(Frozen):
    """A retraining plan: how many generations, how much data each, and the mixing policy."""

    # Strict: a request's `false` or `"5"` is an error, not silently 0.0 or 5 (REST input).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    generations: int = Field(default=5, ge=1, le=100)
    samples: int = Field(default=1000, ge=50, le=100_000)
    policy: Literal["replace", "keep-real", "accumulate"] = "replace"
    beta: float = Field(default=0.0, ge=0.0, le=1.0)
    seeds: int = Field(default=8, ge=2, le=256)

    def model_post_init(self, _context: object) -> None:
        if self.policy != "keep-real" and self.beta != 0.0:
            raise InvalidInputError(
                f"beta (fresh human fraction) only applies to policy 'keep-real'; got beta="
                f"{self.beta} with policy {self.policy!r}"
            )


class Forecast(Frozen):
    """Index 0 of every trajectory is the candidate as audited; index g >= 1 is the data the
    generation-g model produces under the plan. `human` is the same plan started from fresh
    human data with the same seeds: even human data degrades under recursion (finite samples),
    so a candidate is judged against what human data would reach, not against 1.0."""

    plan: Plan
    method: str  # "embedding-gmm" or "what-if"
    trajectories: dict[str, Trajectory]
    human: dict[str, Trajectory]
    elapsed_seconds: float

    def final(self, metric: str = "tail_coverage") -> Band:
        return self.trajectories[metric].bands[-1]

    def relative_final(self, metric: str = "tail_coverage") -> float:
        """Final-generation mean of `metric` / the human start's (1.0 = no worse than human)."""
        human = number(self.human[metric].bands[-1].mean)
        return number(self.final(metric).mean) / human if human > 0 else math.nan

    def relative_final_errors(self, metric: str = "tail_coverage") -> tuple[float, float]:
        """The relative standard errors (sem / mean) of the candidate's and the human start's
        final chain means: combined in quadrature they are the ratio's (delta method; the two
        run on separate random streams, so as independent). (0, 0) when a mean is not positive:
        there is no ratio to widen then."""
        cand, human = self.final(metric), self.human[metric].bands[-1]
        if not (number(cand.mean) > 0 and number(human.mean) > 0):
            return 0.0, 0.0
        return (
            number(cand.sem) / number(cand.mean),
            number(human.sem) / number(human.mean),
        )

    def relative_final_estimate(
        self, metric: str = "tail_coverage", level: float = 0.9
    ) -> Estimate | None:
        """`relative_final` with its interval over the chains: how far the forecast's own noise
        (finite samples, a few seeds, rounding the recursion amplifies) leaves the ratio open.
        Student's t with Welch-Satterthwaite degrees of freedom over `relative_final_errors`:
        two seeds give a wide interval, as they should (their standard error is itself a
        guess). None when the ratio is undefined (no finite final chain, or a human start
        whose final mean is not positive)."""
        from scipy.stats import t as student_t

        point = self.relative_final(metric)
        if not math.isfinite(point):
            return None
        method = "ratio of chain means, delta method, Student t"
        a, b = self.relative_final_errors(metric)
        n_cand, n_human = self.final(metric).n, self.human[metric].bands[-1].n
        if not (math.isfinite(a + b) and min(n_cand, n_human) > 1):
            # One chain: no spread to measure, the point alone decides.
            return Estimate(point=point, low=point, high=point, level=level, method=method)
        if a + b == 0:  # chains that all agree: nothing to widen by
            return Estimate(point=point, low=point, high=point, level=level, method=method)
        df = (a**2 + b**2) ** 2 / (a**4 / (n_cand - 1) + b**4 / (n_human - 1))
        half = float(student_t.ppf((1 + level) / 2, df)) * point * math.hypot(a, b)
        return Estimate(
            point=point, low=max(point - half, 0.0), high=point + half, level=level, method=method
        )


class TopUp(Frozen):
    """The target is relative: final tail coverage >= target x that of fresh human data under
    the original plan."""

    beta: float  # smallest fresh-human fraction per generation meeting the target
    documents_per_generation: int  # round(beta * samples): the N a verdict reports
    target: float
    feasible: bool  # False when even max_beta misses the target
    achieved: Band  # final-generation tail coverage ratio under `beta`
    achieved_relative: float  # achieved mean / the human start's final mean under the plan
    forecast: Forecast
