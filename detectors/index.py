"""FAISS nearest-neighbour search in bounded-memory blocks.

Everything is Euclidean (L2), the metric of the PRDC papers; for unit-norm embeddings it orders
neighbours exactly as cosine similarity does. FAISS finds candidate neighbours in float32 and the
distances that decide a metric are recomputed in float64 from the vectors, so results agree with a
float64 brute-force computation (the `prdc` package) rather than drifting with float32 rounding.

The central operation is `ball_membership`: for each query q with radius r_q, every indexed point
strictly inside the ball. It searches k neighbours and doubles k only for the queries whose k-th
neighbour is still inside their ball, so the cost follows how many points really fall in the balls
(about k per query for matched distributions) and memory never grows as N^2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import faiss
import numpy as np
import scipy.sparse as sp

from detectors.errors import DimensionMismatchError, EmptyCorpusError, InvalidInputError

IndexKind = Literal["auto", "exact", "ivf", "hnsw"]
INDEX_KINDS = ("auto", "exact", "ivf", "hnsw")
EXACT_THRESHOLD = 50_000  # above this many points "auto" switches to HNSW
# IVF-Flat: about sqrt(n) k-means cells, 8 probed per query. Training the cells costs far less
# than building an HNSW graph (benchmarks/coverage_vs_prdc.py), but a neighbour just across an
# unprobed cell's border is missed: on 3,384 real MiniLM embeddings IVF finds 98% of the true 5
# nearest neighbours (HNSW: 99.9%) and the metrics move by about 0.01 (within two standard errors
# at that size). So "auto" picks HNSW and IVF is the explicit fast choice.
IVF_NPROBE = 8
IVF_MIN_POINTS_PER_CELL = 39  # FAISS's own rule of thumb for stable k-means training
IVF_TRAIN_ITERATIONS = 10
IVF_TRAIN_POINTS_PER_CELL = 64
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Upper bound on queries x neighbours x dimension gathered at once for the float64 re-check
# (2**24 values: 64 MiB as float32, 128 MiB as the float64 differences).
ELEMENT_BUDGET = 2**24
_SLACK = 1e-4  # relative margin so float32 search never stops just short of a float64 boundary
# float32 squared distances (|q|^2 + |x|^2 - 2 q.x) are off by at most about dim * eps32 * the
# squared norms; pairs nearer their ball's boundary than this (x the norms) are decided in float64.
_ROUNDING = 1e-4  # at least; 2 * dim * eps32 for wider vectors


def as_matrix(x: object, *, name: str, dim: int | None = None) -> np.ndarray:
    """Validate an [n, d] finite float matrix and return it as C-contiguous float32."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be a 2-D array [n, dim], got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise EmptyCorpusError(f"{name} is empty: pass at least one vector")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"{name} has dimension {arr.shape[1]} but the reference has {dim}: "
            "embed both with the same model"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return arr


def resolve_kind(kind: IndexKind, n: int, exact_threshold: int = EXACT_THRESHOLD) -> str:
    if kind not in INDEX_KINDS:
        choices = ", ".join(repr(k) for k in INDEX_KINDS)
        raise InvalidInputError(f"index must be one of {choices}, got {kind!r}")
    if kind == "auto":
        return "exact" if n <= exact_threshold else "hnsw"
    return kind


