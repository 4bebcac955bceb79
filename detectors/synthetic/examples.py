"""Which synthetic examples the signature of generation is learned from.

Reference-only mode learns from generic generated text (by default the bundled SmolLM2-135M
continuations of BBC News and Wikipedia text), some of it of another domain than the reference's.
Generated text of another domain would teach the classifier that domain, and its rate of falling
inside the reference's balls would pass for generated text's, so examples off the reference's
domain are left out: by source when the examples name their sources, else one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.errors import InvalidInputError

# Synthetic examples farther from the reference than this quantile of held-out reference documents'
# nearest-neighbour distances are of another domain and are not used
# (`SyntheticFractionEstimator._in_domain_examples`).
# Generic examples (reference-only mode) come from several domains, so the cut is tighter: on
# benchmarks/estimation.py 0.9 took the bias from -0.056 (at 0.99) to -0.034 and interval coverage
# from 70% to 89%, while 0.75 starved the classifier. A caller's own examples only lose outliers,
# unless they lie off the reference as a whole (`OFF_REFERENCE_Z`): then none is dropped.
EXAMPLE_QUANTILE = {"labelled": 0.99, "reference-only": 0.9}
# A source of generic examples (a stratum of the bundled continuations) that lies within that cut
# less than half as often as held-out reference documents do is of another domain as a whole:
# its few examples that pass the cut are its outliers toward the reference, not in-domain
# generated text. With a BBC reference, 13% of the Wikipedia continuations passed and, being
# other text, scored as more synthetic (mean 0.56 against 0.48) and fell inside the balls more
# often (0.81 against 0.70) than the BBC twins that passed.
SOURCE_MIN_NEAR = 0.5


def texts_and_sources(rows: Sequence[dict]) -> tuple[list[str], list[str] | None]:
    """The texts of generated-text rows and their sources: each row's 'stratum', or None unless
    every row names one."""
    texts = [row["text"] for row in rows]
    if all(isinstance(row.get("stratum"), str) for row in rows):
        return texts, [row["stratum"] for row in rows]
    return texts, None


def generic_examples(
    texts: Sequence[str] | None, sources: Sequence[str] | None
) -> tuple[Sequence[str], np.ndarray | None]:
    """Reference-only mode's examples and their sources (None: unknown); `texts` None = the
    bundled continuations, which name their strata."""
    if texts is None:
        if sources is not None:
            raise InvalidInputError("generic_sources name the sources of generic_synthetic")
        from detectors.synthetic.data import smollm2_continuations

        texts, sources = texts_and_sources(smollm2_continuations())
    if sources is None:
        return texts, None
    if len(sources) != len(texts):
        raise InvalidInputError(
            f"pass one source per generic example: {len(sources)} sources for {len(texts)} examples"
        )
    return texts, np.array([str(s) for s in sources])


def whole_sources(near: np.ndarray, sources: np.ndarray, quantile: float) -> np.ndarray:
    """Which examples to keep, source by source: all of a source whose share of examples within
    the distance cut (`near`) is at least SOURCE_MIN_NEAR of the held-out documents' (`quantile`),
    none of the others."""
    _, source = np.unique(sources, return_inverse=True)
    share = np.bincount(source, weights=near) / np.bincount(source)
    return share[source] >= SOURCE_MIN_NEAR * quantile
