"""The REST API in process (FastAPI's TestClient): every endpoint, auth, limits, 429, bad input.

The embedder is the real model's vectors through the test cache; the store is a real SQLite store
in a temporary folder. `tests/service/test_api_server.py` runs the same service as a real uvicorn
process.
"""

from __future__ import annotations

import json
import threading
import time
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.deps import get_embedder, hash_key
from service.main import create_app
from service.schemas import AuditResult, Job, ReferenceInfo
from service.settings import Settings
from simulations.forecast import Forecast
from tests.service.test_audit import CachedEmbedder

pytestmark = pytest.mark.slow
PLAN = {"generations": 2, "samples": 200, "seeds": 2}
WRITE, READ = "write-key-for-tests", "read-key-for-tests"
# A service without keys answers loopback clients only; TestClient's default peer is "testclient".
LOOPBACK = ("127.0.0.1", 50000)


class Loader:
    loaded = True
    error = None

    def __init__(self, embedder):
        self.embedder = embedder

    def get(self):
        return self.embedder


@pytest.fixture(scope="module")
def texts(bbc_sample):
    return bbc_sample[-260:]


def make_client(tmp_path, embed_cached, **overrides) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        audit_size=200,
        api_keys={hash_key(WRITE): "write", hash_key(READ): "read"},
        **overrides,
    )
    app = create_app(settings, load_model=False)
    loader = Loader(CachedEmbedder(embed_cached))
    app.dependency_overrides[get_embedder] = lambda: loader
    return TestClient(app, headers={"X-API-Key": WRITE})


@pytest.fixture(scope="module")
def client(tmp_path_factory, embed_cached, texts):
    with make_client(tmp_path_factory.mktemp("api"), embed_cached) as c:
        r = c.post("/v1/references", json={"name": "bbc", "texts": texts[:200]})
        assert r.status_code == 201, r.text
        yield c


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'collapse_guard_requests_total{method="GET"' in metrics.text
    assert "collapse_guard_work_in_flight" in metrics.text


def test_not_ready_until_the_model_is_loaded(tmp_path):
    app = create_app(Settings(data_dir=tmp_path), load_model=False)
    with TestClient(app, client=LOOPBACK) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json() == {"ready": False, "model": False, "store": True}


def test_openapi_lists_every_decision_and_the_new_policy_fields(tmp_path):
    app = create_app(Settings(data_dir=tmp_path), load_model=False)
    with TestClient(app, client=LOOPBACK) as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200
    schemas = r.json()["components"]["schemas"]
    verdicts = [m for name, m in schemas.items() if name.split("-")[0] == "Verdict"]
    assert verdicts, sorted(schemas)
    for model in verdicts:
        assert model["properties"]["decision"]["enum"] == [
            "keep",
            "top-up",
            "reject",
            "inconclusive",
        ]
    policies = [m for name, m in schemas.items() if name.split("-")[0] == "Policy"]
    assert policies, sorted(schemas)
    for model in policies:
        fields = model["properties"]
        assert fields["max_out_of_domain_fraction"]["maximum"] == 1
        assert fields["max_synthetic_interval_width"]["exclusiveMinimum"] == 0
        assert fields["reject_generated_share"]["default"] == 0.5


def test_reference_lifecycle(client, texts):
    info = ReferenceInfo.model_validate(client.get("/v1/references/bbc").json())
    assert info.size == 200 and info.model == "all-MiniLM-L6-v2"
    assert [r["name"] for r in client.get("/v1/references").json()] == ["bbc"]
    dup = client.post("/v1/references", json={"name": "bbc", "texts": texts[:30]})
    assert dup.status_code == 409 and "exists" in dup.json()["detail"]
    bad = client.post("/v1/references", json={"name": "no spaces", "texts": texts[:30]})
    assert bad.status_code == 422 and "A-Za-z0-9" in str(bad.json()["detail"])
    made = client.post("/v1/references", json={"name": "tmp", "texts": texts[200:240]})
    assert made.status_code == 201
    assert client.delete("/v1/references/tmp").status_code == 204
    assert client.get("/v1/references/tmp").status_code == 404
    assert client.get("/v1/references/bbc").json() == info.model_dump(mode="json")  # untouched


def test_append_documents_grows_the_reference(client, texts):
    assert (
        client.post("/v1/references", json={"name": "grow", "texts": texts[:60]}).status_code == 201
    )
    r = client.post("/v1/references/grow/documents", json={"texts": texts[200:230]})
    assert r.status_code == 200, r.text
    grown = ReferenceInfo.model_validate(r.json())
    assert grown.size == 90 and grown.name == "grow"
    assert client.get("/v1/references/grow").json() == grown.model_dump(mode="json")
    audit = client.post(
        "/v1/audits", json={"reference": "grow", "texts": texts[230:260], "plan": PLAN}
    )
    assert audit.status_code == 200, audit.text
    missing = client.post("/v1/references/nope/documents", json={"texts": ["a text"]})
    assert missing.status_code == 404
    assert client.delete("/v1/references/grow").status_code == 204


