"""A newcomer follows the README: demo data, a reference, an audit, the report, the verdict.

Everything runs through the real `collapse-guard` CLI in subprocesses, on real BBC News text,
with the real embedding model and a real SQLite data directory. The only departure from the
README's commands is smaller demo sizes (--reference-docs/--candidate-docs) and a short plan, to
keep the suite fast. The same audit is then repeated through the library entry point to check
the CLI's --json is the service's AuditResult, number for number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.commands.common import EXIT_CODES
from service.schemas import AuditResult

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLAN = "generations=3,samples=200,seeds=4"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory):
    """The README's quick start, step by step; returns the folder and each step's process."""
    home = tmp_path_factory.mktemp("newcomer")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "120",
        "COLLAPSE_GUARD_DATA_DIR": str(home / "data"),
        # the product's default, which conftest turns off for the other suites
        "COLLAPSE_GUARD_SYNTHETIC_METHOD": "curvature",
    }
    demo = home / "demo"
    steps = {
        "demo-data": cli(
            "demo-data", str(demo), "--reference-docs", "300", "--candidate-docs", "80", env=env
        )
    }
    steps["build"] = cli("reference", "build", "bbc", str(demo / "reference.jsonl"), env=env)
    steps["list"] = cli("reference", "list", "--json", env=env)
    steps["audit"] = cli(
        "audit",
        str(demo / "candidate-fresh.jsonl"),
        "--reference",
        "bbc",
        "--plan",
        PLAN,
        "--report",
        str(home / "fresh.html"),
        "--json",
        str(home / "fresh.json"),
        env=env,
    )
    steps["stdout"] = cli(
        "audit",
        str(demo / "candidate-fresh.jsonl"),
        "--reference",
        "bbc",
        "--plan",
        PLAN,
        "--json",
        "-",
        "--quiet",
        env=env,
    )
    steps["unknown"] = cli(
        "audit", str(demo / "candidate-fresh.jsonl"), "--reference", "nope", "--quiet", env=env
    )
    return home, env, steps


def test_demo_data_and_reference_build(newcomer):
    home, _, steps = newcomer
    for name in ("demo-data", "build", "list"):
        assert steps[name].returncode == 0, (name, steps[name].stderr)
    assert (home / "demo" / "reference.jsonl").is_file()
    refs = json.loads(steps["list"].stdout)
    assert [(r["name"], r["size"]) for r in refs] == [("bbc", 300)]
    assert "Traceback" not in steps["build"].stderr


def test_audit_exit_code_json_and_report_agree(newcomer):
    home, _, steps = newcomer
    proc = steps["audit"]
    assert "Traceback" not in proc.stderr, proc.stderr
    result = AuditResult.model_validate_json((home / "fresh.json").read_text())
    decision = result.verdict.decision
    # The pipeline reads the verdict from the exit code; it must match the JSON.
    assert proc.returncode == EXIT_CODES[decision], (proc.returncode, decision, proc.stderr)
    assert result.reference == "bbc" and result.corpus_size == 80
    assert result.plan.generations == 3 and result.plan.seeds == 4
    assert result.verdict.reasons, "every verdict carries its reasons"
    # The verdict is printed for a person too.
    assert decision.upper() in proc.stdout
    # The report is one HTML file with the same verdict and reasons, plus its PNG summary.
    html = (home / "fresh.html").read_text()
    assert f"Verdict: {decision}" in html
    for reason in result.verdict.reasons:
        assert reason.message.replace("'", "&#39;").replace('"', "&#34;") in html
    assert "data:image/png;base64," in html and "http://" not in html
    png = (home / "fresh.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def _comparable(result: AuditResult) -> dict:
    """The result without what differs between two runs: id, time, the forecast's wall time."""
    data = json.loads(result.model_dump_json(exclude={"id", "created"}))
    data["forecast"].pop("elapsed_seconds")
    return data


def test_json_on_stdout_is_pure_and_reproducible(newcomer):
    home, _, steps = newcomer
    proc = steps["stdout"]
    first = AuditResult.model_validate_json((home / "fresh.json").read_text())
    again = AuditResult.model_validate_json(proc.stdout)  # nothing but JSON on stdout
    assert proc.returncode == EXIT_CODES[again.verdict.decision]
    assert again.id != first.id  # a second audit, stored under its own id
    assert _comparable(again) == _comparable(first)  # seeded: same input, same numbers


def test_fresh_human_text_is_kept(newcomer):
    """Unseen articles from the same source as the reference are what the guard must accept."""
    home, _, _ = newcomer
    result = AuditResult.model_validate_json((home / "fresh.json").read_text())
    assert result.verdict.decision == "keep", result.verdict
    synthetic = result.synthetic_fraction
    assert synthetic is not None and synthetic.estimate.method == "curvature-mixture"
    assert synthetic.estimate.point <= 0.05 and synthetic.scored_documents == 80


def test_unknown_reference_is_one_line(newcomer):
    proc = newcomer[2]["unknown"]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no reference named 'nope'" in " ".join(proc.stderr.split())


def test_cli_json_equals_the_library_audit(newcomer, embedder):
    """The CLI is a door into `service.audit`: same input, same settings -> same result."""
    from service.audit import run_audit
    from service.commands.backend import parse_plan
    from service.inputs import CorpusReader
    from service.settings import Settings
    from service.store import Store

    home, env, _ = newcomer
    cli_result = AuditResult.model_validate_json((home / "fresh.json").read_text())
    settings = Settings(
        data_dir=Path(env["COLLAPSE_GUARD_DATA_DIR"]),
        synthetic_method=env["COLLAPSE_GUARD_SYNTHETIC_METHOD"],
    )
    store = Store(settings)
    try:
        lib_result = run_audit(
            store,
            "bbc",
            CorpusReader([home / "demo" / "candidate-fresh.jsonl"]),
            embedder=embedder,
            settings=settings,
            plan=parse_plan(PLAN),
        )
    finally:
        store.close()
    assert _comparable(cli_result) == _comparable(lib_result)
