"""Interpolated Kneser-Ney n-gram language model over fixed-length token blocks, in numpy.

Chen & Goodman's interpolated KN with one absolute discount per order, D = n1 / (n1 + 2 n2):

  P_k(w | h) = (max(c_k(h w) - D_k, 0) + D_k * N1+(h .) * P_{k-1}(w | h')) / c_k(h .)

where c_N are raw counts at the highest order, c_k (k < N) are continuation counts (the number of
distinct words seen to the left of the k-gram), h' drops h's first word, and a context never seen
falls through to the lower order. The order-1 level interpolates with the uniform distribution
over the vocabulary (without <s>), so every word keeps some probability: a word that a
later generation never produced is improbable, not impossible, and held-out perplexity stays finite.

n-grams are stored as sorted int64 keys (sum tok_i V^i) and looked up with searchsorted, so
scoring is vectorised; sampling draws the order, then a word of that order's sparse counts
(`sample_next`), so it never builds a dense next-word distribution (except with a temperature).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp

from detectors.errors import InvalidInputError, NotFittedError

BOS_ID = 1


@dataclass(frozen=True)
class _Level:
    """One order k: k-gram keys with their (raw or continuation) counts, and per-context totals."""

    keys: np.ndarray  # sorted unique k-gram keys
    counts: np.ndarray  # count of each key
    discount: float
    ctx_keys: np.ndarray  # sorted unique (k-1)-gram context keys
    ctx_total: np.ndarray  # sum of counts over words following the context
    ctx_types: np.ndarray  # number of distinct words following the context
    table: sp.csr_matrix  # [n_contexts, V] of max(count - D, 0), for sampling


def _encode(grams: np.ndarray, vocab_size: int) -> np.ndarray:
    """Keys of k-grams [n, k] (k may be 0: the empty context, key 0)."""
    key = np.zeros(len(grams), dtype=np.int64)
    for j in range(grams.shape[1]):
        key = key * vocab_size + grams[:, j]
    return key


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[key] for each query key, 0 where the key is absent."""
    if len(keys) == 0:
        return np.zeros(query.shape, dtype=values.dtype)
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0)


def _discount(counts: np.ndarray) -> float:
    n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
    # Degenerate counts (no singletons or doubletons, e.g. a collapsed corpus): fall back to 0.75.
    return float(n1 / (n1 + 2 * n2)) if n1 > 0 and n2 > 0 else 0.75


