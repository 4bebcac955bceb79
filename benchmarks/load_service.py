"""Load on a real `collapse-guard serve` process: concurrent audits and what-if forecasts.

    .venv/bin/python benchmarks/load_service.py [--audits 8] [--what-ifs 300] [--time-limit 900]

Loopback only (127.0.0.1, a free port), bounded in request count and in time: every scenario
stops at its count or at its deadline, whichever comes first, and the server is stopped at the end.
The server is the real one (uvicorn, real model, real SQLite in a temporary data directory),
started the way a user starts it. Scenarios, each measured from the client side:

1. what-if forecasts alone (`POST /v1/forecasts/what-if`), several clients at once;
2. audits alone (`POST /v1/audits`, real BBC articles against a stored BBC reference);
3. both at once: the what-if latency a pipeline sees while audits keep the pool busy.

Each reports throughput, p50/p99 latency, how many answers were 429 (a full work pool: the client
waits `Retry-After` and tries again, and the latency counts the wait), and the server's peak
resident memory (sampled every 50 ms, children included). The same work done in-process by the
library (`what_if`, `run_audit`) in this run gives the service's overhead as a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from detectors.corpora import bbc_news
from simulations.forecast import Plan, what_if

ROOT = Path(__file__).resolve().parents[1]
KEY = "load-benchmark-key"
WHAT_IF: dict[str, Any] = {"synthetic_fraction": 0.3, "tail_coverage": 0.7}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    throttled: int = 0  # 429 answers (waited for and retried)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def row(self, name: str, elapsed: float, peak_mib: float, unit: float = 1.0) -> list[str]:
        lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
        return [
            name,
            f"{len(self.latencies)}",
            f"{len(self.latencies) * unit / elapsed:,.2f}",
            f"{np.percentile(lat, 50) * 1000:,.0f}",
            f"{np.percentile(lat, 99) * 1000:,.0f}",
            f"{self.throttled}",
            f"{len(self.errors)}",
            f"{peak_mib:,.0f}",
        ]


class MemoryWatch:
    """The peak resident memory of a process tree, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> MemoryWatch:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop.clear()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, port: int, *, workers: int, queue: int, api_keys: bool = True
) -> subprocess.Popen[bytes]:
    """`collapse-guard serve` on loopback; with `api_keys`, KEY is its only (write) key."""
    from service.api.deps import hash_key

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "COLLAPSE_GUARD_DATA_DIR": str(data_dir),
        "COLLAPSE_GUARD_API_KEYS": json.dumps({hash_key(KEY): "write"} if api_keys else {}),
        "COLLAPSE_GUARD_WORKERS": str(workers),
        "COLLAPSE_GUARD_QUEUE_SIZE": str(queue),
    }
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def call(
    http: httpx.Client, tally: Tally, method: str, path: str, body: dict, deadline: float
) -> None:
    """One logical request: retried after Retry-After on 429, timed from first send to answer."""
    start = time.perf_counter()
    while True:
        response = http.request(method, path, json=body)
        if response.status_code != 429:
            break
        with tally.lock:
            tally.throttled += 1
        if time.monotonic() > deadline:
            with tally.lock:
                tally.errors.append("429 past the deadline")
            return
        time.sleep(float(response.headers.get("retry-after", "1")))
    elapsed = time.perf_counter() - start
    with tally.lock:
        if response.is_success:
            tally.latencies.append(elapsed)
        else:
            tally.errors.append(f"{response.status_code}: {response.text[:200]}")


def run_clients(
    base: str, n: int, clients: int, deadline: float, send: Callable[[httpx.Client], None]
) -> float:
    """`n` requests from `clients` threads (each with its own connection); stops at `deadline`."""
    start = time.perf_counter()
    counter = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=900) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                send(http)

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return time.perf_counter() - start


