"""`collapse-guard reference` / `audit` / `demo-data` as a user runs them: real subprocesses.

User mistakes must print exactly one `error:` line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "service.cli"]


def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    # Never the user's own data directory: a throw-away one per run, removed after it.
    with tempfile.TemporaryDirectory(prefix="cg-cli-") as data_dir:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "COLUMNS": "120",
            "COLLAPSE_GUARD_DATA_DIR": data_dir,
            **settings,
        }
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
        )


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    # rich may wrap a long line: compare against the whole stderr with newlines folded.
    flat = " ".join(proc.stderr.split())
    for needle in needles:
        assert needle in flat, (needle, proc.stderr)
    return flat


@pytest.fixture(scope="module")
def bbc_jsonl(tmp_path_factory, bbc_docs) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "bbc.jsonl"
    with path.open("w") as f:
        for doc in bbc_docs[:30]:
            f.write(json.dumps({"body": doc.text, "source": doc.source}) + "\n")
    return path


def test_bad_setting_names_its_variable_in_one_line():
    proc = run("reference", "list", COLLAPSE_GUARD_AUDIT_SIZE="many")
    assert_user_error(proc, "COLLAPSE_GUARD_AUDIT_SIZE", "valid integer", "for example 5000")
    proc = run("serve", COLLAPSE_GUARD_EMBEDDING_PRECISION="fp8")
    assert_user_error(proc, "COLLAPSE_GUARD_EMBEDDING_PRECISION", "'auto', 'float32' or 'bfloat16'")


@pytest.mark.parametrize(
    ("command", "variable", "value", "needles"),
    [
        ("serve", "COLLAPSE_GUARD_API_KEYS", "notjson", ("not valid JSON", '"write"}')),
        ("list", "COLLAPSE_GUARD_API_KEYS", "notjson", ("not valid JSON", '"write"}')),
        ("serve", "COLLAPSE_GUARD_API_KEYS", '{"abc": "admin"}', ("'read' or 'write'",)),
        ("serve", "COLLAPSE_GUARD_POLICY", "{bad", ("not valid JSON", "max_synthetic_fraction")),
        ("list", "COLLAPSE_GUARD_POLICY", '{"max_synthetic_fraction": 2}', ("or equal to 1",)),
        (
            "serve",
            "COLLAPSE_GUARD_POLICY__MAX_SYNTHETIC_FRACTION",
            "abc",
            ("valid number", "for example 0.3"),
        ),
    ],
)
def test_a_bad_json_setting_stops_every_command_in_one_line(command, variable, value, needles):
    """Settings read as JSON (the keys, the policy) fail to parse before they are validated:
    one line naming the variable and a valid value, exit 2, for the service as for the CLI."""
    args = ("serve",) if command == "serve" else ("reference", "list")
    assert_user_error(run(*args, **{variable: value}), variable, *needles)


def test_a_bad_scorer_setting_names_its_variable_and_the_fix():
    proc = run("reference", "list", COLLAPSE_GUARD_SCORER="/no/such/model")
    assert_user_error(proc, "COLLAPSE_GUARD_SCORER", "smollm2-135m, gemma3-270m", "existing path")
    proc = run("reference", "list", COLLAPSE_GUARD_SCORER_DEVICE="tpu")
    assert_user_error(proc, "COLLAPSE_GUARD_SCORER_DEVICE", "'cpu' or 'cuda'")
    proc = run("reference", "list", COLLAPSE_GUARD_SYNTHETIC_METHOD="binoculars")
    assert_user_error(proc, "COLLAPSE_GUARD_BINOCULARS_PERFORMER", "sharing the scorer's tokenizer")


def test_audit_help_documents_the_exit_codes():
    proc = run("audit", "--help")
    assert proc.returncode == 0
    flat = " ".join(proc.stdout.split())
    assert "0 keep, 10 top-up, 20 reject, 30 inconclusive, 2 user error" in flat
    for option in ("--reference", "--policy", "--plan", "--report", "--json", "--engine", "--url"):
        assert option in proc.stdout


def test_every_decision_has_its_own_exit_code():
    from typing import get_args

    from service.commands.common import EXIT_CODES
    from service.policy import Decision

    assert set(EXIT_CODES) == set(get_args(Decision))
    assert EXIT_CODES["inconclusive"] == 30
    codes = list(EXIT_CODES.values())
    assert len(set(codes)) == len(codes) and 2 not in codes and 1 not in codes


def test_inconclusive_audit_exits_30_and_shows_its_reasons(tmp_path, monkeypatch):
    """The audit command in process, with a backend that answers an inconclusive verdict: the
    exit code is 30 and the panel names the decision and its reasons (no model is loaded)."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import service.commands.backend as backend_module
    from service.cli import app
    from service.policy import Reason, Verdict

    reason = Reason(
        code="out-of-domain",
        message="62% of the candidate lies outside the reference's domain",
        value=0.62,
        limit=0.5,
    )
    verdict = Verdict(decision="inconclusive", reasons=(reason,))

    class Backend:
        def audit(self, reference, reader, **kwargs):
            assert reference == "news"
            return SimpleNamespace(result=SimpleNamespace(verdict=verdict), extras={})

    @contextmanager
    def fake_backend(url, api_key, *, engine="local"):
        yield Backend()

    monkeypatch.setattr(backend_module, "open_backend", fake_backend)
    corpus = tmp_path / "cand.jsonl"
    corpus.write_text('{"text": "one document"}\n')
    proc = CliRunner().invoke(app, ["audit", str(corpus), "--reference", "news"])
    assert proc.exit_code == 30, proc.output
    flat = " ".join(proc.output.split())
    assert "INCONCLUSIVE" in flat and "62% of the candidate lies outside" in flat

    from service.commands.backend import VERDICT_STYLES, verdict_panel

    assert VERDICT_STYLES["inconclusive"] not in {
        VERDICT_STYLES[d] for d in ("keep", "top-up", "reject")
    }
    panel = verdict_panel(SimpleNamespace(verdict=verdict))
    assert f"[bold {VERDICT_STYLES['inconclusive']}]INCONCLUSIVE[/]" in str(panel.renderable)


