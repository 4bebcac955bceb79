"""The paper's language-model experiment on real text, at a scale two CPU cores can run.

Shumailov et al. fine-tune OPT-125m on wikitext2 in 64-token blocks; each next generation's
training set is the previous model's continuation of the original training blocks' beginnings.
Here the model is a Kneser-Ney n-gram or a small GRU trained from scratch on real human text
(BBC News, Wikipedia), with the same block structure:

- generation 0 is trained on the original training blocks;
- generation g + 1 is trained on blocks whose first `prompt_tokens` tokens come from the original
  training blocks and whose rest the generation-g model sampled (temperature sampling; the paper
  used 5-way beam search, which a count model would make degenerate at once);
- `keep-real` replaces a fraction beta of those blocks with original blocks each generation,
  `accumulate` trains on every generation's blocks so far.

Each generation is measured by perplexity on held-out original blocks, and by the perplexity of
its own training blocks under the generation-0 model (the paper's Figure: generated text becomes
more probable under the original model, with a long tail of improbable, repeated phrases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulations.loop import fresh_count, validate_plan
from simulations.text import TextCorpus

ProgressCallback = Callable[[int, int], None]


class LanguageModel(Protocol):
    def fit(self, blocks: np.ndarray) -> object: ...
    def token_log_probs(self, blocks: np.ndarray) -> np.ndarray: ...
    def perplexity(self, blocks: np.ndarray) -> float: ...
    def sample_continuations(
        self, prompts: np.ndarray, length: int, rng: np.random.Generator
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class LMCollapseRecord:
    """Per generation g = 0..G: held-out perplexity of model g, and the per-block perplexity,
    under model 0, of the blocks model g was trained on."""

    policy: str
    beta: float
    heldout_perplexity: np.ndarray  # [G + 1]
    train_perplexity_under_gen0: list[np.ndarray]  # G + 1 arrays of per-block perplexities
    repeated_trigram_rate: np.ndarray  # [G + 1] share of trigrams seen earlier in the same block


def block_perplexities(model: LanguageModel, blocks: np.ndarray) -> np.ndarray:
    return np.exp(-model.token_log_probs(blocks).mean(axis=1))


def repeated_trigram_rate(blocks: np.ndarray) -> float:
    """Share of a block's trigrams that already occurred earlier in the same block."""
    repeats = total = 0
    for block in blocks:
        grams = list(zip(block[:-2], block[1:-1], block[2:], strict=True))
        total += len(grams)
        repeats += len(grams) - len(set(grams))
    return repeats / max(total, 1)


def run_lm_collapse(
    corpus: TextCorpus,
    make_model: Callable[[], LanguageModel],
    *,
    generations: int,
    policy: str = "replace",
    beta: float = 0.0,
    prompt_tokens: int = 8,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
    on_generation: Callable[[int, np.ndarray], None] | None = None,
) -> LMCollapseRecord:
    """Recursive training on real text; `on_generation(g, blocks)` sees each generation's
    training data (generation 0: the original blocks), e.g. to keep the generated text."""
    original = corpus.train_blocks
    validate_plan(generations, len(original), policy, beta)
    rng = np.random.default_rng(random_state)
    n_fresh = fresh_count(len(original), policy, beta)
    length = corpus.block_size - prompt_tokens
    data = original
    history = [original]
    heldout, train_ppl, repeats = [], [], []
    gen0: LanguageModel | None = None
    for g in range(generations + 1):
        if on_generation is not None:
            on_generation(g, data)
        model = make_model()
        model.fit(data)
        if gen0 is None:
            gen0 = model
        heldout.append(model.perplexity(corpus.heldout_blocks))
        train_ppl.append(block_perplexities(gen0, data))
        repeats.append(repeated_trigram_rate(data))
        if progress is not None:
            progress(g + 1, generations + 1)
        if g == generations:
            break
        prompts = original[:, :prompt_tokens]
        generated = np.hstack([prompts, model.sample_continuations(prompts, length, rng)])
        if policy == "keep-real" and n_fresh:
            keep = rng.choice(len(original), n_fresh, replace=False)
            generated[keep] = original[keep]
        if policy == "accumulate":
            history.append(generated)
            data = np.vstack(history)
        else:
            data = generated
    return LMCollapseRecord(
        policy=policy,
        beta=beta,
        heldout_perplexity=np.asarray(heldout),
        train_perplexity_under_gen0=train_ppl,
        repeated_trigram_rate=np.asarray(repeats),
    )