class KneserNeyLM:
    """Order-N interpolated Kneser-Ney model; `fit` on blocks [n, L] of token ids in [0, V)."""

    def __init__(self, *, vocab_size: int, order: int = 3, temperature: float = 1.0) -> None:
        if not 2 <= order <= 4:
            raise InvalidInputError(f"order must be 2, 3 or 4, got {order}")
        if vocab_size < 3 or vocab_size**order >= 2**62:
            raise InvalidInputError(f"vocab_size must be in [3, 2^(62/order)), got {vocab_size}")
        if temperature <= 0:
            raise InvalidInputError(f"temperature must be positive, got {temperature}")
        self.vocab_size = vocab_size
        self.order = order
        self.temperature = temperature

    def _windows(self, blocks: np.ndarray) -> np.ndarray:
        """All order-N windows [n * L, N] of the blocks, each block left-padded with <s>."""
        blocks = np.asarray(blocks, dtype=np.int64)
        if blocks.ndim != 2 or blocks.size == 0:
            raise InvalidInputError("blocks must be a non-empty [n_blocks, block_size] array")
        if blocks.min() < 0 or blocks.max() >= self.vocab_size:
            raise InvalidInputError(f"token ids must be in [0, {self.vocab_size})")
        pad = np.full((len(blocks), self.order - 1), BOS_ID, dtype=np.int64)
        padded = np.hstack([pad, blocks])
        win = np.lib.stride_tricks.sliding_window_view(padded, self.order, axis=1)
        return win.reshape(-1, self.order)

    def fit(self, blocks: np.ndarray) -> Self:
        V, N = self.vocab_size, self.order
        keys, counts = np.unique(_encode(self._windows(blocks), V), return_counts=True)
        levels = [_level(keys, counts, V)]
        for k in range(N - 1, 0, -1):
            # Continuation count of a k-gram: how many distinct (k+1)-grams end with it. The
            # suffix of a (k+1)-gram key is the key mod V^k.
            keys, counts = np.unique(keys % V**k, return_counts=True)
            levels.append(_level(keys, counts, V))
        self.levels_ = levels[::-1]  # levels_[k - 1] is order k
        first = self.levels_[0]  # order 1: one (empty) context
        uniform = np.full(V, 1.0 / (V - 1))
        uniform[BOS_ID] = 0.0
        self.unigram_ = (
            first.table.toarray()[0] + first.discount * first.ctx_types[0] * uniform
        ) / first.ctx_total[0]
        self.n_tokens_ = int(np.asarray(blocks).size)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "levels_"):
            raise NotFittedError("KneserNeyLM is not fitted: call fit() first")

    def token_log_probs(self, blocks: np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of every block [n, L] (blocks are scored
        independently, each from <s> padding)."""
        self._check_fitted()
        V, N = self.vocab_size, self.order
        blocks = np.asarray(blocks)
        win = self._windows(blocks)
        p = np.where(win[:, -1] == BOS_ID, 0.0, 1.0 / (V - 1))
        for k, level in enumerate(self.levels_, start=1):
            key = _encode(win[:, N - k :], V)
            count = _lookup(level.keys, level.counts, key)
            ctx = key // V
            total = _lookup(level.ctx_keys, level.ctx_total, ctx)
            n_types = _lookup(level.ctx_keys, level.ctx_types, ctx)
            mixed = np.maximum(count - level.discount, 0.0) + level.discount * n_types * p
            p = np.where(total > 0, mixed / np.maximum(total, 1e-300), p)
        return np.log(p).reshape(blocks.shape)

    def perplexity(self, blocks: np.ndarray) -> float:
        """exp(mean negative log-likelihood per token) over all blocks."""
        return float(np.exp(-self.token_log_probs(blocks).mean()))

    def next_token_probs(self, history: np.ndarray) -> np.ndarray:
        """Dense next-token distributions [B, V] for histories [B, N - 1] (before temperature)."""
        self._check_fitted()
        V, N = self.vocab_size, self.order
        p = np.repeat(self.unigram_[None, :], len(history), axis=0)  # order 1 has no context
        for k, level in enumerate(self.levels_[1:], start=2):
            ctx = _encode(history[:, N - k :], V)
            pos = np.clip(np.searchsorted(level.ctx_keys, ctx), 0, len(level.ctx_keys) - 1)
            found = np.flatnonzero(level.ctx_keys[pos] == ctx)
            if len(found) == 0:
                continue
            rows = pos[found]
            total = level.ctx_total[rows]
            scale = np.ones(len(history))
            scale[found] = level.discount * level.ctx_types[rows] / total
            p *= scale[:, None]
            # Add the discounted counts of the seen contexts sparsely: O(entries), not O(B V).
            sub = level.table[rows]
            lengths = np.diff(sub.indptr)
            p[np.repeat(found, lengths), sub.indices] += sub.data / np.repeat(total, lengths)
        return p

    def sample_continuations(
        self, prompts: np.ndarray, length: int, rng: np.random.Generator, *, batch_size: int = 256
    ) -> np.ndarray:
        """`length` tokens after each prompt [B, P], sampled at the model's temperature."""
        self._check_fitted()
        prompts = np.asarray(prompts, dtype=np.int64)
        N = self.order
        pad = np.full((len(prompts), N - 1), BOS_ID, dtype=np.int64)
        context = np.hstack([pad, prompts])[:, -(N - 1) :]
        out = np.empty((len(prompts), length), dtype=np.int64)
        for start in range(0, len(prompts), batch_size):
            hist = context[start : start + batch_size].copy()
            for t in range(length):
                if self.temperature == 1.0:
                    tok = self.sample_next(hist, rng)
                else:
                    p = self.next_token_probs(hist)
                    with np.errstate(divide="ignore"):
                        p = np.exp(
                            (np.log(p) - np.log(p.max(axis=1, keepdims=True))) / self.temperature
                        )
                    cdf = np.cumsum(p, axis=1)
                    u = rng.random(len(hist)) * cdf[:, -1]
                    tok = np.minimum((cdf < u[:, None]).sum(axis=1), self.vocab_size - 1)
                out[start : start + len(hist), t] = tok
                hist = np.hstack([hist[:, 1:], tok[:, None]])
        return out

    def sample_next(self, history: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One token per history [B, N - 1], drawn from `next_token_probs` without building it.

        The interpolated distribution is a mixture: at the highest order whose context was
        seen, the discounted counts carry weight 1 - D N1+(h .) / c(h .) and the rest falls to
        the order below, down to the unigram. Choosing the order first and then a word of that
        order's sparse row costs O(words seen after the context) per history instead of O(V).
        """
        self._check_fitted()
        V, N = self.vocab_size, self.order
        history = np.asarray(history, dtype=np.int64)
        tok = np.empty(len(history), dtype=np.int64)
        u_level, u_word = rng.random(len(history)), rng.random(len(history))
        pending = np.arange(len(history))
        for k in range(N, 1, -1):
            level = self.levels_[k - 1]
            if not len(pending) or not len(level.ctx_keys):
                continue
            ctx = _encode(history[pending, N - k :], V)
            pos = np.clip(np.searchsorted(level.ctx_keys, ctx), 0, len(level.ctx_keys) - 1)
            seen = level.ctx_keys[pos] == ctx
            rows, cand = pos[seen], pending[seen]
            weight = 1.0 - level.discount * level.ctx_types[rows] / level.ctx_total[rows]
            here = u_level[cand] < weight
            tok[cand[here]] = _sample_rows(level.table[rows[here]], u_word[cand[here]])
            # The others fall to the order below with a fresh uniform: (u - w) / (1 - w).
            falls = cand[~here]
            u_level[falls] = (u_level[falls] - weight[~here]) / (1.0 - weight[~here])
            pending = np.concatenate([pending[~seen], falls])
        if len(pending):
            cdf = np.cumsum(self.unigram_)
            idx = np.searchsorted(cdf, u_word[pending] * cdf[-1], side="right")
            tok[pending] = np.minimum(idx, V - 1)
        return tok


def _sample_rows(rows: sp.csr_matrix, u: np.ndarray) -> np.ndarray:
    """One column per row of a non-negative sparse matrix, in proportion to the row's values,
    by inverse CDF on the uniforms `u` (one per row)."""
    cum = np.cumsum(rows.data)
    before = np.concatenate([[0.0], cum])[rows.indptr[:-1]]
    after = cum[rows.indptr[1:] - 1]
    idx = np.searchsorted(cum, before + u * (after - before), side="right")
    return rows.indices[np.clip(idx, rows.indptr[:-1], rows.indptr[1:] - 1)]


def _level(keys: np.ndarray, counts: np.ndarray, V: int) -> _Level:
    """Tables of one order from its sorted unique k-gram keys and their counts."""
    D = _discount(counts)
    ctx_keys, row, n_types = np.unique(keys // V, return_inverse=True, return_counts=True)
    total = np.bincount(row, weights=counts).astype(float)
    table = sp.csr_matrix((np.maximum(counts - D, 0.0), (row, keys % V)), shape=(len(ctx_keys), V))
    return _Level(keys, counts.astype(float), D, ctx_keys, total, n_types.astype(float), table)