def test_missing_corpus_file(tmp_path):
    proc = run("audit", str(tmp_path / "nope.jsonl"), "--reference", "bbc", "--quiet")
    assert_user_error(proc, "nope.jsonl: no such file or folder")
    proc = run("reference", "build", "bbc", str(tmp_path / "ref.parquet"), "--quiet")
    assert_user_error(proc, "ref.parquet: no such file or folder")


def test_error_line_survives_brackets_in_file_names(tmp_path):
    # rich would read "[/bold]" as markup; the message must come out verbatim, on one line.
    proc = run("audit", str(tmp_path / "[/bold]x.jsonl"), "--reference", "bbc", "--quiet")
    assert_user_error(proc, "[/bold]x.jsonl: no such file or folder")


def test_wrong_field_name_lists_the_fields(bbc_jsonl):
    # Content errors surface while reading, before any embedding (`audit` first checks that the
    # reference exists, so `reference build` is the command that reaches the reader here).
    proc = run("reference", "build", "bbc", str(bbc_jsonl), "--quiet")
    assert_user_error(proc, "no field 'text' (fields: 'body', 'source')", "--text-field")


def test_unreadable_format_and_unknown_extension(tmp_path, bbc_docs):
    fake = tmp_path / "corpus.parquet"
    fake.write_text(bbc_docs[0].text)
    assert_user_error(
        run("reference", "build", "x", str(fake), "--quiet"), "not a readable Parquet file"
    )
    csv = tmp_path / "corpus.csv"
    csv.write_text(bbc_docs[0].text)
    assert_user_error(
        run("reference", "build", "x", str(csv), "--quiet"), "unknown format", "--format"
    )


def test_non_utf8_bytes_name_the_line(tmp_path, bbc_docs):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps({"text": bbc_docs[0].text}).encode() + b"\n" + b'{"text": "caf\xe9"}\n'
    )
    assert_user_error(
        run("reference", "build", "x", str(path), "--quiet"),
        "latin1.jsonl:2: not valid UTF-8",
    )


