"""Persistence with no server to install: SQLite metadata plus one folder per reference.

A reference is written in this order: its data folder `<id>.data` (texts and their vectors in
input order, in parts `texts-00000.jsonl` + `vectors-00000.npy`, ...; published by renaming a
complete temporary folder), its `ReferenceCorpus` folder (atomically replaced), then its row, in
one SQLite transaction. A crash before the commit leaves files no row points to, which `Store`
removes when it opens: a reference is whole or absent, never half there.

An append writes a new version under a new id whose data folder hard-links the old parts and adds
one new part: texts and vectors already stored are never written again. References stored before
parts existed (`<id>.texts.jsonl` + `<id>.vectors.npy`) still read, and their files become part 0
of the next version when appended to.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from detectors.errors import CollapseGuardError, InvalidInputError
from detectors.reference import ReferenceCorpus
from detectors.results import non_finite_paths
from detectors.storage import fsync_dir, remove_dir
from service.schemas import AuditResult, Job, ReferenceInfo

if TYPE_CHECKING:
    from service.settings import Settings


class NotFoundError(CollapseGuardError):
    """An id or name that the store does not hold."""


class ConflictError(CollapseGuardError):
    """A name that is already taken."""


class UnreadableRecordError(CollapseGuardError):
    """A stored audit or job that this version cannot read (written by an older version, or
    damaged): the caller is told to run the work again; nothing else in the store is affected."""


class NonFiniteResultError(RuntimeError):
    """A result holding NaN or infinity, refused before it is stored (a bug, not a user error):
    JSON has no such numbers, so the row would not read back."""


def _check_finite(model: BaseModel, what: str) -> None:
    bad = non_finite_paths(model)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NonFiniteResultError(f"{what} holds numbers that are not finite at {shown}")


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(map(str, error["loc"])) or "the row"
    more = exc.error_count() - 1
    return f"{where}: {error['msg']}" + (f" (and {more} more)" if more else "")


_log = logging.getLogger("collapse_guard.store")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created TEXT NOT NULL, info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    id TEXT PRIMARY KEY, reference_id TEXT NOT NULL, created TEXT NOT NULL, result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created TEXT NOT NULL, job TEXT NOT NULL);
"""


# Reference names (also the REST schema's pattern): not starting with a dot, so never "." or ".."
# (which name folders, not references) nor a hidden file.
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$"
# A path of the REST API where a reference's name would stand (/v1/references/upload).
RESERVED_NAMES = frozenset({"upload"})


@dataclass(frozen=True)
class PartFiles:
    """One part of a reference's documents: a JSONL of texts and the .npy of their vectors."""

    texts: Path
    vectors: Path
    n_documents: int


def part_names(i: int) -> tuple[str, str]:
    """File names of part `i` (texts, vectors), in a data folder and in a build's staging."""
    return f"texts-{i:05d}.jsonl", f"vectors-{i:05d}.npy"


