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
samples, and that is uncertainty too. In reference-only mode it is then joined with the
interval the data give when the generator's spread is 0.6x the examples' (low temperature, a
repetition penalty): a held-out generator of that kind at 0.8 read 1.00 [0.90, 1.00] in 8 of 12
draws before the band (benchmarks/curvature_bias.py). A pure human candidate gets
[0, something > 0].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, norm

from detectors.errors import InsufficientDataError, NotFittedError
from detectors.results import Estimate
from detectors.synthetic.curvature import ScoreProfiles

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
    # Share of the candidate in excess in either tail beyond what the fitted mixture predicts:
    # text less probable than the human side allows (garbled, high-temperature sampling, not
    # prose) or more predictable than the generated side allows. Its origin is unknown, so the
    # interval spans both readings of it (Manski bounds); the point assumes it is like the rest.
    unexplained: float
    # True when that share is material, so the interval's upper end was opened to 1: how much of
    # text neither side describes reads as human, the data cannot bound.
    upper_unbounded: bool
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


def _moved(scores: np.ndarray, shift: float, scale: float) -> np.ndarray:
    """Scores stretched about their median and shifted: the move `_Density.log_pdf` undoes."""
    median = float(np.median(scores))
    return (scores - median) * scale + median + shift


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
    spread_ratios : in reference-only mode, other spreads the candidate's generator may have
        relative to the examples' (a generator sampled at low temperature or with a repetition
        penalty scores in a band 0.6x as wide). The likelihood cannot tell a narrow generator
        plus human text from a wide one alone, so the interval is the union of the intervals
        with the generated side held at each of these spreads: it admits what the data cannot
        decide instead of picking one reading confidently.
    material_unexplained : an excess of unexplained scores (`CurvatureFit.unexplained`, already
        less its sampling error) at least this large is a component neither side describes; its
        part inside the human range is not identifiable, so the interval's upper end becomes 1.
        Below it the tail documents alone count both ways (Manski bounds): a few percent of
        odd documents (tables, boilerplate) should not blank every audit of real web text.
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
        spread_ratios: tuple[float, ...] = (0.6,),
        material_unexplained: float = 0.05,
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
        self.spread_ratios = spread_ratios
        self.material_unexplained = material_unexplained
        self.steps = steps
        self.bootstrap = bootstrap
        self.length_draws = length_draws
        self.random_state = random_state

    def fit(self, reference: ScoreProfiles, examples: ScoreProfiles) -> CurvatureFractionEstimator:
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

    def scores_at(self, profiles: ScoreProfiles, positions: np.ndarray) -> np.ndarray:
        """Scores of `profiles` at lengths drawn from `positions` (the candidate's)."""
        rng = np.random.default_rng([self.random_state, 11])
        draws = [
            profiles.at(rng.choice(positions, len(profiles))) for _ in range(self.length_draws)
        ]
        out = np.concatenate(draws)
        return out[np.isfinite(out)]

    def estimate(self, candidate: ScoreProfiles, *, labelled: bool = False) -> CurvatureFit:
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
        g_scales = self.generated_scales
        profile, at_best = self._profile(x, human, generated, g_shifts, g_scales)
        best = int(np.argmax(profile))
        low, high = self._wilks(profile)
        point = float(GRID[best])
        # Component uncertainty: the point's spread over resampled reference and examples.
        rng = np.random.default_rng([self.random_state, 13])
        points = []
        for _ in range(self.bootstrap):
            h = human[rng.integers(0, len(human), len(human))]
            g = generated[rng.integers(0, len(generated), len(generated))]
            boot = self._profile(x, h, g, g_shifts, g_scales)[0]
            points.append(float(GRID[int(np.argmax(boot))]))
        spread = float(np.std(points, ddof=1)) if len(points) > 1 else 0.0
        z = float(norm.ppf(0.5 + self.level / 2))
        low = max(0.0, point - float(np.hypot(point - low, z * spread)))
        high = min(1.0, point + float(np.hypot(high - point, z * spread)))
        if not labelled:
            # The generator's spread is not identifiable from the mixture: widen to every
            # share some plausible spread supports (a sensitivity band, not a likelihood).
            for ratio in self.spread_ratios:
                other = self._profile(x, human, generated, g_shifts, (ratio, ratio))[0]
                other_low, other_high = self._wilks(other)
                low, high = min(low, other_low), max(high, other_high)
        unexplained, in_tails = self._unexplained(x, human, generated, point, at_best)
        if unexplained > 0:
            # The mixture fails in its tails, so nothing there is known to be either side:
            # every tail document counts both ways, not only the excess.
            low, high = (1 - in_tails) * low, (1 - in_tails) * high + in_tails
        upper_unbounded = unexplained >= self.material_unexplained
        if upper_unbounded:
            # A third component of material size whose shape is unknown: how much of it lies
            # inside the human range, where it reads as human, the data cannot bound (SmolLM2
            # at temperature 1.2: a quarter of it; 0.8 generated read [0.00, 0.62] without this).
            high = 1.0
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
            generated_shift=at_best[2],
            unexplained=unexplained,
            upper_unbounded=upper_unbounded,
            bootstrap_sd=spread,
            n_scored=len(x),
            n_reference=len(self.reference_),
            n_examples=len(self.examples_),
        )

    def detectable_share(
        self,
        family: ScoreProfiles,
        positions: np.ndarray,
        n: int,
        *,
        labelled: bool = False,
        power: float = 0.9,
    ) -> float | None:
        """The smallest share of text scoring like `family` that an audit of `n` scored
        documents (of lengths like `positions`) would find `power` of the time: its interval's
        lower end above 0. None: no share of it, not even all of the candidate.

        From the expected log-likelihood, not by simulation: a candidate drawn from human text
        and `family` at share s gives the Wilks test of "no generated text" a noncentrality of
        2 n (max_a E[l(a)] - E[l(0)]), nuisances profiled as in `estimate`; the test finds the
        family `power` of the time once that reaches (z_power + sqrt(chi2 cut))^2. The
        interval's widening for the components' own uncertainty is not counted, so an audit
        needs somewhat more than this share: it is a lower bound on what can be missed."""
        if not hasattr(self, "reference_"):
            raise NotFittedError("call fit(reference_profiles, example_profiles) first")
        human = self.scores_at(self.reference_, positions)
        generated = self.scores_at(self.examples_, positions)
        like = self.scores_at(family, positions)
        if len(like) < MIN_SCORED or n < 1:
            return None
        x = np.r_[human, like]
        g_shifts = self.labelled_shifts if labelled else self.generated_shifts
        need = (float(norm.ppf(power)) + float(np.sqrt(chi2.ppf(self.level, 1)))) ** 2

        def noncentrality(share: float) -> float:
            w = np.r_[
                np.full(len(human), (1 - share) / len(human)), np.full(len(like), share / len(like))
            ]
            profile = self._profile(x, human, generated, g_shifts, self.generated_scales, w)[0]
            return 2 * n * float(profile.max() - profile[0])

        shares = GRID[1:]
        if noncentrality(float(shares[-1])) < need:
            return None
        lo, hi = 0, len(shares) - 1  # the answer is in shares[lo..hi], and shares[hi] detects
        while lo < hi:
            mid = (lo + hi) // 2
            if noncentrality(float(shares[mid])) >= need:
                hi = mid
            else:
                lo = mid + 1
        return float(shares[hi])

    def _unexplained(
        self,
        x: np.ndarray,
        human: np.ndarray,
        generated: np.ndarray,
        share: float,
        nuisance: tuple[float, float, float, float],
        tail: float = 0.05,
    ) -> tuple[float, float]:
        """Candidate share beyond the fitted mixture's outer 5% tails (below the human side's,
        above the generated side's) in excess of what the mixture predicts there, less its
        sampling error (each tail one-sided at half the interval's miss rate): about 0 when
        the mixture explains x. And the share in those tails at all."""
        hs, hc, gs, gc = nuisance
        h, g = _moved(human, hs, hc), _moved(generated, gs, gc)
        low_cut, high_cut = np.quantile(h, tail), np.quantile(g, 1 - tail)
        z = float(norm.ppf(1 - (1 - self.level) / 2))
        excess, in_tails = 0.0, 0.0
        for observed, expected in (
            (np.mean(x < low_cut), (1 - share) * tail + share * np.mean(g < low_cut)),
            (np.mean(x > high_cut), share * tail + (1 - share) * np.mean(h > high_cut)),
        ):
            se = np.sqrt(expected * (1 - expected) / len(x))
            excess += max(0.0, float(observed - expected - z * se))
            in_tails += float(observed)
        return min(1.0, excess), min(1.0, in_tails)

    def _wilks(self, profile: np.ndarray) -> tuple[float, float]:
        """The shares whose profile log-likelihood is within the chi-square cut of the best."""
        inside = np.flatnonzero(profile >= profile.max() - chi2.ppf(self.level, 1) / 2)
        return float(GRID[inside[0]]), float(GRID[inside[-1]])

    def _profile(
        self,
        x: np.ndarray,
        human: np.ndarray,
        generated: np.ndarray,
        g_shifts: tuple[float, float],
        g_scales: tuple[float, float],
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """Log-likelihood of each share in GRID, maximised over every nuisance combination on
        the grid; and the (human shift, human scale, generated shift, generated scale) at the
        best share. `weights` (summing to 1): the expected log-likelihood per document of a
        candidate drawn from the weighted points `x` instead (`detectable_share`)."""
        n_hs, n_hc, n_gs, n_gc = self.steps
        n_gc = 1 if g_scales[0] == g_scales[1] else n_gc
        h_grid = [
            (s, c)
            for s in np.linspace(*self.human_shifts, n_hs)
            for c in np.linspace(*self.human_scales, n_hc)
        ]
        g_grid = [
            (s, c) for s in np.linspace(*g_shifts, n_gs) for c in np.linspace(*g_scales, n_gc)
        ]
        dh, dg = _Density(human), _Density(generated)
        lh = np.array([dh.log_pdf(x, s, c) for s, c in h_grid])  # [nh, n]
        lg = np.array([dg.log_pdf(x, s, c) for s, c in g_grid])  # [ng, n]
        # In probability space, scaled per document (no underflow): (1-a) h + a g is a
        # multiply-add, far cheaper than logaddexp over every combination and share.
        top = np.maximum(lh.max(0), lg.max(0))
        ph, pg = np.exp(lh - top)[:, None, :], np.exp(lg - top)[None, :, :]
        w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
        offset = float(top @ w)
        profile = np.empty(len(GRID))
        arg = np.zeros((len(GRID), 2), dtype=np.int64)
        for i, a in enumerate(GRID):
            mixed = (1 - a) * ph + a * pg
            totals = np.log(np.maximum(mixed, 1e-300)) @ w + offset
            flat = int(np.argmax(totals))
            profile[i] = totals.flat[flat]
            arg[i] = np.unravel_index(flat, totals.shape)
        best = int(np.argmax(profile))
        (hs, hc), (gs, gc) = h_grid[arg[best, 0]], g_grid[arg[best, 1]]
        return profile, (float(hs), float(hc), float(gs), float(gc))
