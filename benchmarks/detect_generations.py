"""Is text from later generations of a collapsing model easier to detect? One run, real text.

    .venv/bin/python benchmarks/detect_generations.py [--documents 600] [--generations 6]

A Kneser-Ney n-gram model is trained on BBC News articles (set A) and retrained on its own output
(replace policy, `simulations.lm`), each generation continuing the first 8 tokens of the original
64-token blocks. Text is the blocks decoded back to words (lower-cased, as the model sees it).

The detector never sees the generator's training text: its human reference is blocks of other BBC
articles (set B), and the held-out human test blocks come from a third set (C), all cut and
lower-cased the same way. (A reference holding the generator's own training text would let the
n-gram feature spot copying, which no real pipeline can rely on: the web's generators were not
trained on the user's reference.)

Two views, per generation g:
- fitted on g: labelled mode learns from 250 generation-g blocks, then scores 200 unseen ones
  against 200 held-out human blocks (per-document AUROC, with all features and with each feature
  family alone) and estimates the synthetic fraction of a 30% mix and of pure generated text.
  "Easier to detect" = these AUROCs rising with g.
- fitted on 1: the generation-1 detector applied to generation g (does it transfer?).
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
from simulations.text import encode_blocks, prepare_corpus, tokenize

N_TRAIN_EXAMPLES, N_TEST, N_REFERENCE = 250, 200, 2000
# One feature family at a time: which signal makes later generations easier to tell apart.
FAMILIES = ("embedding", "textstats", "ngram")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=600, help="articles the LM learns from")
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--order", type=int, default=3, help="n-gram order of the LM (2-4)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    docs = [d.text for d in bbc_news()]
    order = np.random.default_rng(0).permutation(len(docs))
    set_a = [docs[i] for i in order[: args.documents]]
    rest = [docs[i] for i in order[args.documents :]]
    set_b, set_c = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    corpus = prepare_corpus(set_a, block_size=64, random_state=0)
    vocab, V = corpus.vocabulary, len(corpus.vocabulary)
    per_gen: dict[int, np.ndarray] = {}
    run_lm_collapse(
        corpus,
        lambda: KneserNeyLM(vocab_size=V, order=args.order),
        generations=args.generations,
        on_generation=lambda g, blocks: per_gen.__setitem__(g, blocks.copy()),
        random_state=0,
    )
    rng = np.random.default_rng(1)

    def decode(blocks: np.ndarray) -> list[str]:
        return [vocab.decode(b) for b in blocks]

    human_blocks, test_blocks = (
        encode_blocks(vocab, [tokenize(d) for d in part], 64) for part in (set_b, set_c)
    )
    human = decode(human_blocks[rng.permutation(len(human_blocks))[:N_REFERENCE]])
    heldout = decode(test_blocks[rng.permutation(len(test_blocks))[:N_TEST]])
    embedder = Embedder()
    ref_v = embedder.embed(human).vectors
    held_v = embedder.embed(heldout).vectors
    texts, vectors = {}, {}
    for g in range(1, args.generations + 1):
        pick = rng.permutation(len(per_gen[g]))[: N_TRAIN_EXAMPLES + N_TEST]
        texts[g] = decode(per_gen[g][pick])
        vectors[g] = embedder.embed(texts[g]).vectors
    print(
        f"BBC News: the LM learns from {args.documents} articles ({len(corpus.train_blocks)} "
        f"blocks; KN {args.order}-gram, replace policy, vocabulary {V}); the detector's "
        f"reference is {len(human)} blocks of {len(set_b)} other articles, tested on {N_TEST} "
        f"blocks of {len(set_c)} more"
    )

    def fit(g: int, features: tuple[str, ...] | None = None) -> SyntheticFractionEstimator:
        ex_t, ex_v = texts[g][:N_TRAIN_EXAMPLES], vectors[g][:N_TRAIN_EXAMPLES]
        est = SyntheticFractionEstimator(features=features, random_state=0)
        return est.fit(human, ref_v, ex_t, ex_v)

    def auroc(est: SyntheticFractionEstimator, g: int) -> float:
        gt, gv = texts[g][N_TRAIN_EXAMPLES:], vectors[g][N_TRAIN_EXAMPLES:]
        scores = est.scores(heldout + gt, np.vstack([held_v, gv]))
        return float(roc_auc_score(np.r_[np.zeros(len(heldout)), np.ones(len(gt))], scores))

    def row(est: SyntheticFractionEstimator, g: int) -> tuple[str, str]:
        """(AUROC, "30% mix | pure") cells for one detector on generation g."""
        gt, gv = texts[g][N_TRAIN_EXAMPLES:], vectors[g][N_TRAIN_EXAMPLES:]
        n_mix = round(0.3 * N_TEST)
        mix = est.estimate(
            heldout[: N_TEST - n_mix] + gt[:n_mix],
            np.vstack([held_v[: N_TEST - n_mix], gv[:n_mix]]),
        ).synthetic
        pure = est.estimate(gt, gv).synthetic
        return f"{auroc(est, g):.3f}", (
            f"{mix.point:.2f} [{mix.low:.2f}, {mix.high:.2f}] "
            f"| {pure.point:.2f} [{pure.low:.2f}, {pure.high:.2f}]"
        )

    first = fit(1)
    print()
    print(
        "| generation | fitted on g: AUROC, all features | "
        + " | ".join(f"{f} only" for f in FAMILIES)
        + " | 30% mix [90%] | pure [90%] "
        "| fitted on 1: AUROC | 30% mix [90%] | pure [90%] |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g in range(1, args.generations + 1):
        transfer = row(first, g)
        own_auroc, own_rest = transfer if g == 1 else row(fit(g), g)  # generation 1: the same
        alone = " | ".join(f"{auroc(fit(g, (f,)), g):.3f}" for f in FAMILIES)
        print(f"| {g} | {own_auroc} | {alone} | {own_rest} | {' | '.join(transfer)} |", flush=True)


if __name__ == "__main__":
    main()