def test_upload_jsonl_and_bad_uploads(client, texts):
    body = "".join(json.dumps({"body": t}) + "\n" for t in texts[200:240]).encode()
    files = {"file": ("news.jsonl", body, "application/json")}
    ok = client.post(
        "/v1/references/upload", data={"name": "up", "text_field": "body"}, files=files
    )
    assert ok.status_code == 201, ok.text
    assert ReferenceInfo.model_validate(ok.json()).size == 40
    wrong = client.post("/v1/references/upload", data={"name": "up2"}, files=files)
    assert wrong.status_code == 422 and "news.jsonl" in wrong.json()["detail"]
    latin1 = {"file": ("old.txt", "café au lait".encode("latin-1"), "text/plain")}
    bad = client.post("/v1/references/upload", data={"name": "up3"}, files=latin1)
    assert bad.status_code == 422 and "UTF-8" in bad.json()["detail"]
    assert client.get("/v1/references/up2").status_code == 404  # nothing half-stored


def test_audit_stored_and_forecast_under_another_plan(client, texts):
    r = client.post("/v1/audits", json={"reference": "bbc", "texts": texts[200:260], "plan": PLAN})
    assert r.status_code == 200, r.text
    result = AuditResult.model_validate(r.json())
    assert result.verdict.decision in ("keep", "top-up", "reject") and result.verdict.reasons
    assert result.synthetic_fraction is not None
    assert AuditResult.model_validate(client.get(f"/v1/audits/{result.id}").json()) == result
    plan = {"generations": 3, "samples": 200, "seeds": 2, "policy": "keep-real", "beta": 0.2}
    fc = client.post(f"/v1/audits/{result.id}/forecast", json={"plan": plan})
    assert fc.status_code == 200
    assert Forecast.model_validate(fc.json()).plan.beta == 0.2
    assert client.get("/v1/audits/nope").status_code == 404


def test_what_if_forecast_from_numbers(client):
    body = {"synthetic_fraction": 0.4, "tail_coverage": 0.6, "plan": PLAN}
    fc = Forecast.model_validate(client.post("/v1/forecasts/what-if", json=body).json())
    assert fc.method == "what-if" and len(fc.trajectories["tail_coverage"].bands) == 3
    bad = client.post("/v1/forecasts/what-if", json={**body, "synthetic_fraction": 1.5})
    assert bad.status_code == 422
    wrong_beta = {**body, "plan": {**PLAN, "beta": 0.3}}  # beta without keep-real
    r = client.post("/v1/forecasts/what-if", json=wrong_beta)
    assert r.status_code == 422 and "keep-real" in r.text


