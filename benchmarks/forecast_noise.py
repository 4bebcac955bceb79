"""How much a forecast moves with its random state, and what that does to its error against real
retraining (issue 16): the forecast of every ground-truth candidate under several random states,
for one or more EM tolerances.

    .venv/bin/python benchmarks/forecast_noise.py [--states 4] [--tols 1e-3,1e-2]

The candidates, reference and plans are those of `recursion_truth.py` (400 blocks, five
generations, replace and keep-real 10%); the actual values are read from its results
(Kneser-Ney: recursion_truth.json; GRU: recursion_truth_gru*.json). Per candidate: the forecast's
mean and sd over random states; per random state: MAE and Spearman against each truth. Results:
benchmarks/results/forecast_noise.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from fit_forecast import score  # sibling scripts: benchmarks/ is on path
from recursion_truth import POLICIES, CandidateForecasts

import simulations.models.embedding as embedding_model

RESULTS = Path("benchmarks/results")
TRUTHS = {
    "KN": ["recursion_truth.json"],
    "GRU": ["recursion_truth_gru.json", "recursion_truth_gru_keep_real.json"],
}


def truths() -> dict[str, dict[tuple[str, str], float]]:
    out: dict[str, dict[tuple[str, str], float]] = {}
    for name, files in TRUTHS.items():
        rows = [
            r
            for f in files
            if (RESULTS / f).exists()
            for r in json.loads((RESULTS / f).read_text())["rows"]
        ]
        out[name] = {(r["candidate"], r["policy"]): r["actual_relative_final"] for r in rows}
    return out


def errors(rows: list[dict], truth: dict[tuple[str, str], float]) -> dict[str, dict]:
    """MAE and Spearman per policy of `rows`' forecasts against `truth` (fit_forecast's score)."""
    known = [
        dict(r, actual=truth[(r["candidate"], r["policy"])])
        for r in rows
        if (r["candidate"], r["policy"]) in truth
    ]
    return score(known)[1] if known else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", type=int, default=4, help="random states 0..N-1")
    ap.add_argument("--tols", default="1e-3", help="EM tolerances, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS / "forecast_noise.json")
    args = ap.parse_args()
    cf = CandidateForecasts.build(400)
    vectors = cf.vectors
    rows: list[dict] = []
    t0 = time.perf_counter()
    for tol in (float(t) for t in args.tols.split(",")):
        embedding_model.EM_TOL = tol  # this process runs the chains (processes=1)
        embedding_model._first_fits.clear()
        for state in range(args.states):
            for policy, beta in POLICIES:
                human = None
                for name in vectors:
                    f = cf.forecast(name, policy, beta, human=human, random_state=state)
                    human = f.human  # the same for every candidate of this plan and state
                    rows.append(
                        {
                            "tol": tol,
                            "state": state,
                            "policy": policy,
                            "candidate": name,
                            "forecast": f.relative_final(),
                        }
                    )
            print(
                f"tol {tol:g}, random state {state}: {time.perf_counter() - t0:.0f} s", flush=True
            )
    summary: dict[str, dict] = {}
    known = truths()
    for tol in sorted({r["tol"] for r in rows}):
        at = [r for r in rows if r["tol"] == tol]
        sds = []
        for name in vectors:
            for policy, _ in POLICIES:
                fc = [
                    float(r["forecast"])
                    for r in at
                    if r["candidate"] == name and r["policy"] == policy
                ]
                sds.append(float(np.std(fc, ddof=1)))
        per_state = {
            truth: [
                errors([r for r in at if r["state"] == s], known[truth]) for s in range(args.states)
            ]
            for truth in known
        }
        summary[f"{tol:g}"] = {"mean_sd_per_candidate": float(np.mean(sds)), "per_state": per_state}
        print(
            f"EM tol {tol:g}: forecast sd over random states, mean of candidates {np.mean(sds):.3f}"
        )
        for truth, states in per_state.items():
            for policy in ("replace", "keep-real"):
                got = [s[policy] for s in states if policy in s]
                if got:
                    maes = ", ".join(f"{g['mae']:.3f}" for g in got)
                    rhos = ", ".join(f"{g['spearman']:.2f}" for g in got)
                    print(f"  {truth} {policy}: MAE {maes}; Spearman {rhos}")
    args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
