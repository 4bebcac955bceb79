"""Our FAISS-backed precision/recall/density/coverage vs the `prdc` package, in one run.

    .venv/bin/python benchmarks/coverage_vs_prdc.py                 # 20k x 20k, 384-d
    .venv/bin/python benchmarks/coverage_vs_prdc.py --sizes 5000 10000 20000
    .venv/bin/python benchmarks/coverage_vs_prdc.py --repeats 3    # median of 3 runs per method

Data: unit-norm 384-d vectors from a 64-component Gaussian mixture on the sphere (the shape of
sentence embeddings: clustered, anisotropic); the "fake" set draws the same clusters with skewed
weights and a third of the clusters missing, so the metrics are away from 0 and 1.

Each method runs in a fresh subprocess that builds the data from the same seed, records its
resident memory, computes, and reports wall time and the peak resident memory it added
(ru_maxrss high-water mark minus the resident size before computing). prdc materialises three
N x N float distance matrices; ours keeps O(N * k) neighbour lists and the pairs inside the balls.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import psutil

DIM = 384
CLUSTERS = 64
K = 5


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    scales = rng.uniform(0.3, 1.2, size=CLUSTERS).astype(np.float32)

    def draw(weights: np.ndarray) -> np.ndarray:
        labels = rng.choice(CLUSTERS, size=n, p=weights / weights.sum())
        x = centres[labels] + scales[labels, None] * rng.standard_normal((n, DIM)).astype(
            np.float32
        )
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    real = draw(np.ones(CLUSTERS))
    fake_w = rng.uniform(0.2, 2.0, size=CLUSTERS)
    fake_w[: CLUSTERS // 3] = 0.0  # a third of the modes are missing from the fake set
    return real, draw(fake_w)


def run_child(method: str, n: int) -> dict[str, float]:
    import contextlib
    import io

    from prdc import compute_prdc as prdc_compute

    from detectors.coverage import compute_prdc

    real, fake = make_data(n)
    before = psutil.Process().memory_info().rss  # after imports and data: only compute counts
    t0 = time.perf_counter()
    if method == "prdc":
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sizes
            metrics = {k: float(v) for k, v in prdc_compute(real, fake, K).items()}
    else:
        out = compute_prdc(real, fake, k=K, index=method)
        metrics = {m: getattr(out, m) for m in ("precision", "recall", "density", "coverage")}
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"seconds": seconds, "peak_mib": max(peak - before, 0) / 2**20, **metrics}


def measure(method: str, n: int, repeats: int) -> dict[str, float]:
    """One fresh subprocess per repeat; the run with the median time is reported (timings on a
    shared 2-core machine move by 20-30% between runs, for prdc and for us alike)."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", method, "--n", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per method; the median-time run is reported"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.n)))
        return

    metrics = ("precision", "recall", "density", "coverage")
    print(
        f"real = fake = N vectors, {DIM}-d, k={K}; ratios are prdc / ours (higher = ours "
        f"better); median of {args.repeats} run(s) per method"
    )
    print()
    header = (
        "| N | method | time (s) | peak extra memory (MiB) | time ratio | memory ratio "
        "| max abs diff vs prdc |"
    )
    print(header)
    print("|" + "---|" * 7)
    for n in args.sizes:
        ref = measure("prdc", n, args.repeats)
        rows = [("prdc (sklearn, N x N)", ref)]
        rows += [(f"ours, {m}", measure(m, n, args.repeats)) for m in ("exact", "ivf", "hnsw")]
        for name, r in rows:
            diff = max(abs(r[m] - ref[m]) for m in metrics)
            print(
                f"| {n:,} | {name} | {r['seconds']:.1f} | {r['peak_mib']:,.0f} "
                f"| {ref['seconds'] / r['seconds']:.1f}x "
                f"| {ref['peak_mib'] / max(r['peak_mib'], 1):.1f}x | {diff:.2e} |"
            )
        values = " ".join(f"{m}={ref[m]:.3f}" for m in metrics)
        print(f"|  | (prdc values: {values}) | | | | | |")


if __name__ == "__main__":
    main()
