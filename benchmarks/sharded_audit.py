"""An audit of a >= 10 GB sharded corpus reading a sliver of it, against the full read, in one run.

    .venv/bin/python benchmarks/sharded_audit.py [--gb 10.5] [--shards 320] [--audit-size N]
        [--keep]   # leave the corpus on disk (default: deleted at the end)

The corpus is real text repeated with shard-specific composition: BBC News 2004-05 articles and
Wikipedia paragraphs (the packages of /work/shared/DATA.md), split first into a reference part
(300 + 300 documents, never in the candidate) and a candidate pool; each of `--shards` JSONL
shards draws documents with replacement from the pool, Wikipedia with a shard-specific share
(Beta(0.5, 0.5): most shards are mostly one source) and a shard-specific size (log-normal around
the mean). The true Wikipedia share of the whole corpus is counted while writing.

Two audits against one reference, same settings and seed, each after evicting the corpus from
the page cache (posix_fadvise DONTNEED) so both read from disk:
- two-stage (`full_read_bytes` default, 256 MB): byte blocks drawn by size, documents within;
- full read (`full_read_bytes` above the corpus): the reservoir over every document.
Reported: bytes read, time to draw the sample and for the whole audit, corpus size, synthetic
fraction, tail coverage and coverage with their intervals, whether each two-stage figure lies in
the full read's interval and the two intervals overlap, and the Wikipedia share of each sample
against the truth (its design-based interval from `proportion_interval`).
Writes benchmarks/results/sharded_audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).parent / "results"


def write_corpus(folder: Path, pool: list[tuple[bytes, bool]], gb: float, shards: int, seed: int):
    rng = np.random.default_rng(seed)
    wiki = np.array([w for _, w in pool])
    lines = [line for line, _ in pool]
    wiki_idx, bbc_idx = np.flatnonzero(wiki), np.flatnonzero(~wiki)
    mean_len = float(np.mean([len(x) for x in lines]))
    sizes = rng.lognormal(0.0, 0.5, shards)
    sizes = sizes / sizes.sum() * gb * 1e9
    n_wiki = n_all = 0
    folder.mkdir(parents=True)
    for s, target in enumerate(sizes):
        share = rng.beta(0.5, 0.5)
        n = max(1, int(target / mean_len))
        from_wiki = rng.random(n) < share
        idx = np.where(
            from_wiki,
            wiki_idx[rng.integers(0, len(wiki_idx), n)],
            bbc_idx[rng.integers(0, len(bbc_idx), n)],
        )
        (folder / f"part-{s:05d}.jsonl").write_bytes(b"".join(lines[i] for i in idx))
        n_wiki += int(from_wiki.sum())
        n_all += n
    return n_all, n_wiki / n_all


def evict(folder: Path) -> None:
    """Drop the corpus from the page cache so the next read comes from disk."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run_audit(store, folder, embedder, settings, wiki_texts: set[str]) -> dict:
    from detectors.shard_sampling import proportion_interval
    from service.audit import execute_audit
    from service.inputs import CorpusReader

    reader = CorpusReader([folder])
    drawn_at: list[float] = []
    original = reader.sample

    def timed_sample(*args, **kwargs):
        t = time.perf_counter()
        out = original(*args, **kwargs)
        drawn_at.append(time.perf_counter() - t)
        samples.append(out)
        return out

    samples: list = []
    reader.sample = timed_sample  # type: ignore[method-assign]
    t0 = time.perf_counter()
    run = execute_audit(store, "ref", reader, embedder=embedder, settings=settings)
    total = time.perf_counter() - t0
    r = run.result
    drawn = samples[0]
    y = np.array([t in wiki_texts for t in drawn.texts], dtype=float)
    p, lo, hi = proportion_interval(y, drawn.clusters, 0.9)
    syn = r.synthetic_fraction
    return {
        "sampling": r.sampling.model_dump() if r.sampling else None,
        "seconds_sample": round(drawn_at[0], 1),
        "seconds_audit": round(total, 1),
        "corpus_size": r.corpus_size,
        "sample_documents": len(drawn.texts),
        "synthetic_fraction": None if syn is None else syn.estimate.model_dump(),
        "out_of_domain": None
        if syn is None or syn.out_of_domain_fraction is None
        else syn.out_of_domain_fraction.model_dump(),
        "tail_coverage": r.tail_coverage.model_dump(),
        "coverage": {
            k: getattr(r.coverage, k).model_dump()
            for k in ("precision", "recall", "density", "coverage")
        },
        "wiki_share": {"point": p, "low": lo, "high": hi, "level": 0.9},
        "verdict": r.verdict.decision,
        "notes": list(r.notes),
    }


