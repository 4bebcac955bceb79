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

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "test-embeddings"


@pytest.fixture(scope="session")
def embedder():
    from detectors.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def embed_cached(embedder) -> Callable[[Sequence[str]], np.ndarray]:
    """Embed texts with the real model, reusing vectors cached by an earlier run."""
    import sentence_transformers
    import torch

    def embed(texts: Sequence[str]) -> np.ndarray:
        digest = hashlib.sha256()
        for part in (embedder.model_name, sentence_transformers.__version__, torch.__version__):
            digest.update(part.encode() + b"\0")
        for text in texts:
            digest.update(text.encode() + b"\0")
        path = CACHE_DIR / f"{digest.hexdigest()[:32]}.npy"
        if path.is_file():
            return np.load(path)
        vectors = embedder.embed(list(texts)).vectors
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
def bbc_vectors(embed_cached, bbc_docs) -> np.ndarray:
    """Every BBC News article (2,225) embedded with the real model."""
    return embed_cached([d.text for d in bbc_docs])
