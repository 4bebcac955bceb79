"""Retraining errors that concentrate text, against real recursive training (issue 16, item 2).

    .venv/bin/python benchmarks/retraining_error_variants.py [--variants A:S:C:TOWARD:SPREAD_OF,...]
                                                             [--out FILE]
    .venv/bin/python benchmarks/retraining_error_variants.py --summarise FILE

Real retraining raises the precision of narrow, thinned and generated text and lowers its recall
(`recursion_truth_prdc.json`); the fitted forecast (`RETRAINING_ERROR`: anchor and spread) does
neither. This forecasts the nine candidates under both policies for each variant of
`simulations.models.embedding.RetrainingError` -- `concentration` towards each draw's component
mean or the mixture's mean, and `spread_of="data"` (scatter in the fitted mixture's own units) --
and scores every variant's relative final tail coverage against the Kneser-Ney and GRU truths
(as `fit_forecast.py` does) and its recall and precision against Kneser-Ney's
(`recursion_truth_prdc.json`). It also records the headroom precision has in the forecast's
projection: a human sample's raw precision there, and each candidate's at generation 0 (a
sample's ratio to human data cannot exceed 1 / the former; only the scatter a retraining error
adds to the human start's chains as well leaves a ratio room to rise).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from recursion_truth import CandidateForecasts  # sibling script: benchmarks/ is on path
from scipy.stats import spearmanr

from simulations.models.embedding import RETRAINING_ERROR, RetrainingError
from simulations.results import Trajectory

RESULTS = Path("benchmarks/results")
PRDC_TRUTH = RESULTS / "recursion_truth_prdc.json"
TAIL_TRUTHS = {
    "Kneser-Ney": [RESULTS / "recursion_truth.json"],
    "GRU": [
        RESULTS / "recursion_truth_gru_2seeds.json",
        RESULTS / "recursion_truth_gru_keep_real_2seeds.json",
    ],
}
POLICIES = ("replace", "keep-real")
OTHER = ("recall", "precision")


def default_variants() -> list[str]:
    d = RETRAINING_ERROR
    out = [f"{d.anchor}:{d.spread}:0:component:reference"]
    out += [
        f"{a}:{s}:{c}:component:reference"
        for a, s, c in itertools.product((0.2, 0.4, 0.6), (0.3, 0.6, 0.9), (0.15, 0.3, 0.5))
    ]
    out += [
        f"{a}:{s}:{c}:centre:reference"
        for a, s, c in itertools.product((0.2, 0.4), (0.3, 0.6), (0.15, 0.3))
    ]
    out += [
        f"{a}:{s}:0:component:data" for a, s in itertools.product((0.2, 0.4, 0.6), (0.3, 0.6, 0.9))
    ]
    return out


def parse(variant: str) -> RetrainingError:
    a, s, c, toward, spread_of = variant.split(":")
    return RetrainingError(
        anchor=float(a),
        spread=float(s),
        concentration=float(c),
        toward=toward,  # type: ignore[arg-type]
        spread_of=spread_of,  # type: ignore[arg-type]
    )


def run(variants: list[str], out: Path) -> None:
    """Forecast every truth row under every variant; a stopped run resumes (done variants kept)."""
    truth = json.loads(PRDC_TRUTH.read_text())["rows"]
    blocks = 400  # the truth's blocks per candidate (recursion_truth.py's default)
    kept = json.loads(out.read_text()) if out.exists() else {"variants": []}
    done = {v["variant"] for v in kept["variants"]}
    cf = CandidateForecasts.build(blocks)
    vectors, proj, seed = cf.vectors, cf.projected, cf.setup.settings.random_state
    kept["headroom"] = {
        "human_sample_precision": proj.baseline(blocks, seed)["precision"],
        "generation_0_precision": {
            name: proj.raw_metrics(proj.project(v))["precision"] for name, v in vectors.items()
        },
    }
    for variant in (v for v in variants if v not in done):
        error = parse(variant)
        t0 = time.perf_counter()
        humans: dict[str, dict[str, Trajectory]] = {}
        rows = []
        for r in truth:
            if r["policy"] not in humans:  # the yardstick: the same plan from human data
                humans[r["policy"]] = cf.forecast(
                    r["candidate"], r["policy"], r["beta"], error=error
                ).human
            f = cf.forecast(
                r["candidate"], r["policy"], r["beta"], error=error, human=humans[r["policy"]]
            )
            rows.append(
                {
                    "policy": r["policy"],
                    "candidate": r["candidate"],
                    "forecast": {m: f.relative_final(m) for m in ("tail_coverage", *OTHER)},
                }
            )
        kept["variants"].append({"variant": variant, "rows": rows})
        out.write_text(json.dumps(kept, indent=1))
        print(f"{variant}: {time.perf_counter() - t0:.0f} s", flush=True)


def _score(actual: list[float], forecast: list[float]) -> tuple[float, float]:
    a, f = np.asarray(actual), np.asarray(forecast)
    if not np.isfinite(f).all() or np.ptp(f) == 0:
        return float("nan"), float("nan")
    return float(np.abs(a - f).mean()), float(spearmanr(a, f).statistic)


def summarise(path: Path) -> None:
    """Per variant: tail coverage against each family and policy (MAE, Spearman) and the MAE
    over all 36 runs; recall and precision against Kneser-Ney; sorted by the 36-run MAE."""
    kept = json.loads(path.read_text())
    tail = {
        (fam, r["policy"], r["candidate"]): r["actual_relative_final"]
        for fam, files in TAIL_TRUTHS.items()
        for f in files
        for r in json.loads(f.read_text())["rows"]
    }
    other = {
        (r["policy"], r["candidate"], m): v["actual_relative_final"]
        for r in json.loads(PRDC_TRUTH.read_text())["rows"]
        for m, v in r["metrics"].items()
    }
    table = []
    for v in kept["variants"]:
        cells, errors = [], []
        for fam, policy in itertools.product(TAIL_TRUTHS, POLICIES):
            rows = [r for r in v["rows"] if r["policy"] == policy]
            a = [tail[(fam, policy, r["candidate"])] for r in rows]
            f = [r["forecast"]["tail_coverage"] for r in rows]
            cells.append(_score(a, f))
            errors += list(np.abs(np.subtract(a, f)))
        for m, policy in itertools.product(OTHER, POLICIES):
            rows = [r for r in v["rows"] if r["policy"] == policy]
            a = [other[(policy, r["candidate"], m)] for r in rows]
            cells.append(_score(a, [r["forecast"][m] for r in rows]))
        top = max(r["forecast"]["precision"] for r in v["rows"])
        table.append((float(np.mean(errors)), v["variant"], cells, top))
    names = [f"{f} {p}" for f, p in itertools.product(TAIL_TRUTHS, POLICIES)]
    names += [f"KN {m} {p}" for m, p in itertools.product(OTHER, POLICIES)]
    print("| variant | tail MAE, 36 runs | " + " | ".join(names) + " | highest precision |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for mae, name, cells, top in sorted(table, key=lambda t: (np.isnan(t[0]), t[0])):
        body = " | ".join(f"{m:.3f}, {rho:.2f}" for m, rho in cells)
        print(f"| {name} | {mae:.3f} | {body} | {top:.2f} |")
    h = kept["headroom"]
    print(
        f"human sample's precision in the projection: {h['human_sample_precision']:.3f} "
        f"(a sample's ratio to it cannot exceed {1 / h['human_sample_precision']:.2f}); "
        "generation 0: " + ", ".join(f"{k} {x:.3f}" for k, x in h["generation_0_precision"].items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=None, help="A:S:C:TOWARD:SPREAD_OF, comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS / "retraining_error_variants.json")
    parser.add_argument("--summarise", type=Path, default=None)
    args = parser.parse_args()
    if args.summarise:
        summarise(args.summarise)
        return
    run(args.variants.split(",") if args.variants else default_variants(), args.out)


if __name__ == "__main__":
    main()
