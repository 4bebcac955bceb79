"""Docs/s of the local embedding engine vs the Ray engine (1 and 2 actors), in one run.

    .venv/bin/python benchmarks/engines_throughput.py [--docs 512] [--cpus 2]

All engines embed the same real BBC News articles (truncated to the model's 256-token window).
The local engine is `Embedder.embed` in this process (torch on every core). The Ray engine is
`RayEmbedder.embed` on a local Ray started here with `--cpus` CPUs (or the cluster at
RAY_ADDRESS). Its actors start, and load the model, on the first call and then live as long as
the process (an audit embeds two or three times): the cost of a call of 8 documents is shown for
the first call (start-up included) and for the next one, and the throughput is that of a later
call. Every Ray result is compared with the local vectors (max abs difference, min cosine).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import ray
    import torch

    from detectors.corpora import bbc_news
    from detectors.embedding import Embedder
    from detectors.engines import RayEmbedder

    texts = [d.text for d in bbc_news()][: args.docs]
    if not os.environ.get("RAY_ADDRESS"):
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)

    local = Embedder()
    local.embed(texts[:8])  # warm-up: first-call allocations are not throughput
    t0 = time.perf_counter()
    want = local.embed(texts)
    t_local = time.perf_counter() - t0
    rows = [("local", f"1 process x {torch.get_num_threads()} threads", t_local, 0.0, 1.0)]

    configs = [(1, 1), (1, args.cpus), (2, 1)] if args.cpus >= 2 else [(1, 1)]
    for actors, threads in configs:
        engine = RayEmbedder(actors=actors, cpus_per_actor=threads)
        t0 = time.perf_counter()
        engine.embed(texts[:8])
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine.embed(texts[8:16])
        t_next = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = engine.embed(texts)
        seconds = time.perf_counter() - t0
        engine.close()  # free its CPUs for the next configuration
        assert got.n_long == want.n_long, (got.n_long, want.n_long)
        diff = float(np.abs(got.vectors - want.vectors).max())
        a, b = got.vectors.astype(np.float64), want.vectors.astype(np.float64)
        cosine = float(
            ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min()
        )
        label = f"{actors} actor{'s' if actors > 1 else ''} x {threads} thread{'s' * (threads > 1)}"
        name = f"ray (8-doc call: first {t_first:.1f} s, next {t_next:.2f} s)"
        rows.append((name, label, seconds, diff, cosine))

    print(
        f"\n{len(texts)} BBC articles, {want.n_long} longer than 256 tokens; "
        f"{os.cpu_count()} cores, torch {torch.__version__}, ray {ray.__version__}\n"
    )
    print("| engine | workers | seconds | docs/s | vs local | max abs diff | min cosine |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, workers, seconds, diff, cosine in rows:
        print(
            f"| {name} | {workers} | {seconds:.1f} | {len(texts) / seconds:.1f} | "
            f"{t_local / seconds:.2f} | {diff:.1e} | {cosine:.7f} |"
        )


if __name__ == "__main__":
    main()
