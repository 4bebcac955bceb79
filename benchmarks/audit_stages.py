"""Where an audit's time goes, stage by stage, through the product path (issue 16, item 1).

    .venv/bin/python benchmarks/audit_stages.py [--out benchmarks/results/audit_stages.json]

A reference of all 2,225 BBC articles is built with `build_reference` (as `reference build`
does) in a fresh data directory; candidates of real BBC text go through `execute_audit` with the
service's default settings and plan:

- `passages`: 1,000 human passages from inside BBC articles, all five sections (in domain);
- `narrow`: 1,000 such passages from two sections only (business, sport): lost topics, the case
  the forecast and the top-up search exist for;
- `small`: 100 passages, all sections (the issue's 100-document case).

Each stage is timed by wrapping the function the audit calls (embedding, coverage, synthetic
fraction, the forecast's human start (read from the data directory after the first audit of a
reference version and plan), forecast, top-up search); "other" is the rest of `execute_audit`
(sampling, storing).
Warm: the process has audited once already (models loaded). Cold: a new process running
`collapse-guard audit` on the same candidate (model loads and the kept fits included), wall time.
Cold via service: a new `collapse-guard audit --url` process against a running `collapse-guard
serve` on the same data directory (started and warmed once, as a pipeline keeps it), wall time:
what a pipeline that starts one CLI process per shard pays when it does not import torch itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import service.audit as audit_module
from detectors.corpora import bbc_news
from detectors.embedding import Embedder
from service.audit import build_reference, execute_audit
from service.settings import Settings
from service.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_service import free_port, start_server
from synthetic_shift import DATA, jsonl, passages_of
from timing import cold_cli_audit, timed

STAGES = ("coverage_report", "estimate_synthetic", "human_run", "forecast", "min_top_up")
NARROW = ("business", "sport")


def passages_of_sections() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(text, BBC section) of every human passage, and of its SmolLM2 continuation twin."""
    by_id = {d.source: d.text for d in bbc_news()}
    rows = jsonl(DATA / "smollm2_passages.jsonl")
    section = [r["twin_source"].split("/")[1] for r in rows]
    human = list(zip(passages_of(rows, by_id), section, strict=True))
    return human, [(r["text"], s) for r, s in zip(rows, section, strict=True)]


