"""How well each scorer tells each generator family from human text of the same genre, and how
far human text of other genres and outlets moves its scores: the evidence for which scorer is
the default and for what an audit cannot see.

    .venv/bin/python benchmarks/scorer_families.py [--per-set 60] \
        [--scorers smollm2-135m gemma3-270m] [--out benchmarks/results/scorer_families.json]

Sets (real text, `--per-set` documents each, seeded): the repository's chat-model rows
(`detectors/synthetic/chat_examples.jsonl`: GPT-3.5-turbo and GPT-4 continuing WritingPrompts
stories and PubMedQA answers, gpt-3.5-turbo answering AlpacaEval instructions), their human
originals (`benchmarks/data/chat_human.jsonl`), the bundled SmolLM2 continuations, BBC News and
the Lee corpus (ABC news). Each scorer's analytic curvature over the first 96 tokens.
AUROC of generated vs the human text of its own genre (chat answers have no human answers:
against BBC); and each human set's median shift from BBC, the reference of the audits here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]

# (generated set, the human set of its genre)
PAIRS = (
    ("gpt-3.5-turbo stories", "human stories"),
    ("gpt-4 stories", "human stories"),
    ("gpt-3.5-turbo biomedical", "human biomedical"),
    ("gpt-4 biomedical", "human biomedical"),
    ("gpt-3.5-turbo chat answers", "BBC news"),
    ("SmolLM2 continuations", "BBC news"),
)
HUMAN = ("BBC news", "ABC news (Lee)", "human stories", "human biomedical")


def text_sets(per_set: int, rng: np.random.Generator) -> dict[str, list[str]]:
    from detectors.corpora import bbc_news
    from detectors.synthetic.data import lee_news, smollm2_continuations

    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    chat = rows(ROOT / "detectors" / "synthetic" / "chat_examples.jsonl")
    human = rows(ROOT / "benchmarks" / "data" / "chat_human.jsonl")

    def take(texts: list[str]) -> list[str]:
        pick = rng.choice(len(texts), min(per_set, len(texts)), replace=False)
        return [texts[i] for i in np.sort(pick)]

    def chat_set(family: str, stratum: str) -> list[str]:
        return take([r["text"] for r in chat if r["family"] == family and r["stratum"] == stratum])

    return {
        "gpt-3.5-turbo stories": chat_set("gpt-3.5-turbo", "stories"),
        "gpt-4 stories": chat_set("gpt-4", "stories"),
        "gpt-3.5-turbo biomedical": chat_set("gpt-3.5-turbo", "biomedical-answers"),
        "gpt-4 biomedical": chat_set("gpt-4", "biomedical-answers"),
        "gpt-3.5-turbo chat answers": take(
            [r["text"] for r in chat if r["stratum"].startswith("chat-answers")]
        ),
        "SmolLM2 continuations": take([r["text"] for r in smollm2_continuations()]),
        "human stories": take([r["text"] for r in human if r["stratum"] == "stories"]),
        "human biomedical": take(
            [r["text"] for r in human if r["stratum"] == "biomedical-answers"]
        ),
        "BBC news": take([d.text for d in bbc_news()]),
        "ABC news (Lee)": take([d.text for d in lee_news()]),
    }


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    p, n = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
    return float(roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-set", type=int, default=60)
    parser.add_argument("--scorers", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from scorer_throughput import cpu_model  # this folder is on the path when run as a script

    from detectors.synthetic.curvature import CurvatureScorer
    from detectors.synthetic.models import resolve_source
    from service.settings import Settings

    sets = text_sets(args.per_set, np.random.default_rng(0))
    cache = Settings().model_cache_dir
    results = []
    for spec in args.scorers:
        scorer = CurvatureScorer(source=resolve_source(spec, cache), cache_dir=cache)
        t0 = time.perf_counter()
        scores = {name: scorer.score(texts) for name, texts in sets.items()}
        seconds = time.perf_counter() - t0
        bbc = float(np.nanmedian(scores["BBC news"]))
        row = {
            "scorer": spec,
            "model": scorer.model_name,
            "docs_per_s": sum(len(t) for t in sets.values()) / seconds,
            "auroc": {f"{g} vs {h}": auroc(scores[g], scores[h]) for g, h in PAIRS},
            "human_shift_from_bbc": {
                h: float(np.nanmedian(scores[h])) - bbc for h in HUMAN if h != "BBC news"
            },
            "median": {name: float(np.nanmedian(s)) for name, s in scores.items()},
        }
        results.append(row)
        print(f"{spec}: {row['docs_per_s']:.2f} docs/s", flush=True)
        for pair, value in row["auroc"].items():
            print(f"  AUROC {pair}: {value:.2f}")
        for human, shift in row["human_shift_from_bbc"].items():
            print(f"  median shift of {human} from BBC: {shift:+.2f}")
    out = {
        "command": f"benchmarks/scorer_families.py --per-set {args.per_set} "
        f"--scorers {' '.join(args.scorers)}",
        "cpu": cpu_model(),
        "date": time.strftime("%Y-%m-%d"),
        "per_set": {name: len(t) for name, t in sets.items()},
        "scorers": results,
    }
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
