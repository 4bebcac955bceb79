"""The collapse recursion in a corpus's embedding space: a Gaussian mixture refitted on its own
samples each generation, measured against a human reference with the detectors' metrics.

Everything happens in a PCA projection fitted on the reference (sentence embeddings are 384-d;
a mixture with full covariances needs far fewer dimensions to be estimable from ~1000 points).
The reference's k-NN radii and tail mask are recomputed in that space, so precision, recall and
tail coverage are the same PRDC quantities as in an audit, only on the projected vectors. Each
metric is reported as a ratio to the same metric of a fresh human sample of the same size drawn
from the reference's held-out part: 1.0 means "as good as human data at this size".
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Self

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from detectors.coverage import memberships, prdc_from_memberships
from detectors.errors import InsufficientDataError, InvalidInputError, NotFittedError
from detectors.index import as_matrix, build_index, knn_radii
from simulations.models.em import fit_full_mixture
from simulations.models.gaussian import gaussian_w2_squared

if TYPE_CHECKING:
    import faiss

    from detectors.reference import ReferenceCorpus

METRICS = ("tail_coverage", "recall", "precision", "coverage")
SCORED = (*METRICS, "divergence")  # what `EmbeddingMixtureModel.score` reports
# What each trajectory is, and how far it is checked against real recursive retraining
# (benchmarks/recursion_truth.py): the retraining error is fitted to tail coverage; recall and
# precision only follow the mixture (README "Recall and precision, measured beside tail coverage").
DESCRIPTIONS = {
    "tail_coverage": "tail coverage / that of a fresh human sample of the same size (checked "
    "against real recursive retraining)",
    "recall": "recall / that of a fresh human sample of the same size (the mixture's; not "
    "validated: real retraining lowered recall of off-topic text further)",
    "precision": "precision / that of a fresh human sample of the same size (the mixture's; not "
    "validated: real retraining raised precision where this lowers it, and in the forecast's "
    "projection human precision is near 1, leaving no room to rise)",
    "coverage": "coverage / that of a fresh human sample of the same size",
    "divergence": "Frechet (Gaussian W2^2) distance to the reference, in PCA space",
}


@dataclass(frozen=True)
class ProjectedReference:
    """The reference, its held-out human part and its tail, in a PCA space fitted on it."""

    core: np.ndarray  # [n, d] reference points the metrics are measured against
    holdout: np.ndarray  # [h, d] human points never in `core`: fresh data and baseline
    tail_mask: np.ndarray  # [n] True for the sparse tail (top-q k-NN radius) in this space
    k: int
    pca: PCA
    mean: np.ndarray
    cov: np.ndarray
    # The core's exact index and k-NN radii: fixed for the reference, so built once here rather
    # than in each of the hundreds of scorings a forecast makes (a third of their cost).
    core_index: faiss.Index = field(compare=False, repr=False)
    core_radii: np.ndarray = field(compare=False, repr=False)
    # Human-baseline metrics per (sample size, seed): every chain and run of a forecast (and every
    # step of a top-up search) compares against the same baseline, so it is computed once.
    baselines: dict[tuple[int, int], dict[str, float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # A forecast's starting samples as measured (`simulations.forecast.score_starts`), keyed by
    # their digest: a top-up search starts every beta from the base forecast's samples.
    scored_starts: OrderedDict[bytes, dict[str, np.ndarray]] = field(
        default_factory=OrderedDict, compare=False, repr=False
    )

    @classmethod
    def build(
        cls, reference: ReferenceCorpus, *, dims: int = 16, max_points: int = 3000, seed: int = 0
    ) -> ProjectedReference:
        core, holdout = reference.vectors_, reference.holdout_
        if len(holdout) < reference.k + 1:
            raise InsufficientDataError(
                f"a forecast needs at least {reference.k + 1} held-out reference documents; "
                f"the reference holds out {len(holdout)}: rebuild it with holdout_fraction > 0"
            )
        rng = np.random.default_rng(seed)
        if len(core) > max_points:  # the metrics' cost grows with the reference size
            core = core[np.sort(rng.choice(len(core), max_points, replace=False))]
        dims = int(min(dims, core.shape[1], len(core) - 1))
        pca = PCA(n_components=dims, random_state=seed).fit(core)
        core_p = pca.transform(core).astype(np.float32)
        index = build_index(core_p, "exact")
        radii = knn_radii(index, core_p, reference.k)
        tail = radii >= np.quantile(radii, 1 - reference.tail_quantile)
        return cls(
            core=core_p,
            holdout=pca.transform(holdout).astype(np.float32),
            tail_mask=tail,
            k=reference.k,
            pca=pca,
            mean=core_p.mean(axis=0),
            cov=np.cov(core_p, rowvar=False),
            core_index=index,
            core_radii=radii,
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # For a worker process (simulations.chain_pool): a FAISS index does not pickle, and
        # rebuilding a flat one over a few thousand points costs milliseconds.
        state = (self.core, self.holdout, self.tail_mask, self.k, self.pca, self.mean, self.cov)
        return (_unpickle_projected, (*state, self.core_radii, dict(self.baselines)))

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return self.pca.transform(vectors).astype(np.float32)

    def raw_metrics(self, points: np.ndarray) -> dict[str, float]:
        # = compute_prdc(self.core, points, k=self.k, tail_mask=self.tail_mask), minus the
        # core's index and radii, which it would rebuild on every call.
        points = as_matrix(points, name="generated points", dim=self.core.shape[1])
        hits = memberships(
            self.core, self.core_index, self.core_radii, points, k=self.k, index="exact"
        )
        out = prdc_from_memberships(*hits, k=self.k, tail_mask=self.tail_mask)
        return {m: float(getattr(out, m)) for m in METRICS}

    def baseline(self, n: int, seed: int) -> dict[str, float]:
        """Metrics of a human sample of size n from the held-out part (computed once)."""
        if (n, seed) not in self.baselines:
            rng = np.random.default_rng([seed, n])
            pick = rng.choice(len(self.holdout), n, replace=n > len(self.holdout))
            self.baselines[(n, seed)] = self.raw_metrics(self.holdout[pick])
        return self.baselines[(n, seed)]

    def divergence(self, points: np.ndarray) -> float:
        cov = np.cov(points, rowvar=False)
        return float(gaussian_w2_squared(self.mean, self.cov, points.mean(axis=0), cov))


def _unpickle_projected(
    core: np.ndarray,
    holdout: np.ndarray,
    tail_mask: np.ndarray,
    k: int,
    pca: PCA,
    mean: np.ndarray,
    cov: np.ndarray,
    core_radii: np.ndarray,
    baselines: dict[tuple[int, int], dict[str, float]],
) -> ProjectedReference:
    return ProjectedReference(
        core,
        holdout,
        tail_mask,
        k,
        pca,
        mean,
        cov,
        build_index(core, "exact"),
        core_radii,
        baselines,
    )


# A chain's first fit is on its starting sample, which is the same in every forecast of a top-up
# search (common random numbers) and in the forecast it refines: fitted once per process. Keyed by
# the data's bytes; at most FIRST_FITS_KEPT kept (one audit needs one per seed).
FIRST_FITS_KEPT = 64
_first_fits: OrderedDict[tuple[int, bytes], GaussianMixture] = OrderedDict()
_first_fits_lock = threading.Lock()


def first_fit(data: np.ndarray, components: int) -> GaussianMixture:
    """The mixture fitted on `data` (kept); a shallow copy, so sampling from it (which sets its
    `random_state`) never touches the kept one."""
    key = (
        components,
        hashlib.blake2b(data.tobytes(), digest_size=16).digest() + repr(data.shape).encode(),
    )
    with _first_fits_lock:
        kept = _first_fits.get(key)
        if kept is not None:
            _first_fits.move_to_end(key)
    if kept is None:
        kept = _fit_mixture(data, components)
        with _first_fits_lock:
            _first_fits[key] = kept
            while len(_first_fits) > FIRST_FITS_KEPT:
                _first_fits.popitem(last=False)
    return copy.copy(kept)


# EM stops when the mean log-likelihood per point gains less than this in an iteration
# (scikit-learn's default). 1e-2 was tried: the mean is known only to its standard error over a
# generation's ~1,000 points (0.1-0.15), and a fit took 12 iterations instead of 38, but the
# forecast's spread over random states rose from 0.025 to 0.036 per candidate (the fits lean more
# on their k-means start) and its error against real retraining grew with it (README "The
# forecast against real retraining"; benchmarks/forecast_noise.py).
EM_TOL = 1e-3


def _fit_mixture(data: np.ndarray, components: int) -> GaussianMixture:
    # A fixed seed per fit keeps a chain reproducible; the data already differ per chain.
    # scikit-learn's EM with all components at once (`simulations.models.em`), 2.6x faster:
    # equal to its fit up to rounding, which the recursion amplifies into seed-like noise
    # (forecasts move by about 0.01-0.03; README "Audit stages").
    return fit_full_mixture(
        data, components, reg_covar=1e-6, max_iter=100, tol=EM_TOL, random_state=0
    )


@dataclass(frozen=True)
class RetrainingError:
    """What a language model's retraining does that a mixture refit alone does not.

    A generation's text is the model's continuation of prompts taken from the starting corpus
    (the paper's set-up), so each output point is pulled towards its prompt's document
    (`anchor`: the weight of a random starting point in the output point) and carries the model's
    own functional error (`spread`: isotropic noise, in units of the reference's per-dimension
    standard deviation in the projection). All 0 is the plain mixture recursion.

    Two further errors were tried against real retraining and are not in the fitted default
    (README "What a concentrating retraining error does"): `concentration` moves each draw that
    share of the way to its mixture component's mean (`toward="component"`: the model under-
    samples its own tails) or to the mixture's mean (`"centre"`: its text turns generic), and
    `spread_of="data"` scales the scatter by the fitted mixture's own standard deviations, not
    the reference's (a narrow model errs narrowly; with spread >= 0.9 it feeds on itself and
    diverges).
    """

    anchor: float = 0.0
    spread: float = 0.0
    concentration: float = 0.0
    toward: Literal["component", "centre"] = "component"
    spread_of: Literal["reference", "data"] = "reference"

    def __post_init__(self) -> None:
        if not (0.0 <= self.anchor < 1.0 and 0.0 <= self.concentration < 1.0):
            raise InvalidInputError(f"anchor and concentration must be in [0, 1), got {self}")
        if self.spread < 0.0:
            raise InvalidInputError(f"spread must be >= 0, got {self}")
        if (self.toward, self.spread_of) not in (
            (t, s) for t in ("component", "centre") for s in ("reference", "data")
        ):
            raise InvalidInputError(
                f"toward must be 'component' or 'centre' and spread_of 'reference' or 'data', "
                f"got {self}"
            )


# Fitted to real recursive training (Kneser-Ney retraining of nine real-text candidates, five
# generations, replace and keep-real 10%: benchmarks/fit_forecast.py; README "The forecast against
# real retraining"), relative to chains started from human text of the candidates' own kind:
# mean absolute error 0.062 on the relative final tail coverage over 18 runs, 0.068 choosing the
# constants without the candidate forecast, against 0.096 for the plain refit (0, 0).
RETRAINING_ERROR = RetrainingError(anchor=0.4, spread=0.6)


class EmbeddingMixtureModel:
    """One chain of the recursion: a GMM (full covariances) fitted on this generation's points.

    `sample_original` draws fresh human points from the held-out reference (with replacement when
    more are asked for than it holds). Scores are ratios to a human sample of the same size.
    The data of the first fit are the chain's starting corpus, the prompts `error.anchor` ties
    every later generation to. `error` defaults to none (the plain refit); `forecast` passes the
    fitted `RETRAINING_ERROR`.
    """

    n_chains = 1

    def __init__(
        self,
        projected: ProjectedReference,
        *,
        components: int = 8,
        baseline_seed: int = 0,
        error: RetrainingError | None = None,
    ) -> None:
        self.projected = projected
        self.components = components
        self._baseline_seed = baseline_seed
        self.error = error or RetrainingError()

    def baseline(self, n: int) -> dict[str, float]:
        return self.projected.baseline(n, self._baseline_seed)

    def sample_original(self, n: int, rng: np.random.Generator) -> np.ndarray:
        hold = self.projected.holdout
        return hold[rng.choice(len(hold), n, replace=n > len(hold))]

    def fit(self, data: np.ndarray) -> Self:
        n = len(data)
        if n < 2 * self.projected.core.shape[1]:
            raise InsufficientDataError(
                f"a generation needs at least {2 * self.projected.core.shape[1]} points to fit "
                f"the mixture, got {n}: raise the plan's samples per generation"
            )
        components = int(min(self.components, max(1, n // (4 * data.shape[1]))))
        if not hasattr(self, "start_"):
            self.start_ = data
            self.gmm_ = first_fit(data, components)
        else:
            self.gmm_ = _fit_mixture(data, components)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not hasattr(self, "gmm_"):
            raise NotFittedError("EmbeddingMixtureModel is not fitted: call fit() first")
        # GaussianMixture.sample draws from its own random_state: hand it one from our stream.
        self.gmm_.random_state = int(rng.integers(2**31 - 1))
        points, labels = self.gmm_.sample(n)
        if self.error.concentration:
            centre = (
                self.gmm_.means_[labels]
                if self.error.toward == "component"
                else self.gmm_.weights_ @ self.gmm_.means_
            )
            points = points - self.error.concentration * (points - centre)
        points = points[rng.permutation(n)]
        # Draws only when a constant is set, so the plain recursion's streams stay as they were.
        if self.error.anchor:
            start = self.start_
            prompts = start[rng.choice(len(start), n, replace=n > len(start))]
            points = self.error.anchor * prompts + (1 - self.error.anchor) * points
        if self.error.spread:
            scale = (
                np.sqrt(np.diag(self.projected.cov))
                if self.error.spread_of == "reference"
                else _mixture_sd(self.gmm_)
            )
            points = points + self.error.spread * scale * rng.standard_normal(points.shape)
        return points.astype(np.float32)

    def concat(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return np.vstack(parts)

    def score(self, samples: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raw = self.projected.raw_metrics(samples)
        base = self.baseline(len(samples))
        out = {m: np.array([raw[m] / base[m] if base[m] > 0 else np.nan]) for m in METRICS}
        out["divergence"] = np.array([self.projected.divergence(samples)])
        return out


def _mixture_sd(gmm: GaussianMixture) -> np.ndarray:
    """Per-dimension standard deviation of a full-covariance mixture (law of total variance)."""
    mean = gmm.weights_ @ gmm.means_
    second = np.einsum("k,kdd->d", gmm.weights_, gmm.covariances_) + gmm.weights_ @ gmm.means_**2
    return np.sqrt(np.clip(second - mean**2, 0.0, None))
