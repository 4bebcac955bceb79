"""The human start of a forecast, kept per reference version and plan in the data directory.

Every forecast compares the candidate with the same plan started from fresh human data (the
reference's held-out part) under the same seeds (`simulations.forecast.human_start`). For one
reference version, plan, seed and retraining error that run is the same for every audit, and it
is half of a forecast's cost; a pipeline auditing shard after shard, one process per shard,
would pay it every time. So the first audit of a plan against a reference version computes it
and keeps it, and later audits (in any process) read it. The key includes the source of the
simulator and of the metrics it scores with, so a changed forecast never reads an old run; a
damaged file is a cache miss (computed again and replaced).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from simulations.forecast import Plan, human_start
from simulations.models.embedding import RETRAINING_ERROR, ProjectedReference
from simulations.results import Trajectory

if TYPE_CHECKING:
    from detectors.reference import ReferenceCorpus
    from service.schemas import ReferenceInfo
    from service.settings import Settings


def human_run(
    reference: ReferenceCorpus,
    info: ReferenceInfo,
    plan: Plan,
    settings: Settings,
    projected: ProjectedReference,
) -> dict[str, Trajectory]:
    """The plan's human start against this reference version: read, or computed and kept."""
    path = _path(info, plan, settings)
    kept = _load(path)
    if kept is not None:
        return kept
    human = human_start(
        reference,
        plan,
        random_state=settings.random_state,
        projected=projected,
        processes=settings.forecast_processes,
    )
    _save(path, human)
    return human


def _path(info: ReferenceInfo, plan: Plan, settings: Settings) -> Path:
    parts = [
        info.id,
        info.created,
        str(info.size),
        plan.model_dump_json(),
        str(settings.random_state),
        repr(RETRAINING_ERROR),
        _code_digest(),
    ]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    return settings.data_dir / "cache" / f"forecast-human-{digest}.json"


@functools.cache
def _code_digest() -> str:
    """A digest of the code a forecast's numbers depend on, read once per process."""
    import detectors
    import simulations

    roots = [Path(simulations.__path__[0]), Path(detectors.__path__[0])]
    files = sorted(p for root in roots for p in root.rglob("*.py") if "synthetic" not in p.parts)
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def _load(path: Path) -> dict[str, Trajectory] | None:
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: Trajectory.model_validate(t) for name, t in raw.items()}
    except Exception:  # a truncated or incompatible file is a cache miss, not an error
        return None


def _save(path: Path, human: dict[str, Trajectory]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Python's json keeps NaN (a metric no chain could score) and every float exactly.
    text = json.dumps({name: t.model_dump() for name, t in human.items()})
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: no shared temp file
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # atomic: a crash leaves no half-written run
