"""The real embedding model: offline, normalised, deterministic, explicit about long documents."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import embedding
from detectors.embedding import Embedder, native_bfloat16, resolve_precision, validate_texts
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
    # Another batch size and order: each document is padded to a length of its own, so its
    # vector never depends on its batch-mates' lengths, only on the matrix kernels' rounding for
    # another row count (oneDNN blocks by rows). That is one rounding unit of the precision at
    # a unit vector's scale: bfloat16 keeps 8 mantissa bits (2**-9 relative), float32 24.
    unit = 2.0**-9 if embedder.precision == "bfloat16" else 2.0**-20
    for batch_size in (1, 7):
        other = Embedder(batch_size=batch_size).embed(texts[::-1]).vectors[::-1]
        np.testing.assert_allclose(other, a, rtol=0, atol=unit)


def test_matches_bare_sentence_transformers(embedder, wiki_docs):
    from sentence_transformers import SentenceTransformer

    texts = [d.text for d in wiki_docs[:16]]
    bare = SentenceTransformer(str(embedder.model_path), device="cpu")
    expected = bare.encode(texts, normalize_embeddings=True)
    exact = Embedder(precision="float32")
    np.testing.assert_allclose(exact.embed(texts).vectors, expected, atol=1e-5)


def test_precision_auto_agrees_with_float32(embedder, wiki_docs, monkeypatch):
    assert embedder.precision == ("bfloat16" if native_bfloat16() else "float32")
    texts = [d.text for d in wiki_docs[:64]]
    exact = Embedder(precision="float32")
    assert exact.precision == "float32"
    cosine = (embedder.embed(texts).vectors * exact.embed(texts).vectors).sum(axis=1)
    # bfloat16 keeps 8 mantissa bits (relative rounding 2**-9) with float32 accumulation: far
    # above the 0.99 a faster backend must keep; a real regression (fp16 overflow, a wrong
    # cast) lands below 0.99.
    assert float(cosine.min()) > 0.999
    # Without native instructions bfloat16 is emulated and slower: auto stays in float32.
    monkeypatch.setattr(embedding, "native_bfloat16", lambda: False)
    assert resolve_precision("auto", "cpu") == "float32"
    assert resolve_precision("auto", "cuda") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    for bad in (("fp8", "cpu"), ("bfloat16", "cuda")):
        with pytest.raises(InvalidInputError, match="COLLAPSE_GUARD_EMBEDDING_PRECISION"):
            resolve_precision(*bad)


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
        (["fine", "a truncated emoji \ud83d"], InvalidInputError, r"document 1 holds a lone"),
        (["\udc80 from a mis-decoded byte"], InvalidInputError, r"\\udc80\) at character 0"),
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
