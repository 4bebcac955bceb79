"""Real text as fixed-length blocks of token ids over a vocabulary frozen at generation 0.

The vocabulary comes from the original training split only and is shared by every generation (the
paper's OPT tokenizer is fixed too). If each generation rebuilt its vocabulary from its own text,
a collapsed model would map ever more words to <unk> and look *better* on held-out perplexity.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.errors import EmptyCorpusError, InsufficientDataError, InvalidInputError

UNK, BOS, EOD = "<unk>", "<s>", "</d>"  # unknown word, left padding of a context, end of document
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+(?:[.,][0-9]+)*|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, numbers and single punctuation marks."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]  # id -> token; ids 0, 1, 2 are <unk>, <s>, </d>

    @classmethod
    def build(
        cls, documents: Sequence[Sequence[str]], *, min_count: int = 2, max_size: int | None = None
    ) -> Vocabulary:
        """Words seen at least `min_count` times, most frequent first, at most `max_size` in all."""
        counts = Counter(tok for doc in documents for tok in doc)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 3)]
        return cls((UNK, BOS, EOD, *ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        index = self.index
        return np.array([index.get(t, 0) for t in tokens], dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return " ".join(self.tokens[int(i)] for i in ids)


def to_blocks(ids: np.ndarray, block_size: int) -> np.ndarray:
    """Cut a token stream into consecutive [n_blocks, block_size] blocks; drop the remainder."""
    n = len(ids) // block_size
    return ids[: n * block_size].reshape(n, block_size)


def encode_blocks(
    vocabulary: Vocabulary, documents: Sequence[Sequence[str]], block_size: int
) -> np.ndarray:
    """Tokenized documents joined by </d>, encoded over `vocabulary`, cut into blocks."""
    return to_blocks(
        vocabulary.encode([tok for doc in documents for tok in (*doc, EOD)]), block_size
    )


@dataclass(frozen=True)
class TextCorpus:
    """A real corpus split by document into training and held-out blocks of one vocabulary."""

    vocabulary: Vocabulary
    train_blocks: np.ndarray  # [n_train, block_size] int64
    heldout_blocks: np.ndarray  # [n_heldout, block_size] int64
    block_size: int
    n_documents: int

    @property
    def unk_rate(self) -> float:
        return float(np.mean(self.heldout_blocks == 0))


def prepare_corpus(
    texts: Sequence[str],
    *,
    block_size: int = 64,
    heldout_fraction: float = 0.1,
    min_count: int = 2,
    max_vocabulary: int | None = None,
    random_state: int = 0,
) -> TextCorpus:
    """Shuffle documents (seeded), hold out a fraction of them, build the vocabulary on the rest,
    and cut each side's token stream (documents joined by </d>) into blocks."""
    if isinstance(texts, str) or len(texts) == 0:
        raise EmptyCorpusError("pass a non-empty list of documents (strings)")
    if block_size < 2:
        raise InvalidInputError(f"block_size must be at least 2, got {block_size}")
    if not 0 < heldout_fraction < 1:
        raise InvalidInputError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    docs = [tokenize(t) for t in texts]
    order = np.random.default_rng(random_state).permutation(len(docs))
    n_held = max(1, round(heldout_fraction * len(docs)))
    held, train = [docs[i] for i in order[:n_held]], [docs[i] for i in order[n_held:]]
    vocab = Vocabulary.build(train, min_count=min_count, max_size=max_vocabulary)

    train_blocks = encode_blocks(vocab, train, block_size)
    held_blocks = encode_blocks(vocab, held, block_size)
    if len(train_blocks) < 2 or len(held_blocks) < 1:
        raise InsufficientDataError(
            f"the corpus gives {len(train_blocks)} training and {len(held_blocks)} held-out "
            f"blocks of "
            f"{block_size} tokens; pass more text or a smaller block_size"
        )
    return TextCorpus(vocab, train_blocks, held_blocks, block_size, len(texts))
