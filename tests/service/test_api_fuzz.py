"""Property-based fuzzing of the OpenAPI schema (schemathesis): no 5xx, no schema violations.

Generated bodies are random, so the embedder here is a fast deterministic fake (hash-seeded
unit vectors): the fuzzing is about the HTTP layer (validation, limits, errors, response
schemas). The real model serves the same routes in test_api.py and test_api_server.py.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from detectors.embedding import EmbeddingResult
from service.api.deps import get_embedder
from service.main import create_app
from service.settings import Settings


class HashEmbedder:
    model_name = "all-MiniLM-L6-v2"

    def embed(self, texts, *, progress=None):
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=384)
            rows.append(v / np.linalg.norm(v))
        return EmbeddingResult(
            vectors=np.asarray(rows, dtype=np.float32),
            n_documents=len(texts),
            n_long=0,
            n_windows=len(texts),
            long_documents="truncate",
            model=self.model_name,
        )


class Loader:
    loaded, error = True, None

    def get(self):
        return HashEmbedder()


# Built at import (schemathesis parametrizes at collection time); the data folder is removed at
# exit. (schemathesis.pytest.from_fixture does not work with this pytest version.)
DATA = tempfile.TemporaryDirectory(prefix="cg-fuzz-")
app = create_app(
    Settings(data_dir=Path(DATA.name), audit_size=100, max_documents=50), load_model=False
)
app.dependency_overrides[get_embedder] = Loader
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


# On a pytest-xdist worker schemathesis collapses its per-operation items into one that calls no
# operation at all (measured: 0.06 s, green): this file runs in the serial half of `make test`
# (marker `serial`), and the last test below fails if any operation went unfuzzed.
pytestmark = pytest.mark.serial
FUZZED: set[str] = set()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case):
    # Every default check but "schema-valid data is accepted": some rules are not expressible in
    # JSON Schema (beta needs policy keep-real; a candidate must have enough documents for an
    # interval; a stored reference name must be free), and those requests rightly get a 4xx.
    FUZZED.add(f"{case.method.upper()} {case.path}")
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


# Bodies Python's json module accepts but JSON does not (or that mean two things at once): each
# gets a 4xx naming the field, never a 500, whatever the route.
PLAN_OK = '"plan": {"generations": 2, "samples": 100, "seeds": 2}'
HUGE = "9" * 100
CATALOGUE = [
    # (route, raw body, status, expected loc)
    (
        "/v1/forecasts/what-if",
        '{"synthetic_fraction": NaN, "tail_coverage": 0.5}',
        422,
        ["body", "synthetic_fraction"],
    ),
    (
        "/v1/forecasts/what-if",
        '{"synthetic_fraction": 0.1, "tail_coverage": Infinity}',
        422,
        ["body", "tail_coverage"],
    ),
    (
        "/v1/forecasts/what-if",
        '{"synthetic_fraction": -Infinity, "tail_coverage": 0.5}',
        422,
        ["body", "synthetic_fraction"],
    ),
    (
        "/v1/forecasts/what-if",
        '{"synthetic_fraction": 0.1, "tail_coverage": 0.5, "plan": {"samples": 1e400}}',
        422,
        ["body", "plan", "samples"],
    ),
    (
        "/v1/forecasts/what-if",
        f'{{"synthetic_fraction": 0.1, "tail_coverage": 0.5, "plan": {{"seeds": {HUGE}}}}}',
        422,
        ["body", "plan", "seeds"],
    ),
    (
        "/v1/forecasts/what-if",
        '{"synthetic_fraction": 0.1, "tail_coverage": 0.5, "synthetic_fraction": 0.9}',
        422,
        ["body", "synthetic_fraction"],
    ),
    ("/v1/forecasts/what-if", "[" * 100_000 + "]" * 100_000, 400, None),
    ("/v1/forecasts/what-if", '{"a":' * 50_000 + "1" + "}" * 50_000, 400, None),
    (
        "/v1/references",
        '{"name": "r", "texts": ["a real sentence", NaN]}',
        422,
        ["body", "texts", 1],
    ),
    (
        "/v1/references",
        '{"name": "r", "name": "s", "texts": ["a real sentence"]}',
        422,
        ["body", "name"],
    ),
    (
        "/v1/audits",
        f'{{"reference": "r", "texts": ["x"], {PLAN_OK[:-1]}, "beta": NaN}}}}',
        422,
        ["body", "plan", "beta"],
    ),
]


@pytest.mark.parametrize(("route", "body", "status", "loc"), CATALOGUE)
def test_non_json_numbers_duplicates_and_deep_nesting_are_4xx_naming_the_field(
    route, body, status, loc
):
    client = TestClient(app)
    before = client.get("/v1/references").json()
    answer = client.post(route, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    if loc is None:
        assert "nested too deeply" in detail
    else:
        assert detail[0]["loc"] == loc
        assert "send" in detail[0]["msg"] or "out of range" in detail[0]["msg"]
    assert client.get("/v1/references").json() == before  # nothing stored, nothing lost


def test_every_operation_was_fuzzed():
    """Runs after the fuzz items (file order): each operation of the schema got its cases."""
    operations = {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    }
    # (schemathesis also sends methods a path does not declare; those count too, not instead)
    assert operations and operations <= FUZZED, sorted(operations - FUZZED)
