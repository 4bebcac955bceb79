"""Ground truth for the forecast: real recursive training of a language model on real text.

    .venv/bin/python benchmarks/recursion_truth.py [--blocks 400] [--generations 5] [--seeds 2]
                                                   [--first-seed S] [--model kn|gru]
                                                   [--policy both|replace|keep-real]
                                                   [--top-up [--target T]] [--out FILE]
    .venv/bin/python benchmarks/recursion_truth.py --merge FILE [FILE ...] --out FILE

Issue 16 item 2. For each candidate corpus built from real text (human BBC News and Wikipedia;
the same with SmolLM2-135M text mixed in; the same with its tails thinned as a collapsing
generator thins them; text of a collapsing n-gram model itself), a Kneser-Ney trigram model is
trained on the candidate, samples the next generation's training data, and so on for
`--generations` generations (the paper's set-up, `simulations.lm`: every generation continues the
first 8 tokens of the candidate's own 64-token blocks). Under keep-real 10%, a tenth of each
generation's training blocks are fresh human BBC blocks (as the forecast's keep-real draws fresh
human data). Every generation's output is embedded with the product's embedder and measured
against the reference exactly as an audit measures a candidate (`coverage_report`): tail
coverage relative to the reference's held-out human sample, and beside it recall and precision
(each row's `metrics`, read the same way: relative to the human chains' final value).

Beside it, the product's forecast (`simulations.forecast.forecast`, the plan's generations,
policy and the audit's default seeds) from generation 0's vectors alone. Both are read the way
the verdict reads them, relative to human data under the same plan: the candidate chain's final
tail coverage over the mean final of chains started from three samples of fresh human BBC blocks
(`yardstick`; same seeds). All BBC text used is in the shared vocabulary, so the yardstick is
human text of the candidates' own kind, as the forecast's human start is.

With `--top-up` (issue 16 item 3): for every candidate whose replace-policy forecast falls below
the policy's relative tail-coverage target, the top-up search's fresh fraction beta is tried by
real retraining (keep-real beta): does the actual final tail coverage reach the target?

All text -- reference, candidates, fresh human data and every generation -- goes through the
language model's tokenizer and back (lower-cased words and punctuation, one shared vocabulary,
64-token blocks), so the embeddings compare like with like: only what the recursion changes
differs between generations, not the casing or length of the text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.stats import spearmanr

from detectors.corpora import bbc_news, wikipedia_paragraphs
from detectors.coverage import coverage_report
from detectors.embedding import Embedder
from detectors.reference import ReferenceCorpus
from detectors.results import CoverageReport
from detectors.synthetic.data import smollm2_continuations
from service.policy import Policy
from service.settings import Settings
from simulations.forecast import Plan, forecast
from simulations.ground_truth import blocks_of, recursive_outputs
from simulations.models.embedding import RETRAINING_ERROR, ProjectedReference, RetrainingError
from simulations.plans import Forecast
from simulations.results import Trajectory
from simulations.text import Vocabulary, tokenize
from simulations.top_up import min_top_up

# Measured beside tail coverage, each relative to the same human chains' final value.
OTHERS = ("recall", "precision")
N_REFERENCE = 3000  # reference blocks (the audit's reference: 20% of them held out)
POLICIES: tuple[tuple[Literal["replace", "keep-real"], float], ...] = (
    ("replace", 0.0),
    ("keep-real", 0.1),
)


def candidates(
    vocab: Vocabulary,
    bbc_pool: list[str],
    bbc_sections: list[tuple[str, str]],
    wiki: list[str],
    generated: dict[str, list[str]],
    reference: ReferenceCorpus,
    embed,
    n: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Candidate corpora of `n` blocks each, named by what they hold."""

    def take(blocks: np.ndarray, k: int) -> np.ndarray:
        return blocks[rng.choice(len(blocks), k, replace=False)]

    human = blocks_of(vocab, bbc_pool)
    wiki_b = blocks_of(vocab, wiki, per_doc=1)
    gen_bbc = blocks_of(vocab, generated["bbc"], per_doc=1)
    gen_wiki = blocks_of(vocab, generated["wikipedia"], per_doc=1)
    out = {
        "bbc human": take(human, n),
        "wikipedia human": take(wiki_b, n),
    }
    for a in (0.3, 0.7, 1.0):
        k = round(a * n)
        out[f"bbc + {a:.0%} SmolLM2"] = np.vstack([take(gen_bbc, k), take(human, n - k)])
    k = round(0.5 * n)
    out["wikipedia + 50% SmolLM2"] = np.vstack([take(gen_wiki, k), take(wiki_b, n - k)])
    # Tails thinned: of a pool three (or 1.5) times the size, the blocks nearest the reference's
    # dense core (smallest k-th neighbour distance), as a collapsing generator keeps them.
    pool = take(human, min(len(human), 3 * n))
    radius = reference.neighbours(embed(pool))[0][:, -1]
    out["bbc, tails thinned (core third)"] = pool[np.argsort(radius)[:n]]
    out["bbc, tails thinned (drop farthest third)"] = pool[np.argsort(radius)[: 2 * n]][
        rng.choice(2 * n, n, replace=False)
    ]
    two = [t for t, section in bbc_sections if section in ("business", "sport")]
    out["bbc, two sections only"] = take(blocks_of(vocab, two), n)
    return out


