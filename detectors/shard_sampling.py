"""Two-stage samples of sharded corpora: clusters drawn by size, documents drawn within them.

A corpus of many shards (files, Parquet row groups, Arrow record batches, byte blocks of a large
JSONL file) is sampled without reading all of it:

1. **Clusters** (a block of a file, a row group, or several small ones packed together until
   they reach a minimum size) are drawn with replacement, each with probability z_i / Z, where
   z_i is the cluster's size measure: rows when every piece knows its row count from metadata,
   bytes otherwise. A block of a file is the same as a shard drawn by bytes and then a block of
   it by bytes: a uniformly random byte offset of the corpus picks the block that holds it.
2. **Documents**: each document of a drawn cluster is kept independently with probability
   rho / z_i (rho <= min z_i), a document belonging to the block that holds its first byte.

A document in cluster i is then kept, per draw, with probability (z_i / Z) * (rho / z_i) = rho / Z,
the same for every document whatever its length or shard: the expected number of times each
document enters the sample is exactly k * rho / Z for k draws (Hansen-Hurwitz), so the sample mean
of any per-document quantity is its corpus mean up to the O(1/n) bias of a ratio. The sample size
is random (about `size`). Reading whole blocks, not lines at random offsets, is what makes this
exact: a line found by seeking to a random byte is drawn with probability proportional to the
length of the line before it.

Documents drawn together share their shard's composition, so the sample says less than a simple
random sample of the same size: `design_effect` measures how much less (the variance of a mean
under this design over its variance under simple random sampling, from the between-draw spread),
and `widen` stretches an interval by its square root.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy.stats import t as t_dist

SizeUnit = Literal["rows", "bytes"]
Progress = Callable[[int, int], None]  # (bytes read, bytes the sample is expected to read)

KEEP_RATE = 0.5  # documents kept from the smallest byte cluster; larger ones keep fewer
PER_DRAW_ROWS = 16  # documents kept per draw of a row cluster (more if a read costs much)
READ_BUDGET = 64 * 2**20  # bytes the row-cluster draws aim to stay within when reads are costly
PILOT_DRAWS = 8  # clusters read first (byte clusters) to learn the documents per byte


class Piece(Protocol):
    """A readable unit: a byte block of a file, a whole small file, a row group, a record batch."""

    @property
    def nbytes(self) -> int:
        """Bytes it holds on disk (its size measure when rows are unknown)."""

    @property
    def rows(self) -> int | None:
        """Documents it holds (empty ones included), if known without reading it."""

    @property
    def cost(self) -> int:
        """Bytes one read of it costs however few rows are asked for."""

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        """Its documents (all of them, or those at `rows`) and the bytes read to get them."""


@dataclass(frozen=True)
class ShardedSample:
    """A sample of a corpus and what drawing it cost.

    `clusters[j]` is the draw document j came from (documents of one draw share a shard);
    `corpus_size` is exact when `corpus_size_exact` (row counts from metadata), otherwise a
    Hansen-Hurwitz estimate from the clusters read.
    """

    texts: list[str]
    corpus_size: int
    corpus_size_exact: bool
    bytes_read: int | None  # None: the documents did not come from files
    bytes_total: int | None
    clusters: np.ndarray
    sampling: Literal["full read", "two-stage"]
    n_draws: int = 0
    n_clusters: int = 0
    unit: SizeUnit | None = None

    def subsample(self, size: int, rng: np.random.Generator) -> ShardedSample:
        """A uniform subsample of `size` documents (clusters kept alongside), corpus unchanged."""
        if len(self.texts) <= size:
            return self
        keep = np.sort(rng.choice(len(self.texts), size, replace=False))
        return _replace(self, [self.texts[i] for i in keep], self.clusters[keep])


def _replace(s: ShardedSample, texts: list[str], clusters: np.ndarray) -> ShardedSample:
    return ShardedSample(
        texts=texts,
        corpus_size=s.corpus_size,
        corpus_size_exact=s.corpus_size_exact,
        bytes_read=s.bytes_read,
        bytes_total=s.bytes_total,
        clusters=clusters,
        sampling=s.sampling,
        n_draws=s.n_draws,
        n_clusters=s.n_clusters,
        unit=s.unit,
    )


def pack(sizes: Sequence[float], minimum: float) -> list[list[int]]:
    """Consecutive units grouped until each group reaches `minimum` (a short tail joins the last
    group); units already that large stay alone. Every unit is in exactly one group."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for i, size in enumerate(sizes):
        if size >= minimum and not current:
            groups.append([i])
            continue
        current.append(i)
        total += size
        if total >= minimum:
            groups.append(current)
            current, total = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


