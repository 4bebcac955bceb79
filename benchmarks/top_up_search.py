"""How many forecasts the top-up search needs, and whether it finds what bisection finds.

    .venv/bin/python benchmarks/top_up_search.py [--curves FILE] [--out FILE]

Issue 16 item 1 ("fewer but better-chosen evaluations"). For every candidate of the recursion
benchmark (`recursion_truth.setup`: BBC and Wikipedia human text, SmolLM2 text mixed in at
several fractions, tails thinned, two sections only), the forecast under the audit's default plan
is run at every beta of the search's grid (max_beta / 32, with the search's common random
numbers: `forecast(..., human=base.human)` is what the search measures at a beta), and the
one-sided lower bound the search compares (`relative_lower_bound`) is recorded. On these curves,
for targets 0.80-1.00, the product's search (`simulations.top_up._search`) and the previous
version's bisection (below, as it was) are run on the recorded forecasts: the beta each returns
and how many forecasts each asks for. Where the curve is monotone both return the smallest grid
beta that meets the target; where it is not, both return a grid beta that meets the target with
the one below it missing, possibly not the same one.

The curves are kept (`--curves`, JSON): a re-run with the file only re-runs the searches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from detectors.reference import ReferenceCorpus
from service.policy import Policy
from service.settings import Settings
from simulations.forecast import Plan, forecast
from simulations.models.embedding import ProjectedReference
from simulations.plans import Forecast, TopUp
from simulations.results import Trajectory
from simulations.top_up import BISECTION_STEPS, TOP_UP_CONFIDENCE_Z, _search, relative_lower_bound

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = (0.8, 0.85, 0.9, 0.95, 1.0)


def audit_cases() -> Iterator[tuple[str, ReferenceCorpus, np.ndarray, dict[str, Trajectory]]]:
    """The product path: a reference of all 2,225 BBC articles built by `build_reference`;
    candidates of real text through `execute_audit` (default settings and plan), whose forecast
    call is recorded (the candidate's vectors and the human start the audit read)."""
    from audit_stages import passages_of_sections

    import service.audit as audit_module
    from detectors.corpora import bbc_news
    from detectors.embedding import Embedder
    from service.audit import build_reference, execute_audit
    from service.settings import Settings
    from service.store import Store

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="cg-top-up-")))
    store = Store(settings)
    embedder = Embedder(precision=settings.embedding_precision)
    texts = [d.text for d in bbc_news()]
    build_reference(store, "bbc", texts, embedder=embedder, settings=settings)
    seen: list[tuple] = []
    real_forecast = audit_module.forecast

    def recording(reference, vectors, plan, **kw):
        seen.append((reference, vectors, kw["human"]))
        return real_forecast(reference, vectors, plan, **kw)

    setattr(audit_module, "forecast", recording)  # noqa: B010 (a stand-in that records)
    rng = np.random.default_rng(0)
    human, generated = passages_of_sections()
    cases = {
        "passages, all sections": (human, None, 1000),
        "passages, business + sport": (human, ("business", "sport"), 1000),
        "passages, business + sport (300)": (human, ("business", "sport"), 300),
        "passages, tech": (human, ("tech",), 1000),
        "passages, politics": (human, ("politics",), 900),
        "passages, entertainment": (human, ("entertainment",), 573),
        "passages, three sections": (human, ("tech", "politics", "entertainment"), 1000),
        "SmolLM2, all sections": (generated, None, 1000),
        "SmolLM2, business + sport": (generated, ("business", "sport"), 1000),
    }
    for name, (pool, sections, n) in cases.items():
        texts = [t for t, s in pool if sections is None or s.startswith(sections)]
        texts = [texts[i] for i in rng.choice(len(texts), n, replace=False)]
        seen.clear()
        verdict = execute_audit(store, "bbc", texts, embedder=embedder, settings=settings)
        reference, vectors, human_start = seen[0]
        print(f"{name}: audit verdict {verdict.result.verdict.decision}", flush=True)
        yield name, reference, vectors, human_start
    audit_module.forecast = real_forecast


def recursion_cases() -> Iterator[tuple[str, ReferenceCorpus, np.ndarray, dict[str, Trajectory]]]:
    """The recursion benchmark's candidates (400 blocks of BBC or Wikipedia text, SmolLM2 text
    mixed in, tails thinned, two sections) against its reference of 3,000 BBC blocks."""
    from recursion_truth import setup

    su = setup(400)
    for name, blocks in su.cands.items():
        vectors = su.embed(blocks)
        base = forecast(su.reference, vectors, Plan(), random_state=su.settings.random_state)
        yield f"recursion: {name}", su.reference, vectors, base.human


def collect_curves(max_beta: float, cases: str) -> list[dict]:
    seed = Settings().random_state
    plan = Plan()
    sources: dict[str, Callable[[], Iterator]] = {
        "audit": audit_cases,
        "recursion": recursion_cases,
        "all": lambda: itertools.chain(audit_cases(), recursion_cases()),
    }
    grid = [max_beta * k / 2**BISECTION_STEPS for k in range(2**BISECTION_STEPS + 1)]
    curves = []
    for name, reference, vectors, start in sources[cases]():
        t0 = time.perf_counter()
        proj = ProjectedReference.build(reference, seed=seed)
        base = forecast(reference, vectors, plan, random_state=seed, projected=proj, human=start)
        rows = []
        for beta in grid:
            at = plan.model_copy(update={"policy": "keep-real", "beta": beta}) if beta else plan
            f = (
                base
                if not beta
                else forecast(
                    reference,
                    vectors,
                    at,
                    random_state=seed,
                    projected=proj,
                    human=base.human,
                    processes=2,
                )
            )
            cand, fresh = f.final(), f.human["tail_coverage"].bands[-1]
            rows.append(
                {
                    "beta": beta,
                    "relative": f.relative_final(),
                    "lower": relative_lower_bound(f, TOP_UP_CONFIDENCE_Z),
                    "mean": cand.mean,
                    "sem": cand.sem,
                    "human_mean": fresh.mean,
                    "human_sem": fresh.sem,
                }
            )
        curves.append({"candidate": name, "rows": rows})
        print(
            f"{name}: {time.perf_counter() - t0:.0f} s, lower bound "
            + " ".join(f"{r['lower']:.2f}" for r in rows[::4]),
            flush=True,
        )
    return curves


