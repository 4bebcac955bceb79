"""Real recursive training, as ground truth for the forecast (issue 16).

The forecast (`simulations.forecast`) predicts what retraining on a corpus does from the corpus's
embeddings alone. This module does the retraining: a Kneser-Ney trigram model is trained on the
corpus's 64-token blocks, continues the first 8 tokens of each block, the next generation is
trained on that output, and so on (the paper's set-up, as in `simulations.lm`). Under keep-real,
a fraction beta of each generation's training blocks is replaced by fresh human blocks, as the
forecast's keep-real draws fresh human data. Each generation's output can then be embedded and
measured against a reference exactly as an audit measures a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from detectors.errors import InvalidInputError
from simulations.models.ngram import KneserNeyLM
from simulations.text import Vocabulary, tokenize

if TYPE_CHECKING:
    from simulations.models.torch_lm import GRULanguageModel

BLOCK, PROMPT = 64, 8


def blocks_of(vocab: Vocabulary, texts: Sequence[str], per_doc: int = 3) -> np.ndarray:
    """Up to `per_doc` consecutive 64-token blocks from the start of each document, as token ids
    over `vocab` (documents shorter than a block give none)."""
    out = []
    for text in texts:
        ids = vocab.encode(tokenize(text))
        for j in range(min(per_doc, len(ids) // BLOCK)):
            out.append(ids[j * BLOCK : (j + 1) * BLOCK])
    return np.array(out, dtype=np.int64).reshape(-1, BLOCK)


def recursive_outputs(
    start: np.ndarray,
    *,
    vocab_size: int,
    generations: int,
    policy: str = "replace",
    beta: float = 0.0,
    fresh: np.ndarray | None = None,
    order: int = 3,
    model: str = "kn",
    random_state: int = 0,
) -> list[np.ndarray]:
    """Each generation's output blocks [len(start), 64]; index 0 is `start` itself.

    `model`: "kn" (a Kneser-Ney n-gram of `order`) or "gru" (`simulations.models.torch_lm`,
    trained from scratch each generation, seeded from `random_state` and the generation).

    Generation g + 1's model is trained on generation g's output (replace) or on it with a
    fraction `beta` of its blocks swapped for blocks drawn from `fresh` (keep-real)."""
    if model not in ("kn", "gru"):
        raise InvalidInputError(f"model must be 'kn' or 'gru', got {model!r}")
    if policy not in ("replace", "keep-real"):
        raise InvalidInputError(f"policy must be 'replace' or 'keep-real', got {policy!r}")
    n_fresh = round(beta * len(start)) if policy == "keep-real" else 0
    if n_fresh and (fresh is None or len(fresh) < n_fresh):
        raise InvalidInputError(f"keep-real needs at least {n_fresh} fresh blocks")
    rng = np.random.default_rng([random_state, 3])
    prompts = start[:, :PROMPT]
    data, outputs = start, [start]
    for g in range(generations):
        lm: KneserNeyLM | GRULanguageModel
        if model == "gru":
            from simulations.models.torch_lm import GRULanguageModel  # torch only when asked

            lm = GRULanguageModel(vocab_size=vocab_size, random_state=random_state * 1000 + g)
        else:
            lm = KneserNeyLM(vocab_size=vocab_size, order=order)
        lm.fit(data)
        out = np.hstack([prompts, lm.sample_continuations(prompts, BLOCK - PROMPT, rng)])
        outputs.append(out)
        data = out
        if n_fresh and fresh is not None:
            data = out.copy()
            swap = rng.choice(len(out), n_fresh, replace=False)
            data[swap] = fresh[rng.choice(len(fresh), n_fresh, replace=False)]
    return outputs
