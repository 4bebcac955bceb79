"""Cheap per-document text statistics that carry the signature of generated text.

Small language models sampling freely repeat themselves (low distinct-n, repeated n-grams, text that
compresses well) or, at high temperature, drift into rare words and invented names; their
punctuation and function-word rates also differ from edited human prose.

Every statistic is computed over fixed-size windows and averaged, never over the whole document:
distinct-n ratios, repetition and compression all move with length, and a candidate corpus rarely
has the reference's document lengths. Document length itself is deliberately not a feature.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from detectors.embedding import validate_texts

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
WINDOW = 48  # tokens per window: about two sentences, shorter than most documents
STRIDE = 24
CHAR_WINDOW = 256  # characters per compression window

# A short list of English function words; their rate is a style marker that is mostly
# independent of topic.
_FUNCTION_WORDS_TEXT = (
    "a an the and or but if of in on at to for from by with as is are was were be been being it "
    "its this that these those he she they we you i his her their our your not no so than then "
    "there which who whom what when where while would could should will can may might has have "
    "had do does did "
)
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())

TEXT_STAT_NAMES: tuple[str, ...] = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "repeat_2",
    "repeat_3",
    "repeat_4",
    "compression_ratio",
    "mean_word_length",
    "std_word_length",
    "mean_sentence_length",
    "function_word_rate",
    "punctuation_rate",
    "comma_rate",
    "capitalised_rate",
    "digit_rate",
    "quote_rate",
)


def tokenize(text: str) -> list[str]:
    """Words and single punctuation marks, case kept (callers lower-case when they need to)."""
    return TOKEN_RE.findall(text)


def _windows(n: int) -> list[tuple[int, int]]:
    if n <= WINDOW:
        return [(0, n)]
    starts = list(range(0, n - WINDOW + 1, STRIDE))
    if starts[-1] + WINDOW < n:  # cover the end too
        starts.append(n - WINDOW)
    return [(s, s + WINDOW) for s in starts]


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _distinct(tokens: Sequence[str], n: int) -> float:
    grams = _ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def _repeated(tokens: Sequence[str], n: int) -> float:
    """Fraction of n-gram occurrences whose n-gram occurs more than once in the window."""
    grams = _ngrams(tokens, n)
    if not grams:
        return 0.0
    counts: dict[tuple[str, ...], int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    return sum(c for c in counts.values() if c > 1) / len(grams)


def _compression(text: str) -> float:
    data = text.encode("utf-8")
    if len(data) <= CHAR_WINDOW:
        chunks = [data]
    else:
        chunks = [data[i : i + CHAR_WINDOW] for i in range(0, len(data) - CHAR_WINDOW + 1, 128)]
    return float(np.mean([len(zlib.compress(c, 9)) / len(c) for c in chunks]))


def document_statistics(text: str) -> np.ndarray:
    """The `TEXT_STAT_NAMES` statistics of one document, as a float64 vector."""
    tokens = tokenize(text)
    lower = [t.lower() for t in tokens]
    words = [t for t in tokens if t[0].isalnum() or t[0] == "_"]
    n_tok = max(len(tokens), 1)
    n_words = max(len(words), 1)
    wins = _windows(len(lower))
    win_stats = np.array(
        [
            [
                _distinct(lower[a:b], 1),
                _distinct(lower[a:b], 2),
                _distinct(lower[a:b], 3),
                _repeated(lower[a:b], 2),
                _repeated(lower[a:b], 3),
                _repeated(lower[a:b], 4),
            ]
            for a, b in wins
        ]
    ).mean(axis=0)
    word_lengths = np.array([len(w) for w in words], dtype=float) if words else np.zeros(1)
    sentences = max(sum(1 for t in tokens if t in {".", "!", "?"}), 1)
    punct = sum(1 for t in tokens if not (t[0].isalnum() or t[0] == "_"))
    return np.array(
        [
            *win_stats,
            _compression(text),
            word_lengths.mean(),
            word_lengths.std(),
            # Documents end mid-sentence (cut windows), so this is words per sentence mark.
            len(words) / sentences,
            sum(1 for w in lower if w in FUNCTION_WORDS) / n_words,
            punct / n_tok,
            tokens.count(",") / n_tok,
            sum(1 for w in words if w[0].isupper()) / n_words,
            sum(1 for w in words if any(c.isdigit() for c in w)) / n_words,
            sum(1 for t in tokens if t in {'"', "'", "`"}) / n_tok,
        ],
        dtype=np.float64,
    )


def text_statistics(texts: Sequence[str]) -> np.ndarray:
    """Statistics of every document: float64 [n_documents, len(TEXT_STAT_NAMES)]."""
    docs = validate_texts(texts)
    return np.vstack([document_statistics(t) for t in docs])
