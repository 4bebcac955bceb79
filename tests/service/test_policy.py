"""The verdict from numbers: keep, top-up (with how many documents) and reject, with reasons."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from detectors.results import Estimate
from service.policy import Policy, decide, dilution_documents

POLICY = Policy(
    max_synthetic_fraction=0.3,
    hard_max_synthetic_fraction=0.6,
    min_relative_tail_coverage=0.9,
    max_top_up_fraction=0.5,
)


def est(point: float, low: float, high: float) -> Estimate:
    return Estimate(point=point, low=low, high=high, level=0.9, method="test")


def verdict(synthetic, relative, beta=None, per_gen=None, feasible=False, n=1000):
    return decide(
        POLICY,
        n_documents=n,
        synthetic=synthetic,
        relative_tail_coverage=relative,
        top_up_beta=beta,
        top_up_per_generation=per_gen,
        top_up_feasible=feasible,
    )


def test_keep_within_limits_says_why():
    v = verdict(est(0.1, 0.05, 0.2), 0.97)
    assert v.decision == "keep" and v.top_up_documents == 0
    assert v.reasons[0].code == "within-limits" and "0.97" in v.reasons[0].message


def test_top_up_for_the_forecast_reports_documents_per_generation():
    v = verdict(est(0.1, 0.05, 0.2), 0.7, beta=0.125, per_gen=125, feasible=True)
    assert v.decision == "top-up" and v.top_up_documents == 125
    codes = [r.code for r in v.reasons]
    assert codes == ["forecast-tail-coverage", "top-up-forecast"]
    assert v.reasons[0].value == 0.7 and v.reasons[0].limit == 0.9


def test_top_up_by_dilution_when_synthetic_share_is_high():
    v = verdict(est(0.35, 0.3, 0.4), 0.95, n=1000)
    # 0.4 * 1000 / (1000 + N) <= 0.3  <=>  N >= 334
    assert v.decision == "top-up" and v.top_up_documents == 334
    assert 0.4 * 1000 / (1000 + 334) <= 0.3 < 0.4 * 1000 / (1000 + 333)


def test_reject_on_hard_limit_or_insufficient_top_up():
    hard = verdict(est(0.8, 0.7, 0.9), 0.95)
    assert hard.decision == "reject" and hard.reasons[0].code == "synthetic-hard-limit"
    short = verdict(None, 0.5, beta=0.5, per_gen=500, feasible=False)
    assert short.decision == "reject" and short.reasons[-1].code == "top-up-insufficient"
    too_much = verdict(None, 0.5, beta=0.75, per_gen=750, feasible=True)
    assert too_much.decision == "reject"


def test_dilution_edge_cases_and_validation():
    assert dilution_documents(100, 0.2, 0.3) == 0
    assert dilution_documents(100, 0.6, 0.3) == math.ceil(100 * (0.6 / 0.3 - 1))
    assert dilution_documents(100, 0.1, 0.0) == -1
    with pytest.raises(ValidationError):
        Policy(max_synthetic_fraction=1.5)
