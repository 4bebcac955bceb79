"""A smoothed word trigram model of the reference, and per-document log-likelihood features.

Smoothing is hierarchical Dirichlet (MacKay-Peto): P(w | u v) = (c(u v w) + beta P(w | v)) /
(c(u v .) + beta), down to an add-one unigram. It needs nothing but counts, which matters here:
the model is cross-fitted. A reference document scored by a model that saw it looks far more
likely than any new document, so a classifier would learn "seen in training" instead of "human".
Each reference document is therefore scored by the model without its fold, and every other
document by the model without a (seeded) random fold, so both are scored by models of one size.
"Without fold j" is the full count minus fold j's count, so K models cost K+1 count tables.

Counts are kept as sorted int64 keys (exact: ids are packed base V, V^3 < 2^63 for V < 2M) with
np.searchsorted lookups: compact and fast for corpora of millions of tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from detectors.embedding import validate_texts
from detectors.errors import InsufficientDataError, InvalidInputError, NotFittedError
from detectors.textstats import tokenize

NGRAM_FEATURE_NAMES: tuple[str, ...] = (
    "ngram_logp_mean",
    "ngram_logp_std",
    "ngram_logp_p10",
    "ngram_unigram_logp_mean",
    "ngram_context_gain",
    "ngram_oov_rate",
    "ngram_unseen_bigram_rate",
    "ngram_unseen_trigram_rate",
)
_UNK, _BOS = 0, 1


class _Counts:
    """Sorted keys and counts of one table of n-grams."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys, self.counts = np.unique(keys, return_counts=True)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(keys), dtype=np.int64)
        pos = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, self.counts[pos], 0).astype(np.int64)