class _Recorded:
    """Forecasts from a recorded curve: a stand-in with the fields the search reads."""

    def __init__(self, rows: list[dict]):
        self.by_beta = {round(r["beta"], 9): r for r in rows}
        self.asked: list[float] = []

    def __call__(self, beta: float) -> Forecast:
        self.asked.append(beta)
        return _forecast_of(self.by_beta[round(beta, 9)], beta)


def _forecast_of(row: dict, beta: float) -> Forecast:
    from simulations.results import Band, Trajectory

    def curve(mean: float, sem: float) -> dict[str, Trajectory]:
        b = Band(mean=mean, median=mean, low=mean, high=mean, sem=sem, level=0.9, n=8)
        return {"tail_coverage": Trajectory(metric="tail_coverage", description="", bands=(b, b))}

    plan = Plan(generations=1)
    return Forecast(
        plan=plan.model_copy(update={"policy": "keep-real", "beta": beta}) if beta else plan,
        method="recorded",
        trajectories=curve(row["mean"], row["sem"]),
        human=curve(row["human_mean"], row["human_sem"]),
        elapsed_seconds=0.0,
    )


def previous_bisection(
    run: Callable[[float], Forecast], base: Forecast, target: float, max_beta: float
) -> tuple[float, bool]:
    """The previous version's search (issue 16, before this benchmark), kept for comparison."""

    def meets(f: Forecast) -> bool:
        return relative_lower_bound(f, TOP_UP_CONFIDENCE_Z) >= target

    if meets(base):
        return 0.0, True
    low, high, high_met = 0.0, max_beta, False
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        if meets(run(mid)):
            high, high_met = mid, True
            continue
        low = mid
        if not high_met:
            if not meets(run(max_beta)):
                return max_beta, False
            high_met = True
    return high, True


def compare(curves: list[dict], max_beta: float) -> list[dict]:
    out = []
    for c in curves:
        for target in TARGETS:
            old_run, new_run = _Recorded(c["rows"]), _Recorded(c["rows"])
            base = _forecast_of(c["rows"][0], 0.0)
            if relative_lower_bound(base, TOP_UP_CONFIDENCE_Z) >= target:
                continue
            old_beta, old_ok = previous_bisection(old_run, base, target, max_beta)
            top: TopUp = _search(
                new_run,
                base,
                target=target,
                max_beta=max_beta,
                progress=None,
                z=TOP_UP_CONFIDENCE_Z,
            )
            lowers = [r["lower"] for r in c["rows"]]
            monotone = all(b >= a for a, b in itertools.pairwise(lowers))
            out.append(
                {
                    "candidate": c["candidate"],
                    "target": target,
                    "monotone": monotone,
                    "previous_beta": old_beta if old_ok else None,
                    "previous_forecasts": len(old_run.asked),
                    "beta": top.beta if top.feasible else None,
                    "forecasts": len(new_run.asked),
                    "meets": [
                        round(b, 4)
                        for b, v in zip([r["beta"] for r in c["rows"]], lowers, strict=True)
                        if v >= target
                    ],
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", type=Path, default=RESULTS / "top_up_curves.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "top_up_search.json")
    parser.add_argument(
        "--cases",
        choices=("all", "audit", "recursion"),
        default="all",
        help="which candidates' curves to collect (when --curves does not exist yet)",
    )
    args = parser.parse_args()
    max_beta = Policy().max_top_up_fraction
    if args.curves.exists():
        curves = json.loads(args.curves.read_text())
    else:
        curves = collect_curves(max_beta, args.cases)
        args.curves.write_text(json.dumps(curves, indent=1))
    rows = compare(curves, max_beta)
    args.out.write_text(json.dumps(rows, indent=1))
    print(
        "| candidate | target | lower bound monotone in beta | previous beta (forecasts) "
        "| this version's beta (forecasts) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:

        def show(beta: float | None, n: int) -> str:
            return f"{'infeasible' if beta is None else f'{beta:.4f}'} ({n})"

        print(
            f"| {r['candidate']} | {r['target']:.2f} | {'yes' if r['monotone'] else 'no'} | "
            f"{show(r['previous_beta'], r['previous_forecasts'])} | "
            f"{show(r['beta'], r['forecasts'])} |"
        )
    same = sum(r["beta"] == r["previous_beta"] for r in rows)
    old_n = sum(r["previous_forecasts"] for r in rows)
    new_n = sum(r["forecasts"] for r in rows)
    print(
        f"\n{len(rows)} searches: same beta in {same}; forecasts {old_n} -> {new_n} "
        f"({old_n / max(new_n, 1):.2f}x fewer); most in one search "
        f"{max(r['previous_forecasts'] for r in rows)} -> {max(r['forecasts'] for r in rows)}"
    )


if __name__ == "__main__":
    main()