def candidates(rng: np.random.Generator) -> dict[str, list[str]]:
    human, _ = passages_of_sections()
    texts = [t for t, _ in human]
    narrow = [i for i, (_, s) in enumerate(human) if s.startswith(NARROW)]
    pick = rng.permutation(len(texts))
    return {
        "passages": [texts[i] for i in pick[:1000]],
        "narrow": [texts[i] for i in rng.choice(narrow, 1000, replace=False)],
        "small": [texts[i] for i in pick[1000:1100]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/audit_stages.json"))
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="cg-stages-"))
    settings = Settings(data_dir=data_dir)
    store = Store(settings)
    embedder = Embedder(precision=settings.embedding_precision)
    log: dict[str, float] = {}
    for name in STAGES:
        setattr(audit_module, name, timed(log, name, getattr(audit_module, name)))
    embedder.embed = timed(log, "embedding", embedder.embed)  # type: ignore[method-assign]
    t0 = time.perf_counter()
    build_reference(
        store, "bbc", [d.text for d in bbc_news()], embedder=embedder, settings=settings
    )
    build_s = time.perf_counter() - t0
    print(f"reference build: {build_s:.0f} s", flush=True)
    cands = candidates(np.random.default_rng(0))
    # Warm-up: the first audit of a process loads the models.
    execute_audit(store, "bbc", cands["small"][:40], embedder=embedder, settings=settings)
    rows = []
    for name, texts in cands.items():
        log.clear()
        t0 = time.perf_counter()
        result = execute_audit(store, "bbc", texts, embedder=embedder, settings=settings).result
        total = time.perf_counter() - t0
        path = data_dir / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        cold, cold_decision = cold_cli_audit(data_dir, path, "bbc", data_dir / f"{name}.json")
        stages = {k: log.get(k, 0.0) for k in ("embedding", *STAGES)}
        row = {
            "candidate": name,
            "documents": len(texts),
            "decision": result.verdict.decision,
            # Why: a verdict flips with the forecast's noise near its limits (README "Verdict
            # policy"), so the numbers behind it are kept beside it.
            "reasons": [
                {"code": r.code, "value": r.value, "limit": r.limit} for r in result.verdict.reasons
            ],
            "relative_tail_coverage": (
                None
                if (rel := result.forecast.relative_final_estimate()) is None
                else rel.model_dump()
            ),
            "cold_decision": cold_decision,
            **{f"{k}_s": v for k, v in stages.items()},
            "other_s": total - sum(stages.values()),
            "total_s": total,
            "outside_embedding_share": 1 - stages["embedding"] / total,
            # The synthetic-fraction stage is mostly SmolLM2 scoring: model inference, like the
            # embedding, not the simulation item 1 is about.
            "outside_embedding_and_lm_share": 1
            - (stages["embedding"] + stages["estimate_synthetic"]) / total,
            "cold_total_s": cold,
            "cold_over_warm": cold / total,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    remote_cold(data_dir, cands, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reference_build_s": build_s, "rows": rows}, indent=1))
    print(
        "| candidate | docs | verdict | embedding | coverage | synthetic | human start | forecast "
        "| top-up search | other | total | outside embedding | outside embedding and LM scoring "
        "| cold (new process) | cold / warm | cold via service | via service / warm |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['candidate']} | {r['documents']} | {r['decision']} | {r['embedding_s']:.1f} s "
            f"| {r['coverage_report_s']:.1f} s | {r['estimate_synthetic_s']:.1f} s "
            f"| {r['human_run_s']:.1f} s | {r['forecast_s']:.1f} s | {r['min_top_up_s']:.1f} s "
            f"| {r['other_s']:.1f} s "
            f"| {r['total_s']:.1f} s | {r['outside_embedding_share']:.0%} "
            f"| {r['outside_embedding_and_lm_share']:.0%} "
            f"| {r['cold_total_s']:.1f} s | {r['cold_over_warm']:.2f} "
            f"| {r['remote_cold_s']:.1f} s | {r['remote_over_warm']:.2f} |"
        )


def remote_cold(data_dir: Path, cands: dict[str, list[str]], rows: list[dict]) -> None:
    """Each candidate by a new `collapse-guard audit --url` process against a warm service."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(data_dir, port, workers=1, queue=4, api_keys=False)
    try:
        cli = [str(Path(sys.executable).parent / "collapse-guard"), "audit"]
        deadline = time.monotonic() + 240
        warm = data_dir / "small.jsonl"
        while True:  # the service is ready, and has audited once, when this succeeds
            proc = subprocess.run(
                [*cli, str(warm), "--reference", "bbc", "--url", url, "--quiet"],
                capture_output=True,
                text=True,
            )
            if proc.returncode in (0, 10, 20, 30):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not answer: {proc.stderr[-2000:]}")
            time.sleep(2)
        for row in rows:
            name = row["candidate"]
            out = data_dir / f"{name}.remote.json"
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    *cli,
                    str(data_dir / f"{name}.jsonl"),
                    "--reference",
                    "bbc",
                    "--url",
                    url,
                    "--quiet",
                    "--json",
                    str(out),
                ],
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - t0
            if proc.returncode not in (0, 10, 20, 30):
                raise SystemExit(f"remote audit failed ({proc.returncode}): {proc.stderr[-2000:]}")
            row["remote_decision"] = json.loads(out.read_text())["verdict"]["decision"]
            row["remote_cold_s"] = seconds
            row["remote_over_warm"] = seconds / row["total_s"]
            print(json.dumps({k: row[k] for k in ("candidate", "remote_cold_s")}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
