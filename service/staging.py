"""The staging folder of a reference build: chunks embedded so far, kept on disk until the end.

`<data_dir>/staging/<name>.build/` holds `manifest.json` and, for each finished chunk, its texts
(`texts-00000.jsonl`) and vectors (`vectors-00000.npy`). A chunk's files are written to temporary
names, fsynced and renamed; only then does the manifest (rewritten the same way) list the chunk. So
a build killed at any point leaves a staging whose manifest lists only whole chunks: files of the
chunk it was writing are not listed, and are deleted when the staging is opened again.

The manifest also records what the build read and how it embeds (`input`, `build`): a resumed
build must match both, and the texts of each staged chunk (their SHA-256) as it reads past them.

One build per name at a time: the staging is locked (`flock`, released by the kernel when the
process dies, so a killed build never leaves a stale lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.errors import InvalidInputError
from detectors.storage import fsync_dir
from service.store import PartFiles, part_names, read_texts, write_texts, write_vectors

MANIFEST = "manifest.json"
STAGED_INPUT = "input.jsonl"  # a REST job's documents, kept so the job can resume after a restart
MANIFEST_FORMAT = 1


class StagingError(InvalidInputError):
    """A staged build that cannot be used as asked; the message says which flag to pass."""


class StagingExistsError(StagingError):
    """A build of this name was interrupted and neither --resume nor --restart was passed."""


class StagingMismatchError(StagingError):
    """--resume with an input or settings other than the staged build's."""


class BuildRunningError(StagingError):
    """Another process is building a reference of this name right now."""


def staging_root(data_dir: Path) -> Path:
    return Path(data_dir) / "staging"


def staging_folder(data_dir: Path, name: str) -> Path:
    # A suffix, because reference names may be "." or "..".
    return staging_root(data_dir) / f"{name}.build"


def chunk_digest(texts: Sequence[str]) -> str:
    """SHA-256 of a chunk's texts as its JSONL holds them."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(json.dumps(text).encode() + b"\n")
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Staging:
    """An open (locked) staging folder. Use `Staging.open`, then `add` chunks, then `remove`
    once the reference is stored, or `close` to keep it for a later resume."""

    def __init__(self, folder: Path, manifest: dict[str, Any], lock: int) -> None:
        self.folder = folder
        self.manifest = manifest
        self._lock = lock

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        name: str,
        input: dict[str, Any],
        build: dict[str, Any],
        resume: bool,
        restart: bool,
    ) -> Staging:
        """Lock and open the staging of `name`: the staged one when resuming (checked against
        `input` and `build`), else a fresh one (refused if an interrupted build is staged,
        unless `restart`)."""
        if resume and restart:
            raise InvalidInputError("pass --resume or --restart, not both")
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder, name)
        try:
            manifest = _read_manifest(folder)
            if manifest is not None and resume:
                problems = _differences(manifest, input, build)
                if not problems:
                    staging = cls(folder, manifest, lock)
                    staging._remove_unlisted()
                    return staging
                if manifest["chunks"]:
                    raise StagingMismatchError(
                        f"cannot resume the build of {name!r}: {'; '.join(problems)}; pass "
                        f"--restart instead of --resume to discard its {_summary(manifest)} "
                        "and build from the start"
                    )
            elif manifest is not None and manifest["chunks"] and not restart:
                raise staging_exists(name, folder, manifest)
            # Nothing staged (or --restart): start afresh.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            fresh = {
                "format": MANIFEST_FORMAT,
                "name": name,
                "input": input,
                "build": build,
                "chunks": [],
            }
            _write_json(folder / MANIFEST, fresh)
            return cls(folder, fresh, lock)
        except BaseException:
            os.close(lock)
            raise

    # ------------------------------------------------------------ what is staged
    @property
    def chunks(self) -> list[dict[str, Any]]:
        return list(self.manifest["chunks"])

    @property
    def n_documents(self) -> int:
        return sum(c["n"] for c in self.manifest["chunks"])

    def parts(self) -> list[PartFiles]:
        return [
            PartFiles(self.folder / c["texts"], self.folder / c["vectors"], c["n"])
            for c in self.manifest["chunks"]
        ]

    def snippets(self, chars: int) -> list[str]:
        """The start of every staged text (what a reference keeps of its documents in memory)."""
        return [text[:chars] for part in self.parts() for text in read_texts(part.texts)]

    def staged_input(self) -> Iterator[str]:
        return read_texts(self.folder / STAGED_INPUT)

    # ------------------------------------------------------------ writing
    def keep_input(self, texts: Sequence[str], job: str | None) -> None:
        """Keep a request's documents here (and the job that builds them) so that a service
        restarted mid-build can resume the job from its own copy."""
        write_texts(self.folder / STAGED_INPUT, texts)
        self.manifest = {**self.manifest, "job": job}
        _write_json(self.folder / MANIFEST, self.manifest)

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Stage one chunk: its files first (each atomically), then the manifest that lists it."""
        i = len(self.manifest["chunks"])
        texts_name, vectors_name = part_names(i)
        write_texts(self.folder / texts_name, texts)
        write_vectors(self.folder / vectors_name, np.asarray(vectors, dtype=np.float32))
        chunk = {
            "n": len(texts),
            "texts": texts_name,
            "vectors": vectors_name,
            "sha256": chunk_digest(texts),
        }
        self.manifest = {**self.manifest, "chunks": [*self.manifest["chunks"], chunk]}
        _write_json(self.folder / MANIFEST, self.manifest)

    def _remove_unlisted(self) -> None:
        """Delete what a killed build was writing when it died (files the manifest does not
        list: a half-written chunk, temporary files)."""
        keep = {MANIFEST, STAGED_INPUT}
        keep |= {c[key] for c in self.manifest["chunks"] for key in ("texts", "vectors")}
        for item in self.folder.iterdir():
            if item.name not in keep:
                item.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the lock; the staging stays for `--resume`."""
        os.close(self._lock)

    def remove(self) -> None:
        """Delete the staging (the reference is stored, or the build was refused for good)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        _lock_file(self.folder).unlink(missing_ok=True)
        self.close()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a staging folder, or None if there is none (or it is unreadable)."""
    return _read_manifest(folder)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None  # never written (a kill before the first manifest): nothing to resume
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    return manifest


def staging_exists(name: str, folder: Path, manifest: dict[str, Any]) -> StagingExistsError:
    return StagingExistsError(
        f"an interrupted build of {name!r} is staged ({_summary(manifest)}, in "
        f"{folder}): pass --resume to continue it or --restart to discard it"
    )


def _lock_file(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.lock")


def _lock(folder: Path, name: str) -> int:
    fd = os.open(_lock_file(folder), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BuildRunningError(
            f"another process is building reference {name!r} now: wait for it to finish"
        ) from None
    return fd


def try_lock(folder: Path) -> int | None:
    """The staging's lock if no build holds it, else None (a build is running)."""
    fd = os.open(_lock_file(folder), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _summary(manifest: dict[str, Any]) -> str:
    chunks = manifest["chunks"]
    n = sum(c["n"] for c in chunks)
    return f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''}, {n:,} documents"


