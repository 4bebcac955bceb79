"""The Binoculars score (Hans et al., ICML 2024): a text's perplexity under one model, relative
to how surprising a second model's predictions are to the first.

With an observer M1 and a performer M2 that share a tokenizer, per position t of text x:

    ppl_t  = -log M2(x_t | x_<t)                          (the performer's surprise at the text)
    xppl_t = -sum_v M1(v | x_<t) log M2(v | x_<t)         (its surprise at the observer's guesses)
    B(x)   = sum_t ppl_t / sum_t xppl_t

as in the authors' code (the ratio of the two means). Text of a chat model is unsurprising
relative to what any strong model would have said next, so B is low for it; the profiles here
hold -B so that, as with curvature, higher means more like machine text. Two small models see
little; the score was made for pairs such as Falcon-7B / Falcon-7B-Instruct on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.errors import InvalidInputError
from detectors.synthetic.curvature import MIN_TOKENS, SCORER_VERSION, Progress, batched_positions
from detectors.synthetic.models import LoadedModel, ModelSource

METHOD = "binoculars"


@dataclass(frozen=True)
class RatioProfiles:
    """Running sums of ppl_t (`num`) and xppl_t (`var`, named as in `CurvatureProfiles` so both
    are cached and taken alike) over each document's scored positions."""

    num: np.ndarray  # [n, max_tokens - 1], cumulative
    var: np.ndarray
    positions: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.positions)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """-B over each document's first `positions[i]` scored positions; NaN where none."""
        upto = np.minimum(np.asarray(positions, dtype=np.int64), self.positions)
        rows = np.arange(len(self.positions))
        col = np.maximum(upto - 1, 0)
        num, den = self.num[rows, col], self.var[rows, col]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = -num / np.maximum(den, 1e-12)
        return np.where(upto > 0, out, np.nan)

    def final(self) -> np.ndarray:
        return self.at(self.positions)

    def take(self, rows: np.ndarray) -> RatioProfiles:
        return RatioProfiles(self.num[rows], self.var[rows], self.positions[rows])


class BinocularsScorer:
    """-B of each text under an observer and a performer that share a tokenizer.

    Parameters are those of `CurvatureScorer`, for both models alike.
    """

    def __init__(
        self,
        *,
        observer: ModelSource,
        performer: ModelSource,
        max_tokens: int = 96,
        batch_size: int = 8,
        precision: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if max_tokens < MIN_TOKENS:
            raise InvalidInputError(f"max_tokens must be at least {MIN_TOKENS}, got {max_tokens}")
        self.observer = LoadedModel(
            observer, precision=precision, device=device, cache_dir=cache_dir
        )
        self.performer = LoadedModel(
            performer, precision=precision, device=device, cache_dir=cache_dir
        )
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self.model_name = f"binoculars({observer.name}, {performer.name})"
        self.version = SCORER_VERSION
        self.precision = self.observer.precision
        self._checked = False

    @property
    def cache_key(self) -> tuple[str | int, ...]:
        identities = (self.observer.source.identity, self.performer.source.identity)
        return (self.model_name, *identities, self.version, self.max_tokens, self.precision)

    def _check_tokenizers(self) -> None:
        """The two models must read text as the same token ids (Binoculars compares their
        distributions position by position, token by token)."""
        if self._checked:
            return
        a, b = self.observer.tokenizer, self.performer.tokenizer
        if a.get_vocab() != b.get_vocab():
            raise InvalidInputError(
                f"Binoculars needs two models that share a tokenizer: {self.observer.source.name} "
                f"and {self.performer.source.name} have different vocabularies"
            )
        self._checked = True

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        self._check_tokenizers()
        return self.observer.token_ids(texts, self.max_tokens)

    def score(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        return self.profiles(texts, progress).final()

    def profiles(self, texts: Sequence[str], progress: Progress | None = None) -> RatioProfiles:
        ppl, xppl, lengths = batched_positions(
            self.token_ids(texts),
            self.max_tokens,
            self.batch_size,
            self._score_batch,
            threads=self.threads,
            progress=progress,
        )
        return RatioProfiles(num=ppl, var=xppl, positions=lengths)

    def _score_batch(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Per scored position: ppl_t and xppl_t (zero past a document's end)."""
        import torch

        width = max(len(x) for x in batch)
        ppl = np.zeros((len(batch), max(width - 1, 0)))
        xppl = np.zeros((len(batch), max(width - 1, 0)))
        if width < 2:
            return ppl, xppl
        with torch.inference_mode():
            seen, input_ids = self.observer.hidden_states(batch)
            done, _ = self.performer.hidden_states(batch)
            for row, x in enumerate(batch):
                n = len(x) - 1
                if n < 1:
                    continue
                observer = torch.softmax(self.observer.logits(seen[row, :n]), dim=-1)
                performer = torch.log_softmax(
                    self.performer.logits(done[row, :n].to(seen.device)), -1
                )
                target = input_ids[row, 1 : n + 1].unsqueeze(-1)
                ppl[row, :n] = (-performer.gather(-1, target).squeeze(-1)).double().cpu().numpy()
                xppl[row, :n] = (-(observer * performer).sum(-1)).double().cpu().numpy()
        return ppl, xppl
