"""The HTTP layer's safety rules, in process (no model: each request here is refused, or needs
no embedding): who may call, what a body may hold, and answers that say what to fix.

The same rules over a real socket, started by `uvicorn --factory`: test_api_server.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.deps import hash_key
from service.api.middleware import is_loopback
from service.main import create_app
from service.settings import Settings
from service.staging import Staging, staging_folder

WRITE, READ = "safety-write-key", "safety-read-key"
LOOPBACK = ("127.0.0.1", 50000)
DOCS = ["The committee approved the budget on Tuesday after a long debate."] * 3


def keyed_app(tmp_path, **overrides):
    keys = {hash_key(WRITE): "write", hash_key(READ): "read"}
    return create_app(Settings(data_dir=tmp_path, api_keys=keys, **overrides), load_model=False)


@pytest.fixture
def client(tmp_path):
    with TestClient(keyed_app(tmp_path), headers={"X-API-Key": WRITE}) as c:
        yield c


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        (None, True),  # a Unix socket
        ("10.0.0.7", False),
        ("192.168.1.20", False),
        ("::ffff:10.0.0.7", False),
        ("2001:db8::1", False),
        ("testclient", False),
    ],
)
def test_loopback_addresses(host, local):
    assert is_loopback(host) is local


def test_without_keys_only_this_machine_is_answered_and_nothing_runs_for_others(tmp_path):
    app = create_app(Settings(data_dir=tmp_path), load_model=False)
    with TestClient(app, client=("10.1.2.3", 4000)) as remote:
        for method, path, body in (
            ("GET", "/healthz", None),
            ("GET", "/v1/references", None),
            ("POST", "/v1/references", {"name": "x", "texts": DOCS}),
        ):
            answer = remote.request(method, path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert "COLLAPSE_GUARD_API_KEYS" in answer.json()["detail"]
    with TestClient(app, client=LOOPBACK) as local:
        assert local.get("/v1/references").json() == []  # nothing was created
    # With keys, other machines are served (the key decides).
    with TestClient(keyed_app(tmp_path / "k"), client=("10.1.2.3", 4000)) as remote:
        assert remote.get("/v1/references", headers={"X-API-Key": READ}).status_code == 200
        assert remote.get("/v1/references").status_code == 401


def test_the_key_is_checked_before_the_body_is_read(client):
    broken = b'{"reference": '
    headers = {"content-type": "application/json"}
    for route in ("/v1/audits", "/v1/references", "/v1/forecasts/what-if"):
        anonymous = client.post(route, content=broken, headers={**headers, "X-API-Key": ""})
        assert anonymous.status_code == 401, (route, anonymous.text)
        assert "API key" in anonymous.json()["detail"]
    read_only = client.post(
        "/v1/references", content=broken, headers={**headers, "X-API-Key": READ}
    )
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    upload = client.post(
        "/v1/references/upload",
        files={"file": ("x.jsonl", b"not json")},
        data={"name": "x"},
        headers={"X-API-Key": "wrong"},
    )
    assert upload.status_code == 401 and upload.json()["detail"] == "invalid API key"
    # A read-only key may read-only: a forecast writes nothing.
    what_if = client.post(
        "/v1/forecasts/what-if",
        content=broken,
        headers={**headers, "X-API-Key": READ},
    )
    assert what_if.status_code == 422


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/v1/audits", {"reference": "r", "texts": DOCS, "polcy": {}}, "polcy"),
        ("/v1/references", {"name": "r", "texts": DOCS, "text": "x"}, "text"),
        ("/v1/references/r/documents", {"texts": DOCS, "names": []}, "names"),
        ("/v1/forecasts/what-if", {"synthetic_fraction": 0.1, "tail_coverage": 1, "x": 1}, "x"),
        ("/v1/audits/a/forecast", {"plan": {}, "seed": 1}, "seed"),
    ],
)
def test_a_misspelt_top_level_field_is_a_422_naming_it(client, route, body, field):
    answer = client.post(route, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", field]


def test_every_405_lists_the_methods_the_path_has(client):
    cases = {
        "/v1/references": "GET, HEAD, POST",
        "/v1/references/bbc": "DELETE, GET, HEAD",
        "/v1/audits": "POST",
        "/v1/jobs/abc": "GET, HEAD",
        "/v1/forecasts/what-if": "POST",
        "/v1/references/upload": "POST",  # a concrete path, not a reference named "upload"
        "/v1/audits/upload": "POST",
    }
    for path, allowed in cases.items():
        answer = client.request("PATCH", path)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == allowed, path


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(tmp_path):
    with TestClient(keyed_app(tmp_path, max_body_bytes=4096), headers={"X-API-Key": WRITE}) as c:

        def chunks():
            yield b'{"name": "big", "texts": ["'
            for _ in range(20):
                yield b"word " * 100
            yield b'"]}'

        answer = c.post(
            "/v1/references", content=chunks(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
        assert "MAX_BODY_BYTES" in answer.json()["detail"]
        assert c.get("/v1/references").json() == []


@pytest.mark.parametrize("name", [".", "..", ".hidden", "a/b", "", "x" * 101, "upload"])
def test_names_that_are_not_reference_names_are_refused(client, name):
    answer = client.post("/v1/references", json={"name": name, "texts": DOCS})
    assert answer.status_code == 422, answer.text


def test_an_empty_upload_names_the_callers_file_not_the_servers(client):
    answer = client.post(
        "/v1/references/upload", files={"file": ("corpus.jsonl", b"")}, data={"name": "x"}
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "corpus.jsonl" in detail and "/tmp" not in detail and "cg-upload" not in detail


def test_a_policy_whose_limit_is_above_its_hard_limit_is_refused(client):
    policy = {"max_synthetic_fraction": 0.7, "hard_max_synthetic_fraction": 0.6}
    answer = client.post("/v1/audits", json={"reference": "r", "texts": DOCS, "policy": policy})
    assert answer.status_code == 422
    assert "hard_max_synthetic_fraction" in json.dumps(answer.json())


def test_a_rest_build_of_a_name_staged_by_the_cli_is_409_without_server_paths(tmp_path):
    app = keyed_app(tmp_path)
    folder = staging_folder(tmp_path, "news")
    staging = Staging.open(folder, name="news", input={}, build={}, resume=False, restart=False)
    staging.add(DOCS, np.zeros((3, 384), dtype=np.float32))
    staging.close()  # what a killed `reference build` leaves
    with TestClient(app, headers={"X-API-Key": WRITE}) as c:
        answer = c.post("/v1/references", json={"name": "news", "texts": DOCS})
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert "news" in detail and "interrupted" in detail
        assert str(tmp_path) not in detail and "--resume" not in detail
    assert folder.is_dir()  # the CLI's staging is left for its --resume