class _Cluster:
    """Pieces read together; rows are addressed across them in order."""

    def __init__(self, pieces: list[Piece], unit: SizeUnit) -> None:
        self.pieces = pieces
        if unit == "rows":
            self.size = float(sum(p.rows or 0 for p in pieces))
        else:
            self.size = float(sum(p.nbytes for p in pieces))
        self.cost = sum(p.cost for p in pieces)

    def read(self, rows: np.ndarray | None) -> tuple[list[str | None], int]:
        texts: list[str | None] = []
        spent = start = 0
        for piece in self.pieces:
            if rows is None:
                got, nb = piece.read(None)
            else:
                n = piece.rows or 0
                mine = rows[(rows >= start) & (rows < start + n)] - start
                start += n
                if len(mine) == 0:
                    continue
                got, nb = piece.read(mine)
            texts.extend(got)
            spent += nb
        return texts, spent


def two_stage_sample(
    pieces: Sequence[Piece],
    size: int,
    rng: np.random.Generator,
    *,
    block_bytes: int = 16 * 1024,
    per_draw_rows: int = PER_DRAW_ROWS,
    read_budget: int = READ_BUDGET,
    keep_rate: float = KEEP_RATE,
    progress: Progress | None = None,
) -> ShardedSample:
    """About `size` documents drawn as the module docstring says; empty documents (None or
    blank) are never kept but are counted out of the corpus size estimate.

    Byte pieces smaller than `block_bytes` are packed together; row pieces smaller than the
    documents a draw keeps are packed until they hold that many.
    """
    if size < 1:
        raise ValueError(f"sample size must be at least 1, got {size}")
    if not pieces:
        raise ValueError("no pieces to sample from")
    unit: SizeUnit = "rows" if all(p.rows is not None for p in pieces) else "bytes"
    bytes_total = sum(p.nbytes for p in pieces)
    if unit == "rows":
        sizes = [float(p.rows or 0) for p in pieces]
        clusters = [_Cluster([pieces[i] for i in g], unit) for g in pack(sizes, per_draw_rows)]
        clusters = [c for c in clusters if c.size > 0]
        if not clusters:
            return _empty(bytes_total, unit, len(pieces))
        z = np.array([c.size for c in clusters])
        mean_cost = float(np.mean([c.cost for c in clusters]))
        # Costly reads (a Parquet row group is read whole) keep more documents per draw so the
        # sample stays near the budget; cheap ones (Arrow rows) keep `per_draw_rows`.
        wanted = max(per_draw_rows, math.ceil(size * mean_cost / read_budget))
        rho = float(min(z.min(), wanted))
        pilot: dict[int, tuple[list[str | None], int]] = {}
        k = math.ceil(size / rho)
        spent = 0
    else:
        sizes = [float(p.nbytes) for p in pieces]
        clusters = [_Cluster([pieces[i] for i in g], unit) for g in pack(sizes, block_bytes / 2)]
        clusters = [c for c in clusters if c.size > 0]
        if not clusters:
            return _empty(bytes_total, unit, len(pieces))
        z = np.array([c.size for c in clusters])
        rho = keep_rate * float(z.min())
        # A pilot of whole clusters (separate draws, not part of the sample) gives the documents
        # per byte, hence how many draws make `size` documents; kept to avoid reading them twice.
        pilot = {}
        spent = 0
        for i in rng.choice(len(clusters), min(PILOT_DRAWS, len(clusters)), p=z / z.sum()):
            i = int(i)
            if i not in pilot:
                pilot[i] = clusters[i].read(None)
                spent += pilot[i][1]
        docs = sum(sum(1 for t in pilot[i][0] if _nonempty(t)) for i in pilot)
        per_byte = max(docs, 1) / sum(z[i] for i in pilot)
        k = math.ceil(size / (rho * per_byte))
    p = z / z.sum()
    draws = rng.choice(len(clusters), k, p=p)
    expected = spent + int(k * (np.mean([c.cost for c in clusters]) if unit == "bytes" else 0))
    texts: list[str] = []
    ids: list[int] = []
    empty_seen = False
    estimates = np.zeros(k)  # Hansen-Hurwitz: non-empty documents of the draw's cluster * Z/z
    for d, c in enumerate(draws):
        c = int(c)
        cluster = clusters[c]
        rate = rho / cluster.size
        if unit == "rows":
            rows = np.flatnonzero(rng.random(int(cluster.size)) < rate)
            got, nb = cluster.read(rows) if len(rows) else ([], 0)
            kept = got
            nonempty = sum(1 for t in got if _nonempty(t)) / rate
        else:
            if c in pilot:
                got, nb = pilot.pop(c)[0], 0  # already counted
            else:
                got, nb = cluster.read(None)
            kept = [t for t, u in zip(got, rng.random(len(got)) < rate, strict=True) if u]
            nonempty = sum(1 for t in got if _nonempty(t))
        spent += nb
        estimates[d] = nonempty * z.sum() / cluster.size
        for t in kept:
            if not _nonempty(t):
                empty_seen = True
            else:
                texts.append(t)  # type: ignore[arg-type]  # _nonempty checked it is a str
                ids.append(d)
        if progress is not None:
            progress(spent, max(expected, spent))
    if unit == "rows" and not empty_seen:
        # Rows from metadata count every row: exact unless the sample met empty rows.
        corpus_size, is_exact = int(z.sum()), True
    else:
        corpus_size, is_exact = round(float(estimates.mean())), False
    return ShardedSample(
        texts=texts,
        corpus_size=max(corpus_size, len(texts)),
        corpus_size_exact=is_exact,
        bytes_read=spent,
        bytes_total=bytes_total,
        clusters=np.asarray(ids, dtype=np.int64),
        sampling="two-stage",
        n_draws=k,
        n_clusters=len(clusters),
        unit=unit,
    )


