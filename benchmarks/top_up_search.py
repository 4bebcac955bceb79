"""How many forecasts the top-up search needs, and how far its beta is from the curve's crossing.

    .venv/bin/python benchmarks/top_up_search.py [--cases all|audit|recursion] [--curves FILE]
                                                 [--out FILE]

Issue 16 item 1 ("fewer but better-chosen evaluations"). For every candidate, the forecast under
the audit's default plan is run at every beta of the search's grid (max_beta / 32, with the
search's common random numbers: `forecast(..., human=<the audit's human start>)` is what the
search measures at a beta), and the one-sided lower bound the search compares
(`relative_lower_bound`) is recorded. Candidates:

- `audit`: the product path. A reference of all 2,225 BBC articles built by `build_reference`;
  real BBC passages of one, two, three or all five sections (1,000, or all a section has, and a
  300-passage case) and SmolLM2-135M continuations, each through `execute_audit` with the default
  settings, whose forecast call is recorded;
- `recursion`: the recursion benchmark's nine candidates (`recursion_truth.setup`: 400 blocks of
  BBC or Wikipedia text, SmolLM2 text mixed in, tails thinned, two sections) against its
  reference of 3,000 BBC blocks.

On these curves, for targets 0.80-1.00, three searches run on the recorded forecasts: the
product's bisection (`simulations.top_up._bisect`) on its grid, max_beta / 8
(`TOP_UP_GRID_STEPS`); the previous version's, the same bisection on max_beta / 32 (two halvings
more); and a regula falsi search on max_beta / 32 (the midpoint, max_beta if that missed, then
where the line between the bracket's ends reaches the target, rounded up to the grid, with the
Illinois rule and a midpoint whenever two probes have not halved the bracket). Each reports the
beta it returns and how many forecasts it asks for, against the smallest recorded beta that
meets the target and the smoothed curve's crossing (the smallest recorded beta where an isotonic
fit of the whole recorded lower bound reaches the target: the answer with the seeds' dips
smoothed away). On a monotone curve a bisection returns the smallest grid beta that meets the
target; where seeds' noise makes it dip, a grid beta that meets it with the one below missing.

The curves are kept (`--curves`, JSON, 30 s-1 min per candidate to make): a re-run with the
file only re-runs the searches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from detectors.reference import ReferenceCorpus
from service.policy import Policy
from service.settings import Settings
from simulations.forecast import Plan, forecast
from simulations.models.embedding import ProjectedReference
from simulations.plans import Forecast, TopUp
from simulations.results import Band, Trajectory
from simulations.top_up import (
    TOP_UP_CONFIDENCE_Z,
    TOP_UP_GRID_STEPS,
    _bisect,
    relative_lower_bound,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = (0.8, 0.85, 0.9, 0.95, 1.0)
# Curves are recorded on max_beta / 2**CURVE_STEPS, the previous search's grid (this version's,
# max_beta / 2**TOP_UP_GRID_STEPS, is a subset of it).
CURVE_STEPS = 5


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
    try:
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
    finally:  # the audit module gets its forecast back, however the caller stops
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
    grid = [max_beta * k / 2**CURVE_STEPS for k in range(2**CURVE_STEPS + 1)]
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


def regula_falsi(lower: Callable[[int], float], target: float, n: int) -> tuple[int | None, int]:
    """The alternative tried: on grid indices 0..n (0 is the plan itself, known to miss), the
    smallest index whose lower bound meets the target found by regula falsi; (index or None if
    max_beta misses, forecasts asked for)."""
    asked = 0

    def gap(k: int) -> float:
        nonlocal asked
        asked += 1
        return lower(k) - target

    lo_k, lo_gap = 0, lower(0) - target
    hi_k: int | None = None
    hi_gap, kept_end = 0.0, ""
    widths: list[int] = []
    while hi_k is None or hi_k - lo_k > 1:
        if hi_k is None:
            k = n // 2 if lo_k == 0 else n
        elif len(widths) >= 3 and widths[-1] > widths[-3] / 2:
            k = (lo_k + hi_k) // 2
        else:
            root = lo_k + (hi_k - lo_k) * (-lo_gap) / (hi_gap - lo_gap)
            k = min(max(math.ceil(root - 1e-9), lo_k + 1), hi_k - 1)
        g = gap(k)
        if g >= 0:
            hi_k, hi_gap = k, g
            if kept_end == "low":
                lo_gap /= 2  # Illinois: an end kept twice has its gap halved
            kept_end = "low"
        else:
            if k == n:
                return None, asked
            lo_k, lo_gap = k, g
            if kept_end == "high":
                hi_gap /= 2
            kept_end = "high"
        if hi_k is not None:
            widths.append(hi_k - lo_k)
    return hi_k, asked


def _search(
    rows: list[dict], target: float, max_beta: float, steps: int
) -> tuple[float | None, int]:
    """The product's bisection (`_bisect`) on a recorded curve: (beta or None, forecasts)."""
    run = _Recorded(rows)
    top: TopUp = _bisect(
        run,
        _forecast_of(rows[0], 0.0),
        target=target,
        max_beta=max_beta,
        progress=None,
        z=TOP_UP_CONFIDENCE_Z,
        steps=steps,
    )
    return (top.beta if top.feasible else None), len(run.asked)