def top_up(
    args: argparse.Namespace,
    su: Setup,
    chain: Callable[[np.ndarray, str, float, int], list[np.ndarray]],
    tail: Callable[[np.ndarray], float],
    t0: float,
) -> None:
    """Issue 16 item 3: the search's recommended fresh fraction, tried by real retraining."""
    reference, settings = su.reference, su.settings
    policy = Policy()
    target = args.target or policy.min_relative_tail_coverage
    plan = Plan(generations=args.generations, samples=args.blocks)
    human_final, _ = yardstick(su, chain, tail, "replace", 0.0, args.seeds)
    rows = []
    for name, start in su.cands.items():
        vectors0 = su.embed(start)
        base = forecast(reference, vectors0, plan, random_state=settings.random_state)
        if base.relative_final() >= target:
            continue
        found = min_top_up(
            reference,
            vectors0,
            plan,
            target=target,
            max_beta=policy.max_top_up_fraction,
            random_state=settings.random_state,
            base=base,
        )
        finals = [
            tail(chain(start, "keep-real", found.beta, s)[-1]) / human_final[s]
            for s in range(args.seeds)
        ]
        replaced = [
            tail(chain(start, "replace", 0.0, s)[-1]) / human_final[s] for s in range(args.seeds)
        ]
        # What the verdict makes of the search (README "Verdict policy"): a top-up shown to work,
        # one neither shown to work nor to fail (inconclusive), or a shortfall shown (reject).
        interval = found.forecast.relative_final_estimate()
        assert interval is not None, "the panel's candidates all have a defined tail coverage"
        outcome = (
            "top-up" if found.feasible else "within noise" if interval.high >= target else "short"
        )
        row = {
            "candidate": name,
            "forecast_relative_final": base.relative_final(),
            "beta": found.beta,
            "feasible": found.feasible,
            "outcome": outcome,
            "forecast_relative_with_top_up": found.achieved_relative,
            "forecast_interval_with_top_up": [interval.low, interval.high],
            "actual_relative_without": float(np.mean(replaced)),
            "actual_relative_with_top_up": float(np.mean(finals)),
            "actual_relative_with_top_up_sd": float(np.std(finals, ddof=1)),
            "target": target,
        }
        rows.append(row)
        print(
            f"| {name} | {row['forecast_relative_final']:.2f} | {found.beta:.3f} "
            f"({outcome}) | {row['forecast_relative_with_top_up']:.2f} "
            f"[{interval.low:.2f}, {interval.high:.2f}] | {row['actual_relative_without']:.2f} | "
            f"{row['actual_relative_with_top_up']:.2f} "
            f"+- {row['actual_relative_with_top_up_sd']:.2f} |",
            flush=True,
        )
    save(args.out, rows, t0)