def scenario(
    base: str, n: int, clients: int, limit: float, tally: Tally, path: str, body: Callable[[], dict]
) -> float:
    """`n` POSTs of `body()` to `path` from `clients` threads, bounded by `limit` seconds."""
    end = time.monotonic() + limit
    return run_clients(base, n, clients, end, lambda h: call(h, tally, "POST", path, body(), end))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-docs", type=int, default=400)
    parser.add_argument("--audit-docs", type=int, default=100, help="documents per audit")
    parser.add_argument("--audits", type=int, default=8)
    parser.add_argument("--audit-clients", type=int, default=3)
    parser.add_argument("--what-ifs", type=int, default=300)
    parser.add_argument("--what-if-clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="the service's work threads")
    parser.add_argument("--queue", type=int, default=4, help="the service's queue size")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per scenario")
    args = parser.parse_args()

    docs = [d.text for d in bbc_news()]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(docs))
    reference = [docs[i] for i in order[: args.reference_docs]]
    pool = [docs[i] for i in order[args.reference_docs :]]
    candidates = [
        [pool[j] for j in rng.choice(len(pool), args.audit_docs, replace=False)]
        for _ in range(args.audits)
    ]
    plan = Plan(generations=3, samples=300, seeds=4)  # an audit with a quick forecast
    audit_body = lambda i: {  # noqa: E731
        "reference": "bbc",
        "texts": candidates[i % len(candidates)],
        "plan": plan.model_dump(mode="json"),
    }
    what_if_body = {**WHAT_IF, "plan": Plan().model_dump(mode="json")}

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp), port, workers=args.workers, queue=args.queue)
        try:
            rows, ratios = bench(
                server, base, reference, audit_body, what_if_body, plan, candidates, args, tmp
            )
        finally:
            server.terminate()
            server.wait(timeout=60)

    print(
        f"\nserver: workers={args.workers}, queue={args.queue}; reference {args.reference_docs} "
        f"BBC articles; audits of {args.audit_docs} articles with Plan(generations=3, samples=300, "
        f"seeds=4); what-ifs with the default Plan; 2 cores\n"
    )
    head = ["scenario", "requests", "per s", "p50 ms", "p99 ms", "429s", "errors", "peak RSS MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for line in ratios:
        print(line)


def bench(server, base, reference, audit_body, what_if_body, plan, candidates, args, tmp):
    with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=900) as http:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                raise SystemExit(server.stderr.read().decode()[-2000:])
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the service did not become ready in 240 s")
            time.sleep(0.5)
        r = http.post("/v1/references", json={"name": "bbc", "texts": reference})
        r.raise_for_status()
        if r.status_code == 202:
            raise SystemExit("the reference went to a job: raise COLLAPSE_GUARD_SYNC_DOCUMENTS")
        # Warm-up: the first audit fits the reference's synthetic estimator (cached afterwards).
        http.post("/v1/audits", json=audit_body(0)).raise_for_status()

    rows: list[list[str]] = []
    ratios: list[str] = []
    watch = MemoryWatch(server.pid)

    # 1. what-ifs alone
    tally = Tally()
    with watch:
        elapsed = scenario(
            base, args.what_ifs, args.what_if_clients, args.time_limit, tally,
            "/v1/forecasts/what-if", lambda: what_if_body,
        )  # fmt: skip
    rows.append(
        tally.row(f"what-if alone, {args.what_if_clients} clients", elapsed, watch.peak_mib)
    )
    direct = []
    for _ in range(30):
        t0 = time.perf_counter()
        what_if(**WHAT_IF, plan=Plan())
        direct.append(time.perf_counter() - t0)
    served = len(tally.latencies) / elapsed
    ratios.append(
        f"- what-if in-process: {np.median(direct) * 1000:.1f} ms median "
        f"({1 / np.median(direct):.0f}/s on one thread); served p50 is "
        f"{np.median(tally.latencies) / np.median(direct):.2f}x that, throughput "
        f"{served * np.median(direct):.2f}x one in-process thread"
    )

    # 2. audits alone
    tally = Tally()
    counter = iter(range(10**9))
    with watch:
        elapsed = scenario(
            base, args.audits, args.audit_clients, args.time_limit, tally,
            "/v1/audits", lambda: audit_body(next(counter)),
        )  # fmt: skip
    rows.append(tally.row(f"audits alone, {args.audit_clients} clients", elapsed, watch.peak_mib))
    audit_direct = in_process_audit(tmp, candidates[0], plan)
    ratios.append(
        f"- audit in-process (run_audit, same reference, {len(candidates[0])} documents): "
        f"{audit_direct:.1f} s; served p50 is {np.median(tally.latencies) / audit_direct:.2f}x "
        f"that (queueing behind {args.workers} worker(s) included), throughput "
        f"{len(tally.latencies) / elapsed * audit_direct:.2f}x one in-process audit at a time"
    )

    # 3. both at once
    audits, forecasts = Tally(), Tally()
    counter = iter(range(10**9))
    with watch, ThreadPoolExecutor(2) as both:
        fa = both.submit(
            scenario, base, args.audits, args.audit_clients, args.time_limit, audits,
            "/v1/audits", lambda: audit_body(next(counter)),
        )  # fmt: skip
        fw = both.submit(
            scenario, base, args.what_ifs, args.what_if_clients, args.time_limit, forecasts,
            "/v1/forecasts/what-if", lambda: what_if_body,
        )  # fmt: skip
        elapsed_a, elapsed_w = fa.result(), fw.result()
    rows.append(audits.row("mixed: audits", elapsed_a, watch.peak_mib))
    rows.append(forecasts.row("mixed: what-ifs", elapsed_w, watch.peak_mib))
    return rows, ratios


def in_process_audit(tmp: str, texts: list[str], plan: Plan) -> float:
    """The same audit by the library in this process, against the server's own data directory."""
    from detectors.embedding import Embedder
    from service.audit import run_audit
    from service.settings import Settings
    from service.store import Store

    settings = Settings(data_dir=Path(tmp))
    store = Store(settings)
    embedder = Embedder(model=settings.embedding_model)
    run_audit(store, "bbc", texts, embedder=embedder, settings=settings, plan=plan)  # warm: fit
    t0 = time.perf_counter()
    run_audit(store, "bbc", texts, embedder=embedder, settings=settings, plan=plan)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


if __name__ == "__main__":
    main()
