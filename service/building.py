"""A reference build that streams its input and survives a crash: `build_staged`.

The input is read as a stream and embedded `chunk_documents` at a time. Each chunk's texts and
vectors are written to the build's staging folder (`service.staging`) before the next is read, so
memory holds one chunk of texts and of vectors while embedding. After the last chunk the reference
is fitted on the staged files (`detectors.rows.PartRows`: each row read once, into the index or the
held-out part, a block at a time; it keeps the first `SNIPPET_CHARS` of each text, not the texts)
and stored with the staged files hard-linked in as its parts, and the staging is removed.

A build killed at any point (kill -9 included) leaves its staging. `resume=True` checks that the
input and the settings are the staged build's, reads past the staged documents (checking each
staged chunk's texts against its digest: a changed input is refused, not mixed in) and embeds from
the first document not staged. A refusal that no resume could get past (invalid input, too few
documents, a name taken meanwhile) removes the staging; anything else (a kill, Ctrl-C, a full
disk, a bug) keeps it.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.embedding import check_document
from detectors.errors import CollapseGuardError, EmptyCorpusError, InvalidInputError
from detectors.reference import SNIPPET_CHARS, ReferenceCorpus
from detectors.rows import PartRows
from service.staging import (
    Staging,
    StagingError,
    StagingMismatchError,
    chunk_digest,
    read_manifest,
    staging_exists,
    staging_folder,
    try_lock,
)
from service.store import ConflictError

if TYPE_CHECKING:
    from detectors.embedding import Embedder
    from service.schemas import ReferenceInfo
    from service.settings import Settings
    from service.store import Store

Progress = Callable[[int, int], None]
CHUNK_DOCUMENTS = 4096  # ~1 min of embedding on 2 cores: at most that much is lost to a kill


@dataclass(frozen=True)
class StagedBuild:
    """A stored reference and how much of it this run embedded."""

    info: ReferenceInfo
    documents: int
    resumed_chunks: int  # chunks a killed run had staged, kept without embedding them again
    resumed_documents: int
    embedded_documents: int  # embedded by this run


def build_staged(
    store: Store,
    name: str,
    texts: Iterable[str],
    *,
    embedder: Embedder,
    settings: Settings,
    chunk_documents: int = CHUNK_DOCUMENTS,
    resume: bool = False,
    restart: bool = False,
    keep_input_for_job: str | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> StagedBuild:
    """Embed `texts` chunk by chunk into a staging folder, then fit and store reference `name`.

    `keep_input_for_job`: the id of a REST job whose documents (a list) are kept in the staging
    too, so a restarted service can resume it (`service.build_jobs`)."""
    if chunk_documents < 1:
        raise InvalidInputError(
            f"the chunk size must be at least 1 document, got {chunk_documents}"
        )
    if isinstance(texts, str | bytes):
        raise InvalidInputError("expected a sequence of documents, got a single string")
    folder = staging_folder(settings.data_dir, name)
    _check_name(store, name, folder)
    staging = Staging.open(
        folder,
        name=name,
        input=input_fingerprint(texts),
        build=build_settings(embedder, settings, chunk_documents),
        resume=resume,
        restart=restart,
    )
    try:
        if keep_input_for_job is not None and not staging.chunks:
            staging.keep_input(list(texts), keep_input_for_job)
        return _build(
            store, name, texts, staging, embedder, settings, chunk_documents, progress, notice
        )
    except StagingError:
        staging.close()  # a resume refused: the staging stays as it was
        raise
    except CollapseGuardError:
        staging.remove()  # refused for good: a resume would meet the same refusal
        raise
    except BaseException:
        staging.close()  # killed, interrupted or a bug: kept for --resume
        raise


def check_build_name(
    store: Store, name: str, data_dir: Path, *, resume: bool = False, restart: bool = False
) -> None:
    """What `build_staged` refuses before it reads anything, checked before the model loads:
    an invalid or taken name, an interrupted build of `name` without --resume or --restart."""
    folder = staging_folder(data_dir, name)
    _check_name(store, name, folder)
    manifest = read_manifest(folder)
    if manifest is not None and manifest["chunks"] and not (resume or restart):
        raise staging_exists(name, folder, manifest)


def check_rest_build_name(store: Store, name: str, data_dir: Path) -> None:
    """What a REST build of `name` is refused for before it is queued: an invalid or taken
    name, or a build of that name staged on the server (running, or interrupted: a CLI build,
    which only `reference build --resume` on the server continues). The caller cannot pass
    flags nor see the server's paths, so the message names neither."""
    folder = staging_folder(data_dir, name)
    _check_name(store, name, folder)
    manifest = read_manifest(folder)
    lock = try_lock(folder) if folder.is_dir() else None
    running = folder.is_dir() and lock is None
    if lock is not None:
        os.close(lock)
    if running or (manifest is not None and manifest["chunks"]):
        state = "is running" if running else "was interrupted and is staged on the server"
        raise ConflictError(
            f"a build of a reference named {name!r} {state}: choose another name, or ask "
            "the service's operator to finish or discard that build"
        )