def merge(files: list[Path], out: Path) -> None:
    """Truth files of the same candidates and policies, run with different seeds (each row's
    per-seed relative finals, `actual_relative_finals`), as one truth over all their seeds."""
    merged: dict[tuple, dict] = {}
    for f in files:
        for r in json.loads(f.read_text())["rows"]:
            key = (r["candidate"], r["policy"], r["beta"])
            finals = r.get("actual_relative_finals", [r["actual_relative_final"]])
            if key in merged:
                merged[key]["actual_relative_finals"] += finals
            else:
                merged[key] = dict(r, actual_relative_finals=list(finals))
    rows = []
    for r in merged.values():
        finals = r["actual_relative_finals"]
        r["actual_relative_final"] = float(np.mean(finals))
        r["actual_relative_final_sd"] = float(np.std(finals, ddof=1)) if len(finals) > 1 else None
        rows.append(r)
    out.write_text(json.dumps({"rows": rows, "merged_from": [str(f) for f in files]}, indent=1))
    print(f"{out}: {len(rows)} rows, {len(files)} files")


HUMAN_STARTS = 3  # samples of fresh human BBC blocks the yardstick chains start from


def yardstick(
    su: Setup,
    chain: Callable[[np.ndarray, str, float, int], list[np.ndarray]],
    tail: Callable[[np.ndarray], float],
    policy: str,
    beta: float,
    seeds: int,
) -> tuple[list[float], list[list[float]]]:
    """The human chains every actual value is relative to, as the verdict reads a forecast
    against fresh human data under the same plan: per seed, the mean final tail coverage of
    chains started from `HUMAN_STARTS` samples of fresh human BBC blocks (in the vocabulary,
    like the candidates' text); also every chain's final, whose spread over the starts is the
    yardstick's own sampling noise."""
    finals = [
        [tail(chain(start, policy, beta, s)[-1]) for s in range(seeds)] for start in su.human_starts
    ]
    return [float(np.mean([f[s] for f in finals])) for s in range(seeds)], finals


def save(out: Path, rows: list[dict], t0: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "wall_s": time.perf_counter() - t0}, indent=1))
    print(f"{time.perf_counter() - t0:.0f} s")


def noise(
    args: argparse.Namespace,
    su: Setup,
    chain: Callable[[np.ndarray, str, float, int], list[np.ndarray]],
    tail: Callable[[np.ndarray], float],
    t0: float,
) -> None:
    """The ground truth's own noise: K samples of the same human BBC text, each retrained as a
    candidate. They have one true relative final tail coverage, so their spread is what a single
    candidate's actual value carries besides the retraining seeds' noise (the seeds' sd in the
    main table is only the latter). A perfect forecast (their expectation) would be off by their
    mean absolute deviation; no forecast can do better on one sample each."""
    rng = np.random.default_rng(1)
    samples = [
        su.human_pool[rng.choice(len(su.human_pool), args.blocks, replace=False)]
        for _ in range(args.noise)
    ]
    rows = []
    for policy, beta in POLICIES:
        plan = Plan(generations=args.generations, samples=args.blocks, policy=policy, beta=beta)
        human_final, _ = yardstick(su, chain, tail, policy, beta, args.seeds)
        actual, forecasts = [], []
        for start in samples:
            finals = [
                tail(chain(start, policy, beta, s)[-1]) / human_final[s] for s in range(args.seeds)
            ]
            actual.append(float(np.mean(finals)))
            fc = forecast(
                su.reference, su.embed(start), plan, random_state=su.settings.random_state
            )
            forecasts.append(fc.relative_final())
            print(
                f"{policy}: sample {len(actual)}: actual {actual[-1]:.3f} "
                f"forecast {forecasts[-1]:.3f}",
                flush=True,
            )
        a = np.array(actual)
        rows.append(
            {
                "policy": policy,
                "beta": beta,
                "actual_relative_final": actual,
                "forecast_relative_final": forecasts,
                "actual_mean": float(a.mean()),
                "actual_sd": float(a.std(ddof=1)),
                "perfect_forecast_mae": float(np.mean(np.abs(a - a.mean()))),
                "forecast_sd": float(np.std(forecasts, ddof=1)),
            }
        )
        print(
            f"{policy}: {args.noise} human samples: actual {a.mean():.3f} sd {a.std(ddof=1):.3f} "
            f"(a perfect forecast's MAE {rows[-1]['perfect_forecast_mae']:.3f}); forecast sd "
            f"{rows[-1]['forecast_sd']:.3f}",
            flush=True,
        )
    save(args.out, rows, t0)