def agreement(two: dict, full: dict) -> dict:
    def pair(a: tuple[float, float, float], b: tuple[float, float, float]) -> dict:
        return {
            "two_stage": a,
            "full_read": b,
            "two_stage_in_full_interval": b[1] <= a[0] <= b[2],
            "full_in_two_stage_interval": a[1] <= b[0] <= a[2],
            "intervals_overlap": a[1] <= b[2] and b[1] <= a[2],
        }

    out = {}
    if two["synthetic_fraction"] and full["synthetic_fraction"]:
        a, b = two["synthetic_fraction"], full["synthetic_fraction"]
        out["synthetic_fraction"] = pair(
            (a["point"], a["low"], a["high"]), (b["point"], b["low"], b["high"])
        )
    if two["out_of_domain"] and full["out_of_domain"]:
        a, b = two["out_of_domain"], full["out_of_domain"]
        out["out_of_domain"] = pair(
            (a["point"], a["low"], a["high"]), (b["point"], b["low"], b["high"])
        )
    a, b = two["tail_coverage"], full["tail_coverage"]
    out["tail_coverage_ratio"] = pair(
        (a["ratio"], a["low"], a["high"]), (b["ratio"], b["low"], b["high"])
    )
    for k in ("precision", "recall", "density", "coverage"):
        a, b = two["coverage"][k], full["coverage"][k]
        out[k] = pair(
            (a["value"], a["value_low"], a["value_high"]),
            (b["value"], b["value_low"], b["value_high"]),
        )
    a, b = two["wiki_share"], full["wiki_share"]
    out["wiki_share"] = pair((a["point"], a["low"], a["high"]), (b["point"], b["low"], b["high"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=10.5)
    parser.add_argument("--shards", type=int, default=320)
    parser.add_argument("--audit-size", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write the corpus.")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from detectors.corpora import bbc_news, wikipedia_paragraphs
    from detectors.embedding import Embedder
    from service.audit import build_reference
    from service.settings import Settings
    from service.store import Store

    rng = np.random.default_rng(0)
    bbc = [d.text for d in bbc_news()]
    wiki = [d.text for d in wikipedia_paragraphs()]
    bbc_order, wiki_order = rng.permutation(len(bbc)), rng.permutation(len(wiki))
    reference = [bbc[i] for i in bbc_order[:300]] + [wiki[i] for i in wiki_order[:300]]
    pool_bbc = [bbc[i] for i in bbc_order[300:]]
    pool_wiki = [wiki[i] for i in wiki_order[300:]]
    pool = [((json.dumps({"text": t}) + "\n").encode(), False) for t in pool_bbc]
    pool += [((json.dumps({"text": t}) + "\n").encode(), True) for t in pool_wiki]

    work = Path(tempfile.mkdtemp(prefix="cg-sharded-", dir=args.dir))
    folder = work / "corpus"
    try:
        t0 = time.perf_counter()
        n_docs, wiki_share = write_corpus(folder, pool, args.gb, args.shards, seed=1)
        bytes_total = sum(p.stat().st_size for p in folder.iterdir())
        print(
            f"corpus: {n_docs:,} documents, {bytes_total / 1e9:.2f} GB in {args.shards} shards, "
            f"Wikipedia share {wiki_share:.4f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

        base = Settings(data_dir=work / "data", audit_size=args.audit_size)
        store = Store(base)
        embedder = Embedder(model=base.embedding_model, precision=base.embedding_precision)
        build_reference(store, "ref", reference, embedder=embedder, settings=base)
        wiki_texts = set(pool_wiki)

        evict(folder)
        two = run_audit(store, folder, embedder, base, wiki_texts)
        print(
            "two-stage:",
            json.dumps(
                {k: two[k] for k in ("sampling", "seconds_sample", "seconds_audit", "corpus_size")}
            ),
            flush=True,
        )
        full_settings = base.model_copy(update={"full_read_bytes": 10 * bytes_total})
        evict(folder)
        full = run_audit(store, folder, embedder, full_settings, wiki_texts)
        print(
            "full read:",
            json.dumps({k: full[k] for k in ("seconds_sample", "seconds_audit", "corpus_size")}),
            flush=True,
        )

        result = {
            "corpus": {
                "documents": n_docs,
                "bytes": bytes_total,
                "shards": args.shards,
                "wiki_share_true": wiki_share,
                "how": "BBC News 2004-05 and Wikipedia paragraphs (reference part held apart), "
                "drawn with replacement into JSONL shards of log-normal size with a Beta(0.5, 0.5) "
                "Wikipedia share per shard",
            },
            "audit_size": args.audit_size,
            "cpu": os.cpu_count(),
            "two_stage": two,
            "full_read": full,
            "agreement": agreement(two, full),
            "wiki_share_covers_truth": {
                name: r["wiki_share"]["low"] <= wiki_share <= r["wiki_share"]["high"]
                for name, r in (("two_stage", two), ("full_read", full))
            },
        }
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / "sharded_audit.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["agreement"], indent=1))
        print(f"wrote {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
