"""Timing helpers the audit benchmarks share: a stage timer and a cold CLI audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(log: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, adding each call's wall time to `log[name]`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            log[name] = log.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


def cold_cli_audit(data_dir: Path, candidate: Path, reference: str, out: Path) -> tuple[float, str]:
    """`collapse-guard audit` in a new process (model and reference loads included): its wall
    time and verdict. Exits the benchmark if the audit fails."""
    env = {**os.environ, "COLLAPSE_GUARD_DATA_DIR": str(data_dir)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            Path(sys.executable).parent / "collapse-guard",
            *("audit", str(candidate), "--reference", reference),
            *("--quiet", "--json", str(out)),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 10, 20, 30):
        raise SystemExit(f"cold audit failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, json.loads(out.read_text())["verdict"]["decision"]
