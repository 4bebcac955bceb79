"""The CLI against a running service (`--url`): the same commands, exit codes and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.client import ServiceError
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


def test_audit_url_of_a_corpus_above_the_body_limit_sends_a_sample(tmp_path, bbc_docs):
    # 12 JSONL shards of real BBC articles, 1.3 MB in all, against a service whose body limit
    # is 200 kB: the CLI samples two-stage here and sends only the sample and where it came from.
    order = np.random.default_rng(7).permutation(len(bbc_docs))
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": bbc_docs[i].text}) + "\n" for i in order[:150]))
    shards = tmp_path / "shards"
    shards.mkdir()
    cand = [bbc_docs[i].text for i in order[150:750]]
    for s in range(12):
        part = cand[s * 50 : (s + 1) * 50]
        (shards / f"part-{s:02d}.jsonl").write_text(
            "".join(json.dumps({"text": t}) + "\n" for t in part)
        )
    total = sum(p.stat().st_size for p in shards.iterdir())
    limit = 200_000
    assert total > 5 * limit
    data = tmp_path / "data"
    built = run(
        "reference", "build", "news", str(ref), "--quiet", COLLAPSE_GUARD_DATA_DIR=str(data)
    )
    assert built.returncode == 0, built.stderr
    server = Server(data, max_body_bytes=str(limit))
    try:
        client = server.start()
        with pytest.raises(ServiceError) as whole:  # the corpus itself does not fit a request
            client.audit("news", cand)
        assert whole.value.status_code == 413
        out = tmp_path / "audit.json"
        audited = run(
            "audit",
            str(shards),
            "--reference",
            "news",
            "--plan",
            "generations=2,samples=200,seeds=2",
            "--json",
            str(out),
            "--url",
            f"http://127.0.0.1:{server.port}",
            "--api-key",
            KEY,
            COLLAPSE_GUARD_AUDIT_SIZE="40",
            COLLAPSE_GUARD_FULL_READ_BYTES="100000",
            COLLAPSE_GUARD_SAMPLE_BLOCK_BYTES="16384",
        )
        result = AuditResult.model_validate_json(out.read_text())
        assert audited.returncode == EXIT[result.verdict.decision], audited.stderr
        sampling = result.sampling
        assert sampling is not None and sampling.method == "two-stage"
        assert sampling.bytes_total == total
        assert sampling.bytes_read is not None and 0 < sampling.bytes_read < total / 2
        assert not sampling.corpus_size_exact and 400 < result.corpus_size < 800  # 600
        assert sampling.design_effect >= 1 and sampling.effective_sample_size is not None
        assert any("two-stage sample" in note for note in result.notes)
        assert "two-stage sample of" in audited.stdout  # the CLI says what it read
        # stored as answered; a row stored before sampling was reported still loads
        assert client.get_audit(result.id).sampling == sampling
        old = json.loads(out.read_text())
        del old["sampling"]
        assert AuditResult.model_validate(old).sampling is None
        # a sample inconsistent with the corpus it claims is refused
        with pytest.raises(ServiceError) as bad:
            client.audit("news", cand[:3], sample={"corpus_size": 2})
        assert bad.value.status_code == 422 and "corpus_size" in str(bad.value)
    finally:
        server.stop()
