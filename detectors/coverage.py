"""Precision, recall, density, coverage and tail coverage of a candidate against a reference.

Semantics follow the `prdc` package (Naeem et al. 2020; precision/recall of Kynkäänniemi et al.
2019): a real point's ball has the radius of its k-th nearest real neighbour, a fake point's ball
that of its k-th nearest fake neighbour, membership is strict (<).

All four metrics come from a sparse membership matrix found with FAISS (`ball_membership`) and
one flag per real point:
  B[i, j] = fake j lies in real i's ball   -> precision (columns hit), density (column counts),
                                              coverage (rows hit), tail coverage (tail rows hit)
  recalled[i] = real i lies in some fake's ball -> recall
so memory is the number of pairs inside the real balls plus one flag per real point, never
n_real x n_fake. When the fakes are few against many real points (an audit's sample against a
large reference), the flags come from every real-fake distance, block by block
(`covered_by_balls`): a fake's ball then holds many real points, which a search from the fake
would have to enumerate. Small exact sets (a few million pairs: a reference of a few thousand
documents, the forecast's recursion) take both from one dense distance matrix a block at a time
(`dense_memberships`), the same flags without hundreds of k-doubling searches.

Coverage depends on the candidate's size, so `coverage_report` puts every figure beside the same
figure for a human sample of the same size drawn from the reference's held-out part, and bootstraps
their ratio.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import faiss
import numpy as np
import scipy.sparse as sp

from detectors.errors import InsufficientDataError, InvalidInputError
from detectors.index import (
    EXACT_THRESHOLD,
    Search,
    as_matrix,
    ball_membership,
    build_index,
    covered_by_balls,
    dense_memberships,
    knn_radii,
    local_search,
    resolve_kind,
)
from detectors.modes import mode_table
from detectors.results import PRDC, CoverageReport, MetricComparison

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus


# At least this many real points per fake point: the recall flags are computed from distances.
FEW_FAKES_RATIO = 16
# Up to this many real x fake pairs, both sides come from dense distances (`dense_memberships`):
# every audit against a reference of a few thousand documents, and every scoring of the
# forecast's recursion (hundreds per audit, where k-doubling searches were 40% of its time).
DENSE_PAIRS = 2**23


def memberships(
    real: np.ndarray,
    real_index: faiss.Index,
    real_radii: np.ndarray,
    fake: np.ndarray,
    *,
    k: int,
    index: str,
    search: Search = local_search,
    dense_pairs: int = DENSE_PAIRS,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """B (real x fake) and the real points' `recalled` flags described above. `search` runs the
    FAISS searches (local, or `RaySearch` on a cluster: the same results); the flags of few
    fakes against many real points are computed here, by distances (`covered_by_balls`), and
    both sides of small exact sets from one distance matrix (`dense_memberships`, at most
    `dense_pairs` pairs): the same flags either way."""
    # Few fakes against many real points (an audit's sample against a large reference): each
    # fake's ball holds many real points, which a search from the fake would enumerate (k
    # doubling into the hundreds of thousands). Then the recall flags come from distances, and
    # the fake side gets an exact index (cheap at that size; an approximate one misses
    # neighbours, inflating the fake radii that the flags now test exactly).
    few = len(real) >= FEW_FAKES_RATIO * len(fake) and len(fake) <= EXACT_THRESHOLD
    fake_kind = "exact" if few else resolve_kind(index, len(fake))  # type: ignore[arg-type]
    # Only where both sides are searched exactly: an approximate index's errors on the two
    # sides partly cancel, and exact distances on one side alone would move the metrics.
    # And only for local searches: an engine that searches elsewhere (Ray) keeps its searches.
    dense = (
        search is local_search
        and len(real) * len(fake) <= dense_pairs
        and fake_kind == "exact"
        and isinstance(real_index, faiss.IndexFlat)
    )
    fake_index = build_index(fake, fake_kind)
    fake_radii = knn_radii(fake_index, fake, k, search=search)
    if dense:  # small sets: one distance matrix decides both sides (the same flags)
        return dense_memberships(real, real_radii, fake, fake_radii)
    real_hits = ball_membership(fake_index, fake, real, real_radii, search=search)
    if few:
        recalled = covered_by_balls(fake, fake_radii, real)
    else:
        fake_hits = ball_membership(real_index, real, fake, fake_radii, search=search)
        recalled = fake_hits.getnnz(axis=0) > 0
    return real_hits, recalled


def prdc_from_memberships(
    real_hits: sp.csr_matrix, recalled: np.ndarray, *, k: int, tail_mask: np.ndarray | None
) -> PRDC:
    _n_real, n_fake = real_hits.shape
    col_counts = np.asarray(real_hits.sum(axis=0)).ravel()
    covered = real_hits.getnnz(axis=1) > 0
    tail = float(covered[tail_mask].mean()) if tail_mask is not None and tail_mask.any() else np.nan
    return PRDC(
        precision=float((col_counts > 0).mean()),
        recall=float(recalled.mean()),
        density=float(col_counts.sum() / (k * n_fake)),
        coverage=float(covered.mean()),
        tail_coverage=tail,
        k=k,
    )


def compute_prdc(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 5,
    tail_mask: np.ndarray | None = None,
    index: str = "exact",
) -> PRDC:
    """prdc's four metrics (plus coverage of the `tail_mask` real points) via FAISS.

    With `index="exact"` the result equals `prdc.compute_prdc(real, fake, k)` up to float64
    rounding; `"ivf"` and `"hnsw"` trade exactness for speed on large sets.
    """
    real = as_matrix(real, name="real vectors")
    fake = as_matrix(fake, name="fake vectors", dim=real.shape[1])
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    for name, arr in (("real", real), ("fake", fake)):
        if len(arr) < k + 1:
            raise InsufficientDataError(f"need at least k+1={k + 1} {name} vectors, got {len(arr)}")
    if tail_mask is not None and np.shape(tail_mask) != (len(real),):
        raise InvalidInputError("tail_mask must have one boolean per real vector")
    real_index = build_index(real, resolve_kind(index, len(real)))  # type: ignore[arg-type]
    real_radii = knn_radii(real_index, real, k)
    real_hits, recalled = memberships(real, real_index, real_radii, fake, k=k, index=index)
    mask = None if tail_mask is None else np.asarray(tail_mask, dtype=bool)
    return prdc_from_memberships(real_hits, recalled, k=k, tail_mask=mask)


class _BootstrapStats:
    """Bootstrap replicates of the five metrics for one (reference, sample) pair.

    Reference rows are resampled with weights shared between candidate and baseline (paired), so
    the ratio's interval is not inflated by the reference's own sampling noise twice. Sample
    columns are resampled independently for each side. Coverage counts distinct points, which
    resampling with replacement deflates; the ratio cancels that (both sides deflate alike), while
    the interval of the coverage value itself uses row resampling only.

    The row weights arrive in blocks of replicates (`add_rows`), so memory holds n_real x block
    weights, not n_real x n_boot (1.9 GB for 800,000 rows and 200 replicates). Every sum here is
    of small integers in float32, exact below 2**24, so blocks give the same figures as one pass.
    """

    def __init__(
        self,
        real_hits: sp.csr_matrix,
        recalled: np.ndarray,
        k: int,
        tail: np.ndarray,
        n_boot: int,
        rng: np.random.Generator,
    ) -> None:
        n_real, m = real_hits.shape
        self.n_real, self.recalled, self.tail = n_real, recalled, tail
        self.col_w = _resample_weights(m, n_boot, rng)
        self.hits = real_hits.astype(np.float32)
        col_counts = np.asarray(self.hits.sum(axis=0)).ravel()
        self.covered_full = (real_hits.getnnz(axis=1) > 0).astype(np.float32)
        self.values: dict[str, np.ndarray] = {
            "precision": ((col_counts > 0) @ self.col_w) / m,
            "density": (col_counts @ self.col_w) / (k * m),
        }
        self._blocks: dict[str, list[np.ndarray]] = {
            key: [] for key in ("recall", "coverage", "tail_coverage", "coverage_both", "tail_both")
        }

    def add_rows(self, replicates: slice, row_w: np.ndarray) -> None:
        """The row-side figures of `replicates`, whose row weights are the columns of `row_w`."""
        tail, n_real = self.tail, self.n_real
        covered_boot = (self.hits @ self.col_w[:, replicates]) > 0  # [n_real, block]
        # A replicate that draws no tail point has no tail coverage: NaN, dropped by _interval.
        tail_weight = row_w[tail].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            for key, value in (
                ("recall", (self.recalled @ row_w) / n_real),
                ("coverage", (self.covered_full @ row_w) / n_real),
                ("tail_coverage", (self.covered_full[tail] @ row_w[tail]) / tail_weight),
                # Resampled on both axes: the count-of-distinct metrics, for ratios only.
                ("coverage_both", (covered_boot * row_w).sum(axis=0) / n_real),
                ("tail_both", (covered_boot[tail] * row_w[tail]).sum(axis=0) / tail_weight),
            ):
                self._blocks[key].append(value)

    def finish(self) -> None:
        """`values` and `for_ratio` once every replicate's rows were added."""
        joined = {key: np.concatenate(blocks) for key, blocks in self._blocks.items()}
        for key in ("recall", "coverage", "tail_coverage"):
            self.values[key] = joined[key]
        self.for_ratio = dict(self.values)
        self.for_ratio["coverage"] = joined["coverage_both"]
        self.for_ratio["tail_coverage"] = joined["tail_both"]


