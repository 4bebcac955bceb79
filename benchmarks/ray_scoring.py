"""An audit's coverage scoring (every k-NN search of `coverage_report`) locally vs on Ray actors.

    .venv/bin/python benchmarks/ray_scoring.py [--reference 100000] [--cpus 2]
        [--out benchmarks/results/ray_scoring.json]

The reference holds real MiniLM embeddings of every BBC News article and Wikipedia paragraph
(~5.6k documents), repeated with small Gaussian jitter (sd 0.01 per coordinate, then
renormalised) up to `--reference` vectors: real geometry at a size where scoring matters, and an
HNSW index as a reference of that size gets. The candidate is 1,000 real BBC vectors (the
audit's default sample size). The scoring is `coverage_report(reference, candidate)`: the
reference's points against the candidate's index, the candidate against the reference's index,
the k-NN radii, with `search=local_search` (the driver) or `RaySearch(actors=1|2)` (a local Ray
with `--cpus` CPUs, or the cluster at RAY_ADDRESS). For Ray the first call (deploying the
indexes to the actors) and a second call are timed; every report is compared with the local one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def reference_vectors(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from detectors.corpora import bbc_news, wikipedia_paragraphs
    from detectors.embedding import Embedder

    bbc = [d.text for d in bbc_news()]
    wiki = [d.text for d in wikipedia_paragraphs()]
    vectors = Embedder().embed(bbc + wiki).vectors
    candidate = vectors[rng.choice(len(bbc), 1000, replace=False)]
    reps = vectors[rng.integers(len(vectors), size=n)]
    jittered = reps + rng.normal(scale=0.01, size=reps.shape).astype(np.float32)
    jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
    return jittered.astype(np.float32), candidate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_scoring.json"))
    args = parser.parse_args()

    import ray

    from detectors.coverage import coverage_report
    from detectors.index import local_search
    from detectors.ray_search import RaySearch
    from detectors.reference import ReferenceCorpus

    rng = np.random.default_rng(0)
    vectors, candidate = reference_vectors(args.reference, rng)
    t0 = time.perf_counter()
    reference = ReferenceCorpus(index="auto").fit(vectors)
    _ = reference.radii_  # computed at build and stored with a reference: not scoring's cost
    build_s = time.perf_counter() - t0

    def timed(search) -> tuple[float, object]:
        t = time.perf_counter()
        report = coverage_report(reference, candidate, random_state=1, search=search)
        return time.perf_counter() - t, report

    local_s, want = timed(local_search)
    rows = [{"engine": "local", "workers": "driver", "first_s": local_s, "next_s": local_s}]
    if not os.environ.get("RAY_ADDRESS"):
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    for actors in (1, 2):
        search = RaySearch(actors=actors)
        first_s, first = timed(search)
        next_s, again = timed(search)
        rows.append(
            {
                "engine": "ray",
                "workers": f"{actors} actor(s)",
                "first_s": first_s,
                "next_s": next_s,
                "equal_to_local": first == want and again == want,
            }
        )
    out = {
        "reference": args.reference,
        "index": reference.index_kind_,
        "candidate": len(candidate),
        "cpus": args.cpus,
        "reference_build_s": build_s,
        "rows": rows,
    }
    args.out.write_text(json.dumps(out, indent=1))
    print(f"reference {args.reference:,} vectors ({reference.index_kind_}), candidate 1,000")
    print("| engine | workers | first call | next call | vs local (next) | report equal to local |")
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['workers']} | {r['first_s']:.2f} s | {r['next_s']:.2f} s | "
            f"{local_s / r['next_s']:.2f}x | {r.get('equal_to_local', True)} |"
        )


if __name__ == "__main__":
    main()
