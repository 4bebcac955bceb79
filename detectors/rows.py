"""Rows of several [n_i, dim] arrays or .npy files read as one matrix, unjoined.

A streamed reference build stages its vectors on disk chunk by chunk, and fitting splits them into
indexed and held-out rows. Joining the chunks into one array and then splitting it held the whole
and both of its parts at once; `PartRows.take` gathers each part's rows straight into the part of
the split they belong to, so the whole is never in memory. A part given as a file is memory-mapped
only while it is read: its pages are not left counted in the process's resident memory.

A flat or HNSW-flat FAISS index stores the vectors it was given, in order: a reference reads its
indexed vectors from there (`index_rows`) rather than keeping a second copy, and grows the index
in place (`reserve_rows`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from detectors.errors import DimensionMismatchError, EmptyCorpusError, InvalidInputError
from detectors.index import as_matrix, build_index

if TYPE_CHECKING:
    from collections.abc import Sequence


# Kinds whose FAISS index stores the vectors as given, in insertion order, in one flat array: a
# reference reads its vectors from the index (`index_rows`) instead of keeping a second copy.
FLAT_STORAGE_KINDS = ("exact", "hnsw")


class _IndexRows:
    """Hands numpy a flat-storage index's vectors; the array's base holds the index alive."""

    def __init__(self, index: Any, storage: Any) -> None:
        self.index = index
        n, d = storage.ntotal, storage.d
        start = faiss.rev_swig_ptr(storage.get_xb(), n * d).__array_interface__["data"][0]
        self.__array_interface__ = {
            "shape": (n, d),
            "typestr": "<f4",
            "data": (start, True),  # read-only: a write would change the index behind its back
            "version": 3,
        }


def _flat_storage(index: faiss.Index) -> Any:
    """The IndexFlat holding a flat or HNSW-flat index's vectors; None for other kinds."""
    typed = faiss.downcast_index(index)  # a proxy that does not own the index: `index` does
    if isinstance(typed, faiss.IndexHNSWFlat):
        return faiss.downcast_index(typed.storage)
    return typed if isinstance(typed, faiss.IndexFlat) else None


def reserve_rows(index: faiss.Index, n: int) -> None:
    """Make room in a flat-storage index for `n` more vectors before adding them in blocks.

    Each `add` grows the index's byte array, and a growth that reallocates copies every vector
    stored so far: adding a million vectors in blocks then held the index twice at the last one.
    Growing the array once to its final size and shrinking it back keeps the capacity (a vector's
    shrink never frees), so the blocks are added in place. Other kinds: nothing to do."""
    storage = _flat_storage(index)
    if storage is None or n <= 0:
        return
    used = storage.ntotal * storage.code_size
    storage.codes.resize(used + n * storage.code_size)
    storage.codes.resize(used)


def index_rows(index: faiss.Index) -> np.ndarray | None:
    """The vectors a flat or HNSW-flat index stores, [ntotal, d] float32, read-only and not
    copied; None for other kinds. The array keeps the index alive, but an `add` to the index may
    move its storage: while such an array is in use, add to a copy (`faiss.clone_index`)."""
    storage = _flat_storage(index)
    if storage is None:
        return None
    if storage.ntotal == 0:
        return np.empty((0, storage.d), dtype=np.float32)
    return np.asarray(_IndexRows(index, storage))


class PartRows:
    """The rows of `parts` (arrays or .npy files), in order, as one [n, dim] matrix that is read
    only through `take`."""

    def __init__(self, parts: Sequence[np.ndarray | os.PathLike[str]], *, name: str = "vectors"):
        dims = set()
        lengths = []
        for part in parts:
            array = _open(part)
            if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
                raise InvalidInputError(
                    f"{name}: every part must be a numeric [n, dim] array, got {array.dtype} "
                    f"of shape {array.shape}"
                )
            dims.add(array.shape[1])
            lengths.append(len(array))
        if len(dims) > 1:
            raise DimensionMismatchError(f"{name}: parts of different dimensions {sorted(dims)}")
        self.name = name
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *lengths])
        if self.offsets[-1] == 0:
            raise EmptyCorpusError(f"{name} is empty: pass at least one vector")
        self.shape = (int(self.offsets[-1]), dims.pop())

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` (ascending) as a C-contiguous float32 array, checked finite part by part."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (np.any(np.diff(rows) < 0) or rows[0] < 0 or rows[-1] >= len(self)):
            raise ValueError("rows must be ascending indices within the matrix")
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        bounds = np.searchsorted(rows, self.offsets)  # rows[bounds[i]:bounds[i+1]] are in part i
        for i, part in enumerate(self.parts):
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            block = np.asarray(_open(part)[rows[lo:hi] - self.offsets[i]], dtype=np.float32)
            if not np.isfinite(block).all():
                raise InvalidInputError(f"{self.name} contains NaN or infinite values")
            out[lo:hi] = block
        return out


def _open(part: np.ndarray | os.PathLike[str]) -> np.ndarray:
    """An array, or a .npy file memory-mapped (unmapped when the caller drops it)."""
    return part if isinstance(part, np.ndarray) else np.load(part, mmap_mode="r")


def checked_rows(
    x: np.ndarray | PartRows, *, name: str, dim: int | None = None
) -> np.ndarray | PartRows:
    """`x` checked as `as_matrix` does; a `PartRows` is checked row by row as it is read."""
    if not isinstance(x, PartRows):
        return as_matrix(x, name=name, dim=dim)
    if dim is not None and x.shape[1] != dim:
        raise DimensionMismatchError(
            f"{name} has dimension {x.shape[1]} but the reference has {dim}: "
            "embed both with the same model"
        )
    return x


def take_rows(x: np.ndarray | PartRows, rows: np.ndarray) -> np.ndarray:
    return x.take(rows) if isinstance(x, PartRows) else x[rows]


ADD_BLOCK = 1 << 16  # rows added to a flat-storage index at a time (100 MB at 384 dimensions)


def indexed_rows(
    source: np.ndarray | PartRows, rows: np.ndarray, kind: str, grow: faiss.Index | None = None
) -> tuple[faiss.Index, np.ndarray]:
    """(an index of `kind` over `source`'s `rows`, the indexed vectors).

    A flat or HNSW index stores the vectors itself: they are added a block at a time and read back
    from it (`index_rows`), so they are in memory once. `grow`, an index of that kind, is extended
    instead of starting empty: a copy of it, so that arrays already handed out of its storage stay
    valid. Other kinds are built from a copy of the rows (and cannot be grown here)."""
    if kind not in FLAT_STORAGE_KINDS:
        if grow is not None:
            raise ValueError(f"indexed_rows grows only {FLAT_STORAGE_KINDS} indexes, not {kind!r}")
        vectors = take_rows(source, rows)
        return build_index(vectors, kind), vectors
    index = (
        build_index(np.empty((0, source.shape[1]), dtype=np.float32), kind)
        if grow is None
        else faiss.clone_index(grow)
    )
    reserve_rows(index, len(rows))  # added in place: no copy of the index at a block's growth
    for start in range(0, len(rows), ADD_BLOCK):
        index.add(take_rows(source, rows[start : start + ADD_BLOCK]))
    stored = index_rows(index)
    assert stored is not None  # a flat-storage kind
    return index, stored
