"""Atomic replacement of a directory: a crash mid-save leaves the previous version loadable.

A saved object lives in a hidden sibling folder `.NAME.v-<uuid>`; `NAME` itself is a symlink to it.
A save writes and fsyncs a complete new folder, then swaps the symlink with `os.replace`, which is
atomic on POSIX. Readers therefore see the old version or the new one, never a half-written one.
Leftover folders of interrupted saves are removed by the next save. One writer per path at a time
(the service serialises writers); readers need no lock.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from detectors.errors import InvalidInputError


def _fsync_tree(folder: Path) -> None:
    for item in folder.rglob("*"):
        if item.is_file():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (renames, new files) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _versions(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.v-*"))


def write_dir_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(folder)` on a fresh folder, then publish it at `path` atomically."""
    path = Path(path)
    if path.exists() and not path.is_symlink():
        raise InvalidInputError(
            f"{path} exists and was not written by collapse-guard: choose another path or remove it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    version = path.parent / f".{path.name}.v-{uuid.uuid4().hex}"
    version.mkdir()
    try:
        write(version)
        _fsync_tree(version)
        link = path.parent / f".{path.name}.link-{uuid.uuid4().hex}"
        os.symlink(version.name, link)
        os.replace(link, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    # Everything but the published version is garbage now: the previous version and the
    # folders of saves that crashed before their swap.
    for stale in _versions(path):
        if stale != version:
            shutil.rmtree(stale, ignore_errors=True)


def resolve_dir(path: str | Path) -> Path:
    """The folder currently published at `path`."""
    return Path(path).resolve()


def remove_dir(path: str | Path) -> None:
    """Unpublish `path` (atomic: the symlink goes first), then delete its versions."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
        fsync_dir(path.parent)
    elif path.exists():
        raise InvalidInputError(f"{path} was not written by collapse-guard; not removing it")
    for stale in _versions(path):
        shutil.rmtree(stale, ignore_errors=True)
