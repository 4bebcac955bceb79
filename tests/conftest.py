"""Shared fixtures: the real embedding model and real text, loaded once per test session."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    from detectors.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def wiki_docs():
    from detectors.corpora import wikipedia_paragraphs

    return wikipedia_paragraphs()


@pytest.fixture(scope="session")
def wiki_vectors(embedder, wiki_docs) -> np.ndarray:
    """Every Wikipedia paragraph embedded with the real model (~3.4k documents)."""
    return embedder.embed([d.text for d in wiki_docs]).vectors
