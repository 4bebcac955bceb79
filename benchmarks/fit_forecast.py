"""Fit the forecast's retraining constants to real recursive training (issue 16 item 4).

    .venv/bin/python benchmarks/fit_forecast.py [--fine | --points A:S,...] [--part I/N]
                                                [--out FILE]                     # grid
    .venv/bin/python benchmarks/fit_forecast.py --summarise FILE [FILE ...] [--truths T ...]
                                                                              # fit + its error
    .venv/bin/python benchmarks/fit_forecast.py --reread TRUTH --forecasts FILE  # other truth
    .venv/bin/python benchmarks/fit_forecast.py --others GRID TRUTH   # recall, precision too

The embedding forecast refits a Gaussian mixture generation after generation. A language model's
retraining does two things the refit does not (`simulations.models.embedding.RetrainingError`):
each generation continues prompts from the starting corpus, so its text stays tied to the
starting documents (`anchor`), and the model's own functional error scatters it (`spread`). Both
constants are fitted here to the ground truth of `benchmarks/recursion_truth.py` (its JSON: nine
candidates of real text, five generations of Kneser-Ney retraining, replace and keep-real 10%):
every grid point's forecast of every (candidate, policy) row, from the same generation-0 vectors,
is compared with the actual relative final tail coverage.

The fit's error is given two ways: the mean absolute error at the chosen constants (in-sample),
and leave-one-candidate-out (for each candidate, the constants are chosen on the other eight and
its two rows are forecast with them), the honest figure for a corpus the fit has not seen.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from recursion_truth import POLICIES, CandidateForecasts  # sibling script: benchmarks/ is on path
from scipy.stats import spearmanr

from simulations.models.embedding import RetrainingError

ANCHORS = (0.0, 0.2, 0.4, 0.6, 0.8)
SPREADS = (0.0, 0.2, 0.4, 0.7, 1.0)
FINE = ((0.7, 0.9), (0.3, 0.5, 0.6))  # then around the coarse grid's best (0.8, 0.4)
TRUTH = Path("benchmarks/results/recursion_truth.json")
GROUPS = ("replace", "keep-real")


def targets() -> list[dict]:
    """Every ground-truth row: candidate, plan, actual relative final tail coverage, and which
    human run it is relative to (the same plan's). The top-up runs (`recursion_truth.py
    --top-up`) are not fitted to: they check the fitted forecast's top-ups (issue 16 item 3)."""
    return [
        {
            "group": r["policy"],
            "candidate": r["candidate"],
            "policy": r["policy"],
            "beta": r["beta"],
            "relative_to": r["policy"],
            "actual": r["actual_relative_final"],
        }
        for r in json.loads(TRUTH.read_text())["rows"]
    ]


def grid(part: int, parts: int, out: Path, *, fine: bool, points: list | None = None) -> None:
    """Forecast every target at every grid point of this part; rows already in `out` are kept
    (a stopped run resumes, and new targets only cost their own forecasts)."""
    blocks = 400
    rows = json.loads(out.read_text())["rows"] if out.exists() else []

    def key(r: dict) -> tuple:
        return (r["anchor"], r["spread"], r["policy"], r["beta"], r["candidate"])

    done = {key(r) for r in rows}
    points = (points or list(itertools.product(*(FINE if fine else (ANCHORS, SPREADS)))))[
        part::parts
    ]
    truth = targets()  # read once, not once per grid point
    todo = [
        (a, s, t) for a, s in points for t in truth if key(dict(t, anchor=a, spread=s)) not in done
    ]
    if not todo:
        return
    cf = CandidateForecasts.build(blocks)
    humans: dict[tuple, dict] = {}  # the human run per (constants, plan it is relative to)
    t0 = time.perf_counter()
    for anchor, spread, t in todo:
        error = RetrainingError(anchor=anchor, spread=spread)
        base_key = (anchor, spread, t["relative_to"])
        if base_key not in humans:
            beta0 = dict(POLICIES)[t["relative_to"]]
            humans[base_key] = cf.forecast(
                t["candidate"], t["relative_to"], beta0, error=error
            ).human
        f = cf.forecast(t["candidate"], t["policy"], t["beta"], error=error, human=humans[base_key])
        rows.append(
            dict(
                t,
                anchor=anchor,
                spread=spread,
                forecast=f.relative_final(),
                # Beside the fitted metric, what the constants do to the others (README "Recall
                # and precision, measured beside tail coverage").
                forecast_other={m: f.relative_final(m) for m in ("recall", "precision")},
            )
        )
        out.write_text(json.dumps({"rows": rows}, indent=1))
        print(
            f"anchor {anchor} spread {spread} {t['policy']} {t['beta']:.3f} {t['candidate']}: "
            f"forecast {rows[-1]['forecast']:.2f} actual {t['actual']:.2f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def _target_key(r: dict) -> tuple:
    return (r.get("group", r["policy"]), r["candidate"], r["policy"], round(r["beta"], 6))


def score(
    rows: list[dict], groups: tuple[str, ...] | list[str] = GROUPS
) -> tuple[float, dict[str, dict[str, float]]]:
    """Mean absolute error over all rows, and per group (replace, keep-real 10%; or a truth
    family's) that has rows its MAE and Spearman correlation."""
    mae = float(np.mean([abs(r["forecast"] - r["actual"]) for r in rows]))
    per: dict[str, dict[str, float]] = {}
    for group in groups:
        part = [r for r in rows if r.get("group", r["policy"]) == group]
        if not part:
            continue
        fc, actual = [r["forecast"] for r in part], [r["actual"] for r in part]
        per[group] = {
            "mae": float(np.mean(np.abs(np.subtract(fc, actual)))),
            "spearman": float(spearmanr(fc, actual).statistic),
        }
    return mae, per


def _family(truth_file: Path) -> str:
    """The model family a `recursion_truth.py` output is of (`--model gru` files say gru)."""
    return "GRU" if "gru" in truth_file.stem else "Kneser-Ney"


def _truth_rows(truth_files: list[Path]) -> dict[tuple, float]:
    """(family, policy, beta, candidate) -> actual relative final tail coverage, for every truth
    file: the forecast from generation 0 is the same whatever model family retrains, so one grid
    of forecasts is scored against each."""
    return {
        (_family(f), r["policy"], round(r["beta"], 6), r["candidate"]): r["actual_relative_final"]
        for f in truth_files
        for r in json.loads(f.read_text())["rows"]
    }


def summarise(files: list[Path], out: Path, truth_files: list[Path] | None = None) -> None:
    """The fit: the grid point with the smallest mean absolute error over every truth row, and
    its error leaving each candidate out (all of its rows, in every truth)."""
    truth = _truth_rows(truth_files or [TRUTH])
    families = sorted({k[0] for k in truth})
    n_targets = len(truth)
    # The grid files keep each row's forecast (of the plan its group names); its actual value is
    # each truth's. Only rows forecast against their own plan's human run are scored.
    rows = [
        dict(r, actual=truth[key], family=key[0], group=f"{key[0]}: {r['policy']}")
        for f in files
        for r in json.loads(f.read_text())["rows"]
        if r["relative_to"] == r["policy"]
        for key in [(fam, r["policy"], round(r["beta"], 6), r["candidate"]) for fam in families]
        if key in truth
    ]
    by_key: dict[tuple[float, float], dict[tuple, dict]] = {}
    for r in rows:  # one row per (point, family, policy, candidate): a point run twice counts once
        by_key.setdefault((r["anchor"], r["spread"]), {})[
            (r["family"], r["policy"], r["beta"], r["candidate"])
        ] = r
    points = {k: list(v.values()) for k, v in by_key.items()}
    # Only grid points forecast for every target compete (a run may still be filling others).
    keys = sorted(k for k, v in points.items() if len(v) == n_targets)
    present = {r["group"] for r in rows}
    groups = [f"{fam}: {g}" for fam in families for g in GROUPS if f"{fam}: {g}" in present]
    table = {k: score(points[k], groups) for k in keys}
    best = min(keys, key=lambda k: table[k][0])
    print("| anchor | spread | MAE, all rows | " + " | ".join(groups) + " |")
    print("|---|---|---|" + "---|" * len(groups))
    for k in keys:
        mae, per = table[k]
        mark = " (fit)" if k == best else ""
        cells = " | ".join(f"{per[g]['mae']:.3f}, rho {per[g]['spearman']:.2f}" for g in groups)
        print(f"| {k[0]} | {k[1]}{mark} | {mae:.3f} | {cells} |")
    # Leave one candidate out: choose the constants on the other candidates, forecast this one.
    names = sorted({r["candidate"] for r in rows})
    held = []
    for name in names:
        k = min(
            keys,
            key=lambda k: score([r for r in points[k] if r["candidate"] != name], groups)[0],
        )
        held += [dict(r, chosen=k) for r in points[k] if r["candidate"] == name]
    cv_mae, cv_per = score(held, groups)
    print(
        f"fit: anchor {best[0]}, spread {best[1]}: in-sample MAE {table[best][0]:.3f}, "
        f"per group {table[best][1]}; leave-one-candidate-out MAE {cv_mae:.3f}, per group "
        f"{cv_per}"
    )
    for r in held:
        print(
            f"  {r['group']} {r['candidate']}: chosen {r['chosen']} "
            f"forecast {r['forecast']:.2f} actual {r['actual']:.2f}"
        )
    out.write_text(
        json.dumps(
            {
                "truths": [str(f) for f in truth_files or [TRUTH]],
                "fit": {"anchor": best[0], "spread": best[1]},
                "in_sample": {"mae": table[best][0], "per_group": table[best][1]},
                "leave_one_candidate_out": {"mae": cv_mae, "per_group": cv_per, "rows": held},
                "grid": [
                    {"anchor": k[0], "spread": k[1], "mae": table[k][0], "per_group": table[k][1]}
                    for k in keys
                ],
            },
            indent=1,
        )
    )


def reread(truth: Path, forecasts: Path) -> None:
    """Another ground truth (e.g. `recursion_truth.py --model gru`) against the forecasts a grid
    file holds at the default constants (`RETRAINING_ERROR`): the forecast from generation 0 is
    the same whatever model retrains, so only the actual values change."""
    from simulations.models.embedding import RETRAINING_ERROR

    point = (RETRAINING_ERROR.anchor, RETRAINING_ERROR.spread)
    forecast_of = {
        (r["candidate"], r["policy"]): r["forecast"]
        for r in json.loads(forecasts.read_text())["rows"]
        if (r["anchor"], r["spread"]) == point and r["relative_to"] == r["policy"]
    }
    rows = [
        dict(
            r,
            actual=r["actual_relative_final"],
            forecast=forecast_of[(r["candidate"], r["policy"])],
        )
        for r in json.loads(truth.read_text())["rows"]
    ]
    for policy, got in score(rows)[1].items():
        print(f"{truth.name}, {policy}: Spearman {got['spearman']:.2f}, MAE {got['mae']:.3f}")
        for r in (r for r in rows if r["policy"] == policy):
            print(f"  {r['candidate']}: actual {r['actual']:.2f}, forecast {r['forecast']:.2f}")


def others(grid_file: Path, truth: Path) -> None:
    """Per grid point, every metric's error against a truth that records recall and precision
    (`recursion_truth.py` rows' `metrics`): what the constants fitted to tail coverage do to the
    other two."""
    actual: dict[tuple, dict[str, float]] = {}
    for r in json.loads(truth.read_text())["rows"]:
        key = (r["candidate"], r["policy"])
        actual[key] = {"tail_coverage": r["actual_relative_final"]}
        actual[key].update({m: v["actual_relative_final"] for m, v in r["metrics"].items()})
    by_point: dict[tuple, list[dict]] = {}
    for r in json.loads(grid_file.read_text())["rows"]:
        if "forecast_other" in r and (r["candidate"], r["policy"]) in actual:
            by_point.setdefault((r["anchor"], r["spread"]), []).append(r)
    print("| anchor, spread | policy | tail coverage: MAE, Spearman | recall | precision |")
    print("|---|---|---|---|---|")
    for (anchor, spread), rows in sorted(by_point.items()):
        for policy in GROUPS:
            part = [r for r in rows if r["policy"] == policy]
            cells = []
            for m in ("tail_coverage", "recall", "precision"):
                a = np.array([actual[(r["candidate"], policy)][m] for r in part])
                f = np.array(
                    [
                        r["forecast"] if m == "tail_coverage" else r["forecast_other"][m]
                        for r in part
                    ]
                )
                rho = spearmanr(a, f).statistic
                cells.append(f"{np.abs(a - f).mean():.3f}, {rho:.2f}")
            print(f"| {anchor}, {spread} | {policy} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default="0/1", help="I/N: this process runs every N-th point")
    parser.add_argument("--fine", action="store_true", help="the finer grid around the best")
    parser.add_argument(
        "--points",
        default=None,
        help="instead of a grid: anchor:spread pairs, comma-separated (e.g. 0.1:0.3,0.3:0.5)",
    )
    parser.add_argument("--summarise", nargs="+", type=Path, default=None)
    parser.add_argument(
        "--truths",
        nargs="+",
        type=Path,
        default=None,
        help="with --summarise: fit to these truth JSONs together (default: Kneser-Ney's)",
    )
    parser.add_argument("--reread", type=Path, default=None, help="another truth JSON")
    parser.add_argument("--forecasts", type=Path, default=None, help="with --reread: a grid file")
    parser.add_argument(
        "--others",
        nargs=2,
        type=Path,
        default=None,
        metavar=("GRID", "TRUTH"),
        help="every metric's error per grid point, against a truth with recall and precision",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.others:
        others(*args.others)
        return
    if args.reread:
        reread(args.reread, args.forecasts or Path("benchmarks/results/fit_forecast.json"))
        return
    if args.summarise:
        summarise(
            args.summarise, args.out or Path("benchmarks/results/fit_forecast.json"), args.truths
        )
        return
    part, parts = (int(x) for x in args.part.split("/"))
    points = (
        [tuple(float(x) for x in p.split(":")) for p in args.points.split(",")]
        if args.points
        else None
    )
    grid_name = "points" if points else "fine" if args.fine else "grid"
    out = args.out or Path(f"benchmarks/results/fit_forecast_{grid_name}_{part}of{parts}.json")
    grid(part, parts, out, fine=args.fine, points=points)


if __name__ == "__main__":
    main()
