"""Synthetic fraction from curvature scores: a two-component mixture whose human side is the
reference's and whose generated side the candidate itself reveals.

Why this shape (measured on real text, README "Synthetic fraction under domain shift"):
- Human text of other outlets, years and genres scores like the reference or lower under the
  scorer (BBC -1.69, ABC news -1.82, Wikipedia -1.77, Usenet -2.41): the human side transfers.
- Generated text does not score alike across generators and sampling settings (the bundled
  SmolLM2 continuations +0.68 with their human prompt inside, others higher): a generated side
  calibrated on the bundled examples would be wrong elsewhere. So it is a free Gaussian, at least
  `separation` above the human mean (else "generated" and "human" are the same thing and the
  share is not identifiable), fitted on the candidate.
- The human side may move by a shift the reference cannot know (another outlet) and the
  reference's own sample is finite: its location and scale are nuisance parameters within bounds
  (`max_shift_up`, `max_shift_down`, `scale_bounds`), profiled out. Shifts towards "human" are
  allowed far; shifts towards "generated" only as far as the measured outlets moved.

The interval is the profile-likelihood interval (Wilks) of the share, so it widens by itself when
the sample cannot separate the two sides, and a pure human candidate gets [0, something > 0],
never [0, 0].

Human reference scores are taken at the candidate's own lengths (a document's score over its
first L tokens, from stored running sums), so short candidates are compared with equally short
human text: a score's spread grows as its length shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import chi2

from detectors.errors import InsufficientDataError, NotFittedError
from detectors.results import Estimate
from detectors.synthetic.curvature import CurvatureProfiles

MIN_SCORED = 20
METHOD = "curvature-mixture"
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class CurvatureFit:
    """The estimate and the fitted mixture at its point (what a report can show)."""

    estimate: Estimate
    human_mean: float  # the reference's, at the candidate's lengths
    human_sd: float
    shift: float  # fitted human-side shift at the point
    generated_mean: float | None  # None when the point is 0 (no generated side to describe)
    generated_sd: float | None
    n_scored: int
    n_reference: int


def _log_normal(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - _LOG_SQRT_2PI


class CurvatureFractionEstimator:
    """Share of a candidate that is generated, from per-document curvature scores.

    Parameters
    ----------
    level : nominal coverage of the interval.
    separation : least distance (in score units) of the generated mean above the human mean.
    max_shift_up, max_shift_down : how far the human side may move towards and away from
        "generated" (score units).
    scale_bounds : how much the human side's spread may change.
    length_draws : reference scores per reference document, each at a length drawn from the
        candidate's.
    random_state : seeds the length draws.
    """

    def __init__(
        self,
        *,
        level: float = 0.9,
        separation: float = 1.0,
        max_shift_up: float = 0.3,
        max_shift_down: float = 1.0,
        scale_bounds: tuple[float, float] = (0.8, 1.5),
        length_draws: int = 3,
        random_state: int = 0,
    ) -> None:
        self.level = level
        self.separation = separation
        self.max_shift_up = max_shift_up
        self.max_shift_down = max_shift_down
        self.scale_bounds = scale_bounds
        self.length_draws = length_draws
        self.random_state = random_state

    def fit(self, reference: CurvatureProfiles) -> CurvatureFractionEstimator:
        """Keep the reference's running sums (human text the scorer never trained on)."""
        scored = reference.positions > 0
        if scored.sum() < MIN_SCORED:
            raise InsufficientDataError(
                f"the reference has {int(scored.sum())} scorable documents, need {MIN_SCORED}"
            )
        self.reference_ = reference.take(np.flatnonzero(scored))
        return self

    def human_scores(self, positions: np.ndarray) -> np.ndarray:
        """Reference scores at lengths drawn from `positions` (the candidate's)."""
        if not hasattr(self, "reference_"):
            raise NotFittedError("call fit(reference_profiles) first")
        rng = np.random.default_rng([self.random_state, 11])
        ref = self.reference_
        draws = [ref.at(rng.choice(positions, len(ref))) for _ in range(self.length_draws)]
        out = np.concatenate(draws)
        return out[np.isfinite(out)]

    def estimate(
        self, candidate: CurvatureProfiles, labelled: CurvatureProfiles | None = None
    ) -> CurvatureFit:
        """The synthetic share of the scored candidate documents with its interval. With
        `labelled` (scores of examples of the generator you fear) the generated side is theirs
        instead of a free Gaussian."""
        scores = candidate.final()
        keep = np.isfinite(scores)
        if keep.sum() < MIN_SCORED:
            raise InsufficientDataError(
                f"{int(keep.sum())} candidate documents could be scored, need {MIN_SCORED}"
            )
        x = scores[keep]
        positions = candidate.positions[keep]
        human = self.human_scores(positions)
        mu_h, sd_h = float(human.mean()), float(human.std(ddof=1))
        generated = None
        if labelled is not None:
            g = labelled.at(
                np.random.default_rng([self.random_state, 12]).choice(positions, len(labelled))
            )
            g = g[np.isfinite(g)]
            if len(g) < MIN_SCORED:
                raise InsufficientDataError(f"{len(g)} labelled examples scored, need {MIN_SCORED}")
            generated = (float(g.mean()), float(g.std(ddof=1)))
        grid = np.linspace(0.0, 1.0, 101)
        profile, params = self._profile(x, grid, mu_h, sd_h, generated)
        best = int(np.argmax(profile))
        cut = profile[best] - chi2.ppf(self.level, 1) / 2
        inside = np.flatnonzero(profile >= cut)
        low, high = (
            _crossing(grid, profile, cut, inside[0], -1),
            _crossing(grid, profile, cut, inside[-1], +1),
        )
        shift, _, g_mean, g_sd = params[best]
        point = float(grid[best])
        mode = "labelled" if labelled is not None else "reference-only"
        return CurvatureFit(
            estimate=Estimate(
                point=point, low=low, high=high, level=self.level, method=METHOD, mode=mode
            ),
            human_mean=mu_h,
            human_sd=sd_h,
            shift=float(shift),
            generated_mean=None if point == 0 else float(g_mean),
            generated_sd=None if point == 0 else float(g_sd),
            n_scored=len(x),
            n_reference=len(self.reference_),
        )

    def _profile(
        self,
        x: np.ndarray,
        grid: np.ndarray,
        mu_h: float,
        sd_h: float,
        generated: tuple[float, float] | None,
    ) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
        """Log-likelihood maximised over the nuisance parameters at each share in `grid`."""
        lo_s, hi_s = np.log(self.scale_bounds[0]), np.log(self.scale_bounds[1])
        bounds = [(-self.max_shift_down, self.max_shift_up), (lo_s, hi_s)]
        if generated is None:
            bounds += [(self.separation, 10.0), (np.log(0.3), np.log(4.0))]

        def unpack(theta: np.ndarray) -> tuple[float, float, float, float]:
            shift, log_scale = theta[0], theta[1]
            if generated is None:
                g_mean, g_sd = mu_h + shift + theta[2], float(np.exp(theta[3]))
            else:
                g_mean, g_sd = generated
            return float(shift), float(sd_h * np.exp(log_scale)), float(g_mean), g_sd

        def negloglik(theta: np.ndarray, a: float) -> float:
            shift, sd, g_mean, g_sd = unpack(theta)
            lh = _log_normal(x, mu_h + shift, sd)
            if a <= 0:
                return -float(lh.sum())
            lg = _log_normal(x, g_mean, g_sd)
            if a >= 1:
                return -float(lg.sum())
            return -float(np.logaddexp(np.log1p(-a) + lh, np.log(a) + lg).sum())

        starts = [np.array([0.0, 0.0] + ([2.0, np.log(1.5)] if generated is None else []))]
        if generated is None:
            starts.append(np.array([0.0, 0.0, 3.5, np.log(1.0)]))
        profile = np.empty(len(grid))
        params: list[tuple[float, float, float, float]] = []
        warm: np.ndarray | None = None
        for i, a in enumerate(grid):
            best_val, best_theta = np.inf, starts[0]
            for start in [*starts, *([warm] if warm is not None else [])]:
                res = minimize(negloglik, start, args=(a,), method="L-BFGS-B", bounds=bounds)
                if res.fun < best_val:
                    best_val, best_theta = float(res.fun), res.x
            warm = best_theta
            profile[i] = -best_val
            params.append(unpack(best_theta))
        return profile, params


def _crossing(grid: np.ndarray, profile: np.ndarray, cut: float, edge: int, step: int) -> float:
    """Where the profile crosses `cut` beyond grid index `edge` (linear interpolation); the grid's
    end when it never does."""
    nxt = edge + step
    if nxt < 0 or nxt >= len(grid):
        return float(grid[edge])
    y0, y1 = profile[edge], profile[nxt]
    t = (y0 - cut) / (y0 - y1) if y0 != y1 else 0.0
    return float(grid[edge] + t * (grid[nxt] - grid[edge]))
