"""Is the reference's own source in its domain? Held-out source splits through the product path:
`build_reference` and `execute_audit` with the service's default settings and bundled examples.

    .venv/bin/python benchmarks/domain_splits.py [--draws 3] [--size 100] [--out ...]

Same source, not in the reference (should be judged, not `inconclusive` for the domain): other
articles of the same encyclopedia (a reference of 74 of gensim's 106 Wikipedia articles, the
paragraphs of the other 32), other sections of the same outlet (BBC business, entertainment and
politics against sport and tech), passages rather than openings, and another outlet and year of
the same genre (ABC 2001 against BBC 2004-05). Another genre (should stay out of the domain):
Usenet posts, the Jargon File, the King James Bible, WritingPrompts stories and PubMedQA answers
against news, and the same against the encyclopedia. Each case `--draws` candidates of `--size`
documents. The Jargon File and the Bible need Debian's jargon-text and bible-kjv; without them
those rows are skipped and say so.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic_shift import DATA, bible_chunks, jargon_entries, jsonl, passages_of

from detectors.corpora import bbc_news, wikipedia_paragraphs
from detectors.embedding import Embedder
from detectors.synthetic.data import lee_news, usenet_posts
from service.audit import build_reference, execute_audit
from service.policy import Policy
from service.settings import Settings
from service.store import Store

REFERENCE_ARTICLES = 74  # of the 106 in gensim's Wikipedia sample


def sources() -> dict[str, list[str]]:
    bbc = bbc_news()
    wiki = wikipedia_paragraphs()
    articles = sorted({d.source.split("#")[0] for d in wiki})
    rng = np.random.default_rng(0)
    in_reference = set(rng.choice(articles, REFERENCE_ARTICLES, replace=False).tolist())
    chat_human = jsonl(DATA / "chat_human.jsonl")
    three = ("business", "entertainment", "politics")
    return {
        "bbc": [d.text for d in bbc],
        "bbc-3-sections": [d.text for d in bbc if d.source.split("/")[1] in three],
        "bbc-sport-tech": [d.text for d in bbc if d.source.split("/")[1] not in three],
        "bbc-passages": passages_of(
            jsonl(DATA / "smollm2_passages.jsonl"), {d.source: d.text for d in bbc}
        ),
        "lee": [d.text for d in lee_news()],
        "wiki-74-articles": [d.text for d in wiki if d.source.split("#")[0] in in_reference],
        "wiki-other-articles": [d.text for d in wiki if d.source.split("#")[0] not in in_reference],
        "usenet": [d.text for d in usenet_posts()],
        "jargon": jargon_entries(),
        "bible": bible_chunks(),
        "stories": [r["text"] for r in chat_human if r["stratum"] == "stories"],
        "pubmed-answers": [r["text"] for r in chat_human if r["stratum"] == "biomedical-answers"],
    }


# (reference, candidate, same source?, what differs)
PANEL = (
    ("wiki-74-articles", "wiki-other-articles", True, "other articles, same encyclopedia"),
    ("bbc-3-sections", "bbc-sport-tech", True, "other sections, same outlet"),
    ("bbc", "bbc-passages", True, "passages rather than openings"),
    ("bbc", "lee", True, "another outlet and year, same genre"),
    ("bbc", "usenet", False, "Usenet posts against news"),
    ("bbc", "jargon", False, "the Jargon File against news"),
    ("bbc", "bible", False, "the King James Bible against news"),
    ("bbc", "stories", False, "WritingPrompts stories against news"),
    ("bbc", "pubmed-answers", False, "PubMedQA answers against news"),
    ("bbc", "wiki-other-articles", False, "encyclopedia against news"),
    ("wiki-74-articles", "usenet", False, "Usenet posts against the encyclopedia"),
    ("wiki-74-articles", "bible", False, "the King James Bible against the encyclopedia"),
    ("wiki-74-articles", "stories", False, "WritingPrompts stories against the encyclopedia"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=3, help="candidates per case")
    ap.add_argument("--size", type=int, default=100, help="documents per candidate")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/domain_splits.json"))
    args = ap.parse_args()
    src = sources()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="cg-domain-")))
    store, embedder = Store(settings), Embedder(precision=settings.embedding_precision)
    limit = Policy().max_out_of_domain_fraction
    rows: list[dict] = []
    built: set[str] = set()
    t_start = time.perf_counter()
    for ref, cand, same, what in PANEL:
        if not src[cand]:
            print(f"skipped {cand}: its source is not installed")
            continue
        if ref not in built:
            build_reference(store, ref, src[ref], embedder=embedder, settings=settings)
            built.add(ref)
        for draw in range(args.draws):
            rng = np.random.default_rng([draw, 17])
            pick = rng.choice(len(src[cand]), min(args.size, len(src[cand])), replace=False)
            texts = [src[cand][i] for i in pick]
            result = execute_audit(store, ref, texts, embedder=embedder, settings=settings).result
            s = result.synthetic_fraction
            ood = s.out_of_domain_fraction if s else None
            row = {
                "reference": ref,
                "candidate": cand,
                "same_source": same,
                "what": what,
                "draw": draw,
                "n": len(texts),
                "out_of_domain": ood.point if ood else None,
                "out_of_domain_low": ood.low if ood else None,
                "out_of_domain_high": ood.high if ood else None,
                "synthetic": s.estimate.point if s else None,
                "synthetic_low": s.estimate.low if s else None,
                "synthetic_high": s.estimate.high if s else None,
                "decision": result.verdict.decision,
                "reasons": [r.code for r in result.verdict.reasons],
                "in_domain": ood is not None and ood.point <= limit,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"rows": rows, "limit": limit, "wall_s": time.perf_counter() - t_start}, indent=1
        )
    )
    report(rows)


def report(rows: list[dict]) -> None:
    print("\n| reference | candidate | same source | out of domain, per draw | verdicts |")
    print("|---|---|---|---|---|")
    cases: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cases.setdefault((r["reference"], r["candidate"]), []).append(r)
    for (ref, cand), rs in cases.items():
        oods = ", ".join(f"{r['out_of_domain']:.2f}" for r in rs)
        verdicts = ", ".join(r["decision"] for r in rs)
        what, same = rs[0]["what"], rs[0]["same_source"]
        print(f"| {ref} | {cand} ({what}) | {same} | {oods} | {verdicts} |")
    same = [r for r in rows if r["same_source"]]
    other = [r for r in rows if not r["same_source"]]
    print(
        f"\nsame source in domain: {sum(r['in_domain'] for r in same)} of {len(same)}; "
        f"another genre out of domain: {sum(not r['in_domain'] for r in other)} of {len(other)}"
    )


if __name__ == "__main__":
    main()
