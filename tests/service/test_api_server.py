"""The service as a real uvicorn process on a loopback port, through the Python client: the real
model, real SQLite, and a kill -9 in the middle of an ingest."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from service.api.deps import hash_key
from service.client import Client, ServiceError
from service.schemas import AuditResult, Job, ReferenceInfo
from simulations.forecast import Plan

pytestmark = pytest.mark.slow
KEY = "server-test-key"
PLAN = Plan(generations=2, samples=200, seeds=2)
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


READ_KEY = "server-test-read-key"


class Server:
    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings = {f"COLLAPSE_GUARD_{k.upper()}": v for k, v in settings.items()}

    def start(self) -> Client:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "COLLAPSE_GUARD_DATA_DIR": str(self.data_dir),
            "COLLAPSE_GUARD_API_KEYS": json.dumps(
                {hash_key(KEY): "write", hash_key(READ_KEY): "read"}
            ),
            "COLLAPSE_GUARD_AUDIT_SIZE": "200",
            "COLLAPSE_GUARD_SYNC_DOCUMENTS": "200",
            **self.settings,
        }
        cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        client = Client(f"http://127.0.0.1:{self.port}", api_key=KEY, timeout=600)
        deadline = time.monotonic() + 180
        while not client.ready():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the service did not become ready in 180 s"
            time.sleep(0.5)
        return client

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def without_identity(result: AuditResult) -> dict:
    """Everything an audit says, less its id, time stamp and how long the forecast took."""
    return result.model_dump(
        mode="json", exclude={"id": True, "created": True, "forecast": {"elapsed_seconds"}}
    )


def test_real_server_audits_and_resumes_a_build_job_killed_by_kill_9(tmp_path, bbc_docs):
    order = np.random.default_rng(11).permutation(len(bbc_docs))
    texts = [bbc_docs[i].text for i in order]
    # 60 reference documents scored by the language model per reference (default 300): the
    # curvature stage runs for real, at a fifth of its cost.
    server = Server(
        tmp_path / "data", build_chunk_documents="100", curvature_reference_documents="60"
    )
    try:
        client = server.start()
        assert client.healthz()
        info = client.create_reference("bbc", texts[:150])
        assert isinstance(info, ReferenceInfo) and info.size == 150
        before = client.audit("bbc", texts[150:210], plan=PLAN)
        assert isinstance(before, AuditResult)
        assert before.synthetic_fraction is not None and before.verdict.reasons
        assert client.get_audit(before.id) == before
        other = Plan(generations=3, samples=200, seeds=2, policy="accumulate")
        assert client.forecast_audit(before.id, other).plan == other
        assert client.what_if(0.3, 0.7, PLAN).plan == PLAN
        with pytest.raises(ServiceError) as missing:
            client.reference("nope")
        assert missing.value.status_code == 404

        job = client.create_reference("big", texts[300:650])  # over the sync limit: a job
        assert isinstance(job, Job)
        # Killed once the job has staged at least one chunk (of 100: the server's setting).
        manifest = tmp_path / "data" / "staging" / "big.build" / "manifest.json"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest.read_text())["chunks"]:
                    break
            time.sleep(0.05)
        server.kill9()
        staged = json.loads(manifest.read_text())["chunks"]
        assert staged and staged[0]["n"] == 100
        first_chunk = (manifest.parent / staged[0]["texts"]).stat().st_ino

        # The restarted service resumes the job from its staging, the staged chunks kept.
        client = server.start()
        deadline = time.monotonic() + 600
        while (after_job := client.job(job.id)).state in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert after_job.state == "succeeded", after_job.error
        assert after_job.reference is not None and after_job.reference.size == 350
        assert client.reference("big").size == 350
        assert not manifest.parent.exists()
        stored = tmp_path / "data" / "references" / f"{after_job.reference.id}.data"
        assert (stored / "texts-00000.jsonl").stat().st_ino == first_chunk  # not re-embedded
        lines = (stored / f"texts-{len(staged) - 1:05d}.jsonl").read_text().splitlines()
        assert json.loads(lines[-1]) == texts[300 + 100 * len(staged) - 1]
        assert client.reference("bbc") == info  # the earlier reference answers identically
        again = client.audit("bbc", texts[150:210], plan=PLAN)
        assert isinstance(again, AuditResult)
        assert without_identity(again) == without_identity(before)
    finally:
        server.stop()


def test_real_server_auth_limits_metrics_and_every_other_endpoint(tmp_path, bbc_docs):
    """What the in-process tests check, once more over a real socket: keys, limits (the real
    body-size middleware in front of uvicorn), uploads, append, delete, metrics. (Audits and
    forecasts over the real server: the test above.)"""
    import httpx

    texts = [d.text for d in bbc_docs[:400]]
    server = Server(
        tmp_path / "data", max_body_bytes="2000000", max_documents="300", max_document_chars="30000"
    )
    try:
        client = server.start()
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, timeout=600) as raw:
            assert raw.get("/readyz").json()["ready"] is True
            body = {"name": "x", "texts": texts[:10]}
            assert raw.post("/v1/references", json=body).status_code == 401
            bad = raw.post("/v1/references", json=body, headers={"X-API-Key": "wrong"})
            assert bad.status_code == 401 and "invalid" in bad.json()["detail"]
            ro = raw.post("/v1/references", json=body, headers={"X-API-Key": READ_KEY})
            assert ro.status_code == 403 and "read-only" in ro.json()["detail"]
            assert raw.get("/v1/references", headers={"X-API-Key": READ_KEY}).status_code == 200
            w = {"X-API-Key": KEY}
            huge = raw.post(
                "/v1/references", json={"name": "x", "texts": ["word " * 500_000]}, headers=w
            )
            assert huge.status_code == 413 and "MAX_BODY_BYTES" in huge.json()["detail"]
            many = raw.post("/v1/references", json={"name": "x", "texts": ["a b"] * 301}, headers=w)
            assert many.status_code == 422 and "MAX_DOCUMENTS" in many.json()["detail"]
            long = raw.post(
                "/v1/references", json={"name": "x", "texts": ["a" * 30_001]}, headers=w
            )
            assert long.status_code == 422 and "MAX_DOCUMENT_CHARS" in long.json()["detail"]
            broken = raw.post(
                "/v1/audits",
                content=b'{"reference": ',
                headers={**w, "Content-Type": "application/json"},
            )
            assert broken.status_code == 422
            assert raw.get("/v1/references", headers=w).json() == []  # nothing was stored

        upload = tmp_path / "reference.jsonl"
        upload.write_text("".join(json.dumps({"body": t}) + "\n" for t in texts[:120]))
        info = client.upload_reference("up", upload, text_field="body")
        assert isinstance(info, ReferenceInfo) and info.size == 120
        grown = client.append_documents("up", texts[120:150])
        assert isinstance(grown, ReferenceInfo) and grown.size == 150
        client.delete_reference("up")
        assert [r.name for r in client.list_references()] == []
        with pytest.raises(ServiceError) as gone:
            client.get_audit("no-such-audit")
        assert gone.value.status_code == 404

        metrics = httpx.get(f"{base}/metrics").text
        assert 'collapse_guard_work_in_flight{pool="forecast"}' in metrics
        # every request above was counted, by route template and status
        for status in ("401", "403", "422"):
            assert f'route="/v1/references",status="{status}"' in metrics, status
    finally:
        server.stop()


def descendants(proc: subprocess.Popen[bytes]) -> set[int]:
    """Process ids of everything `proc` started (forecast workers, the resource tracker)."""
    import psutil

    return {child.pid for child in psutil.Process(proc.pid).children(recursive=True)}


def alive(pids: set[int]) -> set[int]:
    import psutil

    found = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.add(pid)
        except psutil.NoSuchProcess:
            pass
    return found


def wait_until_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """The processes among `pids` still alive after `timeout` seconds (empty: all ended)."""
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_real_server_reads_every_result_back_across_kill_9_and_restarts_leaving_no_process(
    tmp_path, bbc_docs
):
    """Build (as a job), audit directly and as a job, read every result back, kill -9 in the
    middle of an audit job, restart, read everything again, restart once more, stop: every read
    answers as first, the killed job says it was interrupted, and no process is left."""
    order = np.random.default_rng(23).permutation(len(bbc_docs))
    texts = [bbc_docs[i].text for i in order]
    # A 200-document reference: its held-out part is small, so some forecast bands (recall)
    # are undefined; they used to be stored as NaN and made every read a 500.
    server = Server(
        tmp_path / "data",
        sync_documents="100",
        build_chunk_documents="100",
        curvature_reference_documents="60",
    )
    started: set[int] = set()
    try:
        client = server.start()
        assert server.proc is not None
        build = client.create_reference("bbc", texts[:200])
        assert isinstance(build, Job)
        built = client.wait_for_job(build, timeout=600)
        assert built.reference is not None and built.reference.size == 200

        direct = client.audit("bbc", texts[200:260], plan=PLAN)
        assert isinstance(direct, AuditResult)
        queued = client.audit("bbc", texts[300:450], plan=PLAN)
        assert isinstance(queued, Job)
        finished = client.wait_for_job(queued, timeout=600)
        assert finished.audit is not None

        def read_everything() -> dict:
            return {
                "direct": client.get_audit(direct.id),
                "job audit": client.get_audit(finished.audit.id),
                "audit job": client.job(finished.id),
                "build job": client.job(built.id),
                "forecast": client.forecast_audit(direct.id, PLAN).trajectories,
                "reference": client.reference("bbc"),
            }

        first = read_everything()
        assert first["direct"] == direct and first["audit job"] == finished
        recall = direct.forecast.trajectories["recall"]
        if not all(b.defined for b in recall.bands):  # the case that was a 500
            assert recall.note is not None

        # An audit job killed while it runs: a longer plan, so that it is caught running.
        long_plan = Plan(generations=5, samples=1000, seeds=8)
        doomed = client.audit("bbc", texts[500:650], plan=long_plan)
        assert isinstance(doomed, Job)
        deadline = time.monotonic() + 300
        while (state := client.job(doomed.id).state) == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state == "running"
        started |= descendants(server.proc)
        assert started, "the service runs its forecast workers as child processes"
        server.kill9()
        assert not wait_until_gone(started), "forecast workers outlived a kill -9 of the service"

        for _ in range(2):  # after the kill -9, and a plain restart after that
            client = server.start()
            interrupted = client.job(doomed.id)
            assert interrupted.state == "failed"
            assert interrupted.error is not None and "stopped before" in interrupted.error
            again = read_everything()
            assert again["direct"] == first["direct"]
            assert again["job audit"] == first["job audit"]
            assert again["audit job"] == first["audit job"]
            assert again["build job"] == first["build job"]
            assert again["reference"] == first["reference"]
            assert again["forecast"] == first["forecast"]  # the same numbers after restarts
            started |= descendants(server.proc)
            server.stop()  # SIGTERM
            assert not wait_until_gone(started), "a process outlived the service's SIGTERM"
    finally:
        server.stop()


def own_address() -> str | None:
    """This machine's address on its network (not loopback), or None if it has none. A UDP
    connect sends nothing: it only picks the interface a packet would leave by."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_uvicorn_factory_without_keys_serves_this_machine_only(tmp_path):
    """The app started without `serve` (which refuses a public bind without keys), by
    `uvicorn --factory` on every interface: a caller from the network address gets 403 and
    nothing runs for it; loopback is served; the start-up log says why."""
    import httpx

    address = own_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback to call from")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLLAPSE_GUARD_DATA_DIR": str(tmp_path)}
    env.pop("COLLAPSE_GUARD_API_KEYS", None)
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "service.main:create_app"]
    proc = subprocess.Popen(
        [*cmd, "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        local = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{local}/healthz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "uvicorn did not answer in 120 s"
            time.sleep(0.3)
        remote = f"http://{address}:{port}"
        body = {"name": "open", "texts": ["A text anyone could store if this were open."] * 3}
        for answer in (
            httpx.get(f"{remote}/healthz", timeout=30),
            httpx.post(f"{remote}/v1/references", json=body, timeout=30),
        ):
            assert answer.status_code == 403, answer.text
            assert "COLLAPSE_GUARD_API_KEYS" in answer.json()["detail"]
        assert httpx.get(f"{local}/v1/references", timeout=30).json() == []
        workers = descendants(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "no API keys" in proc.stderr.read().decode()  # type: ignore[union-attr]
    assert not wait_until_gone(workers), "a process outlived uvicorn's SIGTERM"