def compare(curves: list[dict], max_beta: float) -> list[dict]:
    n = 2**CURVE_STEPS
    out = []
    for c in curves:
        lowers = [r["lower"] for r in c["rows"]]
        # The curve with the seeds' dips smoothed away: an isotonic fit over all recorded betas.
        smooth = IsotonicRegression().fit(np.arange(n + 1), lowers).predict(np.arange(n + 1))
        for target in TARGETS:
            if lowers[0] >= target:
                continue
            beta, forecasts = _search(c["rows"], target, max_beta, TOP_UP_GRID_STEPS)
            fine_beta, fine_forecasts = _search(c["rows"], target, max_beta, CURVE_STEPS)
            k, asked = regula_falsi(lowers.__getitem__, target, n)
            smooth_k = next((i for i, v in enumerate(smooth) if v >= target), None)
            out.append(
                {
                    "candidate": c["candidate"],
                    "target": target,
                    "monotone": all(b >= a for a, b in itertools.pairwise(lowers)),
                    "beta": beta,
                    "forecasts": forecasts,
                    "fine_beta": fine_beta,
                    "fine_forecasts": fine_forecasts,
                    "regula_falsi_beta": None if k is None else max_beta * k / n,
                    "regula_falsi_forecasts": asked,
                    "smoothed_beta": None if smooth_k is None else max_beta * smooth_k / n,
                    "meets": [max_beta * i / n for i, v in enumerate(lowers) if v >= target],
                }
            )
    return out


def summary(label: str, sel: list[dict]) -> str:
    """Forecasts and betas of each search over `sel`, against the previous search (grid / 32)
    and the smoothed curve's crossing."""

    def betas_against(key: str, ref: str) -> str:
        pairs = [(r[key], r[ref]) for r in sel if r[key] is not None and r[ref] is not None]
        d = np.array([a - b for a, b in pairs])
        flips = sum((r[key] is None) != (r[ref] is None) for r in sel)
        if not len(d):
            return "no feasible pair"
        return (
            f"mean {d.mean():+.3f}, mean |diff| {np.abs(d).mean():.3f}, max |diff| "
            f"{np.abs(d).max():.3f}, the same in {int((d == 0).sum())} of {len(d)}, "
            f"feasibility differs in {flips}"
        )

    lines = [f"{label}: {len(sel)} searches"]
    for key, name in (
        ("", "this version (grid / 8)"),
        ("fine_", "previous version (grid / 32)"),
        ("regula_falsi_", "regula falsi (grid / 32)"),
    ):
        lines.append(
            f"  {name}: {sum(r[key + 'forecasts'] for r in sel)} forecasts (most in one search "
            f"{max(r[key + 'forecasts'] for r in sel)}); beta - previous: "
            f"{betas_against(key + 'beta', 'fine_beta')}; beta - smoothed crossing: "
            f"{betas_against(key + 'beta', 'smoothed_beta')}"
        )
    smallest = sum(r["fine_beta"] == min(r["meets"], default=None) for r in sel)
    lines.append(
        f"  the previous version's beta is the smallest recorded beta that meets the target "
        f"(None: none does) in {smallest}"
    )
    return "\n".join(lines)


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
        "| candidate | target | lower bound monotone in beta | this version, grid / 8: beta "
        "(forecasts) | previous, grid / 32 | regula falsi, grid / 32 | smallest recorded beta "
        "that meets | smoothed curve's crossing |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def show(beta: float | None, n: int | None = None) -> str:
        b = "infeasible" if beta is None else f"{beta:.3f}"
        return b if n is None else f"{b} ({n})"

    for r in rows:
        print(
            f"| {r['candidate']} | {r['target']:.2f} | {'yes' if r['monotone'] else 'no'} | "
            f"{show(r['beta'], r['forecasts'])} | {show(r['fine_beta'], r['fine_forecasts'])} | "
            f"{show(r['regula_falsi_beta'], r['regula_falsi_forecasts'])} | "
            f"{show(min(r['meets'], default=None))} | {show(r['smoothed_beta'])} |"
        )
    for label, sel in (
        ("all searches", rows),
        ("feasible (previous version)", [r for r in rows if r["fine_beta"] is not None]),
        ("audit candidates", [r for r in rows if not r["candidate"].startswith("recursion")]),
    ):
        print("\n" + summary(label, sel))


if __name__ == "__main__":
    main()
