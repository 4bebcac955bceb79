"""The SQLite store's rows of audits and jobs: nothing stored that would not read back, and no
stored row that stops the service from starting (a real SQLite file in a temporary folder)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.schemas import Job, ReferenceInfo
from service.settings import Settings
from service.store import NonFiniteResultError, Store, UnreadableRecordError, now

LOOPBACK = ("127.0.0.1", 50000)


def job(job_id: str, state: str = "succeeded", **fields) -> Job:
    stamp = now()
    return Job(id=job_id, kind="audit", state=state, created=stamp, updated=stamp, **fields)


def write_raw(data_dir, job_id: str, raw: str) -> None:
    """A row as an earlier version (or a damaged disk) left it, bypassing the store's checks."""
    with sqlite3.connect(data_dir / "collapse-guard.sqlite3") as db:
        db.execute(
            "INSERT OR REPLACE INTO jobs (id, created, job) VALUES (?, ?, ?)", (job_id, now(), raw)
        )


@pytest.fixture
def data_dir(tmp_path):
    with Store(Settings(data_dir=tmp_path)):
        pass  # creates the schema
    return tmp_path


def test_a_result_with_nan_is_refused_and_what_was_stored_stays(data_dir):
    with Store(Settings(data_dir=data_dir)) as store:
        store.save_job(job("j1", state="running", done=3, total=9))
        info = ReferenceInfo(
            id="r1",
            name="bbc",
            created=now(),
            model="all-MiniLM-L6-v2",
            dimension=384,
            size=10,
            n_indexed=8,
            n_holdout=2,
            tail_quantile=float("nan"),  # pydantic accepts NaN; JSON would hold null
            index="exact",
        )
        finished = job("j1", reference=info)
        with pytest.raises(NonFiniteResultError, match=r"reference\.tail_quantile"):
            store.save_job(finished)
        kept = store.get_job("j1")
        assert (kept.state, kept.done) == ("running", 3)


def test_unreadable_rows_never_stop_the_start_and_answer_a_clear_error(data_dir):
    with Store(Settings(data_dir=data_dir)) as store:
        store.save_job(job("fine"))
        store.save_job(job("interrupted", state="running"))
    broken_running = json.loads(job("old-running", state="running").model_dump_json())
    broken_running["done"] = None  # not an integer: this version cannot read it
    write_raw(data_dir, "old-running", json.dumps(broken_running))
    broken_done = json.loads(job("old-done").model_dump_json())
    broken_done["total"] = "many"
    write_raw(data_dir, "old-done", json.dumps(broken_done))
    write_raw(data_dir, "garbage", "{not json")

    app = create_app(Settings(data_dir=data_dir), load_model=False)  # starts: nothing raised
    with TestClient(app, client=LOOPBACK) as client:
        assert client.get("/v1/jobs/fine").json()["state"] == "succeeded"
        for job_id in ("interrupted", "old-running", "garbage"):
            answer = client.get(f"/v1/jobs/{job_id}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["state"] == "failed"
            assert "submit again" in answer.json()["error"]
        # A finished job's row is kept as it was, and reading it says what to do.
        unreadable = client.get("/v1/jobs/old-done")
        assert unreadable.status_code == 410
        assert "old-done" in unreadable.json()["detail"]
        assert "submit the work again" in unreadable.json()["detail"]
        assert "total" in unreadable.json()["detail"]

    # And a second start finds nothing left to repair.
    with Store(Settings(data_dir=data_dir)) as store:
        assert store.fail_interrupted_jobs() == 0
        with pytest.raises(UnreadableRecordError):
            store.get_job("old-done")


def test_an_unreadable_audit_row_is_410_not_500(data_dir):
    with sqlite3.connect(data_dir / "collapse-guard.sqlite3") as db:
        db.execute(
            "INSERT INTO audits (id, reference_id, created, result) VALUES (?, ?, ?, ?)",
            ("a1", "r1", now(), '{"id": "a1"}'),
        )
    app = create_app(Settings(data_dir=data_dir), load_model=False)
    with TestClient(app, client=LOOPBACK) as client:
        answer = client.get("/v1/audits/a1")
        assert answer.status_code == 410
        assert "run the audit again" in answer.json()["detail"]
        assert client.get("/v1/audits/nope").status_code == 404