@dataclass
class Setup:
    """Everything both the benchmark and the forecast's fit (benchmarks/fit_forecast.py) need:
    the same reference, candidates and fresh human data, rebuilt from seed 0."""

    settings: Settings
    vocab: Vocabulary
    embed: Callable[[np.ndarray], np.ndarray]
    reference: ReferenceCorpus
    cands: dict[str, np.ndarray]
    fresh_pool: np.ndarray
    human_starts: list[np.ndarray]  # disjoint samples of fresh_pool: the yardstick's starts
    human_pool: np.ndarray  # every BBC human block candidates are drawn from


def setup(blocks: int) -> Setup:
    settings = Settings()
    rng = np.random.default_rng(0)
    docs = bbc_news()
    order = rng.permutation(len(docs))
    ref_docs = [docs[i].text for i in order[:900]]
    pool_docs = [docs[i] for i in order[900:]]
    fresh_docs = [d.text for d in pool_docs[: len(pool_docs) // 3]]
    cand_docs = [d.text for d in pool_docs[len(pool_docs) // 3 :]]
    sections = [(d.text, d.source.split("/")[1]) for d in pool_docs[len(pool_docs) // 3 :]]
    wiki = [d.text for d in wikipedia_paragraphs()]
    rows = smollm2_continuations()
    generated = {
        "bbc": [r["text"] for r in rows if r["stratum"].startswith("bbc")],
        "wikipedia": [r["text"] for r in rows if r["stratum"] == "wikipedia"],
    }
    # One vocabulary for everything, from human text of both sources (the recursion's models
    # share it, as the paper's models share OPT's tokenizer). Every BBC document used is in it:
    # when the fresh human blocks (the yardstick's starts and keep-real's fresh data) were left
    # out, 2.7% of their tokens were <unk> against 1.2% in the candidates', and human text of
    # the candidates' own kind read 0.78-0.80 against them, not 1.
    vocab = Vocabulary.build(
        [tokenize(t) for t in ref_docs + fresh_docs + cand_docs + wiki[:1500]], min_count=2
    )
    embedder = Embedder()

    def embed(b: np.ndarray) -> np.ndarray:
        return embedder.embed([vocab.decode(x) for x in b]).vectors

    ref_blocks = blocks_of(vocab, ref_docs, per_doc=6)
    ref_blocks = ref_blocks[rng.choice(len(ref_blocks), N_REFERENCE, replace=False)]
    reference = ReferenceCorpus(
        holdout_fraction=settings.holdout_fraction,
        tail_quantile=settings.tail_quantile,
        model=embedder.model_name,
        random_state=settings.random_state,
    ).fit(embed(ref_blocks))
    fresh_pool = blocks_of(vocab, fresh_docs)
    cands = candidates(
        vocab, cand_docs, sections, wiki[1500:], generated, reference, embed, blocks, rng
    )
    drawn = rng.choice(len(fresh_pool), HUMAN_STARTS * blocks, replace=False)
    human_starts = [fresh_pool[part] for part in drawn.reshape(HUMAN_STARTS, blocks)]
    human_pool = blocks_of(vocab, cand_docs)
    return Setup(settings, vocab, embed, reference, cands, fresh_pool, human_starts, human_pool)


@dataclass(frozen=True)
class CandidateForecasts:
    """The candidates' generation-0 vectors and the reference's projection, to forecast each of
    them under a plan of the benchmark's shape (five generations of `blocks` samples): what
    `fit_forecast.py`, `forecast_noise.py` and `retraining_error_variants.py` compare with the
    truth."""

    setup: Setup
    vectors: dict[str, np.ndarray]
    projected: ProjectedReference
    blocks: int

    @classmethod
    def build(cls, blocks: int) -> CandidateForecasts:
        su = setup(blocks)
        vectors = {name: su.embed(start) for name, start in su.cands.items()}
        projected = ProjectedReference.build(su.reference, seed=su.settings.random_state)
        return cls(su, vectors, projected, blocks)

    def forecast(
        self,
        candidate: str,
        policy: str,
        beta: float,
        *,
        error: RetrainingError = RETRAINING_ERROR,
        human: dict[str, Trajectory] | None = None,
        random_state: int | None = None,
    ) -> Forecast:
        """`candidate` forecast under `policy` and `beta`; `human` the plan's human start if
        already known (a forecast's `.human`), `random_state` the settings' unless given."""
        plan = Plan(generations=5, samples=self.blocks, policy=policy, beta=beta)  # type: ignore[arg-type]
        seed = self.setup.settings.random_state if random_state is None else random_state
        return forecast(
            self.setup.reference,
            self.vectors[candidate],
            plan,
            random_state=seed,
            projected=self.projected,
            human=human,
            error=error,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=400, help="blocks per candidate")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2, help="recursions per candidate")
    parser.add_argument(
        "--top-up",
        action="store_true",
        help="instead: for every candidate whose replace forecast calls for a top-up, retrain "
        "with the fresh fraction the search recommends and see whether the target is reached",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        help="with --top-up: the relative tail-coverage target (default: the policy's, 0.9)",
    )
    parser.add_argument(
        "--noise",
        type=int,
        default=0,
        metavar="K",
        help="instead: K more samples of BBC human text, each retrained as a candidate: the "
        "spread of their actual relative final tail coverage is the ground truth's own noise",
    )
    parser.add_argument(
        "--model",
        choices=("kn", "gru"),
        default="kn",
        help="the language model retrained each generation: Kneser-Ney trigram (default) or the "
        "project's GRU (simulations.models.torch_lm; slower)",
    )
    parser.add_argument(
        "--policy",
        choices=("both", "replace", "keep-real"),
        default="both",
        help="which of replace and keep-real 10%% to run (default both)",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the recursions' seeds are first-seed .. first-seed + seeds - 1 (default 0): more "
        "seeds for a truth already run, merged with `--merge`",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="FILE",
        help="instead: merge truth files of the same candidates run with other seeds into --out "
        "(the mean and sd over all their seeds)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    name = "recursion_truth_top_up.json" if args.top_up else "recursion_truth.json"
    if args.model != "kn":
        name = name.replace(".json", f"_{args.model}.json")
    if args.top_up and args.target is not None:
        name = f"recursion_truth_top_up_{args.target:g}.json"
    if args.noise:
        name = "recursion_truth_noise.json"
    args.out = args.out or Path("benchmarks/results") / name
    t0 = time.perf_counter()
    su = setup(args.blocks)
    settings, vocab, embed, reference = su.settings, su.vocab, su.embed, su.reference
    cands, fresh_pool = su.cands, su.fresh_pool
    print(
        f"vocabulary {len(vocab)}; reference {N_REFERENCE} blocks of 900 BBC articles; "
        f"{len(cands)} candidates of {args.blocks} blocks; fresh human pool {len(fresh_pool)} "
        f"blocks; {'KN trigram' if args.model == 'kn' else 'GRU'}, {args.generations} generations, "
        f"{args.seeds} seeds",
        flush=True,
    )

    # Every retraining chain, embedding and measurement is kept by content: the yardstick is read
    # once per metric, and a chain is trained, embedded and measured once.
    vectors: dict[bytes, np.ndarray] = {}
    reports: dict[bytes, CoverageReport] = {}
    chains: dict[tuple[bytes, str, float, int], list[np.ndarray]] = {}

    def key_of(blocks: np.ndarray) -> bytes:
        return hashlib.blake2b(
            blocks.tobytes() + str(blocks.shape).encode(), digest_size=16
        ).digest()

    def vectors_of(blocks: np.ndarray) -> np.ndarray:
        key = key_of(blocks)
        if key not in vectors:
            vectors[key] = embed(blocks)
        return vectors[key]

    def report(blocks: np.ndarray) -> CoverageReport:
        key = key_of(blocks)
        if key not in reports:
            reports[key] = coverage_report(reference, vectors_of(blocks), random_state=0)
        return reports[key]

    def measure(metric: str) -> Callable[[np.ndarray], float]:
        return lambda blocks: getattr(report(blocks), metric).ratio

    tail = measure("tail_coverage")

    def chain(start: np.ndarray, policy: str, beta: float, seed: int) -> list[np.ndarray]:
        key = (key_of(start), policy, beta, seed)
        if key not in chains:
            chains[key] = recursive_outputs(
                start,
                vocab_size=len(vocab),
                generations=args.generations,
                policy=policy,
                beta=beta,
                fresh=fresh_pool,
                model=args.model,
                random_state=args.first_seed + seed,
            )
        return chains[key]

    if args.top_up:
        top_up(args, su, chain, tail, t0)
        return
    if args.noise:
        noise(args, su, chain, tail, t0)
        return
    results = []
    yardsticks: dict[str, list[list[float]]] = {}
    policies = [(p, b) for p, b in POLICIES if args.policy in ("both", p)]
    for policy, beta in policies:
        plan = Plan(generations=args.generations, samples=args.blocks, policy=policy, beta=beta)
        human_final, human_finals = yardstick(su, chain, tail, policy, beta, args.seeds)
        yardsticks[policy] = human_finals
        others = {m: yardstick(su, chain, measure(m), policy, beta, args.seeds)[0] for m in OTHERS}
        for name, start in cands.items():
            fc = forecast(reference, vectors_of(start), plan, random_state=settings.random_state)
            # Per metric, each seed's curve (generation 0 is the candidate itself) and its final
            # relative to the human chains' of the same seed.
            curves: dict[str, list[list[float]]] = {}
            finals: dict[str, list[float]] = {}
            for m, human in (("tail_coverage", human_final), *others.items()):
                curves[m] = [
                    [measure(m)(b) for b in chain(start, policy, beta, s)]
                    for s in range(args.seeds)
                ]
                finals[m] = [c[-1] / human[s] for s, c in enumerate(curves[m])]
            metrics = {
                m: {
                    "actual_curve": np.mean(curves[m], axis=0).tolist(),
                    "actual_relative_final": float(np.mean(finals[m])),
                    "actual_relative_finals": [float(f) for f in finals[m]],
                    "forecast_relative_final": fc.relative_final(m),
                    "forecast_curve": [b.mean for b in fc.trajectories[m].bands],
                }
                for m in OTHERS
            }
            tail_finals = finals["tail_coverage"]
            row = {
                "candidate": name,
                "policy": policy,
                "beta": beta,
                "start_tail_coverage": curves["tail_coverage"][0][0],
                "actual_curve": np.mean(curves["tail_coverage"], axis=0).tolist(),
                "actual_relative_final": float(np.mean(tail_finals)),
                "actual_relative_finals": [float(f) for f in tail_finals],
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
                "actual_relative_final_sd": float(np.std(tail_finals, ddof=1))
                if len(tail_finals) > 1
                else None,
                "forecast_relative_final": fc.relative_final(),
                "forecast_curve": [b.mean for b in fc.trajectories["tail_coverage"].bands],
                "human_final": float(np.mean(human_final)),
                "metrics": metrics,
            }
            results.append(row)
            print(
                f"| {name} | {policy}{f' {beta:.0%}' if beta else ''} | "
                f"{row['start_tail_coverage']:.2f} | {row['actual_relative_final']:.2f} | "
                f"{row['forecast_relative_final']:.2f} |",
                flush=True,
            )
    summary = {}
    for policy, _ in policies:
        part = [r for r in results if r["policy"] == policy]
        actual = np.array([r["actual_relative_final"] for r in part])
        fc_ = np.array([r["forecast_relative_final"] for r in part])
        rho = float(spearmanr(actual, fc_).statistic)
        summary[policy] = {"spearman": rho, "mae": float(np.mean(np.abs(actual - fc_)))}
        print(f"{policy}: Spearman {rho:.2f}, MAE {summary[policy]['mae']:.3f}")
        for m in OTHERS:
            a_m = np.array([r["metrics"][m]["actual_relative_final"] for r in part])
            f_m = np.array([r["metrics"][m]["forecast_relative_final"] for r in part])
            summary[policy][m] = {
                "spearman": float(spearmanr(a_m, f_m).statistic),
                "mae": float(np.mean(np.abs(a_m - f_m))),
            }
            print(
                f"{policy}, {m}: Spearman {summary[policy][m]['spearman']:.2f}, "
                f"MAE {summary[policy][m]['mae']:.3f}"
            )
    # Each human start against the yardstick (the mean of all of them): its spread is what one
    # sample of human text carries, so about what even a perfect forecast is off by per row.
    for policy, finals in yardsticks.items():
        per_seed = np.mean(finals, axis=0)
        relative = [float(np.mean(np.divide(f, per_seed))) for f in finals]
        summary[policy]["human_starts_relative"] = relative
        summary[policy]["human_starts_sd"] = float(np.std(relative, ddof=1))
        print(f"{policy}: human starts against the yardstick {np.round(relative, 3).tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "model": args.model,
                "rows": results,
                "summary": summary,
                "wall_s": time.perf_counter() - t0,
            },
            indent=1,
        )
    )
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
