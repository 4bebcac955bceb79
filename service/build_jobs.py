"""REST reference builds that resume after the service restarts.

A build job keeps its request's documents in its staging folder (`input.jsonl`) with its job id in
the manifest. When the service starts, every staging whose job the jobs table still records as
queued or running (the process that ran it died) is queued again: the build resumes from its last
staged chunk, reading the documents from its own copy. Other interrupted jobs are marked failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detectors.errors import CollapseGuardError
from service.jobs import Progress, resume_job
from service.schemas import Job, ReferenceInfo
from service.staging import STAGED_INPUT, read_manifest, staging_root
from service.store import NotFoundError, read_texts

if TYPE_CHECKING:
    from service.api.deps import EmbedderLoader
    from service.settings import Settings
    from service.store import Store
    from service.workpool import WorkPool

_log = logging.getLogger("collapse_guard.jobs")


@dataclass(frozen=True)
class ResumableBuild:
    job: Job
    name: str
    chunk_documents: int


def resumable_builds(store: Store, settings: Settings) -> list[ResumableBuild]:
    """Staged REST builds whose job a dead process left queued or running."""
    found = []
    root = staging_root(settings.data_dir)
    for folder in sorted(root.glob("*.build")) if root.is_dir() else []:
        try:
            manifest = read_manifest(folder)
            if manifest is None or not manifest.get("job"):
                continue
            if not (folder / STAGED_INPUT).is_file():
                continue
            job = store.get_job(manifest["job"])
            if job.kind == "reference" and job.state in ("queued", "running"):
                chunk = int(manifest["build"]["chunk_documents"])
                name = str(manifest["name"])
                found.append(ResumableBuild(job=job, name=name, chunk_documents=chunk))
        except NotFoundError:
            continue
        except (CollapseGuardError, KeyError, TypeError, ValueError) as exc:
            # A damaged staging or job row must not stop the service: that build is not
            # resumed (its job is marked failed with the other interrupted ones).
            _log.warning("not resuming the build staged in %s: %s", folder, exc)
    return found


def resume_builds(
    store: Store,
    pool: WorkPool,
    loader: EmbedderLoader,
    settings: Settings,
    builds: list[ResumableBuild],
) -> None:
    """Queue each build again; it resumes from its staging (`build_reference(resume=True)`)."""
    from service.audit import build_reference
    from service.staging import staging_folder

    for build in builds:

        def work(progress: Progress, build: ResumableBuild = build) -> ReferenceInfo:
            texts = read_texts(staging_folder(settings.data_dir, build.name) / STAGED_INPUT)
            return build_reference(
                store,
                build.name,
                texts,
                embedder=loader.get(),
                settings=settings,
                progress=progress,
                chunk_documents=build.chunk_documents,
                resume=True,
            )

        resume_job(store, pool, build.job, work)
