"""Bias and coverage of the curvature mixture estimator, cell by cell, over repeated candidates.

    .venv/bin/python benchmarks/curvature_bias.py [--draws 12] [--profiles DIR]

The shift panel (`synthetic_shift.py`) runs one candidate per cell through the whole audit, so a
cell's error mixes bias with the noise of one 100-document draw. This side diagnostic scores
each source once (SmolLM2-135M, the service's scorer settings), then draws `--draws` candidates
of 100 documents per (source, share) and estimates each with `CurvatureFractionEstimator` in
reference-only mode against a BBC reference and the bundled examples: the mean point is the
bias, the share of intervals holding the truth the coverage. Same estimator and defaults as the
audit; the reference sample (300 BBC articles) is drawn here, not by `reference build`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from detectors.synthetic.curvature import CurvatureProfiles, CurvatureScorer
from detectors.synthetic.curvature_fraction import CurvatureFractionEstimator
from detectors.synthetic.data import smollm2_continuations
from service.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shift import sources

SETS = (
    ("bbc", 300),
    ("lee", 300),
    ("gen-lee", 160),
    ("gen-lee-other-sampling", 112),
    ("bbc-passages", 200),
    ("gen-passages", 200),
    ("wikipedia", 200),
    ("gen-wikipedia", 200),
    ("gen-lee-t1.2", 112),  # last: the draws of the sets above stay as they were
)
PAIRS = (
    ("lee", "gen-lee"),
    ("lee", "gen-lee-other-sampling"),
    ("lee", "gen-lee-t1.2"),
    ("bbc-passages", "gen-passages"),
    ("wikipedia", "gen-wikipedia"),
)
SHARES = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)


def score_sets(folder: Path) -> dict[str, CurvatureProfiles]:
    """Each set's profiles, scored once and kept in `folder`."""
    settings = Settings()
    scorer = CurvatureScorer(
        max_tokens=settings.curvature_tokens,
        precision=settings.embedding_precision,
        cache_dir=settings.model_cache_dir,
    )
    src = sources()
    rng = np.random.default_rng(0)
    rows = smollm2_continuations()
    pick = np.sort(np.random.default_rng([0, 9]).choice(len(rows), 150, replace=False))
    texts = {"examples": [rows[i]["text"] for i in pick]}
    for name, n in SETS:
        idx = np.sort(rng.choice(len(src[name]), min(n, len(src[name])), replace=False))
        texts[name] = [src[name][i] for i in idx]
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for name, docs in texts.items():
        path = folder / f"prof_{name}.npz"
        if not path.is_file():
            p = scorer.profiles(docs)
            np.savez(path, num=p.num, var=p.var, positions=p.positions)
        with np.load(path) as z:
            out[name] = CurvatureProfiles(z["num"], z["var"], z["positions"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--profiles", type=Path, default=Path("benchmarks/results/curvature_profiles"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/curvature_bias.json"))
    args = ap.parse_args()
    prof = score_sets(args.profiles)
    est = CurvatureFractionEstimator(random_state=0).fit(prof["bbc"], prof["examples"])
    rng = np.random.default_rng(5)
    cells = []
    print("| human | generated | " + " | ".join(f"{a}" for a in SHARES) + " |")
    print("|---|---|" + "---|" * len(SHARES))
    for human, generated in PAIRS:
        h_prof, g_prof = prof[human], prof[generated]
        line = []
        for a in SHARES:
            points, covered, unexplained = [], [], []
            for _ in range(args.draws):
                k = round(a * 100)
                h = rng.choice(len(h_prof), 100 - k, replace=False)
                g = rng.choice(len(g_prof), k, replace=False)
                cand = CurvatureProfiles(
                    np.r_[h_prof.num[h], g_prof.num[g]],
                    np.r_[h_prof.var[h], g_prof.var[g]],
                    np.r_[h_prof.positions[h], g_prof.positions[g]],
                )
                fit = est.estimate(cand)
                e = fit.estimate
                unexplained.append(fit.unexplained)
                points.append(e.point)
                covered.append(e.low <= a <= e.high)
            cell = {
                "human": human,
                "generated": generated,
                "truth": a,
                "mean_point": float(np.mean(points)),
                "sd_point": float(np.std(points, ddof=1)),
                "coverage": float(np.mean(covered)),
                "mean_unexplained": float(np.mean(unexplained)),
                "draws": args.draws,
            }
            cells.append(cell)
            line.append(f"{cell['mean_point']:.2f} ({cell['coverage']:.0%})")
        print(f"| {human} | {generated} | " + " | ".join(line) + " |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cells, indent=1))


if __name__ == "__main__":
    main()