def _nonempty(text: str | None) -> bool:
    return text is not None and bool(text.strip())


def _empty(bytes_total: int, unit: SizeUnit, n_pieces: int) -> ShardedSample:
    return ShardedSample(
        texts=[],
        corpus_size=0,
        corpus_size_exact=unit == "rows",
        bytes_read=0,
        bytes_total=bytes_total,
        clusters=np.zeros(0, dtype=np.int64),
        sampling="two-stage",
        n_clusters=n_pieces,
        unit=unit,
    )


def cluster_variance(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Variance of the sample mean of each column of `values` (n x d, or n) under the design:
    the with-replacement estimator over draws, k/(k-1) * sum_d (t_d - mean * n_d)^2 / n^2."""
    y = np.asarray(values, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(y)
    ids, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    k = len(ids)
    if k < 2:
        return np.full(y.shape[1], np.inf)
    totals = np.zeros((k, y.shape[1]))
    np.add.at(totals, inverse, y)
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    resid = totals - counts[:, None] * y.mean(axis=0)
    return k / (k - 1) * (resid**2).sum(axis=0) / n**2


def design_effect(values: np.ndarray, clusters: np.ndarray) -> float:
    """How much the design inflates the variance of the sample mean of `values` over a simple
    random sample of the same size (1 = none); for several columns, the ratio of the summed
    variances. Needs at least two draws; 1.0 when every document is its own draw."""
    y = np.asarray(values, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(y)
    if n < 2 or len(np.unique(clusters)) == n:
        return 1.0
    srs = y.var(axis=0, ddof=1).sum() / n
    if srs <= 0:
        return 1.0
    return float(cluster_variance(y, clusters).sum() / srs)


def embedding_design_effect(
    vectors: np.ndarray, clusters: np.ndarray, *, components: int = 5
) -> float:
    """The design effect of the sample's position in embedding space: of the mean of its top
    principal components (topic and outlet, what differs between shards), variance-weighted."""
    x = np.asarray(vectors, dtype=np.float64)
    n_draws = len(np.unique(clusters))
    if n_draws == len(x):
        return 1.0
    if n_draws < 2:
        return float(len(x))  # one draw: as if a single document, nothing to estimate from
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return design_effect(centred @ vt[:components].T, clusters)


def proportion_interval(
    y: np.ndarray, clusters: np.ndarray, level: float = 0.9
) -> tuple[float, float, float]:
    """A proportion's point and interval with the design's variance and Student's t on draws - 1
    degrees of freedom (the usual survey interval; clipped to [0, 1])."""
    p = float(np.mean(y))
    df = max(len(np.unique(clusters)) - 1, 1)
    half = float(t_dist.ppf((1 + level) / 2, df) * math.sqrt(cluster_variance(y, clusters)[0]))
    return p, max(0.0, p - half), min(1.0, p + half)


def widen(
    point: float,
    low: float,
    high: float,
    factor: float,
    *,
    lower: float = -math.inf,
    upper: float = math.inf,
) -> tuple[float, float]:
    """(low, high) stretched about `point` by `factor` (>= 1), clipped to [lower, upper]."""
    factor = max(1.0, factor)
    if not all(map(math.isfinite, (point, low, high))):
        return low, high
    return max(lower, point - factor * (point - low)), min(upper, point + factor * (high - point))
