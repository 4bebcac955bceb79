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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The language-model scorer (the product's default synthetic method) costs ~0.25 s a document:
# tests of the audit's other stages read the synthetic fraction from the embedding estimator,
# and the curvature path has its own real-model tests (tests/service/test_audit_curvature.py,
# test_newcomer_e2e.py), which ask for it by name.
os.environ.setdefault("COLLAPSE_GUARD_SYNTHETIC_METHOD", "embedding")

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "test-embeddings"


@pytest.fixture(scope="session")
def embedder():
    from detectors.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def embed_cached(embedder) -> Callable[[Sequence[str]], np.ndarray]:
    """Embed texts with the real model, each distinct text once per session.

    Tests embed overlapping slices of the same corpora (BBC articles in other orders, the same
    SmolLM2 rows): vectors are remembered per text, so only texts this session has not embedded
    yet go through the model. Whole calls are also cached on disk for a developer's re-run.
    """
    import sentence_transformers
    import torch

    setup = hashlib.sha256()
    versions = (sentence_transformers.__version__, torch.__version__)
    for part in (embedder.model_name, embedder.precision, *versions):
        setup.update(part.encode() + b"\0")
    known: dict[bytes, np.ndarray] = {}  # sha256(setup, text) -> its vector

    def text_key(text: str) -> bytes:
        digest = setup.copy()
        digest.update(text.encode())
        return digest.digest()

    def embed(texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return embedder.embed([]).vectors  # the embedder's own empty-input error
        keys = [text_key(t) for t in texts]
        calls = setup.copy()
        for key in keys:
            calls.update(key)
        path = CACHE_DIR / f"{calls.hexdigest()[:32]}.npy"
        if path.is_file():
            vectors = np.load(path)
            known.update(zip(keys, vectors, strict=True))
        else:
            todo = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
            if todo:
                fresh = embedder.embed(list(todo.values())).vectors
                known.update(zip(todo, fresh, strict=True))
            vectors = np.stack([known[key] for key in keys])
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)  # atomic: concurrent test runs never read a partial file
        return vectors

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
