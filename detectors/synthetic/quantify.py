"""Quantification under prior shift: what fraction of a corpus is positive (synthetic), from scores.

A classifier's scores are not a prevalence: counting documents above a threshold (CC) is biased
towards the training prior by exactly the classifier's error rates. The corrections here use the
classifier's behaviour on held-out labelled documents (out-of-fold scores):

- CC   classify and count: share of candidate scores above 1/2 (biased; the baseline)
- ACC  adjusted CC: (CC - fpr) / (tpr - fpr)
- PCC  probabilistic CC: mean score (biased like CC)
- PACC probabilistic ACC: (PCC - mean negative score) / (mean positive score - mean negative score)
- EMQ  EM re-estimation of the prior (Saerens, Latinne & Decaestecker 2002, "SLD")
- EMQ-BCTS  the same maximum-likelihood prior, on posteriors first recalibrated on the held-out
       scores (bias-corrected temperature scaling, Alexandari, Kundaje & Shrikumar 2020). EMQ is
       the efficient estimator when posteriors are calibrated, but a logistic regression on a few
       hundred features is overconfident out of fold (logit sd ~5 on benchmarks/estimation.py's
       openings), which is what sinks plain EMQ; two fitted numbers repair it. It uses the whole
       score distribution where PACC uses its mean (benchmarks/estimation.py's openings: labelled
       MAE 0.026 / 0.019 at 500 / 1,000 documents with it, 0.032 / 0.027 with PACC).
- BBE  best-bin estimation (Garg et al. 2021): the share of *negatives* (human text) in the
       candidate from the top bin of the human score, where positives have no mass. It needs no
       positive examples of the kind in the candidate, only that they avoid the most human-like
       region: the tails of human text a collapsing model no longer produces.

Intervals are percentile bootstraps that resample both the candidate's scores and the labelled
out-of-fold scores, so the uncertainty of the error rates is part of the interval.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from detectors.errors import InsufficientDataError

Quantifier = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
METHODS = ("cc", "acc", "pcc", "pacc", "emq", "emq-bcts", "bbe")
MIN_LABELLED = 20  # per class: fewer and tpr/fpr are too noisy for any adjustment
MIN_CANDIDATE = 20  # documents: fewer and a bootstrap interval means nothing
_THRESHOLD = 0.5
_EPS = 1e-6
_BOUNDARY = 1e-3


def _clip(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def cc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    return float(np.mean(scores > _THRESHOLD))


def acc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    tpr, fpr = float(np.mean(pos > _THRESHOLD)), float(np.mean(neg > _THRESHOLD))
    if tpr - fpr < _EPS:
        return cc(scores, pos, neg)  # the classifier does not separate: nothing to adjust by
    return _clip((cc(scores, pos, neg) - fpr) / (tpr - fpr))


def pcc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    return float(np.mean(scores))


def pacc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    mp, mn = float(np.mean(pos)), float(np.mean(neg))
    if mp - mn < _EPS:
        return pcc(scores, pos, neg)
    return _clip((float(np.mean(scores)) - mn) / (mp - mn))


def emq(
    scores: np.ndarray, pos: np.ndarray, neg: np.ndarray, *, tol: float = 1e-6, max_iter: int = 500
) -> float:
    """SLD: rescale posteriors to a new prior and re-estimate the prior until it is stable.

    The training prior is the labelled set's class balance (the classifier was fitted on it).
    EM approaches a boundary prior only geometrically, so a prior within `_BOUNDARY` of 0 or 1
    at convergence is the boundary itself.
    """
    train = len(pos) / (len(pos) + len(neg))
    s = np.clip(scores, _EPS, 1 - _EPS)
    prior = new = train
    for _ in range(max_iter):
        w_pos = s * prior / train
        w_neg = (1 - s) * (1 - prior) / (1 - train)
        new = float(np.mean(w_pos / (w_pos + w_neg)))
        if abs(new - prior) < tol:
            break
        prior = new
    return 0.0 if new < _BOUNDARY else 1.0 if new > 1 - _BOUNDARY else _clip(new)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def temperature_scaling(
    pos: np.ndarray, neg: np.ndarray, *, ridge: float = 1e-6, max_iter: int = 50
) -> tuple[float, float]:
    """(temperature t, bias b) of the calibrated logit t * logit(score) + b, by Newton's method
    on the held-out scores' log-loss (a two-parameter logistic regression; the tiny ridge keeps
    it finite when the held-out scores separate perfectly)."""
    x = np.r_[_logit(pos), _logit(neg)]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    X = np.c_[x, np.ones_like(x)]
    w = np.zeros(2)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def max_likelihood_prior(ratio: np.ndarray, *, tol: float = 1e-9, max_iter: int = 100) -> float:
    """argmax over a in [0, 1] of sum log(1 + a * d_i), d_i = r_i - 1 with r_i = f_pos / f_neg at
    each candidate document. The log-likelihood is concave in a: Newton steps kept inside a
    bracket that every slope evaluation narrows (a step leaving it bisects instead)."""
    d = ratio - 1

    def slope(a: float) -> float:
        return float(np.sum(d / (1 + a * d)))

    if slope(0.0) <= 0:
        return 0.0
    if slope(1.0) >= 0:
        return 1.0
    lo, hi, a = 0.0, 1.0, 0.5
    for _ in range(max_iter):
        u = d / (1 + a * d)
        g, h = float(u.sum()), float(np.sum(u * u))
        if abs(g) <= tol * h or hi - lo < tol:
            break
        lo, hi = (a, hi) if g > 0 else (lo, a)
        step = a + g / h
        a = step if lo < step < hi else (lo + hi) / 2
    return a


def log_likelihood_ratios(
    scores: np.ndarray, pos: np.ndarray, neg: np.ndarray, calibration: tuple[float, float]
) -> np.ndarray:
    """log f_pos / f_neg per document: the calibrated logit (`temperature_scaling` of `pos`,
    `neg`) minus the held-out set's log prior odds."""
    t, b = calibration
    return np.clip(t * _logit(scores) + b - np.log(len(pos) / len(neg)), -30, 30)