class NgramModel:
    """Cross-fitted, smoothed word trigram model of a reference corpus."""

    def __init__(
        self, *, n_folds: int = 5, beta: float = 2.0, min_count: int = 1, random_state: int = 0
    ) -> None:
        if n_folds < 2:
            raise InvalidInputError(f"n_folds must be at least 2 for cross-fitting, got {n_folds}")
        if beta <= 0:
            raise InvalidInputError(f"beta (smoothing strength) must be positive, got {beta}")
        self.n_folds = n_folds
        self.beta = beta
        self.min_count = min_count
        self.random_state = random_state

    def fit(self, texts: Sequence[str]) -> Self:
        docs = validate_texts(texts)
        if len(docs) < self.n_folds:
            raise InsufficientDataError(
                f"an n-gram model with {self.n_folds} folds needs at least {self.n_folds} "
                f"reference documents, got {len(docs)}"
            )
        tokenised = [[t.lower() for t in tokenize(d)] for d in docs]
        freq: dict[str, int] = {}
        for toks in tokenised:
            for t in toks:
                freq[t] = freq.get(t, 0) + 1
        vocab = sorted(w for w, c in freq.items() if c >= self.min_count)
        self.vocab_ = {w: i + 2 for i, w in enumerate(vocab)}
        self.V_ = len(self.vocab_) + 2
        rng = np.random.default_rng(self.random_state)
        self.folds_ = rng.permutation(np.arange(len(docs)) % self.n_folds)
        per_fold: list[list[np.ndarray]] = [[] for _ in range(self.n_folds)]
        for toks, fold in zip(tokenised, self.folds_, strict=True):
            per_fold[fold].append(self._ids(toks))
        # tables[f][order-1]: counts of fold f (f < n_folds) and of everything (f == n_folds).
        self.tables_: list[list[_Counts]] = []
        for f in range(self.n_folds + 1):
            seqs = [s for g in range(self.n_folds) if f in (g, self.n_folds) for s in per_fold[g]]
            self.tables_.append([_Counts(self._keys(seqs, n)) for n in (1, 2, 3)])
        self.n_tokens_ = [int(t[0].counts.sum()) for t in self.tables_]
        self.reference_features_ = np.vstack(
            [
                self._features(self._ids(t), int(f))
                for t, f in zip(tokenised, self.folds_, strict=True)
            ]
        )
        return self

    def _ids(self, toks: Sequence[str]) -> np.ndarray:
        ids = [self.vocab_.get(t, _UNK) for t in toks]
        return np.array([_BOS, _BOS, *ids], dtype=np.int64)

    def _keys(self, seqs: Sequence[np.ndarray], n: int) -> np.ndarray:
        parts = []
        for s in seqs:
            if len(s) - 2 >= 1:
                parts.append(self._pack(s, n))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _pack(self, s: np.ndarray, n: int) -> np.ndarray:
        """Keys of the n-grams ending at each real token of s (s starts with two BOS)."""
        m = len(s) - 2
        key = np.zeros(m, dtype=np.int64)
        for j in range(n):  # j = 0 is the earliest word of the n-gram
            key = key * self.V_ + s[2 - (n - 1) + j : 2 - (n - 1) + j + m]
        return key

    def _count(self, order: int, keys: np.ndarray, fold: int) -> np.ndarray:
        total = self.tables_[self.n_folds][order - 1].lookup(keys)
        return total - self.tables_[fold][order - 1].lookup(keys)

    def _features(self, s: np.ndarray, fold: int) -> np.ndarray:
        m = len(s) - 2
        if m == 0:
            return np.full(len(NGRAM_FEATURE_NAMES), np.nan)
        words = s[2:]  # unknown words are _UNK: count 0 in every table
        n_tok = self.n_tokens_[self.n_folds] - self.n_tokens_[fold]
        uni = self._count(1, words, fold)
        p1 = (uni + 1.0) / (n_tok + self.V_)
        k2, k3 = self._pack(s, 2), self._pack(s, 3)
        c2 = self._count(2, k2, fold)
        # Context counts are approximated by the counts of the context as an n-gram (off by the
        # document ends only); BOS contexts count 0, so the first token backs off to lower orders.
        ctx1 = self._count(1, s[1 : 1 + m], fold)
        p2 = (c2 + self.beta * p1) / (ctx1 + self.beta)
        c3 = self._count(3, k3, fold)
        ctx2 = self._count(2, s[0:m] * self.V_ + s[1 : 1 + m], fold)
        p3 = (c3 + self.beta * p2) / (ctx2 + self.beta)
        lp3, lp1 = np.log(p3), np.log(p1)
        return np.array(
            [
                lp3.mean(),
                lp3.std(),
                np.quantile(lp3, 0.1),
                lp1.mean(),
                (lp3 - lp1).mean(),
                # Unseen by this model (not "outside the vocabulary"): a reference document's rare
                # words are in the vocabulary but not in the model that scores it.
                float(np.mean(uni == 0)),
                float(np.mean(c2 == 0)),
                float(np.mean(c3 == 0)),
            ]
        )

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Features of new documents, each scored by the model without one seeded random fold."""
        if not hasattr(self, "tables_"):
            raise NotFittedError("this NgramModel is not fitted: call fit(reference_texts) first")
        docs = validate_texts(texts)
        rng = np.random.default_rng([self.random_state, 1])
        folds = rng.integers(self.n_folds, size=len(docs))
        return np.vstack(
            [
                self._features(self._ids([t.lower() for t in tokenize(d)]), int(f))
                for d, f in zip(docs, folds, strict=True)
            ]
        )

    def reference_features(self, texts: Sequence[str]) -> np.ndarray:
        """Features of the fitted reference documents (or excerpts of them, in the same order),
        each scored by the model without its own fold, as `reference_features_` is."""
        if not hasattr(self, "tables_"):
            raise NotFittedError("this NgramModel is not fitted: call fit(reference_texts) first")
        docs = validate_texts(texts)
        if len(docs) != len(self.folds_):
            raise InvalidInputError(
                f"expected the {len(self.folds_)} reference documents in fit order, got {len(docs)}"
            )
        return np.vstack(
            [
                self._features(self._ids([t.lower() for t in tokenize(d)]), int(f))
                for d, f in zip(docs, self.folds_, strict=True)
            ]
        )
