"""`collapse-guard simulate` and `forecast` as a user runs them: a real subprocess."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from simulations.forecast import Forecast
from simulations.results import SimulationResult
from simulations.theory import expected_variance, variance_of_variance

CLI = [sys.executable, "-m", "service.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=300)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_simulate_gaussian_writes_json_and_plot_matching_theory(tmp_path):
    out, png = tmp_path / "g.json", tmp_path / "g.png"
    proc = run(
        "simulate",
        "gaussian",
        "--generations",
        "30",
        "--samples",
        "50",
        "--seeds",
        "2000",
        "--estimator",
        "mle",
        "--json",
        str(out),
        "--plot",
        str(png),
    )
    assert proc.returncode == 0, proc.stderr
    result = SimulationResult.model_validate_json(out.read_text())
    variance = result.trajectories["variance"]
    assert len(variance.bands) == 31 and variance.theory is not None
    expected = expected_variance(31, 50, estimator="mle")[-1]
    se = np.sqrt(variance_of_variance(31, 50, estimator="mle")[-1] / 2000)
    assert abs(variance.bands[-1].mean - expected) <= 3.3 * se
    assert variance.theory[-1] == expected
    width, height = png_size(png)
    assert width > 600 and height > 300


def test_forecast_prints_trajectories_and_top_up(tmp_path):
    out, png = tmp_path / "f.json", tmp_path / "f.png"
    proc = run(
        "forecast",
        "--synthetic-fraction",
        "0.3",
        "--tail-coverage",
        "0.5",
        "--generations",
        "4",
        "--target",
        "0.9",
        "--json",
        str(out),
        "--plot",
        str(png),
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "top-up for 0.90" in proc.stdout and "fresh human documents per generation" in proc.stdout
    )
    forecast = Forecast.model_validate_json(out.read_text())
    assert len(forecast.trajectories["tail_coverage"].bands) == 5
    assert forecast.method == "what-if"
    assert png_size(png)[0] > 600


def test_user_mistakes_are_one_line_without_traceback(tmp_path):
    bad_beta = run(
        "forecast", "--synthetic-fraction", "0.3", "--tail-coverage", "0.5", "--beta", "0.2"
    )  # beta with policy replace
    assert bad_beta.returncode == 2
    assert "keep-real" in bad_beta.stderr and "Traceback" not in bad_beta.stderr
    bad_kind = run("simulate", "poisson")
    assert bad_kind.returncode == 2 and "Traceback" not in bad_kind.stderr
    unwritable = run(
        "simulate",
        "discrete",
        "--generations",
        "3",
        "--seeds",
        "4",
        "--quiet",
        "--json",
        str(tmp_path / "missing" / "x.json"),
    )
    assert unwritable.returncode == 2
    assert [line for line in unwritable.stderr.splitlines() if line.strip()] == [
        line for line in unwritable.stderr.splitlines() if "cannot write" in line
    ]
