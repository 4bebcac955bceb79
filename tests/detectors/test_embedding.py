"""The real embedding model: offline, normalised, deterministic, explicit about long documents."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.embedding import Embedder, validate_texts
from detectors.errors import EmptyCorpusError, InvalidInputError, ModelNotFoundError

pytestmark = pytest.mark.slow


def test_vectors_are_unit_float32_and_semantic(embedder):
    texts = [
        "The central bank raised interest rates to curb inflation.",
        "Interest rates were increased by the central bank to fight rising prices.",
        "The striker scored twice in the second half of the cup final.",
    ]
    result = embedder.embed(texts)
    assert result.vectors.dtype == np.float32
    assert result.vectors.shape == (3, embedder.dimension) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    sims = result.vectors @ result.vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # paraphrases are far closer than another topic
    assert result.model == "all-MiniLM-L6-v2"


def test_deterministic_and_batch_independent(embedder, wiki_docs):
    texts = [d.text for d in wiki_docs[:40]]
    a = embedder.embed(texts).vectors
    b = embedder.embed(texts).vectors
    np.testing.assert_array_equal(a, b)
    # A different batch composition pads differently; values must agree to float precision.
    single = Embedder(batch_size=7).embed(texts).vectors
    np.testing.assert_allclose(single, a, atol=1e-5)


def test_matches_bare_sentence_transformers(embedder, wiki_docs):
    from sentence_transformers import SentenceTransformer

    texts = [d.text for d in wiki_docs[:16]]
    bare = SentenceTransformer(str(embedder.model_path), device="cpu")
    expected = bare.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(embedder.embed(texts).vectors, expected, atol=1e-5)


def test_truncation_is_counted_not_silent(embedder):
    short = "A short sentence about rivers."
    long = " ".join(["The river flooded the valley after weeks of rain."] * 60)  # >> 256 tokens
    result = embedder.embed([short, long, long])
    assert result.n_long == 2
    assert result.n_windows == 3


def test_chunking_embeds_every_window(wiki_docs):
    chunker = Embedder(long_documents="chunk")
    first = "Volcanoes erupt molten rock, ash and gases from the mantle through the crust. " * 30
    second = "The orchestra rehearsed the symphony for the concert season at the hall. " * 30
    doc = first + second
    result = chunker.embed([doc, first[:200]])
    assert result.n_long == 1
    assert result.n_windows > 3
    # The pooled vector sits between its two halves' topics, unlike the truncated one.
    halves = chunker.embed([first[:1000], second[:1000]]).vectors
    pooled = result.vectors[0]
    assert pooled @ halves[1] > Embedder().embed([doc]).vectors[0] @ halves[1]
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


def test_progress_reports_every_block(wiki_docs):
    seen: list[tuple[int, int]] = []
    Embedder(block_size=10).embed(
        [d.text for d in wiki_docs[:25]], progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(10, 25), (20, 25), (25, 25)]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ([], EmptyCorpusError, "empty"),
        (["fine", "   "], EmptyCorpusError, "document 1 is empty"),
        (["fine", 3], InvalidInputError, "document 1 is a int"),
        ("just one string", InvalidInputError, "single string"),
        (None, InvalidInputError, "NoneType"),
    ],
)
def test_bad_input_says_what_to_fix(bad, error, message):
    with pytest.raises(error, match=message):
        validate_texts(bad)


def test_unknown_model_names_the_setting(tmp_path):
    with pytest.raises(ModelNotFoundError, match="COLLAPSE_GUARD_EMBEDDING_MODEL"):
        Embedder(model="some-org/not-a-local-model")
    (tmp_path / "config.json").write_text("{}")  # looks like a model folder, but is not one
    with pytest.raises(ModelNotFoundError, match="COLLAPSE_GUARD_EMBEDDING_MODEL"):
        Embedder(model=tmp_path)
