"""The vectorised Gaussian recursion at the paper's scale, and what-if forecast latency.

    .venv/bin/python benchmarks/simulate_gaussian.py

1,000 independent chains x 1,000 generations x M = 100 samples (unbiased estimator, `replace`) in
one vectorised run, with the closed forms beside the Monte Carlo; then the what-if forecast
(the service's fast path) timed over repeated calls.
"""

from __future__ import annotations

import time

import numpy as np

from simulations.forecast import Plan, what_if
from simulations.loop import run_generations
from simulations.models.gaussian import GaussianModel
from simulations.theory import (
    expected_variance,
    expected_w2_squared,
    first_order_w2_squared,
    variance_of_variance,
)


def main() -> None:
    chains, generations, samples = 1000, 1000, 100
    t0 = time.perf_counter()
    record = run_generations(
        GaussianModel(estimator="unbiased", n_chains=chains),
        generations=generations,
        samples=samples,
        random_state=0,
    )
    seconds = time.perf_counter() - t0
    n = generations + 1
    var, w2 = record.metrics["variance"], record.metrics["w2_squared"]
    print(
        f"{chains} chains x {generations} generations x M={samples}: {seconds:.2f} s "
        f"({chains * n * samples / seconds / 1e6:.0f} M samples/s)"
    )
    print()
    print(
        "| generation | mean sigma^2 (MC) | E[sigma^2] | median sigma^2 | mean W2^2 (MC) "
        "| E[W2^2] exact | (3/2) sum 1/M |"
    )
    print("|---|---|---|---|---|---|---|")
    exact_v = expected_variance(n, samples)[1:]
    exact_w = expected_w2_squared(n, samples)[1:]
    first = first_order_w2_squared(n, samples)[1:]
    for g in (0, 10, 100, 500, 1000):
        se = np.sqrt(variance_of_variance(n, samples)[1:][g] / chains)
        print(
            f"| {g} | {var[g].mean():.3f} +- {se:.3g} | {exact_v[g]:.3f} | "
            f"{np.median(var[g]):.3g} | {w2[g].mean():.3f} | {exact_w[g]:.3f} | {first[g]:.3f} |"
        )

    plan = Plan(generations=5, samples=1000, seeds=8)
    what_if(synthetic_fraction=0.3, tail_coverage=0.6, plan=plan)  # warm-up
    times = []
    for i in range(50):
        t0 = time.perf_counter()
        what_if(synthetic_fraction=0.3, tail_coverage=0.6, plan=plan, random_state=i)
        times.append(time.perf_counter() - t0)
    ms = 1000 * np.array(times)
    print()
    print(
        f"what-if forecast ({plan.generations} generations, {plan.seeds} seeds, "
        f"{plan.samples} documents/generation, with its human-start run): "
        f"median {np.median(ms):.1f} ms, 95th percentile {np.percentile(ms, 95):.1f} ms "
        "(target < 50 ms)"
    )


if __name__ == "__main__":
    main()
