"""A saved reference's files: part names, hard links between versions, and reading parts back.

Format 2 keeps the vectors, held-out vectors and snippets in parts, one per `fit` or `append`;
format 1 kept one file of each, read as part 0. `ReferenceCorpus.save`/`load` use these helpers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import faiss
import numpy as np

from detectors.rows import PartRows, index_rows, indexed_rows

if TYPE_CHECKING:
    from pathlib import Path


def part_names(i: int) -> dict[str, str]:
    """File names of part `i` in format 2."""
    return {
        "vectors": f"vectors-{i:04d}.npy",
        "holdout": f"holdout-{i:04d}.npy",
        "snippets": f"snippets-{i:04d}.json",
    }


def stored_part_names(folder: Path, i: int) -> dict[str, str]:
    """File names of part `i` in a saved folder: format 1 holds one part, in unnumbered files."""
    if i == 0 and (folder / "vectors.npy").is_file():
        return {"vectors": "vectors.npy", "holdout": "holdout.npy", "snippets": "snippets.json"}
    return part_names(i)


def link_all(
    source: Path, old: dict[str, str], folder: Path, new: dict[str, str], snippets: bool
) -> bool:
    """Hard-link a stored part into `folder` (no bytes copied); False if it cannot be (the old
    folder is gone, or the file system has no hard links): the caller writes it instead."""
    keys = ["vectors", "holdout"] + (["snippets"] if snippets else [])
    try:
        for key in keys:
            os.link(source / old[key], folder / new[key])
    except OSError:
        for key in keys:
            (folder / new[key]).unlink(missing_ok=True)
        return False
    return True


def loaded_index(folder: Path, kind: str, stored: PartRows) -> tuple[faiss.Index, np.ndarray]:
    """A saved reference's index and indexed vectors. A flat index is rebuilt from the stored
    vectors, an HNSW index read, and both hand out the vectors they store (`index_rows`): one copy
    in memory. An IVF index keeps its vectors in its cells: they are read separately."""
    rows = np.arange(len(stored))
    if kind == "exact":
        return indexed_rows(stored, rows, kind)
    index = faiss.read_index(str(folder / "index.faiss"))
    vectors = index_rows(index)
    return index, stored.take(rows) if vectors is None else vectors


def load_parts(folder: Path, names: list[str], dim: int) -> np.ndarray:
    """The parts' rows in one array, filled in place (no second copy of all of them)."""
    arrays = [np.load(folder / name, mmap_mode="r") for name in names]
    out = np.empty((sum(len(a) for a in arrays), dim), dtype=np.float32)
    at = 0
    for array in arrays:
        if array.ndim != 2 or array.shape[1] != dim:
            raise ValueError(f"a part has shape {array.shape}, expected (n, {dim})")
        out[at : at + len(array)] = array
        at += len(array)
    return out
