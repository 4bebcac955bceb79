"""Synthetic fraction from curvature scores: a two-component mixture of the reference's human
scores and generated examples' scores, each free to move within measured bounds.

Why this shape (measured on real text, README "Synthetic fraction under domain shift"):
- Human text of other outlets, years and genres scores like the reference (BBC -1.74, ABC news
  -1.95, Wikipedia -1.95, Usenet -1.93, sd 1.1-1.3 each): the human side transfers, up to a small
  shift and spread change, profiled out within `human_shifts` x `human_scales`.
- Generated text keeps its shape across prompts and outlets (SmolLM2 continuations with their
  human prompt inside: +0.3 to +1.1, sd 1.6, a long human-like lower tail from the prompt) but its
  location moves with the source: the examples' score distribution, moved within
  `generated_shifts` x `generated_scales`, is the generated side. A Gaussian in its place read
  the lower tail as human and under-counted by 0.2 at half generated.
- Both sides are kernel density estimates of their samples at the candidate's own lengths (a
  score over few tokens spreads more), so no shape is assumed that the text does not have.

The share's interval is the profile-likelihood (Wilks) interval, every nuisance combination on a
grid (exact, no local optima), widened in quadrature by the bootstrap spread of the point over
resamples of the reference and the examples: the component shapes are estimated from finite
samples, and that is uncertainty too. A pure human candidate gets [0, something > 0].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from detectors.errors import InsufficientDataError, NotFittedError
from detectors.results import Estimate
from detectors.synthetic.curvature import CurvatureProfiles

MIN_SCORED = 20
METHOD = "curvature-mixture"
GRID = np.linspace(0.0, 1.0, 51)  # shares in steps of 0.02


@dataclass(frozen=True)
class CurvatureFit:
    """The estimate and what it was read from (what a report can show)."""

    estimate: Estimate
    human_median: float  # the reference's score median at the candidate's lengths
    generated_median: float  # the examples'
    human_shift: float  # the nuisance values at the point
    generated_shift: float
    bootstrap_sd: float  # spread of the point over resampled components
    n_scored: int
    n_reference: int
    n_examples: int


class _Density:
    """A kernel density of scores, evaluated after a shift and a spread change about its median;
    1% of a wide normal keeps a lone outlier from deciding the likelihood."""

    def __init__(self, scores: np.ndarray) -> None:
        y = scores[np.isfinite(scores)]
        self.median = float(np.median(y))
        sd = float(y.std()) or 1.0
        bandwidth = 1.06 * sd * len(y) ** -0.2  # Silverman's rule
        self.u = np.linspace(y.min() - 6 * sd, y.max() + 6 * sd, 1500)
        kde = norm.pdf((self.u[:, None] - y[None, :]) / bandwidth).mean(1) / bandwidth
        self.f = 0.99 * kde + 0.01 * norm.pdf(self.u, y.mean(), 3 * sd)

    def log_pdf(self, x: np.ndarray, shift: float, scale: float) -> np.ndarray:
        u = (x - shift - self.median) / scale + self.median
        return np.log(np.interp(u, self.u, self.f, left=1e-300, right=1e-300)) - np.log(scale)


class CurvatureFractionEstimator:
    """Share of a candidate that is generated, from per-document curvature scores.

    Parameters
    ----------
    level : nominal coverage of the interval.
    human_shifts, human_scales : how far the human side may move and stretch (score units;
        (low, high), `steps` values each).
    generated_shifts, generated_scales : the same for the generated side when its examples are
        of another generator or source than the candidate's (reference-only mode).
    labelled_shifts : the generated side's range when the examples are of the candidate's own
        generator (labelled mode).
    bootstrap : resamples of reference and examples for the component part of the interval.
    length_draws : scores per reference or example document, each at a length drawn from the
        candidate's.
    random_state : seeds the length draws and the bootstrap.
    """

    def __init__(
        self,
        *,
        level: float = 0.9,
        human_shifts: tuple[float, float] = (-0.5, 0.2),
        human_scales: tuple[float, float] = (0.9, 1.1),
        generated_shifts: tuple[float, float] = (-0.5, 1.0),
        generated_scales: tuple[float, float] = (0.9, 1.1),
        labelled_shifts: tuple[float, float] = (-0.2, 0.2),
        steps: tuple[int, int, int, int] = (8, 3, 7, 3),
        bootstrap: int = 8,
        length_draws: int = 3,
        random_state: int = 0,
    ) -> None:
        self.level = level
        self.human_shifts = human_shifts
        self.human_scales = human_scales
        self.generated_shifts = generated_shifts
        self.generated_scales = generated_scales
        self.labelled_shifts = labelled_shifts
        self.steps = steps
        self.bootstrap = bootstrap
        self.length_draws = length_draws
        self.random_state = random_state

    def fit(
        self, reference: CurvatureProfiles, examples: CurvatureProfiles
    ) -> CurvatureFractionEstimator:
        """Keep the reference's (human) and the generated examples' running sums."""
        for what, profiles in (("reference", reference), ("generated examples", examples)):
            if int((profiles.positions > 0).sum()) < MIN_SCORED:
                raise InsufficientDataError(
                    f"the {what} have {int((profiles.positions > 0).sum())} scorable documents, "
                    f"need {MIN_SCORED}"
                )
        self.reference_ = reference.take(np.flatnonzero(reference.positions > 0))
        self.examples_ = examples.take(np.flatnonzero(examples.positions > 0))
        return self

    def scores_at(self, profiles: CurvatureProfiles, positions: np.ndarray) -> np.ndarray:
        """Scores of `profiles` at lengths drawn from `positions` (the candidate's)."""
        rng = np.random.default_rng([self.random_state, 11])
        draws = [
            profiles.at(rng.choice(positions, len(profiles))) for _ in range(self.length_draws)
        ]
        out = np.concatenate(draws)
        return out[np.isfinite(out)]

    def estimate(self, candidate: CurvatureProfiles, *, labelled: bool = False) -> CurvatureFit:
        """The synthetic share of the scored candidate documents with its interval. `labelled`:
        the examples are of the generator the candidate may contain (its own sampling and
        source), so the generated side moves less."""
        if not hasattr(self, "reference_"):
            raise NotFittedError("call fit(reference_profiles, example_profiles) first")
        scores = candidate.final()
        keep = np.isfinite(scores)
        if keep.sum() < MIN_SCORED:
            raise InsufficientDataError(
                f"{int(keep.sum())} candidate documents could be scored, need {MIN_SCORED}"
            )
        x, positions = scores[keep], candidate.positions[keep]
        human = self.scores_at(self.reference_, positions)
        generated = self.scores_at(self.examples_, positions)
        g_shifts = self.labelled_shifts if labelled else self.generated_shifts
        profile, at_best = self._profile(x, human, generated, g_shifts)
        best = int(np.argmax(profile))
        cut = profile[best] - chi2.ppf(self.level, 1) / 2
        inside = np.flatnonzero(profile >= cut)
        low, high = float(GRID[inside[0]]), float(GRID[inside[-1]])
        point = float(GRID[best])
        # Component uncertainty: the point's spread over resampled reference and examples.
        rng = np.random.default_rng([self.random_state, 13])
        points = []
        for _ in range(self.bootstrap):
            h = human[rng.integers(0, len(human), len(human))]
            g = generated[rng.integers(0, len(generated), len(generated))]
            points.append(float(GRID[int(np.argmax(self._profile(x, h, g, g_shifts)[0]))]))
        spread = float(np.std(points, ddof=1)) if len(points) > 1 else 0.0
        z = float(norm.ppf(0.5 + self.level / 2))
        low = max(0.0, point - float(np.hypot(point - low, z * spread)))
        high = min(1.0, point + float(np.hypot(high - point, z * spread)))
        return CurvatureFit(
            estimate=Estimate(
                point=point,
                low=low,
                high=high,
                level=self.level,
                method=METHOD,
                mode="labelled" if labelled else "reference-only",
            ),
            human_median=float(np.median(human)),
            generated_median=float(np.median(generated)),
            human_shift=at_best[0],
            generated_shift=at_best[1],
            bootstrap_sd=spread,
            n_scored=len(x),
            n_reference=len(self.reference_),
            n_examples=len(self.examples_),
        )

    def _profile(
        self,
        x: np.ndarray,
        human: np.ndarray,
        generated: np.ndarray,
        g_shifts: tuple[float, float],
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Log-likelihood of each share in GRID, maximised over every nuisance combination on
        the grid; and the (human, generated) shifts at the best share."""
        n_hs, n_hc, n_gs, n_gc = self.steps
        h_grid = [
            (s, c)
            for s in np.linspace(*self.human_shifts, n_hs)
            for c in np.linspace(*self.human_scales, n_hc)
        ]
        g_grid = [
            (s, c)
            for s in np.linspace(*g_shifts, n_gs)
            for c in np.linspace(*self.generated_scales, n_gc)
        ]
        dh, dg = _Density(human), _Density(generated)
        lh = np.array([dh.log_pdf(x, s, c) for s, c in h_grid])  # [nh, n]
        lg = np.array([dg.log_pdf(x, s, c) for s, c in g_grid])  # [ng, n]
        # In probability space, scaled per document (no underflow): (1-a) h + a g is a
        # multiply-add, far cheaper than logaddexp over every combination and share.
        top = np.maximum(lh.max(0), lg.max(0))
        ph, pg = np.exp(lh - top)[:, None, :], np.exp(lg - top)[None, :, :]
        offset = float(top.sum())
        profile = np.empty(len(GRID))
        arg = np.zeros((len(GRID), 2), dtype=np.int64)
        for i, a in enumerate(GRID):
            mixed = (1 - a) * ph + a * pg
            totals = np.log(np.maximum(mixed, 1e-300)).sum(-1) + offset
            flat = int(np.argmax(totals))
            profile[i] = totals.flat[flat]
            arg[i] = np.unravel_index(flat, totals.shape)
        best = int(np.argmax(profile))
        return profile, (float(h_grid[arg[best, 0]][0]), float(g_grid[arg[best, 1]][0]))