def emq_bcts(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """Maximum-likelihood prior on recalibrated posteriors."""
    llr = log_likelihood_ratios(scores, pos, neg, temperature_scaling(pos, neg))
    return max_likelihood_prior(np.exp(llr))


def emq_bcts_interval(
    scores: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    level: float,
    calibration: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Profile-likelihood interval of EMQ-BCTS's prior: every a in [0, 1] whose log-likelihood
    is within z^2 / 2 of the maximum (Wilks; z the normal quantile of the interval's tails). It
    covers the candidate's sampling only, given the calibration, but keeps its width at a
    boundary, where a percentile bootstrap piles every replicate up (a plainly human candidate's
    replicates all at 0: an interval [0, 0] no sample size can justify). `calibration`: the
    `temperature_scaling` of `pos`, `neg` when the caller already has it."""
    calibration = calibration or temperature_scaling(pos, neg)
    d = np.exp(log_likelihood_ratios(scores, pos, neg, calibration)) - 1
    best = max_likelihood_prior(d + 1)
    drop = NormalDist().inv_cdf((1 + level) / 2) ** 2 / 2
    top = float(np.sum(np.log1p(best * d)))

    def bound(lo: float, hi: float, inside_at_lo: bool) -> float:
        # The log-likelihood is concave: between the maximum and an end it falls monotonically.
        for _ in range(50):
            mid = (lo + hi) / 2
            if (top - float(np.sum(np.log1p(mid * d))) <= drop) == inside_at_lo:
                lo = mid
            else:
                hi = mid
        return lo if inside_at_lo else hi

    low = 0.0 if top <= drop else bound(0.0, best, False)  # the log-likelihood at 0 is 0
    high = 1.0 if top - float(np.sum(np.log1p(d))) <= drop else bound(best, 1.0, True)
    return low, high


def best_bin_negative_share(
    candidate_human: np.ndarray, reference_human: np.ndarray, *, delta: float = 0.1
) -> float:
    """BBE: share of the candidate drawn from the reference's distribution, from its top bin.

    Scores are human-likeness (higher = more like the reference). For every threshold c the ratio
    q_cand(c) / q_ref(c) of the shares at or above c upper-bounds the human share; BBE takes the
    threshold minimising the ratio with q_cand inflated by its Hoeffding bound (so a tiny top bin
    cannot win by luck) and reports the plain ratio there.
    """
    ref = np.sort(reference_human)[::-1]
    n_c, n_r = len(candidate_human), len(ref)
    cand_sorted = np.sort(candidate_human)
    # q(c) at each reference score used as a threshold, from the highest down.
    q_ref = np.arange(1, n_r + 1) / n_r
    q_cand = (n_c - np.searchsorted(cand_sorted, ref, side="left")) / n_c
    slack = np.sqrt(np.log(4 / delta) / (2 * n_c)) + np.sqrt(np.log(4 / delta) / (2 * n_r))
    bound = (q_cand + slack) / q_ref
    best = int(np.argmin(bound))
    return _clip(q_cand[best] / q_ref[best])


def bbe(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """Synthetic share = 1 - the human share BBE finds in the top bin of human-likeness."""
    return 1.0 - best_bin_negative_share(1.0 - scores, 1.0 - neg)


QUANTIFIERS: dict[str, Quantifier] = {
    "cc": cc,
    "acc": acc,
    "pcc": pcc,
    "pacc": pacc,
    "emq": emq,
    "emq-bcts": emq_bcts,
    "bbe": bbe,
}


# Quantifiers with a likelihood of their own: its interval keeps its width where the percentile
# bootstrap piles up at a boundary (see `emq_bcts_interval`).
LIKELIHOOD_INTERVALS = {"emq-bcts": emq_bcts_interval}


def check_sizes(n_candidate: int, n_pos: int | None, n_neg: int) -> None:
    if n_candidate < MIN_CANDIDATE:
        raise InsufficientDataError(
            f"an interval needs at least {MIN_CANDIDATE} candidate documents, got {n_candidate}"
        )
    if n_pos is not None and n_pos < MIN_LABELLED:
        raise InsufficientDataError(
            f"need at least {MIN_LABELLED} labelled synthetic documents, got {n_pos}"
        )
    if n_neg < MIN_LABELLED:
        raise InsufficientDataError(
            f"need at least {MIN_LABELLED} human (reference) documents, got {n_neg}"
        )


def validation_errors(
    pos: np.ndarray,
    neg: np.ndarray,
    *,
    rng: np.random.Generator,
    prevalences: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
    n_repeats: int = 20,
) -> dict[str, float]:
    """Mean absolute error of each method on mixes built from held-out labelled scores.

    The labelled scores are split in halves: one half plays the calibration set (pos/neg), the
    other is mixed at known prevalences and quantified, so no score judges its own calibration.
    Twenty random halvings: with five, the choice among methods within 0.002 of each other (PACC,
    ACC and EMQ-BCTS on benchmarks/estimation.py's openings) changed from one seed to the next.
    """
    errors: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(n_repeats):
        pp, pn = rng.permutation(pos), rng.permutation(neg)
        cal_p, test_p = pp[: len(pp) // 2], pp[len(pp) // 2 :]
        cal_n, test_n = pn[: len(pn) // 2], pn[len(pn) // 2 :]
        size = min(len(test_p), len(test_n))
        for a in prevalences:
            n_pos = round(a * size)
            mix = np.concatenate(
                [rng.choice(test_p, n_pos, replace=False), rng.choice(test_n, size - n_pos, False)]
            )
            for m in METHODS:
                errors[m].append(abs(QUANTIFIERS[m](mix, cal_p, cal_n) - a))
    return {m: float(np.mean(e)) for m, e in errors.items()}