def _check_name(store: Store, name: str, folder: Path) -> None:
    """The name must be valid and free. A staging under a taken name is what a build left when
    it died between storing its reference and removing the staging: it is removed."""
    try:
        store.check_new_name(name)
    except CollapseGuardError:
        if store.has_reference(name) and (lock := try_lock(folder)) is not None:
            shutil.rmtree(folder, ignore_errors=True)
            os.close(lock)
        raise


def _build(
    store: Store,
    name: str,
    texts: Iterable[str],
    staging: Staging,
    embedder: Embedder,
    settings: Settings,
    chunk_documents: int,
    progress: Progress | None,
    notice: Callable[[str], None] | None,
) -> StagedBuild:
    staged = staging.chunks
    resumed = staging.n_documents
    if staged and notice is not None:
        notice(
            f"resuming {name!r}: {len(staged):,} staged chunk(s), {resumed:,} documents, "
            "kept (not embedded again)"
        )
    total = len(texts) if isinstance(texts, Sized) else None
    done = resumed
    verified = 0  # staged chunks this input was checked against
    for i, chunk in enumerate(_chunks(texts, chunk_documents)):
        if i < len(staged):
            if chunk_digest(chunk) != staged[i]["sha256"] or len(chunk) != staged[i]["n"]:
                first = i * chunk_documents
                raise StagingMismatchError(
                    f"cannot resume the build of {name!r}: documents {first + 1:,}-"
                    f"{first + len(chunk):,} of this input differ from the staged ones; pass "
                    "--restart instead of --resume to build from the start"
                )
            verified = i + 1
            continue

        def chunk_progress(d: int, _: int, base: int = done, n: int = len(chunk)) -> None:
            if progress is not None:
                progress(base + d, total if total is not None else base + n)

        vectors = embedder.embed(chunk, progress=chunk_progress).vectors
        staging.add(chunk, vectors)
        done += len(chunk)
    if verified < len(staged):
        raise StagingMismatchError(
            f"cannot resume the build of {name!r}: this input has fewer documents than the "
            f"{resumed:,} staged; pass --restart instead of --resume to build from the start"
        )
    if staging.n_documents == 0:
        raise EmptyCorpusError("the corpus is empty: pass at least one document")
    # The staged chunks on disk: the fit reads each row once, into its side of the split.
    staged_vectors = PartRows([part.vectors for part in staging.parts()], name="staged vectors")
    reference = ReferenceCorpus(
        holdout_fraction=settings.holdout_fraction,
        tail_quantile=settings.tail_quantile,
        model=embedder.model_name,
        random_state=settings.random_state,
    ).fit(staged_vectors, texts=staging.snippets(SNIPPET_CHARS))
    del staged_vectors  # the reference holds its split of them; the store links the staged files
    info = store.create_reference_from_parts(name, staging.parts(), reference)
    staging.remove()
    return StagedBuild(
        info=info,
        documents=info.size,
        resumed_chunks=len(staged),
        resumed_documents=resumed,
        embedded_documents=done - resumed,
    )


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """`texts` in lists of `size`, each document checked as `validate_texts` would (same
    messages, numbered over the whole input)."""
    it = iter(texts)
    start = 0
    while chunk := list(itertools.islice(it, size)):
        for i, text in enumerate(chunk, start=start):
            check_document(i, text)
        start += len(chunk)
        yield chunk


def input_fingerprint(texts: Iterable[str]) -> dict[str, Any]:
    """What a build reads, as a resume compares it: each file's path, size and modification time
    and the reading options for files (a `CorpusReader`); for documents passed in memory, only
    their kind (a resume then relies on the staged chunks' digests)."""
    files = getattr(texts, "files", None)
    if files is None:
        return {"kind": "documents"}
    return {
        "kind": "files",
        "format": getattr(texts, "format", None),
        "text_field": getattr(texts, "text_field", None),
        "text_unit": getattr(texts, "text_unit", None),
        "split": getattr(texts, "split", None),
        "files": [_file_stamp(Path(path)) for path, _ in files],
    }


def _file_stamp(path: Path) -> dict[str, Any]:
    items = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    stats = [p.stat() for p in items]
    return {
        "path": str(path.resolve()),
        "bytes": sum(s.st_size for s in stats),
        "modified_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def build_settings(embedder: Embedder, settings: Settings, chunk_documents: int) -> dict[str, Any]:
    """What decides the staged vectors and the fitted reference: a resume must use the same."""
    return {
        "model": embedder.model_name,
        "precision": getattr(embedder, "precision", None),
        "long_documents": getattr(embedder, "long_documents", None),
        "chunk_documents": chunk_documents,
        "holdout_fraction": settings.holdout_fraction,
        "tail_quantile": settings.tail_quantile,
        "random_state": settings.random_state,
    }
