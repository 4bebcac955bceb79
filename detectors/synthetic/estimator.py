"""Corpus-level synthetic-fraction estimation against a human reference, with honest intervals.

The candidate is modelled as  (1 - o) * [(1 - a') * human + a' * synthetic]  +  o * elsewhere:

- `o`, the out-of-domain share, comes from the embedding space: the share of candidate documents
  outside every reference point's k-NN ball, against the same share for reference documents of
  a topic the balls do not hold (`domain.unseen_topics`: each k-means cluster of the reference
  against the balls of the rest). Text of the reference's own source on a new topic or from a
  later year is in the domain; random held-out documents, with near twins in the balls, would
  call it out (BBC sport and tech against its other sections: 0.65). In labelled mode the synthetic
  examples' balls belong to the domain too (`domain`): text from a collapsed model can lie off
  every human document's ball and still be exactly the text the caller fears. On real text
  another genre falls outside (Usenet vs BBC: 3% inside) while SmolLM2 continuations of BBC
  stories stay inside as often as held-out BBC stories do (64% vs 63%), so generation and domain
  shift separate here.
- `a'`, the synthetic share of the in-domain documents, is a quantification problem: a classifier
  of reference text vs synthetic examples scores the in-domain documents, and the quantifier
  chosen on held-out labelled mixes (CC, ACC, PCC, PACC, EMQ, EMQ-BCTS, BBE; see `quantify`)
  corrects the scores for the classifier's error rates.

The reported synthetic fraction is a = (1 - o) a', the share of the whole candidate that is in
the reference's domain and looks generated. The out-of-domain part is reported beside it, never
called synthetic. Intervals are percentile bootstraps over the candidate, the held-out reference
and the labelled out-of-fold scores together.

Two modes: *labelled* (the caller passes examples of the synthetic text it fears) and
*reference-only* (no examples from the caller: generic generated text stands in, by default the
bundled SmolLM2-135M continuations of BBC and Wikipedia text; best are continuations of the
reference's own documents, `scripts/generate_synthetic.py`). Measured on real text, embeddings in
the signature make the estimate *more* robust to a same-genre domain shift (ABC vs BBC news), so
they are used whenever the examples' vectors are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from detectors.embedding import validate_texts
from detectors.errors import InsufficientDataError, InvalidInputError, NotFittedError
from detectors.index import as_matrix
from detectors.results import Estimate, SyntheticReport
from detectors.synthetic import quantify
from detectors.synthetic.domain import Balls, unseen_topics
from detectors.synthetic.examples import EXAMPLE_QUANTILE, generic_examples, whole_sources
from detectors.synthetic.features import FAMILIES, DocumentFeatures, check_families, truncate_like
from detectors.synthetic.mixture import (
    ELSEWHERE,
    IN_EXAMPLES,
    IN_REFERENCE,
    MIN_IN_DOMAIN,
    bootstrap_shares,
    point_rates,
    shares,
    shares_at,
)

OOD_FLAG = 0.5  # above this out-of-domain share the candidate is flagged out-of-domain
# Labelled mode: when the examples fall inside the reference's balls less often than held-out
# reference documents do, by this many standard errors (two-proportion z), the generated text
# lives off the human manifold (a collapsed model's) and the examples' balls join the domain.
# Otherwise (SmolLM2 continuations of BBC stories: 64% vs 63%) they would only swallow human text
# of other outlets (ABC news read as 0.27 synthetic at a = 0, confidently above a + 0.15).
OFF_REFERENCE_Z = 3.0
HOLDOUT_EMBEDDED = 400  # held-out documents re-embedded at the examples' lengths (a rate: enough)


class SyntheticFractionEstimator:
    """`fit(reference_texts, reference_vectors[, synthetic_texts, synthetic_vectors])`, then
    `estimate(texts, vectors)` -> `SyntheticReport`."""

    example_balls_: Balls | None  # labelled mode: the examples' balls join the domain

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        k: int = 5,
        holdout_fraction: float = 0.2,
        n_folds: int = 5,
        C: float = 0.5,
        n_bootstrap: int = 300,
        level: float = 0.9,
        generic_synthetic: Sequence[str] | None = None,
        generic_sources: Sequence[str] | None = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        random_state: int = 0,
    ) -> None:
        if features is not None:
            check_families(features)
        if not 0 < holdout_fraction < 1:
            raise InvalidInputError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        if not 0 < level < 1:
            raise InvalidInputError(f"level must be in (0, 1), got {level}")
        if n_folds < 2 or n_bootstrap < 50 or k < 1 or C <= 0:
            raise InvalidInputError("need n_folds >= 2, n_bootstrap >= 50, k >= 1 and C > 0")
        self.features = features
        self.k = k
        self.holdout_fraction = holdout_fraction
        self.n_folds = n_folds
        self.C = C
        self.n_bootstrap = n_bootstrap
        self.level = level
        # Reference-only mode's stand-in for synthetic text (default: the bundled continuations).
        self.generic_synthetic = generic_synthetic
        # Where each generic example comes from (corpus or category), in order: whole sources of
        # another domain are left out (`SOURCE_MIN_NEAR`). The bundled continuations name theirs.
        self.generic_sources = generic_sources
        # Reference-only mode: embeds held-out reference documents cut to the generic examples'
        # lengths, so the domain check compares like with like (see `_fit_domain`).
        self.embed = embed
        self.random_state = random_state

    def __getstate__(self) -> dict:
        # `embed` is only used while fitting and is usually a closure over a live model: a
        # fitted estimator pickles without it (the service keeps fits per reference on disk).
        return {**self.__dict__, "embed": None}

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        reference_texts: Sequence[str],
        reference_vectors: np.ndarray,
        synthetic_texts: Sequence[str] | None = None,
        synthetic_vectors: np.ndarray | None = None,
        *,
        example_vectors: np.ndarray | None = None,
    ) -> Self:
        """Fit on the human reference and on synthetic examples (labelled mode) or, without
        them, on `generic_synthetic` / the bundled continuations (reference-only mode).

        `example_vectors`: in reference-only mode, the embeddings of those generic examples (in
        order). With them the signature can use embeddings too, and how often generated text
        falls inside the reference's domain is measured; without them the signature is text
        statistics and n-grams only, and generated text is assumed to fall inside as often as
        human text (which overstates the out-of-domain share of short generated documents).
        """
        ref_texts = validate_texts(reference_texts)
        ref_vecs = as_matrix(reference_vectors, name="reference vectors")
        if len(ref_vecs) != len(ref_texts):
            raise InvalidInputError("pass one reference vector per reference document")
        self.mode_ = "reference-only" if synthetic_texts is None else "labelled"
        sources, source_vectors = None, None
        if synthetic_texts is None:
            synthetic_texts, sources = generic_examples(
                self.generic_synthetic, self.generic_sources
            )
            synthetic_vectors = example_vectors
        elif example_vectors is not None:
            raise InvalidInputError(
                "example_vectors belong to reference-only mode; in labelled mode pass "
                "synthetic_vectors"
            )
        syn_texts = validate_texts(synthetic_texts)
        default = FAMILIES if synthetic_vectors is not None else ("textstats", "ngram")
        self.features_ = check_families(self.features or default)
        if "embedding" in self.features_ and synthetic_vectors is None:
            raise InvalidInputError(
                "the embedding feature family needs the synthetic examples' vectors: pass "
                "synthetic_vectors or leave 'embedding' out of features"
            )
        n_hold = max(quantify.MIN_LABELLED, round(self.holdout_fraction * len(ref_texts)))
        quantify.check_sizes(quantify.MIN_CANDIDATE, len(syn_texts), len(ref_texts) - n_hold)
        if len(ref_texts) - n_hold <= self.k:
            raise InsufficientDataError(
                f"need more than {n_hold + self.k} reference documents, got {len(ref_texts)}"
            )
        rng = np.random.default_rng(self.random_state)
        self._fit_domain(ref_vecs, ref_texts, n_hold, [len(t.split()) for t in syn_texts], rng)
        # How often generated text falls inside the reference's balls (short generated documents
        # fall inside less often than long human ones); unknown = as often as human text.
        if synthetic_vectors is not None:
            synthetic_vectors = as_matrix(
                synthetic_vectors, name="synthetic vectors", dim=ref_vecs.shape[1]
            )
            if len(synthetic_vectors) != len(syn_texts):
                raise InvalidInputError("pass one vector per synthetic example, in order")
            if self.mode_ == "labelled" and self._off_reference(synthetic_vectors):
                self.example_balls_ = Balls(
                    synthetic_vectors, self.k, max_radius=float(np.median(self.reference_.radii))
                )
                self.holdout_region_ = self.region(self.holdout_vectors_)
            else:
                syn_texts, synthetic_vectors, source_vectors = self._in_domain_examples(
                    syn_texts, synthetic_vectors, sources
                )
        self.n_examples_ = len(syn_texts)
        self.synthetic_region_: np.ndarray | None = self.length_matched_region_
        # With named sources, the rate of generated text is that of every kept source's examples
        # (see `_in_domain_examples`). Without, the distance cut keeps the examples nearest the
        # reference, which fall inside its balls more often than generated text at large: their
        # rate is compared with held-out documents kept by the same cut, like with like (on
        # benchmarks/estimation.py's passages, kept examples 0.72 against unseen generated
        # text's 0.65; bias -0.078 without this).
        self.holdout_near_: np.ndarray | None = None
        if self.synthetic_region_ is None and source_vectors is not None:
            self.synthetic_region_ = self.region(source_vectors)
        if self.examples_dropped_ and self.synthetic_region_ is None:
            nn = self.reference_.nearest(self.holdout_vectors_)[0]
            self.holdout_near_ = nn <= self.domain_radius_
        if self.synthetic_region_ is None and synthetic_vectors is not None:
            self.synthetic_region_ = self.region(synthetic_vectors)
            if self.example_balls_ is not None:
                # An example is always inside its own ball: judge each as unseen text instead.
                loo = self.example_balls_.inside_leave_one_out()
                self.synthetic_region_[self.synthetic_region_ != IN_REFERENCE] = np.where(
                    loo, IN_EXAMPLES, ELSEWHERE
                )[self.synthetic_region_ != IN_REFERENCE]
        # The quantifier answers for the candidate documents inside the reference's balls, so it
        # is calibrated on the examples that lie there too: generated text near human text scores
        # more human-like than generated text at large (benchmarks/estimation.py's passages:
        # mean out-of-fold score 0.48 inside, 0.53 outside; a pure synthetic candidate's inside
        # share read 0.86 calibrated on all examples, 0.89 on those inside).
        inside = None if synthetic_vectors is None else self.inside(synthetic_vectors)
        self._fit_signature(ref_texts, ref_vecs, syn_texts, synthetic_vectors, inside, rng)
        self.n_reference_ = len(ref_texts)
        return self

    def _fit_domain(
        self,
        vectors: np.ndarray,
        texts: list[str],
        n_hold: int,
        example_lengths: list[int],
        rng: np.random.Generator,
    ) -> None:
        """Index the reference minus a held-out part, and measure the held-out part against it.

        Short documents fall inside the reference's balls less often than long ones, whatever
        their origin. With `embed` (reference-only mode), held-out documents cut to the generic
        examples' lengths stand in for in-domain generated text: their inside rate is the one
        generated text is expected to have, and their distances set the cut that decides which
        examples are in the domain. Generic examples themselves cannot say it: some come from
        other domains.
        """
        order = rng.permutation(len(vectors))
        self.reference_ = Balls(vectors[order[n_hold:]], self.k)
        self.unseen_topics_ = unseen_topics(
            self.reference_.vectors, self.k, random_state=self.random_state
        )
        holdout = vectors[order[:n_hold]]
        self.example_balls_ = None
        self.holdout_vectors_ = holdout
        self.holdout_region_ = self.region(holdout)
        self.length_matched_region_: np.ndarray | None = None
        if self.embed is not None and self.mode_ == "reference-only":
            ids = order[: min(n_hold, HOLDOUT_EMBEDDED)]
            cut = truncate_like([texts[i] for i in ids], example_lengths, rng)
            holdout = as_matrix(
                self.embed(cut), name="embedded held-out documents", dim=vectors.shape[1]
            )
            self.length_matched_region_ = self.region(holdout)
        nn = self.reference_.nearest(holdout)[0]
        self.domain_radius_ = float(np.quantile(nn, EXAMPLE_QUANTILE[self.mode_]))
        self.examples_dropped_ = 0

    def _off_reference(self, vectors: np.ndarray) -> bool:
        """Whether the examples fall inside the reference's balls markedly less often than
        held-out reference documents do (`OFF_REFERENCE_Z`)."""
        if len(vectors) <= self.k:
            return False
        human, synthetic = self.holdout_region_ == IN_REFERENCE, self.inside(vectors)
        pooled = np.r_[human, synthetic].mean()
        se = np.sqrt(pooled * (1 - pooled) * (1 / len(human) + 1 / len(synthetic)))
        return bool(se > 0 and (human.mean() - synthetic.mean()) / se >= OFF_REFERENCE_Z)

    def _in_domain_examples(
        self, texts: list[str], vectors: np.ndarray, sources: np.ndarray | None
    ) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        """(texts, vectors) of the synthetic examples the signature is learned from, and the
        vectors of every example of the kept sources (None without sources).

        Learned from: examples no farther from their nearest reference point than most held-out
        reference documents are (`EXAMPLE_QUANTILE`), of sources that mostly lie near the
        reference (`whole_sources`). Generated text of another domain (Wikipedia continuations
        for a news reference) would teach the classifier that domain. With named sources, how
        often generated text of the domain falls inside the reference's balls is measured on
        every example of the kept sources: the far ones are generated text of the domain too,
        while training on them taught the classifier that far from the reference means generated
        (ABC news read 0.24 [0.16, 0.33] synthetic at a = 0). With too few kept examples all are
        kept (and a note says so at estimate time).
        """
        near = self.reference_.nearest(vectors)[0] <= self.domain_radius_
        source_vectors = None
        if sources is not None:
            kept = whole_sources(near, sources, EXAMPLE_QUANTILE[self.mode_])
            near &= kept
            if kept.sum() >= quantify.MIN_LABELLED:
                source_vectors = vectors[kept]
        self.examples_dropped_ = int((~near).sum()) if near.sum() >= quantify.MIN_LABELLED else 0
        if self.examples_dropped_ == 0:
            return texts, vectors, source_vectors
        kept_texts = [t for t, keep in zip(texts, near, strict=True) if keep]
        return kept_texts, vectors[near], source_vectors

    def inside(self, vectors: np.ndarray) -> np.ndarray:
        """Whether each vector lies in the k-NN ball of its nearest reference point."""
        return self.reference_.inside(vectors)

    def region(self, vectors: np.ndarray) -> np.ndarray:
        """IN_REFERENCE, IN_EXAMPLES (labelled mode: in a synthetic example's ball only) or
        ELSEWHERE, per vector."""
        out = np.where(self.inside(vectors), IN_REFERENCE, ELSEWHERE)
        if self.example_balls_ is not None:
            out[(out == ELSEWHERE) & self.example_balls_.inside(vectors)] = IN_EXAMPLES
        return out

    def _fit_signature(
        self,
        ref_texts: list[str],
        ref_vecs: np.ndarray,
        syn_texts: list[str],
        syn_vecs: np.ndarray | None,
        syn_inside: np.ndarray | None,
        rng: np.random.Generator,
    ) -> None:
        self.featurizer_ = DocumentFeatures(families=self.features_, random_state=self.random_state)
        self.featurizer_.fit(ref_texts)
        self.synthetic_lengths_ = [len(t.split()) for t in syn_texts]
        human = truncate_like(ref_texts, self.synthetic_lengths_, rng)
        X = np.vstack(
            [
                self.featurizer_.transform(human, ref_vecs, reference=True),
                self.featurizer_.transform(syn_texts, syn_vecs),
            ]
        )
        y = np.r_[np.zeros(len(human)), np.ones(len(syn_texts))]
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        oof = np.empty(len(y))
        self.models_: list[Pipeline] = []
        for train, test in folds.split(X, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=3000))
            model.fit(X[train], y[train])
            oof[test] = model.predict_proba(X[test])[:, 1]
            self.models_.append(model)
        self.pos_scores_, self.neg_scores_ = oof[y == 1], oof[y == 0]
        if syn_inside is not None and syn_inside.sum() >= quantify.MIN_LABELLED:
            self.pos_scores_ = self.pos_scores_[syn_inside]
        self.calibration_ = quantify.temperature_scaling(self.pos_scores_, self.neg_scores_)
        self.validation_mae_ = quantify.validation_errors(
            self.pos_scores_, self.neg_scores_, rng=rng
        )
        self.method_ = min(self.validation_mae_, key=self.validation_mae_.__getitem__)

    # ------------------------------------------------------------- estimate
    def _check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise NotFittedError("the estimator is not fitted: call fit(reference_texts, ...)")

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
        """Each document's classifier probability of being synthetic (before any adjustment),
        from one seeded random fold's model, as the out-of-fold scores were made."""
        self._check_fitted()
        X = self.featurizer_.transform(validate_texts(texts), vectors)
        fold = np.random.default_rng([self.random_state, 2]).integers(self.n_folds, size=len(X))
        out = np.empty(len(X))
        for f, model in enumerate(self.models_):
            rows = fold == f
            if rows.any():
                out[rows] = model.predict_proba(X[rows])[:, 1]
        return out

    def probabilities(
        self, texts: Sequence[str], vectors: np.ndarray | None, *, prior: float
    ) -> np.ndarray:
        """Calibrated probability that each document is synthetic, in a corpus whose synthetic
        share is `prior` (e.g. the report's `synthetic.point`): the classifier's logit is
        recalibrated on the out-of-fold scores (temperature scaling) and moved from their class
        balance to `prior` (Bayes' rule). For dropping the likeliest generated documents; the
        corpus's share is the report's, never a count of these."""
        if not 0 <= prior <= 1:
            raise InvalidInputError(f"prior must be a share in [0, 1], got {prior}")
        llr = quantify.log_likelihood_ratios(
            self.scores(texts, vectors), self.pos_scores_, self.neg_scores_, self.calibration_
        )
        odds = np.clip(prior, 1e-12, 1 - 1e-12) / np.clip(1 - prior, 1e-12, 1)
        return 1 / (1 + np.exp(-llr) / odds)

    def estimate(self, texts: Sequence[str], vectors: np.ndarray) -> SyntheticReport:
        self._check_fitted()
        docs = validate_texts(texts)
        vecs = as_matrix(vectors, name="candidate vectors", dim=self.reference_.vectors.shape[1])
        if len(vecs) != len(docs):
            raise InvalidInputError("pass one candidate vector per candidate document")
        quantify.check_sizes(len(docs), None, len(self.neg_scores_))
        scores = self.scores(docs, vecs if "embedding" in self.features_ else None)
        region = self.region(vecs)
        pos, neg, hold = self.pos_scores_, self.neg_scores_, self.holdout_region_
        near, topics = self.holdout_near_, self.unseen_topics_

        point, reps = bootstrap_shares(
            quantify.QUANTIFIERS[self.method_],
            scores,
            region,
            pos,
            neg,
            hold,
            self.synthetic_region_,
            near,
            n_bootstrap=self.n_bootstrap,
            rng=np.random.default_rng([self.random_state, 3]),
            topics=topics,
        )
        tail = (1 - self.level) / 2
        low, high = np.quantile(reps, tail, axis=0), np.quantile(reps, 1 - tail, axis=0)
        in_ref = region == IN_REFERENCE
        likelihood_interval = quantify.LIKELIHOOD_INTERVALS.get(self.method_)
        if likelihood_interval is not None and in_ref.sum() >= MIN_IN_DOMAIN:
            # A percentile bootstrap piles up at a boundary (a plainly human candidate: every
            # replicate at 0); the likelihood's own interval keeps the width the sample allows.
            ends = likelihood_interval(scores[in_ref], pos, neg, self.level, self.calibration_)
            low[0], high[0] = (
                min(
                    low[0],
                    shares_at(ends[0], region, hold, self.synthetic_region_, near, topics)[0],
                ),
                max(
                    high[0],
                    shares_at(ends[1], region, hold, self.synthetic_region_, near, topics)[0],
                ),
            )
        notes: list[str] = []
        flagged = point[1] > OOD_FLAG
        # The out-of-domain share as random held-out documents would set it (no topic scaling):
        # what lies farther out than the reference's own near twins, new topics included.
        off_topic = shares(
            lambda m: quantify.QUANTIFIERS[self.method_](scores[m], pos, neg),
            region,
            *point_rates(hold, self.synthetic_region_, near),
        )[1]
        if flagged or off_topic > OOD_FLAG:
            # The classifier's error rates were measured on the reference's human text; most of
            # this candidate's human text (if any) is of another kind or on other topics (text
            # of a new topic lies in the domain, but as far from the reference's documents as
            # another genre), so they do not transfer and no synthetic share above 0 can be
            # claimed with confidence.
            low[0] = 0.0
            where = (
                "outside the reference's domain: another genre or source"
                if flagged
                else "farther from the reference than its own held-out documents: other topics "
                "or another genre"
            )
            notes.append(
                f"{max(point[1], off_topic):.0%} of the candidate lies {where}, not "
                "evidence of generation; the synthetic fraction covers the in-domain part only "
                "and its interval is widened to 0"
            )
        if self.examples_dropped_:
            notes.append(
                f"{self.examples_dropped_} synthetic examples lie outside the reference's domain "
                f"and were not used; the signature was learned from {self.n_examples_}"
            )
        n_ref = int(in_ref.sum())
        if n_ref < MIN_IN_DOMAIN:
            notes.append(
                f"only {n_ref} documents are inside the reference's balls (need "
                f"{MIN_IN_DOMAIN}): they are all counted as human, so the synthetic fraction is a "
                "lower bound"
            )
        mode = self.mode_
        return SyntheticReport(
            synthetic=Estimate(
                point=point[0],
                low=float(low[0]),
                high=float(high[0]),
                level=self.level,
                method=self.method_,
                mode=mode,
            ),
            out_of_domain=Estimate(
                point=point[1],
                low=float(low[1]),
                high=float(high[1]),
                level=self.level,
                method="knn-ball membership vs the reference's left-out topics",
                mode=mode,
            ),
            flagged_out_of_domain=flagged,
            mode=mode,
            features=self.features_,
            validation_mae=self.validation_mae_,
            n_candidate=len(docs),
            n_labelled_synthetic=self.n_examples_,  # learned from (calibrated on those inside)
            n_reference=self.n_reference_,
            notes=tuple(notes),
            off_topic=off_topic,
        )