def test_bad_requests_are_4xx_with_a_message(client):
    r = client.post(
        "/v1/audits", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert (
        client.post("/v1/audits", json={"reference": "bbc", "texts": "one string"}).status_code
        == 422
    )
    assert client.post("/v1/audits", json={"reference": "bbc", "texts": []}).status_code == 422
    blank = client.post("/v1/audits", json={"reference": "bbc", "texts": ["  ", "x"]})
    assert blank.status_code == 422 and "'texts', 0" in str(blank.json()["detail"])
    unknown = client.post("/v1/audits", json={"reference": "nope", "texts": ["a text"]})
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    assert client.get("/v1/jobs/nope").status_code == 404


def test_api_keys(client):
    anon = client.get("/v1/references", headers={"X-API-Key": ""})
    assert anon.status_code == 401 and "X-API-Key" in anon.json()["detail"]
    assert client.get("/v1/references", headers={"X-API-Key": "guess"}).status_code == 401
    assert client.get("/v1/references", headers={"X-API-Key": READ}).status_code == 200
    denied = client.delete("/v1/references/bbc", headers={"X-API-Key": READ})
    assert denied.status_code == 403 and "read-only" in denied.json()["detail"]
    assert client.get("/v1/references/bbc").status_code == 200  # still there
    assert client.get("/healthz", headers={"X-API-Key": ""}).status_code == 200  # probes


def test_limits_name_the_setting(tmp_path, embed_cached, texts):
    with make_client(
        tmp_path, embed_cached, max_body_bytes=4096, max_documents=5, max_document_chars=3000
    ) as c:
        big = c.post("/v1/references", json={"name": "x", "texts": ["word " * 2000]})
        assert big.status_code == 413 and "MAX_BODY_BYTES" in big.json()["detail"]
        many = c.post("/v1/references", json={"name": "x", "texts": ["a b c"] * 6})
        assert many.status_code == 422 and "MAX_DOCUMENTS" in many.json()["detail"]
        long = c.post("/v1/references", json={"name": "x", "texts": ["a" * 3001]})
        assert long.status_code == 422 and "MAX_DOCUMENT_CHARS" in long.json()["detail"]


def test_large_input_runs_as_a_job(tmp_path, embed_cached, texts):
    with make_client(tmp_path, embed_cached, sync_documents=10) as c:
        r = c.post("/v1/references", json={"name": "big", "texts": texts[:60]})
        assert r.status_code == 202
        job = Job.model_validate(r.json())
        assert job.kind == "reference" and job.total == 60
        for _ in range(300):
            job = Job.model_validate(c.get(f"/v1/jobs/{job.id}").json())
            if job.state in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert job.state == "succeeded", job.error
        assert job.reference is not None and job.reference.size == 60 and job.done == 60
        assert c.get("/v1/references/big").status_code == 200


def test_full_pool_answers_429_with_retry_after(tmp_path, embed_cached, texts):
    settings = {"workers": 1, "queue_size": 0, "forecast_workers": 1, "forecast_queue_size": 0}
    with make_client(tmp_path, embed_cached, **settings) as c:
        assert c.post("/v1/references", json={"name": "r", "texts": texts[:60]}).status_code == 201
        what_if = {"synthetic_fraction": 0.2, "tail_coverage": 0.8, "plan": PLAN}
        audit = {"reference": "r", "texts": texts[60:100], "plan": PLAN}
        for lane, busy_path, body in (
            ("pool", "/v1/audits", audit),
            ("forecast_pool", "/v1/forecasts/what-if", what_if),
        ):
            release = threading.Event()
            busy = getattr(cast(FastAPI, c.app).state, lane).submit(
                release.wait, 30
            )  # the only slot
            try:
                r = c.post(busy_path, json=body)
                assert r.status_code == 429, (lane, r.text)
                assert int(r.headers["Retry-After"]) > 0 and "busy" in r.json()["detail"]
                if lane == "pool":
                    # A busy audit lane never holds up a millisecond forecast.
                    assert c.post("/v1/forecasts/what-if", json=what_if).status_code == 200
            finally:
                release.set()
                busy.result(timeout=10)
            assert c.post(busy_path, json=body).status_code == 200


def test_audit_upload_and_three_verdicts_over_rest(tmp_path, embed_cached, bbc_sample):
    """keep, top-up and reject on real text through the API: fresh BBC articles, a 40% mix with
    SmolLM2 continuations, and continuations alone (never seen by the estimator)."""
    from detectors.synthetic.data import smollm2_continuations

    rows = [r for r in smollm2_continuations() if r["stratum"].startswith("bbc")]
    examples = tmp_path / "twins.jsonl"
    examples.write_text("".join(json.dumps(r) + "\n" for r in rows[:800]))
    generated = [r["text"] for r in rows[800:]]
    human = bbc_sample
    policy = {"max_synthetic_fraction": 0.15, "hard_max_synthetic_fraction": 0.6}
    with make_client(tmp_path / "data", embed_cached, synthetic_examples=examples) as c:
        assert (
            c.post("/v1/references", json={"name": "bbc", "texts": human[:700]}).status_code == 201
        )

        def audit(texts):
            body = {"reference": "bbc", "texts": texts, "policy": policy, "plan": PLAN}
            r = c.post("/v1/audits", json=body)
            assert r.status_code == 200, r.text
            return AuditResult.model_validate(r.json())

        keep = audit(human[700:900])
        top_up = audit(human[900:1020] + generated[:80])
        reject = audit(generated[80:280])
        assert keep.verdict.decision == "keep", keep.verdict.reasons
        assert top_up.verdict.decision == "top-up" and top_up.verdict.top_up_documents > 0
        assert reject.verdict.decision == "reject"
        assert "synthetic-hard-limit" in {r.code for r in reject.verdict.reasons}

        body = "".join(json.dumps({"text": t}) + "\n" for t in human[700:900]).encode()
        files = {"file": ("candidate.jsonl", body, "application/json")}
        up = c.post("/v1/audits/upload", data={"reference": "bbc"}, files=files)
        assert up.status_code == 200, up.text
        uploaded = AuditResult.model_validate(up.json())
        assert uploaded.sample_size == keep.sample_size and uploaded.corpus_size == 200