def write_texts(path: Path, texts: Iterable[str]) -> int:
    """Write `texts` as JSONL to `path` through a temporary file, fsynced then renamed (a crash
    leaves the old file or the whole new one). Returns how many were written."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for text in texts:
            fh.write(json.dumps(text) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def write_vectors(path: Path, vectors: np.ndarray) -> None:
    """`np.save` through a temporary file, fsynced then renamed."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.npy")
    with open(tmp, "wb") as fh:
        np.save(fh, vectors)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_texts(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir)
        (self.root / "references").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "collapse-guard.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        # The connection is shared by the request thread and the workers: one writer at a time,
        # so one thread's commit never carries another's half-done statements.
        self._lock = threading.RLock()
        # Loaded references by id, most recent last. An id is one immutable version (an append
        # writes a new id), so an entry is never stale; a million-document reference takes
        # seconds to load, which an audit would otherwise pay every time.
        self._loaded: OrderedDict[str, ReferenceCorpus] = OrderedDict()
        self._remove_orphans()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        """Whether the database answers (readiness)."""
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # ------------------------------------------------------------ references
    def _folder(self, ref_id: str) -> Path:
        return self.root / "references" / ref_id

    def _data_folder(self, ref_id: str) -> Path:
        return self.root / "references" / f"{ref_id}.data"

    def _legacy_files(self, ref_id: str) -> tuple[Path, Path]:
        """Where a reference stored before parts existed keeps its texts and vectors."""
        refs = self.root / "references"
        return refs / f"{ref_id}.texts.jsonl", refs / f"{ref_id}.vectors.npy"

    def reference_parts(self, name_or_id: str) -> list[PartFiles]:
        """The files of a stored reference's documents, in input order."""
        ref_id = self.reference_info(name_or_id).id
        folder = self._data_folder(ref_id)
        if not folder.is_dir():
            texts, vectors = self._legacy_files(ref_id)
            return [PartFiles(texts, vectors, len(np.load(vectors, mmap_mode="r")))]
        listing = json.loads((folder / "parts.json").read_text())["parts"]
        return [PartFiles(folder / p["texts"], folder / p["vectors"], p["n"]) for p in listing]

    def reference_vectors(self, name_or_id: str) -> np.ndarray:
        """Every reference document's vector, aligned with `reference_texts`."""
        parts = [np.load(p.vectors, mmap_mode="r") for p in self.reference_parts(name_or_id)]
        return np.concatenate(parts) if len(parts) > 1 else np.asarray(parts[0])

    def _remove_orphans(self) -> None:
        known = {row[0] for row in self._db.execute("SELECT id FROM refs")}
        for item in (self.root / "references").iterdir():
            ref_id = item.name.lstrip(".").split(".")[0]
            if ref_id not in known:
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)

    def create_reference(
        self, name: str, texts: Sequence[str], vectors: np.ndarray, reference: ReferenceCorpus
    ) -> ReferenceInfo:
        """Store a fitted reference with its texts and their vectors (in input order: the
        synthetic-fraction estimator needs text and vector of the same document)."""
        return self._create(
            name, reference, lambda folder: [_write_part(folder, 0, texts, vectors)]
        )

    def create_reference_from_parts(
        self, name: str, parts: Sequence[PartFiles], reference: ReferenceCorpus
    ) -> ReferenceInfo:
        """Like `create_reference`, from parts already on disk in this file system (a staged
        build's chunks): they are hard-linked into the reference, not copied."""
        return self._create(
            name, reference, lambda folder: [_link_part(folder, i, p) for i, p in enumerate(parts)]
        )

    def _create(self, name: str, reference: ReferenceCorpus, fill: _Fill) -> ReferenceInfo:
        self.check_new_name(name)
        ref_id = uuid.uuid4().hex[:12]
        self._write_data(ref_id, fill)
        reference.save(self._folder(ref_id))
        info = self._info(ref_id, name, reference, created=now())
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO refs (id, name, created, info) VALUES (?, ?, ?, ?)",
                (ref_id, name, info.created, info.model_dump_json()),
            )
        return info

    def append_reference(
        self, name_or_id: str, texts: Sequence[str], vectors: np.ndarray
    ) -> ReferenceInfo:
        """Add documents to a stored reference without rebuilding its index.

        The grown reference is written under a new id and the name's row switched to it in one
        transaction, so a crash leaves the old version whole (its new files are orphans, removed
        at the next open) or the new one. Only the new part is written: the stored parts are
        hard-linked into the new version (and so are the `ReferenceCorpus`'s own parts; its
        radii, meta and any approximate index are written again).
        """
        with self._lock:
            info = self.reference_info(name_or_id)
            reference = ReferenceCorpus.load(self._folder(info.id))  # a copy: grown below
            old_parts = self.reference_parts(info.id)
            snippets = list(texts) if reference.snippets_ is not None else None
            reference.append(vectors, texts=snippets)
            new_id = uuid.uuid4().hex[:12]

            def fill(folder: Path) -> list[dict]:
                linked = [_link_part(folder, i, p) for i, p in enumerate(old_parts)]
                return [*linked, _write_part(folder, len(old_parts), texts, vectors)]

            self._write_data(new_id, fill)
            reference.save(self._folder(new_id))
            grown = self._info(new_id, info.name, reference, created=info.created)
            with self._db:
                self._db.execute("DELETE FROM refs WHERE id = ?", (info.id,))
                self._db.execute(
                    "INSERT INTO refs (id, name, created, info) VALUES (?, ?, ?, ?)",
                    (new_id, info.name, grown.created, grown.model_dump_json()),
                )
            self._remove_files(info.id)
            return grown

    def _write_data(self, ref_id: str, fill: _Fill) -> None:
        """Fill a temporary folder with parts, then publish it as `<id>.data` by a rename."""
        target = self._data_folder(ref_id)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        tmp.mkdir()
        try:
            listing = fill(tmp)
            # Parts are fsynced as they are written (linked ones were, when first written).
            with open(tmp / "parts.json", "w") as fh:
                json.dump({"parts": listing}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(tmp)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def _info(ref_id: str, name: str, reference: ReferenceCorpus, *, created: str) -> ReferenceInfo:
        meta = reference.meta()
        return ReferenceInfo(
            id=ref_id,
            name=name,
            created=created,
            model=str(meta["model"]),
            dimension=meta["dim"],
            size=meta["n_indexed"] + meta["n_holdout"],
            n_indexed=meta["n_indexed"],
            n_holdout=meta["n_holdout"],
            tail_quantile=meta["tail_quantile"],
            index=meta["index_kind"],
        )

    def check_new_name(self, name: str) -> None:
        """Raise unless `name` is a valid name no reference has yet."""
        if not re.fullmatch(NAME_PATTERN, name):
            raise InvalidInputError(
                f"reference name {name!r} must be 1-100 letters, digits, '-', '_' or '.', "
                "not starting with '.'"
            )
        if name in RESERVED_NAMES:
            raise InvalidInputError(
                f"reference name {name!r} is reserved (a path of the REST API): choose another"
            )
        if self._row_by_name(name) is not None:
            raise ConflictError(f"a reference named {name!r} exists: choose another name")

    def _row_by_name(self, name: str) -> str | None:
        row = self._db.execute("SELECT info FROM refs WHERE name = ? OR id = ?", (name, name))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def has_reference(self, name_or_id: str) -> bool:
        return self._row_by_name(name_or_id) is not None

    def reference_info(self, name_or_id: str) -> ReferenceInfo:
        raw = self._row_by_name(name_or_id)
        if raw is None:
            raise NotFoundError(
                f"no reference named {name_or_id!r}: list them with `collapse-guard reference list`"
            )
        return ReferenceInfo.model_validate_json(raw)

    def list_references(self) -> list[ReferenceInfo]:
        rows = self._db.execute("SELECT info FROM refs ORDER BY created, name")
        return [ReferenceInfo.model_validate_json(r[0]) for r in rows]

    def load_reference(self, name_or_id: str) -> tuple[ReferenceInfo, ReferenceCorpus]:
        """A stored reference, fitted; the same object for the same version while it stays among
        the `loaded_references` most recently used (callers do not change it)."""
        info = self.reference_info(name_or_id)
        with self._lock:
            reference = self._loaded.pop(info.id, None)
        if reference is None:
            reference = ReferenceCorpus.load(self._folder(info.id))
        with self._lock:
            self._loaded[info.id] = reference
            while len(self._loaded) > self.settings.loaded_references:
                self._loaded.popitem(last=False)
        return info, reference

    def reference_texts(self, name_or_id: str) -> list[str]:
        return [
            text for part in self.reference_parts(name_or_id) for text in read_texts(part.texts)
        ]

    def reference_documents(
        self, name_or_id: str, indices: np.ndarray
    ) -> tuple[list[str], np.ndarray]:
        """The texts and vectors of the documents at sorted `indices` (input order), reading
        only the parts that hold them: a sample of a million-document reference costs its own
        size in memory, not the reference's."""
        picks = np.asarray(indices, dtype=np.int64)
        texts: list[str] = []
        vectors: list[np.ndarray] = []
        start = 0
        for part in self.reference_parts(name_or_id):
            lo, hi = np.searchsorted(picks, [start, start + part.n_documents])
            if hi > lo:
                local = picks[lo:hi] - start
                wanted = set(local.tolist())
                texts += [t for i, t in enumerate(read_texts(part.texts)) if i in wanted]
                vectors.append(np.asarray(np.load(part.vectors, mmap_mode="r")[local]))
            start += part.n_documents
        if len(texts) != len(picks):
            raise ValueError(f"indices outside the reference's {start:,} documents")
        return texts, np.concatenate(vectors)

    def delete_reference(self, name_or_id: str) -> None:
        info = self.reference_info(name_or_id)
        with self._lock, self._db:
            self._db.execute("DELETE FROM refs WHERE id = ?", (info.id,))
            self._loaded.pop(info.id, None)
        self._remove_files(info.id)

    def _remove_files(self, ref_id: str) -> None:
        remove_dir(self._folder(ref_id))
        shutil.rmtree(self._data_folder(ref_id), ignore_errors=True)
        for legacy in self._legacy_files(ref_id):
            legacy.unlink(missing_ok=True)

    # ------------------------------------------------------------ audits
    def save_audit(self, result: AuditResult, reference_id: str) -> None:
        _check_finite(result, f"audit {result.id}")
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO audits (id, reference_id, created, result) VALUES (?, ?, ?, ?)",
                (result.id, reference_id, result.created, result.model_dump_json()),
            )

    def get_audit(self, audit_id: str) -> AuditResult:
        row = self._db.execute("SELECT result FROM audits WHERE id = ?", (audit_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no audit with id {audit_id!r}")
        try:
            return AuditResult.model_validate_json(row[0])
        except ValidationError as exc:
            raise UnreadableRecordError(
                f"audit {audit_id!r} is stored in a form this version cannot read "
                f"({_first_problem(exc)}): run the audit again"
            ) from None

    # ------------------------------------------------------------ jobs
    def save_job(self, job: Job) -> None:
        _check_finite(job, f"job {job.id}")
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (id, created, job) VALUES (?, ?, ?)",
                (job.id, job.created, job.model_dump_json()),
            )

    def delete_job(self, job_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def get_job(self, job_id: str) -> Job:
        row = self._db.execute("SELECT job FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        try:
            return Job.model_validate_json(row[0])
        except ValidationError as exc:
            raise UnreadableRecordError(
                f"job {job_id!r} is stored in a form this version cannot read "
                f"({_first_problem(exc)}): submit the work again"
            ) from None

    def fail_interrupted_jobs(self, keep: Collection[str] = ()) -> int:
        """Mark jobs left queued or running by a process that died as failed, but those in
        `keep` (builds that resume). The service calls this when it starts; a CLI opening the
        same store must not. Returns how many.

        A row this version cannot read never stops the start: one left queued or running (or
        whose state cannot be read) is replaced by a failed job saying so; a finished one is
        kept as it is (reading it answers `UnreadableRecordError`) and logged."""
        n = 0
        stopped = "the service stopped before this job finished: submit again"
        rows = self._db.execute("SELECT id, created, job FROM jobs").fetchall()
        for job_id, created, raw in rows:
            try:
                job = Job.model_validate_json(raw)
            except ValidationError as exc:
                state = _stored_state(raw)
                if state in ("succeeded", "failed"):
                    _log.warning("job %s is unreadable (%s); kept as is", job_id, exc)
                    continue
                _log.warning("job %s is unreadable (%s); marked failed", job_id, exc)
                stamp = now()
                job = Job(
                    id=job_id,
                    kind=_stored_kind(raw),
                    state="failed",
                    created=created,
                    updated=stamp,
                    error=f"{stopped} (its stored state could not be read: {_first_problem(exc)})",
                )
                self.save_job(job)
                n += 1
                continue
            if job.state in ("queued", "running") and job.id not in keep:
                update = {"state": "failed", "updated": now(), "error": stopped}
                self.save_job(job.model_copy(update=update))
                n += 1
        return n


def _stored(raw: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stored_state(raw: str) -> str | None:
    state = _stored(raw).get("state")
    return state if isinstance(state, str) else None


def _stored_kind(raw: str) -> Literal["reference", "audit"]:
    return "reference" if _stored(raw).get("kind") == "reference" else "audit"


_Fill = Callable[[Path], list[dict]]  # fills a data folder with parts, returns their listing


def _write_part(folder: Path, i: int, texts: Sequence[str], vectors: np.ndarray) -> dict:
    if len(texts) != len(vectors):
        raise InvalidInputError(f"got {len(texts)} texts for {len(vectors)} vectors")
    texts_name, vectors_name = part_names(i)
    write_texts(folder / texts_name, texts)
    write_vectors(folder / vectors_name, np.asarray(vectors, dtype=np.float32))
    return {"texts": texts_name, "vectors": vectors_name, "n": len(texts)}


def _link_part(folder: Path, i: int, part: PartFiles) -> dict:
    """Part `i` of `folder` as a hard link to an existing part (same inode: nothing copied)."""
    texts_name, vectors_name = part_names(i)
    os.link(part.texts, folder / texts_name)
    os.link(part.vectors, folder / vectors_name)
    return {"texts": texts_name, "vectors": vectors_name, "n": part.n_documents}
