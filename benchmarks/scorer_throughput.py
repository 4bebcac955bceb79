"""Documents a second each scorer reads, beside the embedding model on the same documents, in
one run: what a scorer costs an audit relative to the stage every audit pays anyway.

    .venv/bin/python benchmarks/scorer_throughput.py [--docs 96] [--tokens 96] \
        [--scorers smollm2-135m gemma3-270m] [--out benchmarks/results/scorer_throughput.json]

Real BBC News articles; every scorer through `detectors.synthetic.curvature.CurvatureScorer`
with the service's default precision ("auto": bfloat16 where the CPU computes in it natively),
on the torch threads this process has. A scorer's load is timed apart from its scoring (and
marked as the first when it dequantised the GGUF file and wrote the cache). The result file
records the CPU, the threads and the package versions, since every number here moves with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--scorers", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    import transformers

    from detectors.corpora import bbc_news
    from detectors.embedding import Embedder
    from detectors.synthetic.curvature import CurvatureScorer
    from detectors.synthetic.models import resolve_source
    from service.settings import Settings

    texts = [d.text for d in bbc_news()][: args.docs]
    cache = Settings().model_cache_dir
    embedder = Embedder()
    embedder.embed(texts[:8])  # warm
    t0 = time.perf_counter()
    embedder.embed(texts)
    embed_s = time.perf_counter() - t0
    rows = []
    for spec in args.scorers:
        source = resolve_source(spec, cache)
        scorer = CurvatureScorer(source=source, max_tokens=args.tokens, cache_dir=cache)
        cached = scorer.lm.cached_copy()
        cache_present = cached is None or cached.is_dir()
        t0 = time.perf_counter()
        scorer.lm.model  # noqa: B018 - the load is what is timed
        load_s = time.perf_counter() - t0
        scorer.score(texts[:4])  # warm
        t0 = time.perf_counter()
        scorer.score(texts)
        score_s = time.perf_counter() - t0
        rows.append(
            {
                "scorer": spec,
                "model": scorer.model_name,
                "precision": scorer.precision,
                "docs_per_s": args.docs / score_s,
                "ratio_to_embedding": score_s / embed_s,
                "load_s": load_s,
                # False: the load dequantised the GGUF file and wrote the cache (first use).
                "dequantised_copy_present": cache_present,
            }
        )
        print(
            f"{spec:14s} {args.docs / score_s:6.2f} docs/s ({scorer.precision}), "
            f"{score_s / embed_s:5.1f}x the embedding's time; load {load_s:.1f} s"
            + ("" if cache_present else " (first: dequantised and cached)"),
            flush=True,
        )
    result = {
        "command": "benchmarks/scorer_throughput.py "
        + f"--docs {args.docs} --tokens {args.tokens} --scorers {' '.join(args.scorers)}",
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "date": time.strftime("%Y-%m-%d"),
        "documents": args.docs,
        "tokens": args.tokens,
        "embedding_docs_per_s": args.docs / embed_s,
        "scorers": rows,
    }
    print(f"embedding      {args.docs / embed_s:6.2f} docs/s")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
