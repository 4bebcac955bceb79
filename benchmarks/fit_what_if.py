"""The what-if model's constants fitted to real recursive retraining (issue 16, item 4).

    .venv/bin/python benchmarks/fit_what_if.py [--truths FILE ...] [--out FILE]

`what_if` forecasts from two audit numbers alone: the candidate's synthetic fraction and its
tail coverage as a ratio to a fresh human sample. Its picture of human text is a Zipf law over
`categories` categories with exponent `exponent`, whose rarest categories holding `tail_mass` of
the probability are the tail; generated text puts `off_reference` of its mass off the human
support. Here those constants are fitted to the ground truth of `recursion_truth.py` (a
Kneser-Ney trigram and a GRU retrained for five generations on nine candidates of real text,
under replace and keep-real 10%, two seeds each): for every run, the what-if forecast from the
candidate's two numbers (its known generated share; its generation-0 tail coverage over that of
the human BBC candidate, a fresh human sample of the same size) under the run's plan (400
samples per generation, five generations), against the run's actual relative final tail
coverage. Reported per constant set: mean absolute error and Spearman per truth, over all runs,
and leaving each candidate out (the constants chosen on the other eight candidates' runs,
scored on the one left out).

`off_reference` moves only precision (and the tail through renormalisation, by at most its own
size); it is checked separately against the precision of a truth that records it (`--precision`,
`recursion_truth.py` rows' `metrics`), the other constants as fitted.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from simulations.forecast import what_if
from simulations.plans import Plan
from simulations.whatif import WHAT_IF_CONSTANTS, WhatIfConstants

RESULTS = Path("benchmarks/results")
TRUTHS = (
    ("Kneser-Ney", RESULTS / "recursion_truth.json"),
    ("GRU", RESULTS / "recursion_truth_gru_2seeds.json"),
    ("GRU", RESULTS / "recursion_truth_gru_keep_real_2seeds.json"),
)
GRID = {
    "categories": (500, 1000, 2000, 4000, 8000),
    "exponent": (0.8, 1.0, 1.2),
    "tail_mass": (0.05, 0.1, 0.2),
    "smoothing": (0.0, 0.01, 0.03, 0.1),
}
# The constants assumed before they were fitted (a Zipf law over 2,000 categories, tail mass
# 0.1, no smoothing), reported beside this version's.
ASSUMED = WhatIfConstants(
    categories=2000, exponent=1.0, tail_mass=0.1, off_reference=0.05, smoothing=0.0
)
HUMAN = "bbc human"  # the fresh human sample the tail-coverage ratio is taken against
BLOCKS = 400  # the truth's samples per generation
KEEP_REAL_BETA = 0.1


@dataclass(frozen=True)
class Run:
    model: str
    candidate: str
    policy: str
    synthetic_fraction: float
    tail_ratio: float
    actual: float


def synthetic_share(candidate: str) -> float:
    """The generated share a candidate was built with ("bbc + 30% SmolLM2" -> 0.3)."""
    found = re.search(r"(\d+)% SmolLM2", candidate)
    return int(found.group(1)) / 100 if found else 0.0


def runs_of(truths: list[tuple[str, Path]]) -> list[Run]:
    runs = []
    for model, path in truths:
        rows = json.loads(path.read_text())["rows"]
        human = {r["policy"]: r["start_tail_coverage"] for r in rows if r["candidate"] == HUMAN}
        for r in rows:
            runs.append(
                Run(
                    model=model,
                    candidate=r["candidate"],
                    policy=r["policy"],
                    synthetic_fraction=synthetic_share(r["candidate"]),
                    tail_ratio=min(r["start_tail_coverage"] / human[r["policy"]], 1.5),
                    actual=r["actual_relative_final"],
                )
            )
    return runs


def predict(run: Run, constants: WhatIfConstants, metric: str = "tail_coverage") -> float:
    plan = Plan(
        generations=5,
        samples=BLOCKS,
        policy=run.policy,  # type: ignore[arg-type]  # "replace" or "keep-real", from the truth
        beta=0.0 if run.policy == "replace" else KEEP_REAL_BETA,
    )
    f = what_if(
        synthetic_fraction=run.synthetic_fraction,
        tail_coverage=run.tail_ratio,
        plan=plan,
        constants=constants,
    )
    return f.relative_final(metric)


OFF_REFERENCE_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)


def precision_fit(path: Path) -> dict:
    """`off_reference` against the precision real retraining reached (a truth that records it:
    `recursion_truth.py` rows' `metrics`), the other constants as fitted. Over all candidates and
    over BBC's alone: Wikipedia text lies partly off a BBC reference, which the what-if model,
    given a synthetic share of 0, cannot know."""
    truth = json.loads(path.read_text())
    runs = runs_of([("Kneser-Ney" if truth.get("model", "kn") == "kn" else "GRU", path)])
    actual = {
        (r["candidate"], r["policy"]): r["metrics"]["precision"]["actual_relative_final"]
        for r in truth["rows"]
    }
    rows = []
    for off in OFF_REFERENCE_GRID:
        constants = dataclasses.replace(WHAT_IF_CONSTANTS, off_reference=off)
        row: dict = {"off_reference": off}
        for label, pick in (("all", runs), ("bbc", [r for r in runs if r.candidate[:3] == "bbc"])):
            a = np.array([actual[(r.candidate, r.policy)] for r in pick])
            f = np.array([predict(r, constants, "precision") for r in pick])
            row[label] = {
                "mae": float(np.abs(a - f).mean()),
                "spearman": float(spearmanr(a, f).statistic) if np.ptp(f) > 0 else float("nan"),
                "actual": a.tolist(),
                "forecast": f.tolist(),
            }
        rows.append(row)
    print("| off-reference mass | precision, all: MAE, Spearman | BBC candidates: MAE, Spearman |")
    print("|---|---|---|")
    for row in rows:
        print(
            f"| {row['off_reference']} | {row['all']['mae']:.3f}, {row['all']['spearman']:.2f} "
            f"| {row['bbc']['mae']:.3f}, {row['bbc']['spearman']:.2f} |"
        )
    return {"truth": str(path), "grid": rows}


def scores(runs: list[Run], predicted: list[float]) -> dict[str, dict[str, float]]:
    """MAE and Spearman per (model, policy) truth and over all runs."""
    out = {}
    groups = sorted({(r.model, r.policy) for r in runs})
    for key in [*groups, ("all", "all")]:
        pick = [
            i for i, r in enumerate(runs) if key == ("all", "all") or (r.model, r.policy) == key
        ]
        actual = np.array([runs[i].actual for i in pick])
        pred = np.array([predicted[i] for i in pick])
        rho = spearmanr(actual, pred).statistic if np.ptp(pred) > 0 else float("nan")
        out[f"{key[0]} {key[1]}"] = {
            "mae": float(np.abs(actual - pred).mean()),
            "spearman": float(rho),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default benchmarks/results/fit_what_if.json (--precision-only: "
        "fit_what_if_precision.json, so the full fit is not overwritten)",
    )
    ap.add_argument(
        "--precision",
        type=Path,
        default=RESULTS / "recursion_truth_prdc.json",
        help="a truth with recall and precision: off_reference against its precision",
    )
    ap.add_argument(
        "--precision-only",
        action="store_true",
        help="only the off_reference fit, into --out (seconds)",
    )
    args = ap.parse_args()
    name = "fit_what_if_precision.json" if args.precision_only else "fit_what_if.json"
    args.out = args.out or RESULTS / name
    if args.precision_only:
        args.out.write_text(json.dumps(precision_fit(args.precision), indent=1))
        return
    runs = runs_of(list(TRUTHS))
    points = [
        WhatIfConstants(
            categories=c,
            exponent=e,
            tail_mass=t,
            off_reference=WHAT_IF_CONSTANTS.off_reference,
            smoothing=m,
        )
        for c, e, t, m in itertools.product(*GRID.values())
    ]
    points.extend(p for p in (ASSUMED, WHAT_IF_CONSTANTS) if p not in points)
    predictions = {p: [predict(r, p) for r in runs] for p in points}
    errors = {p: np.abs(np.array(predictions[p]) - [r.actual for r in runs]) for p in points}
    best = min(points, key=lambda p: errors[p].mean())
    # Leave one candidate out: the constants chosen on the other candidates' runs.
    candidates = sorted({r.candidate for r in runs})
    held_out = []
    for c in candidates:
        inside = np.array([r.candidate != c for r in runs])
        chosen = min(points, key=lambda p: errors[p][inside].mean())
        held_out.extend(errors[chosen][~inside].tolist())
    table = [
        {**asdict(p), "scores": scores(runs, predictions[p])}
        for p in sorted(points, key=lambda p: errors[p].mean())
    ]
    result = {
        "runs": [asdict(r) for r in runs],
        "assumed": {**asdict(ASSUMED), "scores": scores(runs, predictions[ASSUMED])},
        "current": {
            **asdict(WHAT_IF_CONSTANTS),
            "scores": scores(runs, predictions[WHAT_IF_CONSTANTS]),
        },
        "best": {**asdict(best), "scores": scores(runs, predictions[best])},
        "leave_one_candidate_out_mae": float(np.mean(held_out)),
        "per_run": [
            {
                **asdict(r),
                "assumed": predictions[ASSUMED][i],
                "current": predictions[WHAT_IF_CONSTANTS][i],
                "best": predictions[best][i],
            }
            for i, r in enumerate(runs)
        ],
        "grid": table,
        "off_reference": precision_fit(args.precision) if args.precision.exists() else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    header = sorted(result["current"]["scores"])
    print("| constants (categories, exponent, tail mass, smoothing) | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for label, row in (
        ("assumed before the fit", result["assumed"]),
        ("this version", result["current"]),
        ("best on the grid", result["best"]),
        *((f"grid #{i + 1}", r) for i, r in enumerate(table[:5])),
    ):
        cells = " | ".join(
            f"{row['scores'][h]['mae']:.3f}, {row['scores'][h]['spearman']:.2f}" for h in header
        )
        print(
            f"| {label}: {row['categories']}, {row['exponent']}, {row['tail_mass']}, "
            f"{row['smoothing']} | {cells} |"
        )
    print(f"leave one candidate out: MAE {result['leave_one_candidate_out_mae']:.3f}")
    print(
        "| model | policy | candidate | synthetic | tail ratio | actual | assumed | this version |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in result["per_run"]:
        print(
            f"| {r['model']} | {r['policy']} | {r['candidate']} | {r['synthetic_fraction']:.1f} "
            f"| {r['tail_ratio']:.2f} | {r['actual']:.2f} | {r['assumed']:.2f} "
            f"| {r['current']:.2f} |"
        )


if __name__ == "__main__":
    main()
