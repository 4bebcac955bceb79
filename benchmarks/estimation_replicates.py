"""Reference-only interval coverage over many fits, not one: how often the 90% interval holds a.

    .venv/bin/python benchmarks/estimation_replicates.py [--human openings|passages] [--fits 12]

`benchmarks/estimation.py` fits each estimator once, so its coverage column shares one draw of
the calibration (the generic examples, the held-out reference, the folds) across every candidate:
one unlucky draw moves all of them together. Here reference-only mode is refitted `--fits` times,
each on another 250 of the 500 generated examples (plus the Wikipedia continuations, named by
source) and another `random_state`, and each fit estimates one candidate per a and size. Same data
and split as estimation.py (its functions build them).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from estimation import FRACTIONS, N_LABELLED, PASSAGES, embed, human_split

from detectors.corpora import bbc_news
from detectors.embedding import Embedder
from detectors.synthetic import SyntheticFractionEstimator
from detectors.synthetic.data import smollm2_continuations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--human", choices=("openings", "passages"), default="openings")
    parser.add_argument("--fits", type=int, default=12)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)  # the same draws as estimation.py
    rows = smollm2_continuations()
    generated = [r["text"] for r in rows if r["stratum"].startswith("bbc")]
    wiki = [r["text"] for r in rows if r["stratum"].startswith("wiki")]
    lengths = [len(t.split()) for t in generated]
    if args.human == "passages":  # as estimation.py --passages 4000 --human passages
        extra = smollm2_continuations(PASSAGES)[:4000]
        rows, generated = rows + extra, generated + [r["text"] for r in extra]
    stratum = {r["text"]: r["stratum"] for r in rows}
    human = [d.text for d in bbc_news()]
    rng.shuffle(human)
    rng.shuffle(generated)
    ref_t, pool_h = human_split(human, lengths, args.human, rng)
    lab_t, pool_s = generated[:N_LABELLED], generated[N_LABELLED:]
    embedder = Embedder()
    ref_v, pool_hv, lab_v, wiki_v, pool_sv = (
        embed(embedder, t) for t in (ref_t, pool_h, lab_t, wiki, pool_s)
    )
    sizes = (500, 1000) if args.human == "openings" else (1000, 5000)
    results: dict[int, list[tuple[float, float, bool, float]]] = {s: [] for s in sizes}
    for fit in range(args.fits):
        pick = np.random.default_rng([fit, 9]).choice(N_LABELLED, N_LABELLED // 2, replace=False)
        generic = [lab_t[i] for i in pick] + wiki
        est = SyntheticFractionEstimator(
            generic_synthetic=generic,
            generic_sources=[stratum[t] for t in generic],
            random_state=fit,
        ).fit(ref_t, ref_v, example_vectors=np.vstack([lab_v[pick], wiki_v]))
        for size in sizes:
            draw = np.random.default_rng([fit, size])
            for a in FRACTIONS:
                n_s = round(a * size)
                hs = draw.choice(len(pool_h), size - n_s, replace=False)
                ss = draw.choice(len(pool_s), n_s, replace=False)
                texts = [pool_h[i] for i in hs] + [pool_s[i] for i in ss]
                r = est.estimate(texts, np.vstack([pool_hv[hs], pool_sv[ss]])).synthetic
                results[size].append((a, r.point - a, r.low <= a <= r.high, r.high - r.low))

    print(f"reference-only, {args.human}: {args.fits} fits x a in {FRACTIONS}; 90% intervals")
    print()
    print("| candidate size | MAE | bias | coverage | coverage at a = 0 | at a = 1 | mean width |")
    print("|---|---|---|---|---|---|---|")
    for size, res in results.items():
        x = np.array(res)
        at = {a: f"{x[x[:, 0] == a, 2].mean():.0%}" for a in (0.0, 1.0)}
        print(
            f"| {size:,} | {np.abs(x[:, 1]).mean():.3f} | {x[:, 1].mean():+.3f} "
            f"| {x[:, 2].mean():.0%} | {at[0.0]} | {at[1.0]} | {x[:, 3].mean():.3f} |"
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
