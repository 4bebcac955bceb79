"""The synthetic fraction under domain shift, through the product path: `build_reference` on full
documents and `execute_audit` with the service's default settings and bundled examples.

    .venv/bin/python benchmarks/synthetic_shift.py [--size 100] [--out benchmarks/results/...]

Shift panel: pairs of human reference and human candidate that differ as real corpora do
(another outlet and year, another topic mix of one outlet, passages vs openings, encyclopaedia vs
news both ways, far genres). Mixes: each shifted source's human text with SmolLM2-135M text of
the same source at 0, 0.1, 0.3, 0.5, 0.8, 1.0; one generator the bundled examples do not come
from (other sampling: temperature 0.6, top-k 20, repetition penalty 1.3, on ABC news). Cost: the
synthetic stage of a 1,000-document audit against the embedding of those documents, one run.

Far genres need Debian's jargon-text and bible-kjv (`apt-get install jargon-text bible-kjv`);
without them those rows are skipped and say so.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import service.audit as audit_module
import service.scoring as scoring_module
import service.synthetic as synthetic_module
from detectors.corpora import bbc_news, wikipedia_paragraphs
from detectors.embedding import Embedder
from detectors.synthetic.data import lee_news, smollm2_continuations, usenet_posts
from service.audit import build_reference, execute_audit
from service.scoring import curvature_scorer, example_profiles, reference_profiles
from service.settings import Settings
from service.store import Store

DATA = Path(__file__).resolve().parent / "data"
MIXES = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def passages_of(rows: list[dict], articles: dict[str, str]) -> list[str]:
    """The human twin of each passage continuation: the article's words from the prompt's start,
    as many as the generated document has."""
    out = []
    for row in rows:
        source, _, start = row["twin_source"].partition("@")
        words = articles[source].split()[int(start) :]
        out.append(" ".join(words[: len(row["text"].split())]))
    return out


def jargon_entries() -> list[str]:
    path = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
    if not path.is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")[400:]]
    return [p for p in paragraphs if len(p.split()) >= 40]


def bible_chunks() -> list[str]:
    try:
        raw = subprocess.run(
            ["bible", "-l0", "Genesis 1:1-Revelation 22:21"],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    verses = [ln.strip().split(" ", 1)[-1] for ln in raw.splitlines() if ln.strip()[:1].isdigit()]
    chunks = [" ".join(verses[i : i + 5]) for i in range(0, len(verses), 5)]
    return [c for c in chunks if len(c.split()) >= 60]


def sources() -> dict[str, list[str]]:
    bbc = bbc_news()
    by_id = {d.source: d.text for d in bbc}
    bundled = smollm2_continuations()
    passages = jsonl(DATA / "smollm2_passages.jsonl")
    return {
        "bbc": [d.text for d in bbc],
        "bbc-3-sections": [
            d.text
            for d in bbc
            if d.source.split("/")[1] in ("business", "entertainment", "politics")
        ],
        "bbc-sport-tech": [d.text for d in bbc if d.source.split("/")[1] in ("sports", "tech")],
        "bbc-passages": passages_of(passages, by_id),
        "lee": [d.text for d in lee_news()],
        "wikipedia": [d.text for d in wikipedia_paragraphs()],
        "usenet": [d.text for d in usenet_posts()],
        "jargon": jargon_entries(),
        "bible": bible_chunks(),
        # generated
        "gen-bbc-sport-tech": [
            r["text"] for r in bundled if r["stratum"] in ("bbc/sports", "bbc/tech")
        ],
        "gen-bbc": [r["text"] for r in bundled if r["stratum"].startswith("bbc/")],
        "gen-wikipedia": [r["text"] for r in bundled if r["stratum"] == "wikipedia"],
        "gen-passages": [r["text"] for r in passages],
        "gen-lee": [r["text"] for r in jsonl(DATA / "smollm2_lee.jsonl")],
        "gen-lee-other-sampling": [r["text"] for r in jsonl(DATA / "smollm2_lee_lowtemp.jsonl")],
        # high temperature, no nucleus cut: text far less probable than human prose
        "gen-lee-t1.2": [r["text"] for r in jsonl(DATA / "smollm2_lee_t12.jsonl")],
    }


# (reference, human candidate, generated of that source or None, what differs)
PANEL = (
    ("bbc", "lee", "gen-lee", "another outlet and year (ABC 2001)"),
    ("bbc-3-sections", "bbc-sport-tech", "gen-bbc-sport-tech", "other topics, same outlet"),
    ("bbc", "bbc-passages", "gen-passages", "passages vs openings"),
    ("wikipedia", "bbc", "gen-bbc", "news against an encyclopaedia"),
    ("bbc", "wikipedia", "gen-wikipedia", "encyclopaedia against news"),
    ("bbc", "lee", "gen-lee-other-sampling", "held-out generator settings, another outlet"),
    ("bbc", "lee", "gen-lee-t1.2", "held-out generator at temperature 1.2, another outlet"),
    ("bbc", "usenet", None, "far genre: Usenet posts"),
    ("bbc", "jargon", None, "far genre: the Jargon File"),
    ("bbc", "bible", None, "far genre: King James Bible"),
)


def audit_row(
    store: Store,
    ref_name: str,
    texts: list[str],
    embedder: Embedder,
    settings: Settings,
    case: dict,
) -> dict:
    """One candidate through `execute_audit`, as a result row: the case, what the audit read."""
    result = execute_audit(store, ref_name, texts, embedder=embedder, settings=settings).result
    s = result.synthetic_fraction
    e = s.estimate if s else None
    ood = s.out_of_domain_fraction if s else None
    return {
        "reference": ref_name,
        **case,
        "n": len(texts),
        "point": e.point if e else None,
        "low": e.low if e else None,
        "high": e.high if e else None,
        "mode": e.mode if e else None,
        "out_of_domain": ood.point if ood else None,
        "decision": result.verdict.decision,
        "reasons": [r.code for r in result.verdict.reasons],
    }


def timed(fn: Callable, log: list[float]) -> Callable:
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            log.append(time.perf_counter() - t0)

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=100, help="documents per candidate")
    ap.add_argument("--cost-size", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/synthetic_shift.json"))
    ap.add_argument(
        "--labelled",
        action="store_true",
        help="labelled mode: per pair, 150 documents of the candidate's own generator become "
        "COLLAPSE_GUARD_SYNTHETIC_EXAMPLES (never in the candidate); pairs with a generator only",
    )
    ap.add_argument(
        "--cost-only",
        action="store_true",
        help="only the cost rows (builds the BBC reference, then two 1,000-document audits)",
    )
    args = ap.parse_args()
    if args.labelled:
        labelled_panel(args)
        return
    src = sources()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="cg-shift-")))
    store = Store(settings)
    embedder = Embedder(precision=settings.embedding_precision)
    scorer = curvature_scorer(settings)
    synth_times: list[float] = []
    audit_module.estimate_synthetic = timed(audit_module.estimate_synthetic, synth_times)
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    built: set[str] = set()
    t_start = time.perf_counter()
    example_profiles(settings, scorer)
    for ref_name, human, generated, what in () if args.cost_only else PANEL:
        if not src[human] or (generated and not src[generated]):
            print(f"skipped {human}: its source is not installed")
            continue
        if ref_name not in built:
            t0 = time.perf_counter()
            info = build_reference(
                store, ref_name, src[ref_name], embedder=embedder, settings=settings
            )
            reference_profiles(store, info, settings, scorer)
            print(f"reference {ref_name}: {info.size} documents, {time.perf_counter() - t0:.0f} s")
            built.add(ref_name)
        for a in MIXES if generated else (0.0,):
            k = round(a * args.size)
            n_generated = len(src[generated]) if generated else 0
            if args.size - k > len(src[human]) or k > n_generated:
                # Where the data does not allow it: never a candidate of repeated documents.
                print(
                    f"skipped {human} + {generated} at {a}: needs {args.size - k} human and {k} "
                    f"generated documents, the data holds {len(src[human])} and {n_generated}"
                )
                continue
            h = rng.choice(len(src[human]), args.size - k, replace=False)
            g = rng.choice(len(src[generated]), k, replace=False) if k else np.array([], int)
            texts = [src[human][i] for i in h] + ([src[generated][i] for i in g] if k else [])
            texts = [texts[i] for i in rng.permutation(len(texts))]
            row = audit_row(
                store,
                ref_name,
                texts,
                embedder,
                settings,
                {"human": human, "generated": generated, "shift": what, "truth": a},
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    cost = measure_cost(
        store, embedder, settings, src["wikipedia"], rng, args.cost_size, synth_times
    )
    print(json.dumps(cost))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.cost_only:
        args.out.with_name(args.out.stem + "_cost.json").write_text(json.dumps(cost, indent=1))
        report([], cost)
        return
    args.out.write_text(
        json.dumps({"rows": rows, "cost": cost, "wall_s": time.perf_counter() - t_start}, indent=1)
    )
    report(rows, cost)


def measure_cost(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    pool: list[str],
    rng: np.random.Generator,
    size: int,
    synth_times: list[float],
) -> dict:
    """A `size`-document audit's synthetic stage against embedding the same documents, one run:
    cold (a new process's first audit against the reference: the language model loads from its
    cache and the embedding estimator is fitted) and warm (the next audit in that process)."""
    if "bbc" not in {info.name for info in store.list_references()}:
        bbc = sources()["bbc"]
        build_reference(store, "bbc", bbc, embedder=embedder, settings=settings)
    synthetic_module._fitted.clear()  # as in a new process
    scoring_module._scorers.clear()
    out: dict = {"documents": size, "scored_documents": settings.curvature_documents}
    for label in ("cold", "warm"):
        texts = [pool[i] for i in rng.choice(len(pool), size, replace=False)]
        t0 = time.perf_counter()
        embedder.embed(texts)
        embed_s = time.perf_counter() - t0
        synth_times.clear()
        execute_audit(store, "bbc", texts, embedder=embedder, settings=settings)
        out[f"{label}_embedding_s"] = embed_s
        out[f"{label}_synthetic_stage_s"] = synth_times[-1]
        out[f"{label}_ratio"] = synth_times[-1] / embed_s
    scorer = curvature_scorer(settings)
    t0 = time.perf_counter()
    scorer.profiles(texts[:200])
    out["scoring_docs_per_s"] = 200 / (time.perf_counter() - t0)
    out["tokens"] = settings.curvature_tokens
    # The figures the README's earlier rows used (warm).
    out["embedding_s"], out["synthetic_stage_s"] = (
        out["warm_embedding_s"],
        out["warm_synthetic_stage_s"],
    )
    out["ratio"] = out["warm_ratio"]
    return out


LABELLED_PAIRS = ("lee", "bbc-passages", "wikipedia")


def labelled_panel(args: argparse.Namespace) -> None:
    src = sources()
    root = Path(tempfile.mkdtemp(prefix="cg-shift-labelled-"))
    base = Settings(data_dir=root / "data")
    store = Store(base)
    embedder = Embedder(precision=base.embedding_precision)
    rng = np.random.default_rng(1)
    rows: list[dict] = []
    built: set[str] = set()
    for ref_name, human, generated, what in PANEL:
        if human not in LABELLED_PAIRS or generated is None or "other-sampling" in generated:
            continue
        pool = [src[generated][i] for i in rng.permutation(len(src[generated]))]
        n_examples = min(150, len(pool) - args.size)
        examples, pool = pool[:n_examples], pool[n_examples:]
        file = root / f"examples-{generated}.jsonl"
        file.write_text("".join(json.dumps({"text": t}) + "\n" for t in examples))
        settings = base.model_copy(update={"synthetic_examples": file})
        if ref_name not in built:
            build_reference(store, ref_name, src[ref_name], embedder=embedder, settings=settings)
            built.add(ref_name)
        for a in MIXES:
            k = round(a * args.size)
            h = rng.choice(len(src[human]), args.size - k, replace=False)
            texts = [src[human][i] for i in h] + pool[:k]
            texts = [texts[i] for i in rng.permutation(len(texts))]
            row = audit_row(
                store,
                ref_name,
                texts,
                embedder,
                settings,
                {
                    "human": human,
                    "generated": generated,
                    "shift": what,
                    "truth": a,
                    "examples": n_examples,
                },
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = args.out.with_name(args.out.stem + "_labelled.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1))
    report(rows, None)


def report(rows: list[dict], cost: dict | None) -> None:
    def fmt(r: dict) -> str:
        return (
            f"{r['point']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
            if r["point"] is not None
            else "none"
        )

    if rows:
        print(
            "\n| reference | candidate (human part) | generated part | truth | estimate [90%] | "
            "out of domain | verdict |"
        )
        print("|---|---|---|---|---|---|---|")
    for r in rows:
        ood = f"{r['out_of_domain']:.2f}" if r["out_of_domain"] is not None else "-"
        print(
            f"| {r['reference']} | {r['human']} ({r['shift']}) | {r['generated'] or '-'} | "
            f"{r['truth']:.1f} | {fmt(r)} | {ood} | {r['decision']} |"
        )
    scored = [r for r in rows if r["point"] is not None]
    if scored:
        err = np.array([abs(r["point"] - r["truth"]) for r in scored])
        cover = np.array([r["low"] <= r["truth"] <= r["high"] for r in scored])
        human = [r for r in scored if r["truth"] == 0]
        print(
            f"\nMAE {err.mean():.3f} (worst {err.max():.2f}); 90% coverage {cover.mean():.0%} of "
            f"{len(scored)}; pure human: worst point {max(r['point'] for r in human):.2f}, worst "
            f"low {max(r['low'] for r in human):.2f}"
        )
    if cost is None:
        return
    print(
        f"cost, {cost['documents']} documents: synthetic stage warm "
        f"{cost['warm_synthetic_stage_s']:.0f} s vs embedding {cost['warm_embedding_s']:.0f} s "
        f"(ratio {cost['warm_ratio']:.2f}); cold {cost['cold_synthetic_stage_s']:.0f} s vs "
        f"{cost['cold_embedding_s']:.0f} s (ratio {cost['cold_ratio']:.2f}); scoring "
        f"{cost['scoring_docs_per_s']:.1f} docs/s"
    )


if __name__ == "__main__":
    main()
