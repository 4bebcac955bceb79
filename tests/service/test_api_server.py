"""The service as a real uvicorn process on a loopback port, through the Python client: the real
model, real SQLite, and a kill -9 in the middle of an ingest."""

from __future__ import annotations

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


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Client:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "COLLAPSE_GUARD_DATA_DIR": str(self.data_dir),
            "COLLAPSE_GUARD_API_KEYS": json.dumps({hash_key(KEY): "write"}),
            "COLLAPSE_GUARD_AUDIT_SIZE": "200",
            "COLLAPSE_GUARD_SYNC_DOCUMENTS": "200",
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


def test_real_server_audits_and_survives_kill_9_during_ingest(tmp_path, bbc_docs):
    order = np.random.default_rng(11).permutation(len(bbc_docs))
    texts = [bbc_docs[i].text for i in order]
    server = Server(tmp_path / "data")
    try:
        client = server.start()
        assert client.healthz()
        info = client.create_reference("bbc", texts[:150])
        assert isinstance(info, ReferenceInfo) and info.size == 150
        before = client.audit("bbc", texts[150:210], plan=PLAN)
        assert isinstance(before, AuditResult)
        assert before.synthetic_fraction is not None and before.verdict.reasons
        assert client.get_audit(before.id) == before
        assert client.what_if(0.3, 0.7, PLAN).plan == PLAN
        with pytest.raises(ServiceError) as missing:
            client.reference("nope")
        assert missing.value.status_code == 404

        job = client.create_reference("big", texts[300:900])  # over the sync limit: a job
        assert isinstance(job, Job)
        while client.job(job.id).state == "queued":
            time.sleep(0.2)
        time.sleep(2.0)  # in the middle of embedding 600 articles
        server.kill9()

        client = server.start()
        after_job = client.job(job.id)
        names = [r.name for r in client.list_references()]
        if "big" in names:  # finished just before the kill: then it must be whole
            assert after_job.state == "succeeded" and client.reference("big").size == 600
        else:
            assert after_job.state == "failed" and "stopped" in (after_job.error or "")
        assert client.reference("bbc") == info  # the earlier reference answers identically
        again = client.audit("bbc", texts[150:210], plan=PLAN)
        assert isinstance(again, AuditResult)
        assert without_identity(again) == without_identity(before)
    finally:
        server.stop()
