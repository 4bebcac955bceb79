"""The `collapse-guard` CLI as a user runs it: a real subprocess, real model, real text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.results import CoverageReport, SyntheticReport

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "service.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
        cwd=cwd or Path(__file__).resolve().parents[2],
    )


def test_demo_separates_fresh_human_text_from_a_tails_dropped_candidate(tmp_path):
    out = tmp_path / "demo.json"
    proc = run("demo", "--reference-docs", "400", "--candidate-docs", "200", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "tail coverage" in proc.stdout and "Candidate B" in proc.stdout
    payload = json.loads(out.read_text())
    fresh = CoverageReport.model_validate(payload["fresh"])
    core = CoverageReport.model_validate(payload["core_only"])
    assert fresh.sample_size == core.sample_size == 100  # 25% of 400 held out
    assert core.tail_coverage.ratio < fresh.tail_coverage.ratio
    assert core.precision.value >= fresh.precision.value - 0.05
    synthetic = {k: SyntheticReport.model_validate(v) for k, v in payload["synthetic"].items()}
    human, machine = synthetic["A fresh"].synthetic, synthetic["C generated"].synthetic
    assert human.method == machine.method == "curvature-mixture"  # the service's method
    assert human.low <= 0.02 and machine.low > human.high  # told apart, with intervals
    # human news of another outlet and year reads as human, not as "unlike the reference"
    other = synthetic["D another outlet"].synthetic
    assert other.point <= 0.05 and other.low <= 0.02
    assert "Synthetic fraction" in proc.stdout


def test_user_mistake_is_one_line_and_exit_2(tmp_path):
    proc = run(
        "demo",
        "--reference-docs",
        "100",
        "--candidate-docs",
        "20",
        "--quiet",
        "--json",
        str(tmp_path / "no-such-dir" / "x.json"),
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot write" in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_option_value_is_rejected_without_traceback():
    proc = run("demo", "--reference-docs", "3")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "reference-docs" in proc.stderr
