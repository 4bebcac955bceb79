"""Per-document features for telling generated text from the reference's human text.

Three families, each switchable: sentence embeddings (the vectors the caller already computed),
window-averaged text statistics (`detectors.textstats`) and log-likelihood under a smoothed word
trigram model of the reference (`detectors.ngram`, cross-fitted so reference documents are never
scored by a model that saw them).

Embeddings carry topic and genre as much as style: they help when the synthetic examples come from
the reference's domain and would learn "not about these topics" when they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from detectors.errors import InvalidInputError, NotFittedError
from detectors.ngram import NGRAM_FEATURE_NAMES, NgramModel
from detectors.textstats import TEXT_STAT_NAMES, text_statistics

FAMILIES = ("embedding", "textstats", "ngram")


def check_families(families: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(families))
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown or not chosen:
        raise InvalidInputError(
            f"feature families must be a non-empty subset of {', '.join(FAMILIES)}; "
            f"got {families!r}"
        )
    return chosen


def truncate_like(
    texts: Sequence[str], lengths: Sequence[int], rng: np.random.Generator
) -> list[str]:
    """Cut each text longer than every one of `lengths` to a word count drawn from `lengths`.

    Human reference documents run to hundreds of words, generated examples to tens; every
    length-sensitive statistic would otherwise learn length, which says nothing about origin.
    Texts already within the range are kept whole (cutting them again would make them shorter).
    """
    draws = rng.choice(np.asarray(lengths), size=len(texts))
    longest = max(lengths)
    return [
        " ".join(words[: int(n)]) if len(words := t.split()) > longest else t
        for t, n in zip(texts, draws, strict=True)
    ]


class DocumentFeatures:
    """Builds the feature matrix of the chosen families; `fit` on the reference's texts."""

    def __init__(self, *, families: Sequence[str] = FAMILIES, random_state: int = 0) -> None:
        self.families = check_families(families)
        self.random_state = random_state

    def fit(self, reference_texts: Sequence[str]) -> Self:
        if "ngram" in self.families:
            self.ngram_ = NgramModel(random_state=self.random_state).fit(reference_texts)
        self.fitted_ = True
        return self

    @property
    def names(self) -> list[str]:
        out: list[str] = []
        if "textstats" in self.families:
            out += list(TEXT_STAT_NAMES)
        if "ngram" in self.families:
            out += list(NGRAM_FEATURE_NAMES)
        return out

    def transform(
        self, texts: Sequence[str], vectors: np.ndarray | None, *, reference: bool = False
    ) -> np.ndarray:
        """[n, d] features. `reference=True`: `texts` are the fitted reference documents (or
        excerpts of them) in fit order, scored by the n-gram model without their own fold."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError("DocumentFeatures is not fitted: call fit(reference_texts)")
        parts: list[np.ndarray] = []
        if "embedding" in self.families:
            if vectors is None or len(vectors) != len(texts):
                raise InvalidInputError(
                    "the embedding feature family needs one vector per document: pass the "
                    "documents' embeddings or drop 'embedding' from the feature families"
                )
            parts.append(np.asarray(vectors, dtype=np.float64))
        if "textstats" in self.families:
            parts.append(text_statistics(texts))
        if "ngram" in self.families:
            ng = self.ngram_
            parts.append(ng.reference_features(texts) if reference else ng.features(texts))
        # A document with no scoreable token (rare: punctuation only) has NaN n-gram features.
        return np.nan_to_num(np.hstack(parts), nan=0.0, posinf=0.0, neginf=0.0)