# Replicates whose row weights are held at once: about this many float32 weights (64 MB).
BOOTSTRAP_BLOCK_VALUES = 1 << 24


def _resample_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n, n_boot] float32: how often each of n items is drawn, per bootstrap replicate."""
    draws = rng.integers(n, size=(n_boot, n))
    weights = np.zeros((n, n_boot), dtype=np.float32)
    for b in range(n_boot):
        weights[:, b] = np.bincount(draws[b], minlength=n)
    return weights


def _paired_bootstrap(
    sides: list[tuple[sp.csr_matrix, np.ndarray]],
    k: int,
    tail: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> list[_BootstrapStats]:
    """One `_BootstrapStats` per side, sharing the reference's row weights (paired).

    The random streams are those of drawing every row weight first, then each side's column
    weights: `rng` is copied at the start, advanced past the row draws block by block, the
    column weights drawn, and the copy replays the row draws one block at a time."""
    n_real = sides[0][0].shape[0]
    block = max(1, min(n_boot, BOOTSTRAP_BLOCK_VALUES // max(n_real, 1)))
    blocks = [slice(b, min(b + block, n_boot)) for b in range(0, n_boot, block)]
    row_rng = copy.deepcopy(rng)
    for replicates in blocks:  # only to advance rng as one draw of all the rows would
        rng.integers(n_real, size=(replicates.stop - replicates.start, n_real))
    stats = [_BootstrapStats(hits, recalled, k, tail, n_boot, rng) for hits, recalled in sides]
    for replicates in blocks:
        row_w = _resample_weights(n_real, replicates.stop - replicates.start, row_rng)
        for side in stats:
            side.add_rows(replicates, row_w)
    for side in stats:
        side.finish()
    return stats


def _interval(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _ratio(a: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(b) > 0, np.asarray(a) / np.asarray(b), np.nan)


def coverage_report(
    reference: ReferenceCorpus,
    candidate: np.ndarray,
    *,
    n_bootstrap: int = 200,
    level: float = 0.9,
    random_state: int | np.random.Generator | None = 0,
    search: Search = local_search,
) -> CoverageReport:
    """Coverage of `candidate` against a fitted reference, each figure beside a human baseline.

    If the candidate has more vectors than the reference's held-out part, a uniform random sample of
    the held-out size is used (stated as `sample_size`), so candidate and baseline are compared at
    the same size. `search` runs the k-NN searches (`RaySearch`: on a Ray cluster, same report).
    """
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be between 0 and 1, got {level}")
    if n_bootstrap < 10:
        raise InvalidInputError(f"n_bootstrap must be at least 10, got {n_bootstrap}")
    rng = np.random.default_rng(random_state)
    cand = as_matrix(candidate, name="candidate vectors", dim=reference.dim_)
    holdout = reference.holdout_
    k = reference.k
    m = min(len(cand), len(holdout))
    if m < k + 1:
        raise InsufficientDataError(
            f"need at least {k + 1} candidate vectors and as many held-out reference vectors "
            f"(k={k}); got {len(cand)} candidate and {len(holdout)} held-out"
        )
    cand_sample = cand[np.sort(rng.choice(len(cand), m, replace=False))] if len(cand) > m else cand
    base_sample = holdout[np.sort(rng.choice(len(holdout), m, replace=False))]

    real, real_index, radii, tail = (
        reference.vectors_,
        reference.index_,
        reference.radii_,
        reference.tail_mask_,
    )
    kind = reference.index_kind_
    cand_hits = memberships(real, real_index, radii, cand_sample, k=k, index=kind, search=search)
    base_hits = memberships(real, real_index, radii, base_sample, k=k, index=kind, search=search)
    cand_prdc = prdc_from_memberships(*cand_hits, k=k, tail_mask=tail)
    base_prdc = prdc_from_memberships(*base_hits, k=k, tail_mask=tail)

    n_real = len(real)
    cand_boot, base_boot = _paired_bootstrap([cand_hits, base_hits], k, tail, n_bootstrap, rng)

    def compare(name: str) -> MetricComparison:
        value, baseline = getattr(cand_prdc, name), getattr(base_prdc, name)
        v_lo, v_hi = _interval(cand_boot.values[name], level)
        r_lo, r_hi = _interval(_ratio(cand_boot.for_ratio[name], base_boot.for_ratio[name]), level)
        return MetricComparison(
            value=value,
            value_low=v_lo,
            value_high=v_hi,
            baseline=baseline,
            ratio=float(_ratio(value, baseline)),
            low=r_lo,
            high=r_hi,
            level=level,
        )

    return CoverageReport(
        k=k,
        sample_size=m,
        candidate_size=len(cand),
        reference_size=n_real,
        index=kind,
        tail_quantile=reference.tail_quantile,
        n_tail=int(tail.sum()),
        precision=compare("precision"),
        recall=compare("recall"),
        density=compare("density"),
        coverage=compare("coverage"),
        tail_coverage=compare("tail_coverage"),
        modes=mode_table(reference, cand_sample, base_sample, level=level),
        n_bootstrap=n_bootstrap,
    )
