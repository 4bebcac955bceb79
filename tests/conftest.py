"""Shared fixtures: the real embedding model and real text, loaded once per test session.

Embeddings of fixed test corpora are cached on disk under `.cache/test-embeddings/` (git-ignored),
keyed by the model, the library versions and a hash of the texts: a fresh clone (CI) computes them
with the real model; a developer re-running the suite gets the same vectors without the wait.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The language-model scorer (the product's default synthetic method) costs ~0.25 s a document:
# tests of the audit's other stages read the synthetic fraction from the embedding estimator,
# and the curvature path has its own real-model tests (tests/service/test_audit_curvature.py,
# test_newcomer_e2e.py), which ask for it by name.
os.environ.setdefault("COLLAPSE_GUARD_SYNTHETIC_METHOD", "embedding")

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "test-embeddings"

# `make test` runs the suite on pytest-xdist workers, one per core: much of it is single-threaded
# (subprocess start-up, the forecasts' recursion, SQLite), so two workers keep two cores busy. A
# worker's own torch work gets its share of the cores, not all of them each (oversubscribed
# OpenMP threads spin against each other).
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    _share = max(1, (os.cpu_count() or 1) // int(workers))
    torch.set_num_threads(_share)
    # The CLI and server processes the tests start inherit the same share.
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))

# The longest files first (measured: per-file totals of `make test` with --durations=0 in a fresh
# clone, Zen 3, 2 workers): each stays on one worker, and started last one of them would leave
# the other worker idle while it runs alone.
LONGEST_FIRST = (
    "test_newcomer_e2e.py",  # 413 s
    "test_cli.py",  # 341 s
    "test_audit_curvature.py",  # 291 s
    "test_estimator.py",  # 259 s
    "test_engines.py",  # 202 s
    "test_ground_truth.py",  # 196 s
    "test_top_up.py",  # 194 s, most of it the Wikipedia paragraphs test_coverage embeds too
    "test_coverage.py",  # 188 s
    "test_api.py",  # 177 s
    "test_api_server.py",  # 127 s
    "test_cli_remote.py",  # 105 s
    "test_curvature.py",  # 83 s
    "test_building.py",  # 80 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and among the rest, the collected order


@pytest.fixture(scope="session")
def embedder():
    from detectors.embedding import Embedder

    return Embedder()


# Texts per cache file. Two workers asking for the same corpus at once (the Wikipedia paragraphs,
# the BBC sample) split it: each embeds the chunks nobody has started, then reads the other's.
CHUNK = 128


@pytest.fixture(scope="session")
def embed_cached(embedder) -> Callable[[Sequence[str]], np.ndarray]:
    """Embed texts with the real model, each distinct text once per session.

    Tests embed overlapping slices of the same corpora (BBC articles in other orders, the same
    SmolLM2 rows): vectors are remembered per text, so only texts this session has not embedded
    yet go through the model. On disk, a call's texts are cached in chunks of `CHUNK` (for a
    developer's re-run, and so that pytest-xdist workers share the work instead of one waiting
    for the other's whole call).
    """
    import sentence_transformers
    import torch
    from filelock import Timeout

    setup = hashlib.sha256()
    versions = (sentence_transformers.__version__, torch.__version__)
    for part in (embedder.model_name, embedder.precision, *versions):
        setup.update(part.encode() + b"\0")
    known: dict[bytes, np.ndarray] = {}  # sha256(setup, text) -> its vector

    def text_key(text: str) -> bytes:
        digest = setup.copy()
        digest.update(text.encode())
        return digest.digest()

    def chunk_path(keys: Sequence[bytes]) -> Path:
        return CACHE_DIR / f"{hashlib.sha256(b''.join(keys)).hexdigest()[:32]}.npy"

    def load_or_embed(path: Path, keys: Sequence[bytes], texts: Sequence[str]) -> None:
        """The chunk's vectors into `known`: from its file, or embedded now and saved (the
        caller holds the chunk's lock)."""
        if path.is_file():
            known.update(zip(keys, np.load(path), strict=True))
            return
        todo = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
        if todo:
            fresh = embedder.embed(list(todo.values())).vectors
            known.update(zip(todo, fresh, strict=True))
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, np.stack([known[key] for key in keys]))
        os.replace(tmp, path)  # atomic: a reader never sees a partial file

    def embed(texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return embedder.embed([]).vectors  # the embedder's own empty-input error
        keys = [text_key(t) for t in texts]
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        # The same call makes the same chunks in every worker, whatever each already knows.
        chunks = [range(i, min(i + CHUNK, len(keys))) for i in range(0, len(keys), CHUNK)]
        waiting = []
        for chunk in chunks:  # first pass: the chunks no other worker is embedding
            ck, ct = [keys[i] for i in chunk], [texts[i] for i in chunk]
            if all(key in known for key in ck):
                continue
            path = chunk_path(ck)
            try:
                with FileLock(path.with_suffix(".lock"), timeout=0):
                    load_or_embed(path, ck, ct)
            except Timeout:
                waiting.append((path, ck, ct))
        for path, ck, ct in waiting:  # then the others', once their worker is done
            with FileLock(path.with_suffix(".lock")):
                load_or_embed(path, ck, ct)  # embeds it only if that worker died
        return np.stack([known[key] for key in keys])

    return embed


@pytest.fixture(scope="session")
def wiki_docs():
    from detectors.corpora import wikipedia_paragraphs

    return wikipedia_paragraphs()


@pytest.fixture(scope="session")
def wiki_vectors(embed_cached, wiki_docs) -> np.ndarray:
    """Every Wikipedia paragraph embedded with the real model (~3.4k documents)."""
    return embed_cached([d.text for d in wiki_docs])


@pytest.fixture(scope="session")
def bbc_docs():
    from detectors.corpora import bbc_news

    return bbc_news()


@pytest.fixture(scope="session")
def bbc_sample(bbc_docs) -> list[str]:
    """1,100 of the 2,225 BBC News articles in a seeded random order: the BBC text the tests embed
    (any slice of it is embedded once a session, through `embed_cached`)."""
    order = np.random.default_rng(0).permutation(len(bbc_docs))
    return [bbc_docs[i].text for i in order[:1100]]


@pytest.fixture(scope="session")
def bbc_sample_vectors(embed_cached, bbc_sample) -> np.ndarray:
    return embed_cached(bbc_sample)
