"""Peak memory of a streamed reference build at several sizes, beside what the built reference
itself holds once loaded: the difference should not grow with N.

    .venv/bin/python benchmarks/reference_build_memory.py [--real 1000,4000] [--cheap 20000,100000]

Each build runs in a fresh process (`--worker`), through `service.audit.build_reference` on a
`CorpusReader` over a JSONL file, as `collapse-guard reference build` does, and reports its peak
resident memory (VmHWM from /proc/self/status), the wall time and the documents per second. A
second fresh process (`--load`) loads the built reference (`Store.load_reference`) and reports its
RSS growth: the index with the indexed vectors, the held-out vectors, radii and snippets, which a
reference needs in memory to be used at all.

- real: real documents (BBC News articles, then Wikipedia paragraphs: 5,6k available) embedded
  with the real model (all-MiniLM-L6-v2), chunk 4096 (the default).
- cheap: the same real texts recycled, each copy tagged with its index so that every document is
  distinct (the augmentation), and a stand-in embedder that maps each text to a seeded random unit
  vector of 384 dimensions in microseconds: the build's own memory at sizes the real model would
  take hours to reach (about 70 documents/s on 2 cores); the vectors are the same size as real
  ones, only not meaningful.

Beside the peak, each row states the vectors' own size (N x 384 x 4 bytes), the texts' size, the
loaded reference's size and the build's growth beyond it (`growth_beyond_loaded_reference_mb`):
the build holds one chunk of texts and vectors while embedding, then fits from the staged files a
block at a time, so that column is about one chunk and one block whatever N is.
Results: benchmarks/results/reference_build_memory.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("COLLAPSE_GUARD_SYNTHETIC_METHOD", "embedding")  # no LM scoring step

RESULTS = Path(__file__).resolve().parent / "results" / "reference_build_memory.json"
DIM = 384


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def current_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class CheapEmbedder:
    """A seeded random unit vector per text (stands in for the model; see the module doc)."""

    model_name = "cheap-random-384"

    def embed(self, texts, *, progress=None):  # type: ignore[no-untyped-def]
        from detectors.embedding import EmbeddingResult

        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIM)
            out[i] = v / np.linalg.norm(v)
        if progress is not None:
            progress(len(texts), len(texts))
        return EmbeddingResult(
            vectors=out,
            n_documents=len(texts),
            n_long=0,
            n_windows=len(texts),
            long_documents="truncate",
            model=self.model_name,
        )


def real_texts() -> list[str]:
    from detectors.corpora import bbc_news, wikipedia_paragraphs

    return [d.text for d in bbc_news()] + [d.text for d in wikipedia_paragraphs()]


def write_corpus(path: Path, n: int, *, tagged: bool) -> int:
    """N documents as JSONL; returns the texts' total size in bytes (UTF-8)."""
    texts = real_texts()
    if not tagged and n > len(texts):
        raise SystemExit(f"only {len(texts)} real documents: ask for at most that many")
    total = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = texts[i % len(texts)] + (f" [copy {i // len(texts)}]" if tagged else "")
            total += len(text.encode())
            fh.write(json.dumps({"text": text}) + "\n")
    return total


def worker(corpus: Path, data_dir: Path, kind: str) -> dict:
    from detectors.embedding import Embedder
    from service.audit import build_reference
    from service.inputs import CorpusReader
    from service.settings import Settings
    from service.store import Store

    embedder = Embedder() if kind == "real" else CheapEmbedder()
    if kind == "real":
        embedder.embed(["warm the model up"])
    settings = Settings(data_dir=data_dir)
    baseline = current_rss_bytes()  # the model and libraries, before the build
    with Store(settings) as store:
        t0 = time.perf_counter()
        info = build_reference(
            store,
            "ref",
            CorpusReader([corpus]),
            embedder=embedder,  # type: ignore[arg-type]
            settings=settings,
        )
        seconds = time.perf_counter() - t0
    return {
        "documents": info.size,
        "seconds": round(seconds, 1),
        "documents_per_second": round(info.size / seconds, 1),
        "rss_before_build_mb": round(baseline / 2**20, 1),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
    }


def load_worker(data_dir: Path) -> dict:
    """RSS growth of loading the built reference in a fresh process: what the reference itself
    holds (its index with the indexed vectors, the held-out vectors, radii and snippets)."""
    from service.settings import Settings
    from service.store import Store

    before = current_rss_bytes()
    with Store(Settings(data_dir=data_dir)) as store:
        _, reference = store.load_reference("ref")
        grown = current_rss_bytes() - before
        kind = reference.index_kind_
    return {"loaded_reference_mb": round(grown / 2**20, 1), "index": kind}


def run(n: int, kind: str, tmp: Path) -> dict:
    corpus = tmp / f"{kind}-{n}.jsonl"
    text_bytes = write_corpus(corpus, n, tagged=kind == "cheap")
    data_dir = tmp / f"data-{kind}-{n}"
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(corpus), str(data_dir), kind],
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    loaded = subprocess.run(
        [sys.executable, __file__, "--load", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    row |= json.loads(loaded.stdout.strip().splitlines()[-1])
    growth = row["peak_rss_mb"] - row["rss_before_build_mb"]
    row |= {
        "embedder": "all-MiniLM-L6-v2" if kind == "real" else CheapEmbedder.model_name,
        "texts_mb": round(text_bytes / 2**20, 1),
        "vectors_mb": round(n * DIM * 4 / 2**20, 1),
        "growth_over_baseline_mb": round(growth, 1),
        "growth_beyond_loaded_reference_mb": round(growth - row["loaded_reference_mb"], 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", default="1000,4000", help="sizes built with the real model")
    parser.add_argument("--cheap", default="20000,100000", help="sizes with the stand-in")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load_worker(args.load)))
        return
    if args.worker:
        corpus, data_dir, kind = args.worker
        print(json.dumps(worker(Path(corpus), Path(data_dir), kind)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-build-memory-") as tmp:
        for kind, sizes in (("real", args.real), ("cheap", args.cheap)):
            for n in filter(None, (int(s) for s in sizes.split(",") if s)):
                rows.append(run(n, kind, Path(tmp)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"chunk_documents": 4096, "cpu_count": os.cpu_count(), "runs": rows}, indent=2)
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