def ivf_cells(n: int) -> int:
    """Number of IVF cells for n points: ~sqrt(n), with enough points per cell to train."""
    return max(1, min(int(np.sqrt(n)), n // IVF_MIN_POINTS_PER_CELL))


def build_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    """An L2 index over `vectors`: flat (exact), IVF-Flat or HNSW (approximate, for large sets).

    IVF cells are trained once on the vectors given here; later `add`s (a reference's incremental
    append) reuse them, which stays accurate while the new points come from the same distribution.
    """
    dim = vectors.shape[1]
    index: Any  # faiss's SWIG stubs do not model the index class hierarchy
    if kind == "exact":
        index = faiss.IndexFlatL2(dim)
    elif kind == "ivf":
        nlist = ivf_cells(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        index.cp.seed = 1234  # k-means seeding is fixed so a rebuild gives the same cells
        # 10 iterations on at most 64 points a cell: the cells only route the search, and
        # FAISS's defaults (25 iterations, 256 points a cell) triple the cost for no recall.
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_CELL
        index.train(vectors)
        index.nprobe = min(IVF_NPROBE, nlist)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise InvalidInputError(f"unknown index kind {kind!r}")
    if len(vectors):
        index.add(vectors)
    return index


def local_search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's own search in this process: float32 squared distances and ids [n, k] (-1 where an
    approximate index found fewer). Every search below goes through a `Search` of this contract,
    so another engine (`detectors.ray_search.RaySearch`) can run it elsewhere."""
    if isinstance(index, faiss.IndexHNSWFlat):
        # HNSW returns at most efSearch useful neighbours; widen the beam when asking for more.
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))  # type: ignore[attr-defined]
        return index.search(queries, k, params=params)
    return index.search(queries, k)


Search = Callable[[faiss.Index, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_search = local_search  # the old private name


def _rounding(dim: int) -> float:
    """Relative bound on float32 squared-distance error, as a share of the squared norms."""
    return max(_ROUNDING, 2 * dim * float(np.finfo(np.float32).eps))


def _pair_sq_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """float64 squared distances of paired rows, with the row-wise sum of exact_sq_distances
    (so a point exactly on a ball's boundary compares equal to the radius)."""
    diff = x.astype(np.float64) - y.astype(np.float64)
    np.square(diff, out=diff)
    return diff.sum(axis=-1)


def _pairs_per_block(dim: int) -> int:
    return max(64, ELEMENT_BUDGET // max(dim, 1))


def exact_sq_distances(queries: np.ndarray, data: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """float64 squared distances between each query row and the data rows named in `ids`.

    Computed as the norm of the float64 difference (not the |q|^2 + |x|^2 - 2 q.x expansion,
    which cancels catastrophically for near neighbours). Missing neighbours (id -1, returned by
    approximate indexes) get +inf.
    """
    safe = np.where(ids < 0, 0, ids)
    diff = data[safe].astype(np.float64)  # [b, k, d]
    diff -= queries.astype(np.float64)[:, None, :]
    # A row-wise sum (not einsum) so each distance is summed in the same order whatever the
    # block shape: a point exactly on a ball's boundary must compare equal to the radius.
    np.square(diff, out=diff)
    d2 = diff.sum(axis=-1)
    d2[ids < 0] = np.inf
    return d2


def knn(
    index: faiss.Index,
    data: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    search: Search = local_search,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest indexed points of each query, sorted, with float64-exact Euclidean distances."""
    k = min(k, index.ntotal)
    out_d = np.empty((len(queries), k), dtype=np.float64)
    out_i = np.empty((len(queries), k), dtype=np.int64)
    # Search a few extra neighbours so float32 near-ties at the k-th place are re-ranked exactly.
    k_search = min(k + 2, index.ntotal)
    block = max(1, _pairs_per_block(data.shape[1]) // k_search)
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        _, ids = search(index, q, k_search)
        d2 = exact_sq_distances(q, data, ids)
        # Ties (duplicate documents) in id order: FAISS's own order of ties depends on threads.
        order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), d2), axis=1)[:, :k]
        out_d[start : start + block] = np.sqrt(np.take_along_axis(d2, order, axis=1))
        out_i[start : start + block] = np.take_along_axis(ids, order, axis=1)
    return out_d, out_i


def knn_radii(
    index: faiss.Index, data: np.ndarray, k: int, *, search: Search = local_search
) -> np.ndarray:
    """Distance from each indexed point to its k-th nearest other point (prdc's radius).

    The point itself is among its neighbours at distance 0, so this is the (k+1)-th smallest
    distance, exactly as `prdc.compute_nearest_neighbour_distances`. Float64-exact: FAISS's
    float32 distances fix which neighbours are clearly nearer than the (k+1)-th; only the few
    within float32 rounding of it are recomputed in float64 and ranked.
    """
    n = index.ntotal
    if n < k + 1:
        raise InvalidInputError(f"need more than k={k} points to compute k-NN radii, got {n}")
    rank = k  # 0-based position of the radius among the sorted neighbours (self included)
    k_search = min(k + 3, n)  # a few extra so near-ties just past the k-th are seen
    norm2 = np.einsum("ij,ij->i", data, data, dtype=np.float64)
    max_norm2 = float(norm2.max())
    rounding = _rounding(data.shape[1])
    radii = np.empty(n, dtype=np.float64)
    block = max(1, _pairs_per_block(data.shape[1]) // k_search)
    for start in range(0, n, block):
        q = data[start : start + block]
        d32, ids = search(index, q, k_search)
        d32 = d32.astype(np.float64)
        d32[ids < 0] = np.inf
        d32.sort(axis=1)  # approximate indexes may return slightly unsorted lists
        tol = (rounding * (norm2[start : start + block] + max_norm2))[:, None]
        kth = d32[:, rank : rank + 1]
        below = (d32 < kth - tol).sum(axis=1)  # surely nearer than the radius
        near = (ids >= 0) & (np.abs(d32 - kth) <= tol)
        rows, cols = np.nonzero(near)
        exact = np.full(d32.shape, np.inf)
        exact[rows, cols] = _pair_sq_distances(data[ids[rows, cols]], q[rows])
        exact.sort(axis=1)
        radii[start : start + block] = np.sqrt(exact[np.arange(len(q)), rank - below])
    return radii


def _ball_blocks(
    index: faiss.Index,
    data: np.ndarray,
    queries: np.ndarray,
    radii: np.ndarray,
    k0: int,
    search: Search,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (query ids, indexed ids) of every pair with distance < the query's radius.

    FAISS's float32 squared distances decide every pair that is clearly inside or clearly
    outside its ball; only the pairs within float32 rounding of the boundary (a handful) are
    recomputed in float64, so the result equals a float64 brute-force computation at the cost of
    the search alone.
    """
    n = index.ntotal
    pending = np.arange(len(queries))
    k = min(k0, n)
    q_norm2 = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
    max_norm2 = float(np.einsum("ij,ij->i", data, data, dtype=np.float64).max())
    rounding = _rounding(data.shape[1])
    while len(pending):
        still: list[np.ndarray] = []
        block = max(1, _pairs_per_block(data.shape[1]) // k)
        for start in range(0, len(pending), block):
            rows = pending[start : start + block]
            d_approx, ids = search(index, queries[rows], k)
            r = radii[rows]
            # The ball may reach past the k-th neighbour: search again with a wider k.
            beyond = np.sqrt(np.maximum(d_approx[:, -1], 0.0)) > r * (1 + _SLACK) + _SLACK
            done = beyond | (ids[:, -1] < 0) | (k >= n)
            if done.any():
                q_done = rows[done]
                yield from _inside(
                    q_done,
                    ids[done],
                    d_approx[done],
                    queries,
                    data,
                    radii[q_done],
                    rounding * (q_norm2[q_done] + max_norm2 + radii[q_done] ** 2),
                )
            still.append(rows[~done])
        pending = np.concatenate(still) if still else np.empty(0, dtype=np.int64)
        k = min(2 * k, n)


def _inside(
    q_ids: np.ndarray,
    ids: np.ndarray,
    d2_approx: np.ndarray,
    queries: np.ndarray,
    data: np.ndarray,
    radii: np.ndarray,
    tolerance: np.ndarray,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The (query, indexed) pairs strictly inside the balls, float64-exact at the boundary."""
    r2 = (radii**2)[:, None]
    tol = tolerance[:, None]
    valid = ids >= 0
    sure = valid & (d2_approx < r2 - tol)
    unsure = valid & ~sure & (d2_approx <= r2 + tol)
    qi, col = np.nonzero(sure)
    yield q_ids[qi], ids[qi, col]
    qi, col = np.nonzero(unsure)
    if len(qi):
        keep = np.sqrt(_pair_sq_distances(data[ids[qi, col]], queries[q_ids[qi]])) < radii[qi]
        yield q_ids[qi[keep]], ids[qi[keep], col[keep]]


def covered_by_balls(centres: np.ndarray, radii: np.ndarray, points: np.ndarray) -> np.ndarray:
    """One flag per point: does it lie strictly inside some ball (centres[j], radii[j])?

    Every point-centre distance, a block of points at a time (one matrix product each, memory
    O(block x centres)), float64 for the pairs within float32 rounding of a boundary: the flags
    equal a float64 brute-force computation. This is the way round for few balls and many points
    -- an audit's sample against a million-document reference -- where searching from each
    ball's centre must enumerate most of the reference when the balls are wide (a search with k
    doubling up to hundreds of thousands, which an HNSW index answers slowly).
    """
    centres = np.ascontiguousarray(centres, dtype=np.float32)
    points = np.ascontiguousarray(points, dtype=np.float32)
    r = np.asarray(radii, dtype=np.float64)
    if len(r) != len(centres):
        raise InvalidInputError("one radius per ball centre is required")
    c_norm2 = np.einsum("ij,ij->i", centres, centres, dtype=np.float64)
    p_norm2 = np.einsum("ij,ij->i", points, points, dtype=np.float64)
    rounding = _rounding(points.shape[1])
    r2 = r**2
    margin = rounding * (float(c_norm2.max(initial=0.0)) + r2)  # + rounding * |p|^2 per row
    c_norm2_32 = c_norm2.astype(np.float32)
    out = np.zeros(len(points), dtype=bool)
    block = max(1, ELEMENT_BUDGET // (8 * max(len(centres), 1)))
    for start in range(0, len(points), block):
        p = points[start : start + block]
        d2 = p_norm2[start : start + block, None].astype(np.float32) + c_norm2_32[None, :]
        d2 -= 2.0 * (p @ centres.T)
        tol = margin[None, :] + rounding * p_norm2[start : start + block, None]
        sure = d2 < r2[None, :] - tol
        hit = sure.any(axis=1)
        unsure = ~hit[:, None] & (d2 <= r2[None, :] + tol) & ~sure
        rows, cols = np.nonzero(unsure)
        if len(rows):
            inside = np.sqrt(_pair_sq_distances(centres[cols], p[rows])) < r[cols]
            hit[rows[inside]] = True
        out[start : start + block] = hit
    return out


def _positions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, row-major, through the flat index (a few times faster)."""
    flat = np.flatnonzero(mask)
    return np.divmod(flat, mask.shape[1])


def dense_memberships(
    real: np.ndarray, real_radii: np.ndarray, fake: np.ndarray, fake_radii: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Both sides of PRDC at once for small sets: B [n_real, n_fake] with B[i, j] set iff
    ||real_i - fake_j|| < real_radii[i], and per real point whether it lies in some fake's ball
    (||real_i - fake_j|| < fake_radii[j]).

    One float32 distance matrix per block of real rows (memory O(block x n_fake)) decides both;
    the pairs within float32 rounding of either boundary are recomputed in float64 exactly as
    `ball_membership` and `covered_by_balls` recompute them, so the result is theirs, bit for bit.
    For a few thousand points this replaces hundreds of k-doubling searches (a tail point's ball
    holds most of a small fake set) by a handful of matrix products.
    """
    real = np.ascontiguousarray(real, dtype=np.float32)
    fake = np.ascontiguousarray(fake, dtype=np.float32)
    r_real = np.asarray(real_radii, dtype=np.float64)
    r_fake = np.asarray(fake_radii, dtype=np.float64)
    if len(r_real) != len(real) or len(r_fake) != len(fake):
        raise InvalidInputError("one radius per point is required on both sides")
    real_norm2 = np.einsum("ij,ij->i", real, real, dtype=np.float64)
    fake_norm2 = np.einsum("ij,ij->i", fake, fake, dtype=np.float64)
    rounding = _rounding(real.shape[1])
    # Per-ball bands around r^2 (the largest norm on the other side bounds the rounding): pairs
    # below the band are surely inside, above it surely outside, in it decided in float64.
    tol_real = rounding * (real_norm2 + float(fake_norm2.max()) + r_real**2)
    tol_fake = rounding * (fake_norm2 + float(real_norm2.max()) + r_fake**2)
    lo_real = (r_real**2 - tol_real).astype(np.float32)
    hi_real = (r_real**2 + tol_real).astype(np.float32)
    lo_fake = (r_fake**2 - tol_fake).astype(np.float32)[None, :]
    hi_fake = (r_fake**2 + tol_fake).astype(np.float32)[None, :]
    real_norm2_32 = real_norm2.astype(np.float32)
    fake_norm2_32 = fake_norm2.astype(np.float32)[None, :]
    rows_parts: list[np.ndarray] = []
    cols_parts: list[np.ndarray] = []
    recalled = np.zeros(len(real), dtype=bool)
    block = max(1, ELEMENT_BUDGET // (8 * max(len(fake), 1)))
    for start in range(0, len(real), block):
        x = real[start : start + block]
        stop = start + len(x)
        d2 = x @ fake.T
        d2 *= -2.0
        d2 += real_norm2_32[start:stop, None]
        d2 += fake_norm2_32
        # Real balls: B's pairs.
        inside = d2 < lo_real[start:stop, None]
        rows, cols = _positions((d2 <= hi_real[start:stop, None]) ^ inside)
        if len(rows):
            exact = np.sqrt(_pair_sq_distances(fake[cols], x[rows])) < r_real[start + rows]
            inside[rows[exact], cols[exact]] = True
        hit_rows, hit_cols = _positions(inside)
        rows_parts.append(hit_rows + start)
        cols_parts.append(hit_cols)
        # Fake balls: is each real point in one?
        np.less(d2, lo_fake, out=inside)
        hit = inside.any(axis=1)
        np.less_equal(d2, hi_fake, out=inside)
        inside[hit] = False
        rows, cols = _positions(inside)
        if len(rows):
            exact = np.sqrt(_pair_sq_distances(fake[cols], x[rows])) < r_fake[cols]
            hit[rows[exact]] = True
        recalled[start:stop] = hit
    rows = np.concatenate(rows_parts)
    cols = np.concatenate(cols_parts)
    hits = sp.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(real), len(fake))
    )
    return hits, recalled


def ball_membership(
    index: faiss.Index,
    data: np.ndarray,
    queries: np.ndarray,
    radii: np.ndarray,
    *,
    k0: int = 16,
    search: Search = local_search,
) -> sp.csr_matrix:
    """Sparse boolean [n_queries, n_indexed]: entry (q, j) is set iff ||q - x_j|| < radii[q].

    Strict inequality and float64 distances, as in Kynkäänniemi et al. and Naeem et al.
    Memory is O(number of pairs inside the balls), never O(n_queries * n_indexed).
    """
    if len(radii) != len(queries):
        raise InvalidInputError("one radius per query is required")
    q_parts: list[np.ndarray] = []
    j_parts: list[np.ndarray] = []
    for qi, ji in _ball_blocks(
        index, data, queries, np.asarray(radii, dtype=np.float64), k0, search
    ):
        q_parts.append(qi)
        j_parts.append(ji)
    rows = np.concatenate(q_parts) if q_parts else np.empty(0, dtype=np.int64)
    cols = np.concatenate(j_parts) if j_parts else np.empty(0, dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(queries), index.ntotal)
    )
