"""Persistence with no server to install: SQLite metadata plus one folder per reference.

A reference is written in this order: its texts file and its folder (each atomically replaced),
then its row, in one SQLite transaction. A crash before the commit leaves files no row points to,
which `Store` removes when it opens: a reference is whole or absent, never half there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from detectors.errors import CollapseGuardError, InvalidInputError
from detectors.reference import ReferenceCorpus
from detectors.storage import remove_dir
from service.schemas import AuditResult, Job, ReferenceInfo

if TYPE_CHECKING:
    from service.settings import Settings


class NotFoundError(CollapseGuardError):
    """An id or name that the store does not hold."""


class ConflictError(CollapseGuardError):
    """A name that is already taken."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created TEXT NOT NULL, info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    id TEXT PRIMARY KEY, reference_id TEXT NOT NULL, created TEXT NOT NULL, result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created TEXT NOT NULL, job TEXT NOT NULL);
"""


NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"  # reference names (also the REST schema's pattern)


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
        self._remove_orphans()

    def close(self) -> None:
        self._db.close()

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

    def _texts_file(self, ref_id: str) -> Path:
        return self.root / "references" / f"{ref_id}.texts.jsonl"

    def _vectors_file(self, ref_id: str) -> Path:
        return self.root / "references" / f"{ref_id}.vectors.npy"

    def reference_vectors(self, name_or_id: str) -> np.ndarray:
        """Every reference document's vector, aligned with `reference_texts`."""
        return np.load(self._vectors_file(self.reference_info(name_or_id).id))

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
        self.check_new_name(name)
        ref_id = uuid.uuid4().hex[:12]
        self._write_files(ref_id, texts, vectors, reference)
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
        at the next open) or the new one.
        """
        with self._lock:
            info, reference = self.load_reference(name_or_id)
            all_texts = self.reference_texts(info.id) + list(texts)
            all_vectors = np.vstack([self.reference_vectors(info.id), vectors])
            snippets = list(texts) if reference.snippets_ is not None else None
            reference.append(vectors, texts=snippets)
            new_id = uuid.uuid4().hex[:12]
            self._write_files(new_id, all_texts, all_vectors, reference)
            grown = self._info(new_id, info.name, reference, created=info.created)
            with self._db:
                self._db.execute("DELETE FROM refs WHERE id = ?", (info.id,))
                self._db.execute(
                    "INSERT INTO refs (id, name, created, info) VALUES (?, ?, ?, ?)",
                    (new_id, info.name, grown.created, grown.model_dump_json()),
                )
            self._remove_files(info.id)
            return grown

    def _write_files(
        self, ref_id: str, texts: Sequence[str], vectors: np.ndarray, reference: ReferenceCorpus
    ) -> None:
        self._write_texts(ref_id, texts)
        tmp = self._vectors_file(ref_id).with_name(f".{ref_id}.vectors.{uuid.uuid4().hex}.npy")
        np.save(tmp, vectors)
        os.replace(tmp, self._vectors_file(ref_id))
        reference.save(self._folder(ref_id))

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
                f"reference name {name!r} must be 1-100 letters, digits, '-', '_' or '.'"
            )
        if self._row_by_name(name) is not None:
            raise ConflictError(f"a reference named {name!r} exists: choose another name")

    def _write_texts(self, ref_id: str, texts: Sequence[str]) -> None:
        target = self._texts_file(ref_id)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with open(tmp, "w", encoding="utf-8") as fh:
            for text in texts:
                fh.write(json.dumps(text) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def _row_by_name(self, name: str) -> str | None:
        row = self._db.execute("SELECT info FROM refs WHERE name = ? OR id = ?", (name, name))
        found = row.fetchone()
        return None if found is None else str(found[0])

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
        info = self.reference_info(name_or_id)
        return info, ReferenceCorpus.load(self._folder(info.id))

    def reference_texts(self, name_or_id: str) -> list[str]:
        info = self.reference_info(name_or_id)
        with open(self._texts_file(info.id), encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def delete_reference(self, name_or_id: str) -> None:
        info = self.reference_info(name_or_id)
        with self._lock, self._db:
            self._db.execute("DELETE FROM refs WHERE id = ?", (info.id,))
        self._remove_files(info.id)

    def _remove_files(self, ref_id: str) -> None:
        remove_dir(self._folder(ref_id))
        self._texts_file(ref_id).unlink(missing_ok=True)
        self._vectors_file(ref_id).unlink(missing_ok=True)

    # ------------------------------------------------------------ audits
    def save_audit(self, result: AuditResult, reference_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO audits (id, reference_id, created, result) VALUES (?, ?, ?, ?)",
                (result.id, reference_id, result.created, result.model_dump_json()),
            )

    def get_audit(self, audit_id: str) -> AuditResult:
        row = self._db.execute("SELECT result FROM audits WHERE id = ?", (audit_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no audit with id {audit_id!r}")
        return AuditResult.model_validate_json(row[0])

    # ------------------------------------------------------------ jobs
    def save_job(self, job: Job) -> None:
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
        return Job.model_validate_json(row[0])

    def fail_interrupted_jobs(self) -> int:
        """Mark jobs left queued or running by a process that died as failed (the service calls
        this when it starts; a CLI opening the same store must not). Returns how many."""
        n = 0
        for (raw,) in self._db.execute("SELECT job FROM jobs").fetchall():
            job = Job.model_validate_json(raw)
            if job.state in ("queued", "running"):
                self.save_job(
                    job.model_copy(
                        update={
                            "state": "failed",
                            "updated": now(),
                            "error": "the service stopped before this job finished: submit again",
                        }
                    )
                )
                n += 1
        return n
