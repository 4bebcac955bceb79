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
        """Log-likelihood maximised over the nuisance parameters at each share in `grid`.

        Expectation / conditional maximisation, vectorised over every (share, start) pair at
        once: the share is held at its grid value, the means are the exact maximiser under the
        box and separation constraints given the spreads, the spreads the clipped weighted RMS
        given the means. Each step cannot lower the likelihood, so several starts and a
        convergence check suffice; a general optimiser per grid point was 100 times slower.
        """
        starts = [(0.0, 2.0, 1.5), (0.0, 3.5, 1.0), (-0.5, 1.5, 0.8)]
        if generated is not None:
            starts = starts[:1]
        a = np.repeat(grid, len(starts))[:, None]  # (rows, 1)
        rows = len(a)
        h_lo, h_hi = mu_h - self.max_shift_down, mu_h + self.max_shift_up
        s_lo, s_hi = sd_h * self.scale_bounds[0], sd_h * self.scale_bounds[1]
        m_h = np.full((rows, 1), mu_h)
        s_h = np.full((rows, 1), sd_h)
        m_g = np.array([mu_h + st[1] for st in starts] * len(grid))[:, None]
        s_g = np.array([st[2] for st in starts] * len(grid))[:, None]
        if generated is not None:
            m_g[:], s_g[:] = generated
        log_a, log_1a = np.log(np.maximum(a, 1e-300)), np.log(np.maximum(1 - a, 1e-300))
        xs = x[None, :]
        eps = 1e-12
        previous = np.full(rows, -np.inf)
        for _ in range(3000):
            lh = log_1a + _log_normal_rows(xs, m_h, s_h)
            lg = log_a + _log_normal_rows(xs, m_g, s_g)
            total = np.logaddexp(lh, lg)
            loglik = total.sum(axis=1)
            r = np.exp(lg - total)  # responsibility of the generated side
            w_h, w_g = (1 - r).sum(1, keepdims=True) + eps, r.sum(1, keepdims=True) + eps
            xh = ((1 - r) * xs).sum(1, keepdims=True) / w_h
            xg = (r * xs).sum(1, keepdims=True) / w_g
            if generated is None:
                m_h, m_g = _constrained_means(
                    xh, xg, w_h / s_h**2, w_g / s_g**2, h_lo, h_hi, self.separation
                )
                s_g = np.clip(np.sqrt((r * (xs - m_g) ** 2).sum(1, keepdims=True) / w_g), 0.3, 4.0)
            else:
                m_h = np.clip(xh, h_lo, h_hi)
            s_h = np.clip(
                np.sqrt(((1 - r) * (xs - m_h) ** 2).sum(1, keepdims=True) / w_h), s_lo, s_hi
            )
            if np.all(loglik - previous < 1e-9):
                break
            previous = loglik
        lh = log_1a + _log_normal_rows(xs, m_h, s_h)
        lg = log_a + _log_normal_rows(xs, m_g, s_g)
        loglik = np.where(
            a[:, 0] <= 0,
            _log_normal_rows(xs, m_h, s_h).sum(1),
            np.where(
                a[:, 0] >= 1, _log_normal_rows(xs, m_g, s_g).sum(1), np.logaddexp(lh, lg).sum(1)
            ),
        ).reshape(len(grid), len(starts))
        best = loglik.argmax(axis=1)
        pick = np.arange(len(grid)) * len(starts) + best
        params = [
            (float(m_h[i, 0] - mu_h), float(s_h[i, 0]), float(m_g[i, 0]), float(s_g[i, 0]))
            for i in pick
        ]
        return loglik.max(axis=1), params


def _log_normal_rows(x: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (x - mean) / sd
    return -0.5 * z * z - np.log(sd) - _LOG_SQRT_2PI


def _constrained_means(
    xh: np.ndarray,
    xg: np.ndarray,
    w_h: np.ndarray,
    w_g: np.ndarray,
    lo: float,
    hi: float,
    separation: float,
) -> tuple[np.ndarray, np.ndarray]:
    """argmin w_h (m_h - xh)^2 + w_g (m_g - xg)^2 with lo <= m_h <= hi, m_g - m_h >= separation.

    A convex problem: the box-only optimum when it keeps the separation, otherwise the optimum on
    the line m_g = m_h + separation (a one-dimensional quadratic, clipped to the box)."""
    m_h = np.clip(xh, lo, hi)
    m_g = xg.copy()
    on_line = m_g - m_h < separation
    line_h = np.clip((w_h * xh + w_g * (xg - separation)) / (w_h + w_g), lo, hi)
    m_h = np.where(on_line, line_h, m_h)
    m_g = np.where(on_line, line_h + separation, m_g)
    return m_h, m_g


def _crossing(grid: np.ndarray, profile: np.ndarray, cut: float, edge: int, step: int) -> float:
    """Where the profile crosses `cut` beyond grid index `edge` (linear interpolation); the grid's
    end when it never does."""
    nxt = edge + step
    if nxt < 0 or nxt >= len(grid):
        return float(grid[edge])
    y0, y1 = profile[edge], profile[nxt]
    t = (y0 - cut) / (y0 - y1) if y0 != y1 else 0.0
    return float(grid[edge] + t * (grid[nxt] - grid[edge]))
