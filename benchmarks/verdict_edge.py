"""How often the verdict moves with the forecast's noise at the edge of `max_top_up_fraction`.

    .venv/bin/python benchmarks/verdict_edge.py [--states 8] [--more-seeds 32]
                                                [--out benchmarks/results/verdict_edge.json]

Issue 16 follow-up: the same audit of `narrow` (1,000 BBC passages of business and sport) was
top-up on one CPU and reject on another: the recursion amplifies rounding into seed-like noise,
and a top-up near the allowed maximum can land on either side of it. The verdict now says
`inconclusive` (`top-up-within-noise`) when the largest allowed top-up is neither shown to work
(its forecast's lower bound misses the target) nor shown to fail (its interval reaches it).

Two measurements:

1. **Recorded curves** (`benchmarks/results/top_up_curves.json`, from `top_up_search.py`: the
   forecast at every beta of max_beta / 32 for 18 candidates, the product path's nine and the
   recursion benchmark's nine): for targets 0.80-1.00, the search's answer and, where it finds
   none, whether the maximum's interval reaches the target. Seconds.
2. **Over random states, the product path**: a reference of all 2,225 BBC articles
   (`build_reference`), candidates of real BBC passages through `execute_audit` (default settings,
   plan and policy) for their synthetic fraction and domain; then the audit's forecast stage
   (`service.audit.forecast_verdict`, with the plan's human start for that random state) at
   random states 0..seeds-1, as another CPU's rounding would move it. Per candidate: the verdicts
   under this rule and under the previous one (no interval for the search: reject), and how many
   pairs of random states give opposite verdicts (top-up against reject). Where the default
   plan's verdict was not top-up or keep, the same with `--more-seeds` chains (the remedy the
   verdict names). And the audit's own rule (`service.audit.more_seeds`, in `execute_audit`):
   each state's verdict after the stage is run again with `--more-seeds` chains where it rests
   on the largest top-up's forecast near the target. About 15-20 minutes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from service.policy import Policy, decide
from simulations.top_up import TOP_UP_CONFIDENCE_Z, TOP_UP_GRID_STEPS, _bisect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from top_up_search import _forecast_of, _Recorded

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = (0.8, 0.85, 0.9, 0.95, 1.0)
# Candidates near the edge at the default target (recorded curves: the search found 0.4375,
# none, none) and one far from it (0.25).
CANDIDATES = {
    "business + sport": (("business", "sport"), 1000),
    "business + sport (300)": (("business", "sport"), 300),
    "politics": (("politics",), 900),
    "entertainment": (("entertainment",), 573),
}


def recorded(max_beta: float) -> list[dict]:
    """On the recorded curves: per candidate and target, 'top-up' (beta), 'within noise' or
    'short' (the maximum's interval below the target)."""
    rows = []
    for curve in json.loads((RESULTS / "top_up_curves.json").read_text()):
        points = curve["rows"]
        at_max = _forecast_of(points[-1], max_beta).relative_final_estimate()
        assert at_max is not None
        base = _forecast_of(points[0], 0.0)
        for target in TARGETS:
            found = _bisect(
                _Recorded(points),
                base,
                target=target,
                max_beta=max_beta,
                progress=None,
                z=TOP_UP_CONFIDENCE_Z,
                steps=TOP_UP_GRID_STEPS,
            )
            outcome = (
                "top-up" if found.feasible else "within noise" if at_max.high >= target else "short"
            )
            rows.append(
                {
                    "candidate": curve["candidate"],
                    "target": target,
                    "outcome": outcome,
                    "beta": found.beta if found.feasible else None,
                    "max_point": at_max.point,
                    "max_low": at_max.low,
                    "max_high": at_max.high,
                }
            )
    return rows


def over_random_states(seeds: int, more_seeds: int) -> list[dict]:
    from audit_stages import passages_of_sections

    from detectors.corpora import bbc_news
    from detectors.embedding import Embedder
    from service.audit import ForecastVerdict, build_reference, execute_audit, forecast_verdict
    from service.audit import more_seeds as more_seeds_at_edge
    from service.settings import Settings
    from service.store import Store
    from simulations.forecast import Plan, human_start
    from simulations.models.embedding import ProjectedReference

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="cg-verdict-edge-")))
    store = Store(settings)
    embedder = Embedder(precision=settings.embedding_precision)
    build_reference(
        store, "bbc", [d.text for d in bbc_news()], embedder=embedder, settings=settings
    )
    _, reference = store.load_reference("bbc")
    human, _ = passages_of_sections()
    rng = np.random.default_rng(0)
    plan, policy = Plan(), settings.policy
    rows = []
    for name, (sections, n) in CANDIDATES.items():
        pool = [t for t, s in human if s.startswith(sections)]
        texts = [pool[i] for i in rng.choice(len(pool), n, replace=False)]
        run = execute_audit(store, "bbc", texts, embedder=embedder, settings=settings)
        print(f"{name}: audit {run.result.verdict.decision}", flush=True)
        judged_at: dict[tuple[int, int], tuple[ForecastVerdict, float]] = {}

        def judge(chains: int, seed: int, run=run, judged_at=judged_at):
            if (chains, seed) not in judged_at:
                t0 = time.perf_counter()
                at = plan.model_copy(update={"seeds": chains})
                projected = ProjectedReference.build(reference, seed=seed)
                start = human_start(
                    reference,
                    at,
                    random_state=seed,
                    projected=projected,
                    processes=settings.forecast_processes,
                )
                judged = forecast_verdict(
                    reference,
                    run.candidate_vectors,
                    plan=at,
                    policy=policy,
                    synthetic=run.result.synthetic_fraction,
                    n_documents=len(run.candidate_vectors),
                    random_state=seed,
                    projected=projected,
                    human=start,
                    processes=settings.forecast_processes,
                )
                judged_at[chains, seed] = judged, time.perf_counter() - t0
            return judged_at[chains, seed]

        # The remedy the verdict names (more seeds), tried where the default plan was not sure.
        for chains in (plan.seeds, more_seeds):
            if chains != plan.seeds and all(
                r["decision"] in ("keep", "top-up") for r in rows if r["candidate"] == name
            ):
                continue
            for seed in range(seeds):
                judged, seconds = judge(chains, seed)
                synthetic = run.result.synthetic_fraction
                rows.append(_row(name, seed, judged, policy, len(texts), synthetic))
                rows[-1]["seconds"] = seconds
                # The product's rule (`execute_audit`): the stage again with more chains when
                # the verdict rests on the largest top-up's forecast near the target.
                more = more_seeds_at_edge(judged, judged.forecast.plan, policy, more_seeds)
                again = judged if more is None else judge(more.seeds, seed)[0]
                rows[-1]["forecast_again"] = more is not None
                rows[-1]["product_decision"] = again.verdict.decision
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _row(name, seed, judged, policy: Policy, n: int, synthetic) -> dict:
    """This rule's verdict and the previous one's (the search's interval unread)."""
    base = judged.forecast.relative_final_estimate()
    assert base is not None
    t = judged.top_up
    previous = judged.verdict
    if t is not None:
        previous = decide(
            policy,
            n_documents=n,
            synthetic=None if synthetic is None else synthetic.estimate,
            relative_tail_coverage=base.point,
            relative_tail_coverage_high=base.high,
            top_up_beta=t.beta,
            top_up_per_generation=t.documents_per_generation,
            top_up_feasible=t.feasible,
            out_of_domain=None if synthetic is None else synthetic.out_of_domain_fraction,
            unexplained=0.0 if synthetic is None else synthetic.unexplained_fraction,
        )
    interval = None if t is None else t.achieved_interval
    return {
        "candidate": name,
        "seeds": judged.forecast.plan.seeds,
        "random_state": seed,
        "relative": base.point,
        "relative_low": base.low,
        "relative_high": base.high,
        "beta": None if t is None else t.beta,
        "feasible": None if t is None else t.feasible,
        "top_up_point": None if interval is None else interval.point,
        "top_up_high": None if interval is None else interval.high,
        "decision": judged.verdict.decision,
        "codes": [r.code for r in judged.verdict.reasons],
        "previous_decision": previous.decision,
    }


