"""The reference human corpus: a FAISS index, k-NN radii, tail labels, modes and a held-out part.

A fraction of the reference (`holdout_fraction`, chosen at random) is never indexed: it is the
human baseline that a candidate's coverage is compared with at equal size, because coverage rises
with sample size and a raw figure means little on its own.

Radii, tail labels and modes depend on the whole indexed set, so `append` only adds to the index
(no rebuild) and marks them stale; they are recomputed the next time they are read.

On disk (format 2) the vectors, held-out vectors and snippets are kept in parts, one per `fit` or
`append`: a save after an append hard-links the parts the previous version already holds and
writes only the new one (plus radii, meta and, for an approximate index, the index). Format 1
(one file each) still loads; its content becomes part 0.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import faiss
import numpy as np

from detectors.errors import (
    CorruptReferenceError,
    InsufficientDataError,
    InvalidInputError,
    NotFittedError,
    ReferenceMismatchError,
)
from detectors.index import (
    EXACT_THRESHOLD,
    IndexKind,
    as_matrix,
    knn,
    knn_radii,
    resolve_kind,
)
from detectors.modes import fit_modes
from detectors.reference_files import (
    link_all,
    load_parts,
    loaded_index,
    part_names,
    stored_part_names,
)
from detectors.rows import FLAT_STORAGE_KINDS, PartRows, checked_rows, indexed_rows, take_rows
from detectors.storage import resolve_dir, write_dir_atomic

if TYPE_CHECKING:
    from collections.abc import Sequence

    from detectors.embedding import Embedder, ProgressCallback

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
SNIPPET_CHARS = 160


class ReferenceCorpus:
    """A reference corpus of human documents, as vectors, ready for coverage audits."""

    def __init__(
        self,
        *,
        k: int = 5,
        tail_quantile: float = 0.1,
        holdout_fraction: float = 0.2,
        index: IndexKind = "auto",
        exact_threshold: int = EXACT_THRESHOLD,
        n_modes: int | None = None,
        model: str | None = None,
        random_state: int = 0,
    ) -> None:
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        if not 0 < tail_quantile < 1:
            raise InvalidInputError(f"tail_quantile must be in (0, 1), got {tail_quantile}")
        if not 0 <= holdout_fraction < 1:
            raise InvalidInputError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        resolve_kind(index, 0)  # validates the name
        self.k = k
        self.tail_quantile = tail_quantile
        self.holdout_fraction = holdout_fraction
        self.index = index
        self.exact_threshold = exact_threshold
        self.n_modes = n_modes
        self.model = model
        self.random_state = random_state
        self._saved_in: tuple[Path, int] | None = None
        self._cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        progress: ProgressCallback | None = None,
        **params: Any,
    ) -> ReferenceCorpus:
        result = embedder.embed(texts, progress=progress)
        params.setdefault("model", embedder.model_name)
        return cls(**params).fit(result.vectors, texts=texts)

    def fit(self, vectors: np.ndarray | PartRows, *, texts: Sequence[str] | None = None) -> Self:
        """Split off the held-out part and index the rest. `vectors` may be a `PartRows` (a
        staged build's chunks on disk): each row is then read once, into its side of the split."""
        vectors = checked_rows(vectors, name="reference vectors")
        _check_texts(texts, len(vectors))
        core_rows, holdout, core_texts = self._split(vectors, texts, appends=0)
        if len(core_rows) < self.k + 2:
            raise InsufficientDataError(
                f"a reference needs at least {self.k + 2} indexed documents for k={self.k} "
                f"(after holding out {self.holdout_fraction:.0%}); got {len(core_rows)}"
            )
        self.dim_ = vectors.shape[1]
        self.holdout_ = holdout
        self.snippets_: list[str] | None = core_texts
        self.index_kind_ = resolve_kind(self.index, len(core_rows), self.exact_threshold)
        self.index_, self.vectors_ = indexed_rows(vectors, core_rows, self.index_kind_)
        self.n_appends_ = 0
        self.parts_: list[tuple[int, int]] = [(len(core_rows), len(holdout))]  # (indexed, held out)
        self._saved_in = None  # (a folder, how many of our parts it holds): none yet
        self.created_ = datetime.now(UTC).isoformat(timespec="seconds")
        self._cache = {}
        return self

    def append(self, vectors: np.ndarray | PartRows, *, texts: Sequence[str] | None = None) -> Self:
        """Add documents without rebuilding the index; radii, tails and modes go stale."""
        self._check_fitted()
        vectors = checked_rows(vectors, name="appended vectors", dim=self.dim_)
        _check_texts(texts, len(vectors))
        if (texts is None) != (self.snippets_ is None):
            raise InvalidInputError(
                "this reference was built "
                + ("with" if self.snippets_ is not None else "without")
                + " texts: append "
                + ("with" if self.snippets_ is not None else "without")
                + " texts"
            )
        self.n_appends_ += 1
        core_rows, holdout, core_texts = self._split(vectors, texts, appends=self.n_appends_)
        if self.index_kind_ in FLAT_STORAGE_KINDS:  # grown from a copy of the index
            self.index_, self.vectors_ = indexed_rows(
                vectors, core_rows, self.index_kind_, grow=self.index_
            )
        else:
            added = take_rows(vectors, core_rows)
            self.index_.add(added)
            self.vectors_ = np.vstack([self.vectors_, added])
        self.holdout_ = np.vstack([self.holdout_, holdout])
        if self.snippets_ is not None and core_texts is not None:
            self.snippets_.extend(core_texts)
        self.parts_.append((len(core_rows), len(holdout)))
        self._cache = {}
        return self

    def _split(
        self, vectors: np.ndarray | PartRows, texts: Sequence[str] | None, appends: int
    ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
        """(the indexed rows' numbers, the held-out vectors, the indexed rows' snippets)."""
        # Seeded by (random_state, append number): a reloaded reference appends reproducibly.
        rng = np.random.default_rng([self.random_state, appends])
        order = rng.permutation(len(vectors))
        n_hold = round(self.holdout_fraction * len(vectors))
        hold_idx, core_idx = np.sort(order[:n_hold]), np.sort(order[n_hold:])
        core_texts = None if texts is None else [texts[i][:SNIPPET_CHARS] for i in core_idx]
        dim = vectors.shape[1]
        holdout = take_rows(vectors, hold_idx) if n_hold else np.empty((0, dim), dtype=np.float32)
        return core_idx, holdout, core_texts

    # ------------------------------------------------------------------ derived, lazily
    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise NotFittedError("this ReferenceCorpus is not fitted: call fit() or load() first")

    def _cached(self, key: str, compute: Any) -> Any:
        self._check_fitted()
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def radii_(self) -> np.ndarray:
        """Each indexed point's distance to its k-th nearest indexed neighbour."""
        return self._cached("radii", lambda: knn_radii(self.index_, self.vectors_, self.k))

    @property
    def tail_threshold_(self) -> float:
        return float(np.quantile(self.radii_, 1 - self.tail_quantile))

    @property
    def tail_mask_(self) -> np.ndarray:
        """True for the sparse tail: points whose k-NN radius is in the top q-quantile."""
        return self._cached("tail", lambda: self.radii_ >= self.tail_threshold_)

    @property
    def modes_(self) -> tuple[np.ndarray, np.ndarray]:
        """(centroids, label of each indexed point) of a seeded k-means over the reference."""
        n = len(self.vectors_)
        n_modes = self.n_modes or int(np.clip(round(np.sqrt(n / 10)), 2, 64))
        n_modes = min(n_modes, n)
        return self._cached("modes", lambda: fit_modes(self.vectors_, n_modes, self.random_state))

    @property
    def mode_exemplars_(self) -> list[str] | None:
        """Start of the indexed document nearest each mode centre (None without texts)."""
        if self.snippets_ is None:
            return None
        centroids, _ = self.modes_
        _, ids = knn(self.index_, self.vectors_, centroids, 1)
        return [self.snippets_[int(i)] for i in ids[:, 0]]

    def neighbours(
        self, queries: np.ndarray, k: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Euclidean distances and ids of each query's k nearest indexed reference points."""
        self._check_fitted()
        queries = as_matrix(queries, name="query vectors", dim=self.dim_)
        return knn(self.index_, self.vectors_, queries, k or self.k)

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.vectors_) + len(self.holdout_)

    # ------------------------------------------------------------------ persistence
    def meta(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "dim": self.dim_,
            "k": self.k,
            "tail_quantile": self.tail_quantile,
            "holdout_fraction": self.holdout_fraction,
            "index": self.index,
            "index_kind": self.index_kind_,
            "exact_threshold": self.exact_threshold,
            "n_modes": self.n_modes,
            "random_state": self.random_state,
            "n_indexed": len(self.vectors_),
            "n_holdout": len(self.holdout_),
            "n_appends": self.n_appends_,
            "parts": [list(part) for part in self.parts_],
            "created": self.created_,
        }

    def save(self, path: str | Path) -> None:
        """Write to `path` atomically: readers see the old version or this one, never a mix.

        Parts already in the folder this reference was loaded from (or last saved to) are
        hard-linked, not written again: after an append only the new part is written."""
        meta = self.meta()
        radii = self.radii_  # computed now so that load() is cheap
        saved_in = self._saved_in

        def write(folder: Path) -> None:
            core_at = np.cumsum([0] + [n for n, _ in self.parts_])
            hold_at = np.cumsum([0] + [n for _, n in self.parts_])
            for i in range(len(self.parts_)):
                names = part_names(i)
                if saved_in is not None and i < saved_in[1]:
                    old = stored_part_names(saved_in[0], i)
                    if link_all(saved_in[0], old, folder, names, self.snippets_ is not None):
                        continue
                core = slice(core_at[i], core_at[i + 1])
                np.save(folder / names["vectors"], self.vectors_[core])
                np.save(folder / names["holdout"], self.holdout_[hold_at[i] : hold_at[i + 1]])
                if self.snippets_ is not None:
                    (folder / names["snippets"]).write_text(json.dumps(self.snippets_[core]))
            np.save(folder / "radii.npy", radii)
            if self.index_kind_ != "exact":  # a flat index is rebuilt from the vectors in ms
                faiss.write_index(self.index_, str(folder / "index.faiss"))
            (folder / "meta.json").write_text(json.dumps(meta, indent=2))

        write_dir_atomic(path, write)
        self._saved_in = (resolve_dir(path), len(self.parts_))

    @classmethod
    def load(
        cls, path: str | Path, *, model: str | None = None, dim: int | None = None
    ) -> ReferenceCorpus:
        """Load a saved reference; `model`/`dim`, if given, must match what it was built with."""
        folder = resolve_dir(path)
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            raise CorruptReferenceError(f"no reference at {path} (meta.json missing)")
        try:
            meta = json.loads(meta_file.read_text())
            if meta.get("format_version") not in READABLE_FORMATS:
                raise CorruptReferenceError(
                    f"reference at {path} has format {meta.get('format_version')}, "
                    f"this version reads {', '.join(map(str, READABLE_FORMATS))}: rebuild it"
                )
            if model is not None and meta["model"] != model:
                raise ReferenceMismatchError(
                    f"reference at {path} was built with model {meta['model']!r}, not {model!r}: "
                    "rebuild it with this model or configure the model it was built with"
                )
            if dim is not None and meta["dim"] != dim:
                raise ReferenceMismatchError(
                    f"reference at {path} has dimension {meta['dim']}, the model gives {dim}"
                )
            ref = cls(
                k=meta["k"],
                tail_quantile=meta["tail_quantile"],
                holdout_fraction=meta["holdout_fraction"],
                index=meta["index"],
                exact_threshold=meta["exact_threshold"],
                n_modes=meta["n_modes"],
                model=meta["model"],
                random_state=meta["random_state"],
            )
            # Format 1 kept everything in one file each: that is part 0.
            parts = [tuple(p) for p in meta.get("parts", [[meta["n_indexed"], meta["n_holdout"]]])]
            names = [stored_part_names(folder, i) for i in range(len(parts))]
            stored = PartRows([folder / n["vectors"] for n in names], name="vectors")
            holdout = load_parts(folder, [n["holdout"] for n in names], meta["dim"])
            radii = np.load(folder / "radii.npy")
            kind = meta["index_kind"]
            index, vectors = loaded_index(folder, kind, stored)
            snippets: list[str] | None = None
            if (folder / names[0]["snippets"]).is_file():
                snippets = []
                for part in names:
                    snippets.extend(json.loads((folder / part["snippets"]).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptReferenceError(f"reference at {path} is unreadable: {exc}") from exc
        if not (
            vectors.shape == stored.shape == (meta["n_indexed"], meta["dim"])
            and holdout.shape == (meta["n_holdout"], meta["dim"])
            and radii.shape == (meta["n_indexed"],)
            and index.ntotal == meta["n_indexed"]
            and (snippets is None or len(snippets) == meta["n_indexed"])
            and sum(n for n, _ in parts) == meta["n_indexed"]
            and sum(n for _, n in parts) == meta["n_holdout"]
        ):
            raise CorruptReferenceError(f"reference at {path}: files disagree with meta.json")
        ref.dim_, ref.vectors_, ref.holdout_, ref.index_ = meta["dim"], vectors, holdout, index
        ref.index_kind_, ref.n_appends_, ref.created_ = kind, meta["n_appends"], meta["created"]
        ref.snippets_ = snippets
        ref.parts_ = [(int(a), int(b)) for a, b in parts]
        ref._saved_in = (folder, len(parts))
        ref._cache = {"radii": radii}
        return ref


def _check_texts(texts: Sequence[str] | None, n: int) -> None:
    if texts is not None and len(texts) != n:
        raise InvalidInputError(f"got {len(texts)} texts for {n} vectors: pass one text per vector")