_BUILD_LABELS = {
    "model": "embedding model",
    "precision": "embedding precision",
    "long_documents": "long-document handling",
    "chunk_documents": "chunk size (--chunk-size)",
    "holdout_fraction": "holdout fraction",
    "tail_quantile": "tail quantile",
    "random_state": "random state",
}


def _differences(
    manifest: dict[str, Any], input: dict[str, Any], build: dict[str, Any]
) -> list[str]:
    """What differs between a staged build and this one, in words (empty: it may resume)."""
    problems = [
        f"{_BUILD_LABELS.get(key, key)} was {manifest['build'].get(key)!r}, now {build.get(key)!r}"
        for key in sorted(set(build) | set(manifest["build"]))
        if manifest["build"].get(key) != build.get(key)
    ]
    staged = manifest["input"]
    if staged.get("kind") != input.get("kind"):
        return [*problems, f"it read {staged.get('kind')}, this build reads {input.get('kind')}"]
    for key in sorted(set(staged) | set(input)):
        if key not in ("kind", "files") and staged.get(key) != input.get(key):
            problems.append(
                f"{key.replace('_', ' ')} was {staged.get(key)!r}, now {input.get(key)!r}"
            )
    old_files, new_files = staged.get("files", []), input.get("files", [])
    if [f["path"] for f in old_files] != [f["path"] for f in new_files]:
        shown = ", ".join(f["path"] for f in old_files[:3]) + ("..." if len(old_files) > 3 else "")
        problems.append(f"it read {shown}, this build reads other files")
        return problems
    for old, new in zip(old_files, new_files, strict=True):
        if old["bytes"] != new["bytes"]:
            problems.append(
                f"{new['path']} changed size ({old['bytes']:,} -> {new['bytes']:,} bytes)"
            )
        elif old["modified_ns"] != new["modified_ns"]:
            problems.append(f"{new['path']} was modified since the staged build")
    return problems