def opposite_pairs(decisions: list[str]) -> int:
    return sum({a, b} == {"top-up", "reject"} for a, b in itertools.combinations(decisions, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", type=int, default=8, help="Random states per candidate.")
    ap.add_argument(
        "--more-seeds",
        type=int,
        default=32,
        help="Chains per forecast for the candidates the default plan was not sure of.",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "verdict_edge.json")
    args = ap.parse_args()
    max_beta = Policy().max_top_up_fraction
    table = recorded(max_beta)
    print("| target | searches | top-up | within noise (was reject) | short (reject) |")
    print("|---|---|---|---|---|")
    for target in TARGETS:
        c = Counter(r["outcome"] for r in table if r["target"] == target)
        print(
            f"| {target:.2f} | {sum(c.values())} | {c['top-up']} | {c['within noise']} | "
            f"{c['short']} |"
        )
    states = over_random_states(args.states, args.more_seeds)
    print(
        "\n| candidate | verdicts, this rule | verdicts, previous rule | opposite pairs: "
        "this / previous | base forecast over states | largest beta's point, high | "
        "the audit's verdicts (forecast again at the edge) | states forecast again | "
        "opposite pairs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, chains in dict.fromkeys((r["candidate"], r["seeds"]) for r in states):
        sel = [r for r in states if r["candidate"] == name and r["seeds"] == chains]
        now = Counter(r["decision"] for r in sel)
        before = Counter(r["previous_decision"] for r in sel)
        rel = [r["relative"] for r in sel]
        tops = [r for r in sel if r["feasible"] is False]
        at_max = ", ".join(f"{r['top_up_point']:.2f} / {r['top_up_high']:.2f}" for r in tops)
        print(
            f"| {name}, {chains} seeds | {dict(now)} | {dict(before)} | "
            f"{opposite_pairs([r['decision'] for r in sel])} / "
            f"{opposite_pairs([r['previous_decision'] for r in sel])} | "
            f"{min(rel):.2f}-{max(rel):.2f} | {at_max or '-'} | "
            f"{dict(Counter(r['product_decision'] for r in sel))} | "
            f"{sum(r['forecast_again'] for r in sel)} | "
            f"{opposite_pairs([r['product_decision'] for r in sel])} |"
        )
    args.out.write_text(json.dumps({"recorded": table, "random_states": states}, indent=1))


if __name__ == "__main__":
    main()
