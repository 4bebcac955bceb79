"""The mixture arithmetic behind the synthetic and out-of-domain shares, on exact compositions."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.synthetic.mixture import (
    ELSEWHERE,
    IN_EXAMPLES,
    IN_REFERENCE,
    region_rates,
    scaled_rates,
    shares,
)


def regions(n_ref: int, n_ex: int, n_else: int) -> np.ndarray:
    return np.r_[
        np.full(n_ref, IN_REFERENCE), np.full(n_ex, IN_EXAMPLES), np.full(n_else, ELSEWHERE)
    ]


def test_a_known_composition_is_recovered_with_example_balls():
    """Human 50% landing (0.7, 0.1), synthetic 40% landing (0.2, 0.6), 10% another genre landing
    nowhere: region counts 43% / 29% / 28%, synthetic share 0.08 / 0.43 among the first."""
    region = regions(4300, 2900, 2800)
    synthetic, ood = shares(
        lambda in_ref: 0.08 / 0.43, region, np.array([0.7, 0.1]), np.array([0.2, 0.6])
    )
    assert synthetic == pytest.approx(0.4)
    assert ood == pytest.approx(0.1)


def test_without_example_balls_it_is_the_inside_rate_model():
    """a' = a_in h / (a_in h + (1 - a_in) s) and o = 1 - inside / ((1 - a') h + a' s)."""
    h, s, a_in = 0.63, 0.5, 0.3
    region = regions(550, 0, 450)
    synthetic, ood = shares(lambda in_ref: a_in, region, np.array([h, 0.0]), np.array([s, 0.0]))
    share = a_in * h / (a_in * h + (1 - a_in) * s)
    o = 1 - 0.55 / ((1 - share) * h + share * s)
    assert ood == pytest.approx(o)
    assert synthetic == pytest.approx((1 - o) * share)


def test_more_in_domain_than_expected_means_nothing_out_of_it():
    synthetic, ood = shares(
        lambda in_ref: 0.5, regions(900, 0, 100), np.array([0.6, 0]), np.array([0.6, 0])
    )
    assert ood == 0.0 and synthetic == pytest.approx(0.5)


def test_too_few_documents_in_reference_balls_counts_them_human():
    """Pure text in the examples' balls only: no quantifier call, the share comes from n_X."""

    def never(in_ref):
        raise AssertionError("the quantifier must not run on 5 documents")

    synthetic, ood = shares(never, regions(5, 800, 195), np.array([0.7, 0.1]), np.array([0.1, 0.8]))
    n_human = 0.005 / 0.7
    assert synthetic == pytest.approx((0.8 - n_human * 0.1) / 0.9)
    assert ood == pytest.approx(1 - n_human - synthetic)


def test_kept_examples_are_scaled_by_the_held_out_documents_the_cut_keeps():
    holdout = regions(76, 0, 24)
    near = np.r_[np.ones(76, bool), np.zeros(24, bool)]
    near[76:90] = True  # the cut keeps 90 held-out documents, 76 of them inside: 0.844
    kept = regions(72, 0, 28)
    rates = scaled_rates(holdout, kept, near)
    assert rates[0] == pytest.approx(0.72 * 0.76 / (76 / 90))
    assert np.all(region_rates(kept) == [0.72, 0.0])