def test_bad_options_are_one_line(tmp_path, bbc_jsonl):
    args = [str(bbc_jsonl), "--text-field", "body", "--reference", "bbc", "--quiet"]
    assert_user_error(
        run("audit", *args, "--policy", str(tmp_path / "p.toml")), "p.toml: no such policy file"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("max_synthetic_fraction = [unclosed\n")
    assert_user_error(run("audit", *args, "--policy", str(bad)), "bad.toml: not valid TOML")
    assert_user_error(run("audit", *args, "--engine", "spark"), "unknown engine 'spark'")
    build = ["reference", "build", "x", str(bbc_jsonl), "--text-field", "body", "--quiet"]
    assert_user_error(run(*build, "--engine", "spark"), "unknown engine 'spark'")
    assert_user_error(
        run("audit", *args, "--json", str(tmp_path / "no" / "out.json")), "does not exist"
    )


def test_demo_data_writes_real_bbc_jsonl(tmp_path):
    proc = run("demo-data", str(tmp_path), "--reference-docs", "100", "--candidate-docs", "40")
    assert proc.returncode == 0, proc.stderr
    reference = [json.loads(x) for x in (tmp_path / "reference.jsonl").read_text().splitlines()]
    fresh = [json.loads(x) for x in (tmp_path / "candidate-fresh.jsonl").read_text().splitlines()]
    narrow = [json.loads(x) for x in (tmp_path / "candidate-narrow.jsonl").read_text().splitlines()]
    assert len(reference) == 100 and len(fresh) == 40 and len(narrow) == 40
    # Candidates are unseen articles; the narrow one comes from two BBC sections only.
    assert not {r["source"] for r in reference} & {r["source"] for r in fresh + narrow}
    assert {r["source"].split("/")[1] for r in narrow} == {"business", "sports"}
    assert len({r["source"].split("/")[1] for r in reference}) == 5
    assert all(len(r["text"].split()) > 20 for r in reference + fresh + narrow)
    # Same seed, same files.
    again = tmp_path / "again"
    assert (
        run(
            "demo-data", str(again), "--reference-docs", "100", "--candidate-docs", "40", "--quiet"
        ).returncode
        == 0
    )
    assert (again / "reference.jsonl").read_bytes() == (tmp_path / "reference.jsonl").read_bytes()


def test_policy_file_and_plan_option_become_the_services_models(tmp_path):
    from detectors.errors import InvalidInputError
    from service.commands.backend import load_policy, parse_plan
    from service.policy import Policy
    from simulations.forecast import Plan

    path = tmp_path / "policy.toml"
    path.write_text("max_synthetic_fraction = 0.2\nmin_relative_tail_coverage = 0.95\n")
    policy = load_policy(path)
    assert isinstance(policy, Policy)
    assert (policy.max_synthetic_fraction, policy.min_relative_tail_coverage) == (0.2, 0.95)
    assert policy.hard_max_synthetic_fraction == Policy().hard_max_synthetic_fraction
    path.write_text("max_synthetic_fractoin = 0.2\n")  # a typo must not be ignored
    with pytest.raises(InvalidInputError, match="max_synthetic_fractoin"):
        load_policy(path)

    plan = parse_plan("generations=7, policy=keep-real, beta=0.25")
    assert plan == Plan(generations=7, policy="keep-real", beta=0.25)
    with pytest.raises(InvalidInputError, match="not key=value"):
        parse_plan("generations")
    with pytest.raises(InvalidInputError, match="seeds"):
        parse_plan("seeds=1")
    with pytest.raises(InvalidInputError, match="'seeds' is given twice"):
        parse_plan("seeds=4,generations=3,seeds=8")
    path.write_text("max_synthetic_fraction = 0.7\nhard_max_synthetic_fraction = 0.6\n")
    with pytest.raises(InvalidInputError, match="above hard_max_synthetic_fraction"):
        load_policy(path)
