"""Synthetic-fraction estimation on real text: our estimators beside QuaPy's, in one run.

    .venv/bin/python benchmarks/estimation.py [--sizes 500 1000] [--seeds 5]

Human text: BBC News 2004-05. Machine text: SmolLM2-135M continuations of the first words of BBC
stories (detectors/synthetic/smollm2_continuations.jsonl). Every human document is cut to a word
count drawn from the generated documents' lengths, so length tells nothing.

Split once: 1,000 BBC stories are the reference; 500 generated documents are the labelled
synthetic examples (labelled mode); reference-only mode gets generic examples instead: 250 of them
plus every continuation of Wikipedia text (another domain); the remaining stories and generated
documents are the candidate pools, never seen in fitting. Candidates mix the pools at each true
fraction a over several seeds, and each seed refits our estimators (its own held-out reference,
folds and, for reference-only mode, its own 250 generic BBC examples): coverage over one fit
would share one draw of the calibration across every candidate. QuaPy's CC, ACC, PACC and EMQ
get the same features (embedding + text statistics + n-gram) and the same logistic regression,
trained on reference vs labelled synthetic, plus QuaPy's EMQ-BCTS and KDEy-ML, the peers of our
maximum-likelihood quantifier; they give points only, so interval coverage is ours alone.

Domain shift: the reference stays BBC while the candidate's human part is ABC (Australian) news
of 2001 (gensim's Lee corpus): another outlet and period of the same genre. Out of genre: Usenet
posts, which must come out flagged out-of-domain, not synthetic.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from detectors.corpora import bbc_news
from detectors.embedding import Embedder
from detectors.synthetic import SyntheticFractionEstimator
from detectors.synthetic.data import lee_news, length_match, smollm2_continuations, usenet_posts

FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench-embeddings"
# More SmolLM2 text for candidates of 5,000: continuations of sentence starts inside BBC articles
# (scripts/generate_synthetic.py --prompts passages); benchmark data, not package data.
PASSAGES = Path(__file__).resolve().parent / "data" / "smollm2_passages.jsonl"
N_REFERENCE, N_LABELLED = 1000, 500


def sentence_passages(text: str, lengths: list[int], rng: np.random.Generator) -> list[str]:
    """An article cut into consecutive passages that each start at a sentence (the first at the
    opening) and have word counts drawn from the generated documents' lengths."""
    words = text.split()
    passages, start = [], 0
    while start < len(words) - 20:
        n = int(rng.choice(lengths))
        passages.append(" ".join(words[start : start + n]))
        start += n
        # The next passage starts at a sentence, as the machine text's prompts do.
        while start < len(words) and not (
            words[start - 1].endswith((".", "!", "?")) and words[start][:1].isupper()
        ):
            start += 1
    return passages


def human_split(
    articles: list[str], lengths: list[int], how: str, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """(reference, candidate pool) of human text; the two never share an article.

    openings: one length-matched opening per article (1,225 candidates after the reference).
    passages: the reference is one passage per article at a random position, so it is as broad
    as the openings reference; the pool is every passage of the other articles (~5,600), for
    candidates of 5,000. Machine text starts at openings and at sentence starts alike.
    """
    if how == "openings":
        human = length_match(articles, lengths, rng)
        return human[:N_REFERENCE], human[N_REFERENCE:]
    cut = [sentence_passages(t, lengths, rng) for t in articles]
    reference = [p[int(rng.integers(len(p)))] for p in cut[:N_REFERENCE] if p]
    return reference, [t for p in cut[N_REFERENCE:] for t in p]


def embed(embedder: Embedder, texts: list[str]) -> np.ndarray:
    setup = [embedder.model_name, embedder.precision]
    digest = hashlib.sha256("\0".join([*setup, *texts]).encode()).hexdigest()[:32]
    path = CACHE / f"{digest}.npy"
    if path.is_file():
        return np.load(path)
    vectors = embedder.embed(texts).vectors
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def quapy_methods(X_train: np.ndarray, y_train: np.ndarray) -> dict[str, object]:
    """QuaPy's quantifiers on our features and classifier, each calibrated by 5-fold cross-fitting
    as ours is. Beyond the CC/ACC/PACC/EMQ the issue names: EMQ on posteriors recalibrated by
    bias-corrected temperature scaling (what our "emq-bcts" does) and KDEy-ML (maximum likelihood
    over kernel densities of the posteriors), the two peers of our maximum-likelihood quantifier."""
    from quapy.method.aggregative import ACC, CC, EMQ, PACC, KDEyML
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def clf() -> object:
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))

    methods = {
        "CC": CC(clf()),
        "ACC": ACC(clf()),
        "PACC": PACC(clf()),
        "EMQ": EMQ(clf()),
        "EMQ-BCTS": EMQ(clf(), val_split=5, calib="bcts"),
        "KDEy-ML": KDEyML(clf(), random_state=0),
    }
    return {f"QuaPy {name}": q.fit(X_train, y_train) for name, q in methods.items()}


