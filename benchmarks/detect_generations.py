"""Is text from later generations of a collapsing model easier to detect? One run, real text.

    .venv/bin/python benchmarks/detect_generations.py [--documents 600] [--generations 6]

A Kneser-Ney trigram model is trained on BBC News and retrained on its own output (replace
policy, `simulations.lm`), each generation continuing the first 8 tokens of the original 64-token
blocks. Text is the blocks decoded back to words (lower-cased, as the model sees it), human and
generated alike. The synthetic-fraction estimator (labelled mode) learns from generation-1 text
only; it then scores unseen blocks of every generation against held-out human blocks (per-document
AUROC) and estimates the synthetic fraction of a 30% mix and of pure generated text.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.metrics import roc_auc_score

from detectors.corpora import bbc_news
from detectors.embedding import Embedder
from detectors.synthetic import SyntheticFractionEstimator
from simulations.lm import run_lm_collapse
from simulations.models.ngram import KneserNeyLM
from simulations.text import prepare_corpus

N_TRAIN_EXAMPLES, N_TEST = 250, 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=600)
    parser.add_argument("--generations", type=int, default=6)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    docs = bbc_news()
    pick = np.random.default_rng(0).choice(len(docs), args.documents, replace=False)
    corpus = prepare_corpus([docs[i].text for i in pick], block_size=64, random_state=0)
    vocab, V = corpus.vocabulary, len(corpus.vocabulary)
    per_gen: dict[int, np.ndarray] = {}
    run_lm_collapse(
        corpus,
        lambda: KneserNeyLM(vocab_size=V, order=3),
        generations=args.generations,
        on_generation=lambda g, blocks: per_gen.__setitem__(g, blocks.copy()),
        random_state=0,
    )
    rng = np.random.default_rng(1)

    def decode(blocks: np.ndarray) -> list[str]:
        return [vocab.decode(b) for b in blocks]

    human = decode(corpus.train_blocks)
    heldout = decode(corpus.heldout_blocks)[:N_TEST]
    embedder = Embedder()
    ref_v = embedder.embed(human).vectors
    held_v = embedder.embed(heldout).vectors
    texts, vectors = {}, {}
    for g in range(1, args.generations + 1):
        order = rng.permutation(len(per_gen[g]))
        texts[g] = decode(per_gen[g][order[: N_TRAIN_EXAMPLES + N_TEST]])
        vectors[g] = embedder.embed(texts[g]).vectors
    print(
        f"BBC News, {args.documents} articles: {len(human)} reference blocks, {len(heldout)} "
        f"held-out human blocks; KN trigram, replace policy, vocabulary {V}"
    )
    est = SyntheticFractionEstimator(random_state=0).fit(
        human, ref_v, texts[1][:N_TRAIN_EXAMPLES], vectors[1][:N_TRAIN_EXAMPLES]
    )
    print(f"fitted on generation-1 text; quantifier: {est.method_}")
    print()
    print(
        "| generation | per-document AUROC vs human | synthetic, 30% mix [90%] | "
        "synthetic, pure generated [90%] |"
    )
    print("|---|---|---|---|")
    n_mix = round(0.3 * N_TEST)
    for g in range(1, args.generations + 1):
        gt, gv = texts[g][N_TRAIN_EXAMPLES:], vectors[g][N_TRAIN_EXAMPLES:]
        scores = est.scores(heldout + gt, np.vstack([held_v, gv]))
        auroc = roc_auc_score(np.r_[np.zeros(len(heldout)), np.ones(len(gt))], scores)
        mix = est.estimate(
            heldout[: N_TEST - n_mix] + gt[:n_mix],
            np.vstack([held_v[: N_TEST - n_mix], gv[:n_mix]]),
        ).synthetic
        pure = est.estimate(gt, gv).synthetic
        print(
            f"| {g} | {auroc:.3f} | {mix.point:.2f} [{mix.low:.2f}, {mix.high:.2f}] "
            f"| {pure.point:.2f} [{pure.low:.2f}, {pure.high:.2f}] |",
            flush=True,
        )


if __name__ == "__main__":
    main()
