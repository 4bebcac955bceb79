"""The language-model collapse experiment on real BBC text, CI-sized (the full run is
benchmarks/lm_collapse.py). Tolerances come from the spread over independent seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare
from scipy.stats import t as student_t

from simulations.lm import repeated_trigram_rate, run_lm_collapse
from simulations.models.ngram import KneserNeyLM
from simulations.models.torch_lm import GRULanguageModel
from simulations.text import prepare_corpus

pytestmark = pytest.mark.slow
SEEDS = 3
GENERATIONS = 3


@pytest.fixture(scope="module")
def corpus(bbc_docs):
    rng = np.random.default_rng(0)
    pick = rng.choice(len(bbc_docs), 150, replace=False)
    return prepare_corpus([bbc_docs[i].text for i in pick], block_size=48, random_state=0)


def rises(corpus, make_model, policy, beta):
    """Held-out perplexity at the last generation minus generation 0, one value per seed."""
    out = []
    for seed in range(SEEDS):
        record = run_lm_collapse(
            corpus, make_model, generations=GENERATIONS, policy=policy, beta=beta, random_state=seed
        )
        assert len(record.heldout_perplexity) == GENERATIONS + 1
        assert len(record.train_perplexity_under_gen0) == GENERATIONS + 1
        out.append(record.heldout_perplexity[-1] - record.heldout_perplexity[0])
    return np.asarray(out)


def clearly_less(a: np.ndarray, b: np.ndarray) -> bool:
    """mean(a) < mean(b) by more than a one-sided 99.9% Welch-t margin over the seeds."""
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return b.mean() - a.mean() > student_t.ppf(0.999, df=len(a) + len(b) - 2) * se


def test_ngram_perplexity_rises_under_replace_and_less_when_real_data_is_kept(corpus):
    V = len(corpus.vocabulary)

    def make():
        return KneserNeyLM(vocab_size=V, order=3)

    replace = rises(corpus, make, "replace", 0.0)
    keep = rises(corpus, make, "keep-real", 0.1)
    assert clearly_less(np.zeros(SEEDS), replace)  # it rises at all
    assert clearly_less(keep, replace)  # and rises less with 10% of the original data


def test_sampler_draws_from_the_interpolated_distribution(corpus):
    """`sample_next` (order first, then a word of that order's sparse counts) against the dense
    `next_token_probs`, by a chi-square goodness-of-fit test per history."""
    V = len(corpus.vocabulary)
    lm = KneserNeyLM(vocab_size=V, order=3).fit(corpus.train_blocks)
    seen = corpus.train_blocks[0, 5:7]  # a context seen at the highest order
    # The same last word after a word it never followed: only the lower orders answer.
    firsts = set(corpus.train_blocks[:, :-1][corpus.train_blocks[:, 1:] == seen[1]])
    unseen = np.array([next(w for w in range(3, V) if w not in firsts), seen[1]])
    rng = np.random.default_rng(0)
    n = 40_000
    for history in (seen, unseen):
        tokens = lm.sample_next(np.repeat(history[None], n, axis=0), rng)
        expected = n * lm.next_token_probs(history[None])[0]
        observed = np.bincount(tokens, minlength=V).astype(float)
        big = expected >= 5  # the chi-square approximation needs them; the rest is one bin
        obs = np.r_[observed[big], observed[~big].sum()]
        exp = np.r_[expected[big], expected[~big].sum()]
        assert chisquare(obs, exp).pvalue > 1e-3, history


def test_gru_perplexity_rises_under_replace(bbc_docs):
    rng = np.random.default_rng(1)
    pick = rng.choice(len(bbc_docs), 60, replace=False)
    small = prepare_corpus([bbc_docs[i].text for i in pick], block_size=48, random_state=0)
    V = len(small.vocabulary)

    def make():
        return GRULanguageModel(vocab_size=V, dim=32, epochs=2, random_state=0)

    record = run_lm_collapse(small, make, generations=1, policy="replace", random_state=0)
    ppl = record.heldout_perplexity
    assert np.all(np.isfinite(ppl))
    assert ppl[-1] > ppl[0]


def test_repeated_trigram_rate_counts_repeats_within_blocks():
    blocks = np.array([[1, 2, 3, 1, 2, 3], [4, 5, 6, 7, 8, 9]])
    # block 0: trigrams 123 231 312 123 -> one repeat of four; block 1: none of four
    assert repeated_trigram_rate(blocks) == pytest.approx(1 / 8)