def sampling_floor(
    human: np.ndarray, synthetic: np.ndarray, est: SyntheticFractionEstimator, sizes: list[int]
) -> str:
    """The mean absolute error PACC would make with a perfect calibration, from the candidate's
    own sampling: the sd of a candidate's mean score over the calibrated score gap, times
    sqrt(2 / pi), averaged over FRACTIONS. No quantifier on these scores does much better."""
    gap = est.pos_scores_.mean() - est.neg_scores_.mean()
    out = []
    for n in sizes:
        sd = [
            np.sqrt(
                (1 - a) * human.var()
                + a * synthetic.var()
                + a * (1 - a) * (synthetic.mean() - human.mean()) ** 2
            )
            for a in FRACTIONS
        ]
        out.append(f"{n:,}: {np.mean(sd) / np.sqrt(n) / gap * np.sqrt(2 / np.pi):.3f}")
    return "error left by candidate sampling alone (PACC, perfect calibration): " + ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--passages",
        type=int,
        default=0,
        help=f"add the first N rows of {PASSAGES.relative_to(PASSAGES.parents[2])} (4,088 "
        "rows) to the machine text; 0 (default) = the bundled continuations only",
    )
    parser.add_argument(
        "--human",
        choices=("openings", "passages"),
        default="openings",
        help="human documents: article openings (default) or sentence-aligned passages (enough "
        "for candidates of 5,000; see human_split)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)

    rows = smollm2_continuations()
    generated = [r["text"] for r in rows if r["stratum"].startswith("bbc")]
    wiki_generated = [r["text"] for r in rows if r["stratum"].startswith("wiki")]
    lengths = [len(t.split()) for t in generated]
    if PASSAGES.is_file() and args.passages > 0:
        extra = smollm2_continuations(PASSAGES)[: args.passages]
        rows, generated = rows + extra, generated + [r["text"] for r in extra]
    stratum = {r["text"]: r["stratum"] for r in rows}
    human = [d.text for d in bbc_news()]
    rng.shuffle(human)
    rng.shuffle(generated)
    ref_t, pool_h = human_split(human, lengths, args.human, rng)
    lab_t, pool_s = generated[:N_LABELLED], generated[N_LABELLED:]
    lee = length_match([d.text for d in lee_news()], lengths, rng)
    usenet = length_match([d.text for d in usenet_posts()], lengths, rng)
    if max(args.sizes) > min(len(pool_h), len(pool_s)):
        parser.error(f"sizes above {min(len(pool_h), len(pool_s))} would reuse documents")

    t0 = time.perf_counter()
    embedder = Embedder()
    ref_v, pool_hv, lab_v, pool_sv, lee_v, use_v, wiki_v = (
        embed(embedder, t) for t in (ref_t, pool_h, lab_t, pool_s, lee, usenet, wiki_generated)
    )
    print(
        f"embedded {sum(map(len, (ref_t, pool_h, lab_t, pool_s, lee, usenet)))} documents "
        f"in {time.perf_counter() - t0:.0f} s; human pool {len(pool_h)}, synthetic pool "
        f"{len(pool_s)}"
    )

    def fit_ours(seed: int) -> dict[str, SyntheticFractionEstimator]:
        """Our estimators as seed `seed` fits them: its own random_state (held-out reference,
        folds) and, for reference-only mode, its own generic examples: 250 of the labelled BBC
        twins plus every Wikipedia continuation, each named by its source."""
        pick = np.random.default_rng([seed, 9]).choice(N_LABELLED, N_LABELLED // 2, replace=False)
        generic = [lab_t[i] for i in pick] + wiki_generated
        return {
            "ours, labelled": SyntheticFractionEstimator(random_state=seed).fit(
                ref_t, ref_v, lab_t, lab_v
            ),
            "ours, reference-only": SyntheticFractionEstimator(
                generic_synthetic=generic,
                generic_sources=[stratum[t] for t in generic],
                random_state=seed,
            ).fit(ref_t, ref_v, example_vectors=np.vstack([lab_v[pick], wiki_v])),
        }

    fits = [fit_ours(seed) for seed in range(args.seeds)]
    ours = fits[0]
    lab = ours["ours, labelled"]
    feats = lab.featurizer_
    X_train = np.vstack(
        [feats.transform(ref_t, ref_v, reference=True), feats.transform(lab_t, lab_v)]
    )
    y_train = np.r_[np.zeros(len(ref_t)), np.ones(len(lab_t))].astype(int)
    peers = quapy_methods(X_train, y_train)
    pool_hx, pool_sx = feats.transform(pool_h, pool_hv), feats.transform(pool_s, pool_sv)

    scores = lab.scores(pool_h + pool_s, np.vstack([pool_hv, pool_sv]))
    auroc = roc_auc_score(np.r_[np.zeros(len(pool_h)), np.ones(len(pool_s))], scores)
    print(f"per-document AUROC, held-out BBC vs SmolLM2 (labelled mode's classifier): {auroc:.3f}")
    print(sampling_floor(scores[: len(pool_h)], scores[len(pool_h) :], lab, args.sizes))
    for name, est in ours.items():
        mae = ", ".join(f"{m} {v:.3f}" for m, v in est.validation_mae_.items())
        print(f"{name}: chose {est.method_} (validation MAE: {mae})")

    errors: dict[tuple[str, int], list[tuple[float, bool | None]]] = {}
    for size in args.sizes:
        for seed, fitted in enumerate(fits):
            draw = np.random.default_rng([seed, size])
            for a in FRACTIONS:
                n_s = round(a * size)
                hs = draw.choice(len(pool_h), size - n_s, replace=False)
                ss = draw.choice(len(pool_s), n_s, replace=False)
                texts = [pool_h[i] for i in hs] + [pool_s[i] for i in ss]
                vecs = np.vstack([pool_hv[hs], pool_sv[ss]])
                for name, est in fitted.items():
                    r = est.estimate(texts, vecs).synthetic
                    hit = r.low <= a <= r.high
                    errors.setdefault((name, size), []).append((r.point - a, hit))
                X = np.vstack([pool_hx[hs], pool_sx[ss]])
                for name, q in peers.items():
                    point = float(q.predict(X)[1])  # type: ignore[attr-defined]
                    errors.setdefault((name, size), []).append((point - a, None))

    print()
    print(f"a in {FRACTIONS}, {args.seeds} seeds (each refits ours); 90% intervals")
    print()
    print("| method | candidate size | MAE | bias | 90% interval coverage |")
    print("|---|---|---|---|---|")
    for (name, size), results in errors.items():
        err = np.array([e for e, _ in results])
        hits = [h for _, h in results if h is not None]
        cover = f"{np.mean(hits):.0%}" if hits else "n/a (points only)"
        print(f"| {name} | {size:,} | {np.abs(err).mean():.3f} | {err.mean():+.3f} | {cover} |")

    print()
    print("Domain shift (reference BBC 2004-05; candidate human part ABC news 2001, n = 300):")
    print()
    print(
        "| method | true a | synthetic [90% interval] | out-of-domain | flagged | "
        "confidently above a + 0.15? |"
    )
    print("|---|---|---|---|---|---|")
    for name, est in ours.items():
        for a in (0.0, 0.3):
            draw = np.random.default_rng(7)
            n_s = round(a * len(lee))
            hs = draw.choice(len(lee), len(lee) - n_s, replace=False)
            ss = draw.choice(len(pool_s), n_s, replace=False)
            texts = [lee[i] for i in hs] + [pool_s[i] for i in ss]
            report = est.estimate(texts, np.vstack([lee_v[hs], pool_sv[ss]]))
            s = report.synthetic
            print(
                f"| {name} | {a} | {s.point:.3f} [{s.low:.3f}, {s.high:.3f}] "
                f"| {report.out_of_domain.point:.2f} | {report.flagged_out_of_domain} "
                f"| {'YES' if s.low > a + 0.15 else 'no'} |"
            )
        report = est.estimate(usenet, use_v)
        s = report.synthetic
        print(
            f"| {name}, Usenet posts (out of genre) | 0.0 | {s.point:.3f} "
            f"[{s.low:.3f}, {s.high:.3f}] | {report.out_of_domain.point:.2f} "
            f"| {report.flagged_out_of_domain} | {'YES' if s.low > 0.15 else 'no'} |"
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
