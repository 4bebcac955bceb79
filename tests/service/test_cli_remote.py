"""The CLI against a running service (`--url`): the same commands, exit codes and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.commands.common import EXIT_CODES as EXIT
from service.schemas import AuditResult
from tests.service.test_api_server import KEY, Server
from tests.service.test_cli_audit import assert_user_error, run

pytestmark = pytest.mark.slow


def test_reference_and_audit_through_a_running_service(tmp_path, bbc_docs):
    order = np.random.default_rng(5).permutation(len(bbc_docs))
    ref, cand = tmp_path / "ref.jsonl", tmp_path / "cand.jsonl"
    ref.write_text("".join(json.dumps({"text": bbc_docs[i].text}) + "\n" for i in order[:150]))
    cand.write_text("".join(json.dumps({"text": bbc_docs[i].text}) + "\n" for i in order[150:210]))
    server = Server(tmp_path / "data")
    try:
        server.start()
        url = ["--url", f"http://127.0.0.1:{server.port}", "--api-key", KEY]
        built = run("reference", "build", "news", str(ref), *url, "--quiet")
        assert built.returncode == 0, built.stderr
        listed = run("reference", "list", *url)
        assert listed.returncode == 0 and "news" in listed.stdout
        out = tmp_path / "audit.json"
        plan = "generations=2,samples=200,seeds=2"
        audited = run(
            "audit",
            str(cand),
            "--reference",
            "news",
            "--plan",
            plan,
            "--json",
            str(out),
            "--quiet",
            *url,
        )
        result = AuditResult.model_validate_json(out.read_text())
        assert audited.returncode == EXIT[result.verdict.decision], audited.stderr
        assert result.reference == "news" and result.corpus_size == 60
        assert result.synthetic_fraction is not None
        wrong = run("reference", "list", "--url", url[1], "--api-key", "not-the-key")
        assert_user_error(wrong, "401", "invalid API key")
        missing = run("audit", str(cand), "--reference", "nope", *url)
        assert_user_error(missing, "404", "nope")
    finally:
        server.stop()
