"""Closed forms for the recursion, next to which the Monte Carlo runs are checked.

Notation follows Shumailov et al.: X^0 ~ N(mu, sigma^2) with M_0 points; (mu_{j+1}, sigma_{j+1})
are estimated from X^j; X^{j+1} ~ N(mu_{j+1}, sigma_{j+1}^2) with M_{j+1} points. Every function
here takes `n_fits` and returns an array over j = 0..n_fits, the value after j estimation steps
(j = 0 is the original). The loop's generation g model has been estimated g + 1 times, so its
closed form is entry g + 1.

Exact, for 1-D Gaussians and the `replace` policy, using that the sample mean and the sample
variance of normal data are independent, and (M - 1) s^2 / sigma^2 ~ chi^2_{M-1}:
  sigma_{j+1}^2 = sigma_j^2 * chi^2_{M-1} / a,  a = M - 1 (unbiased) or M (maximum likelihood)
  mu_{j+1} = mu_j + sigma_j * Z / sqrt(M)
so E[sigma_n^2] = sigma^2 prod (M_j - 1) / a_j, E[(mu_n - mu)^2] = sum_j E[sigma_j^2] / M_j, and
E[W2^2] = E[(mu_n - mu)^2] + E[sigma_n^2] + sigma^2 - 2 sigma E[sigma_n], with E[sigma_n] a product
of chi means. To first order in 1/M (unbiased) this is the paper's (3/2) sigma^2 sum 1/M_j.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, gammaln

from detectors.errors import InvalidInputError
from simulations.models.gaussian import Estimator


def _sizes(n_fits: int, samples: int | Sequence[int]) -> np.ndarray:
    """Per-fit sample sizes M_0..M_{n-1} as floats."""
    if n_fits < 0:
        raise InvalidInputError(f"n_fits must be non-negative, got {n_fits}")
    sizes = (
        np.full(n_fits, samples, dtype=float)
        if np.ndim(samples) == 0
        else np.asarray(samples, dtype=float)[:n_fits]
    )
    if len(sizes) < n_fits:
        raise InvalidInputError(f"need {n_fits} per-fit sample sizes, got {len(sizes)}")
    if np.any(sizes < 2):
        raise InvalidInputError("every generation needs at least 2 samples")
    return sizes


def _divisor(sizes: np.ndarray, estimator: Estimator) -> np.ndarray:
    if estimator not in ("mle", "unbiased"):
        raise InvalidInputError(f"estimator must be 'mle' or 'unbiased', got {estimator!r}")
    return sizes if estimator == "mle" else sizes - 1


def _cumprod0(factors: np.ndarray) -> np.ndarray:
    """[1, f0, f0 f1, ...]: the product after 0..n steps."""
    return np.concatenate([[1.0], np.cumprod(factors)])


def expected_variance(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """E[sigma_j^2]: constant for the unbiased estimator, sigma^2 (1 - 1/M)^j for the MLE."""
    m = _sizes(n_fits, samples)
    return sigma2 * _cumprod0((m - 1) / _divisor(m, estimator))


def variance_of_variance(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """Var[sigma_j^2] (E[(chi^2_k)^2] = k^2 + 2k): the standard error of a Monte Carlo mean of
    sigma_j^2 over C chains is sqrt(this / C). It grows geometrically, which is why the mean of a
    finite number of chains drifts below the expectation while the median collapses."""
    m = _sizes(n_fits, samples)
    k, a = m - 1, _divisor(m, estimator)
    second = sigma2**2 * _cumprod0((k**2 + 2 * k) / a**2)
    return second - expected_variance(n_fits, samples, sigma2=sigma2, estimator=estimator) ** 2


def expected_log_variance(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """E[log sigma_j^2] = log sigma^2 + sum (digamma(k/2) + log(2/a)): negative drift for either
    estimator, so log sigma_n^2 -> -inf and sigma_n^2 -> 0 almost surely (the median collapses)."""
    m = _sizes(n_fits, samples)
    k, a = m - 1, _divisor(m, estimator)
    return np.log(sigma2) + np.concatenate([[0.0], np.cumsum(digamma(k / 2) + np.log(2 / a))])


def variance_of_log_variance(n_fits: int, samples: int | Sequence[int]) -> np.ndarray:
    """Var[log sigma_j^2] = sum trigamma(k/2) (the same for both estimators)."""
    from scipy.special import polygamma

    m = _sizes(n_fits, samples)
    return np.concatenate([[0.0], np.cumsum(polygamma(1, (m - 1) / 2))])


def expected_sigma(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """E[sigma_j] = sigma prod E[sqrt(chi^2_k / a)], E[sqrt(chi^2_k)] = sqrt 2 G((k+1)/2)/G(k/2)."""
    m = _sizes(n_fits, samples)
    k, a = m - 1, _divisor(m, estimator)
    chi_mean = np.exp(0.5 * np.log(2.0) + gammaln((k + 1) / 2) - gammaln(k / 2))
    return np.sqrt(sigma2) * _cumprod0(chi_mean / np.sqrt(a))


def expected_mean_drift_squared(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """E[(mu_j - mu)^2] = sum_{i<j} E[sigma_i^2] / M_i: a random walk, unbounded when unbiased."""
    m = _sizes(n_fits, samples)
    var = expected_variance(n_fits, samples, sigma2=sigma2, estimator=estimator)[:-1]
    return np.concatenate([[0.0], np.cumsum(var / m)])


def expected_w2_squared(
    n_fits: int,
    samples: int | Sequence[int],
    *,
    sigma2: float = 1.0,
    estimator: Estimator = "unbiased",
) -> np.ndarray:
    """Exact E[W2^2(N(mu, sigma^2), N(mu_j, sigma_j^2))] in 1-D under `replace`."""
    kw = {"sigma2": sigma2, "estimator": estimator}
    return (
        expected_mean_drift_squared(n_fits, samples, **kw)  # type: ignore[arg-type]
        + expected_variance(n_fits, samples, **kw)  # type: ignore[arg-type]
        + sigma2
        - 2 * np.sqrt(sigma2) * expected_sigma(n_fits, samples, **kw)  # type: ignore[arg-type]
    )


def first_order_w2_squared(
    n_fits: int, samples: int | Sequence[int], *, sigma2: float = 1.0
) -> np.ndarray:
    """The paper's Theorem 3.1 to first order: (3/2) sigma^2 sum_{i<j} 1/M_i (unbiased case)."""
    m = _sizes(n_fits, samples)
    return 1.5 * sigma2 * np.concatenate([[0.0], np.cumsum(1 / m)])


def expected_covariance_trace(
    n_fits: int, samples: int | Sequence[int], *, trace: float, estimator: Estimator = "unbiased"
) -> np.ndarray:
    """d-D: E[Sigma_j] = Sigma prod (M - 1) / a (Wishart mean), so its trace scales alike."""
    return expected_variance(n_fits, samples, sigma2=trace, estimator=estimator)


def categorical_loss_probability(probabilities: np.ndarray, samples: int) -> np.ndarray:
    """Chance that a category of probability p gets no draw among M: (1 - p)^M. A category with
    p <= 1/M is absent from one generation's sample with probability >= (1 - 1/M)^M ~ 1/e, and once
    absent it is absorbed (the fitted probability is 0 forever under `replace`)."""
    p = np.asarray(probabilities, dtype=float)
    return (1 - p) ** samples


def categorical_expected_support(probabilities: np.ndarray, samples: int) -> float:
    """Expected number of categories present in one sample of M draws."""
    return float(np.sum(1 - categorical_loss_probability(probabilities, samples)))
