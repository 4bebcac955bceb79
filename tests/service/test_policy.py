"""The verdict from numbers: keep, top-up (with how many documents), reject and inconclusive,
with reasons."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from detectors.results import Estimate
from service.policy import Policy, decide, dilution_documents, early_verdict

POLICY = Policy(
    max_synthetic_fraction=0.3,
    hard_max_synthetic_fraction=0.6,
    min_relative_tail_coverage=0.9,
    max_top_up_fraction=0.5,
)


def est(point: float, low: float, high: float) -> Estimate:
    return Estimate(point=point, low=low, high=high, level=0.9, method="test")


def verdict(
    synthetic, relative, beta=None, per_gen=None, feasible=False, n=1000, out_of_domain=None
):
    return decide(
        POLICY,
        n_documents=n,
        synthetic=synthetic,
        relative_tail_coverage=relative,
        top_up_beta=beta,
        top_up_per_generation=per_gen,
        top_up_feasible=feasible,
        out_of_domain=out_of_domain,
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
    low = est(0.1, 0.05, 0.2)
    short = verdict(low, 0.5, beta=0.5, per_gen=500, feasible=False)
    assert short.decision == "reject" and short.reasons[-1].code == "top-up-insufficient"
    too_much = verdict(low, 0.5, beta=0.75, per_gen=750, feasible=True)
    assert too_much.decision == "reject"


def test_dilution_edge_cases_and_validation():
    assert dilution_documents(100, 0.2, 0.3) == 0
    assert dilution_documents(100, 0.6, 0.3) == math.ceil(100 * (0.6 / 0.3 - 1))
    assert dilution_documents(100, 0.1, 0.0) == -1
    with pytest.raises(ValidationError):
        Policy(max_synthetic_fraction=1.5)


# --- early_verdict: the synthetic fraction and the domain alone, in the order a-e -------------


def test_a_hard_limit_rejects_first():
    v = early_verdict(POLICY, synthetic=est(0.8, 0.7, 0.9), out_of_domain=est(0.7, 0.6, 0.8))
    assert v is not None and v.decision == "reject"
    (reason,) = v.reasons
    assert reason.code == "synthetic-hard-limit"
    assert reason.value == 0.7 and reason.limit == 0.6
    assert reason.message == (
        "synthetic fraction is at least 0.70 (90% interval 0.70-0.90), above the hard limit 0.60"
    )


def test_b_mostly_generated_in_domain_part_is_rejected():
    # 0.40 of the whole candidate, 30% of it out of domain: 0.40 / 0.70 = 57% of the in-domain
    # part reads as generated, above 50%.
    v = early_verdict(POLICY, synthetic=est(0.4, 0.3, 0.5), out_of_domain=est(0.3, 0.2, 0.4))
    assert v is not None and v.decision == "reject" and v.top_up_documents == 0
    (reason,) = v.reasons
    assert reason.code == "mostly-generated"
    assert reason.value == pytest.approx(0.4 / 0.7) and reason.limit == 0.5
    for number in ("57%", "0.40", "0.30-0.50", "out-of-domain share 0.30", "limit 50%"):
        assert number in reason.message, (number, reason.message)
    # The same synthetic point with nothing out of domain is 40% of the in-domain part: no
    # early verdict (the forecast decides).
    assert early_verdict(POLICY, synthetic=est(0.4, 0.3, 0.5), out_of_domain=None) is None
    # Without an out-of-domain estimate the share is the point itself, and the message says so.
    alone = early_verdict(POLICY, synthetic=est(0.55, 0.45, 0.65), out_of_domain=None)
    assert alone is not None and alone.decision == "reject"
    assert alone.reasons[0].value == pytest.approx(0.55)
    assert "not estimated, taken as 0" in alone.reasons[0].message
    # The limit is strict: exactly half generated is not rejected here.
    assert early_verdict(POLICY, synthetic=est(0.5, 0.4, 0.6), out_of_domain=None) is None


def test_unexplained_scores_make_the_candidate_inconclusive_before_any_share_is_read():
    # 40% of the candidate scores where neither human text nor the examples do: even a point
    # of 0.9 is not a reject, because that reading rests on text neither side describes.
    whole = Estimate(point=0.9, low=0.1, high=1.0, level=0.9, method="curvature-mixture")
    v = early_verdict(POLICY, synthetic=whole, out_of_domain=None, unexplained=0.4)
    assert v is not None and v.decision == "inconclusive"
    (reason,) = v.reasons
    assert reason.code == "unexplained-text"
    assert reason.value == 0.4 and reason.limit == 0.2
    for words in ("40%", "limit 20%", "0.10-1.00", "COLLAPSE_GUARD_SYNTHETIC_EXAMPLES"):
        assert words in reason.message, (words, reason.message)
    # At the limit the mixture's reading stands (here: mostly generated).
    at_limit = early_verdict(POLICY, synthetic=whole, out_of_domain=None, unexplained=0.2)
    assert at_limit is not None and at_limit.reasons[0].code == "mostly-generated"
    # decide() passes it through.
    assert (
        decide(
            POLICY,
            n_documents=100,
            synthetic=whole,
            relative_tail_coverage=1.0,
            top_up_beta=None,
            top_up_per_generation=None,
            top_up_feasible=False,
            unexplained=0.4,
        )
        .reasons[0]
        .code
        == "unexplained-text"
    )


def test_a_material_unexplained_share_below_the_limit_says_why_the_interval_is_wide():
    # 10% unexplained (below the 20% limit), and the estimator has opened the interval to 1:
    # the width rule decides, and its message names the unexplained share as the cause.
    opened = Estimate(point=0.05, low=0.0, high=1.0, level=0.9, method="curvature-mixture")
    v = early_verdict(POLICY, synthetic=opened, out_of_domain=None, unexplained=0.1)
    assert v is not None and v.decision == "inconclusive"
    (reason,) = v.reasons
    assert reason.code == "synthetic-not-identifiable"
    assert "10% of the candidate scores where neither" in reason.message
    plain = early_verdict(POLICY, synthetic=opened, out_of_domain=None)
    assert plain is not None and "neither" not in plain.reasons[0].message


def test_c_out_of_domain_candidate_is_inconclusive():
    # 0.10 / (1 - 0.62) = 26% generated in domain: not rejected, but 62% out of domain.
    v = early_verdict(POLICY, synthetic=est(0.1, 0.05, 0.2), out_of_domain=est(0.62, 0.55, 0.70))
    assert v is not None and v.decision == "inconclusive"
    (reason,) = v.reasons
    assert reason.code == "out-of-domain"
    assert reason.value == 0.62 and reason.limit == 0.5
    assert reason.message.startswith(
        "62% of the candidate lies outside the reference's domain (90% interval 55%-70%; "
        "limit 50%): the reference does not represent this corpus"
    )
    assert "collapse-guard reference build NAME FILES" in reason.message
    # Out of domain comes before "no estimate": the more useful advice wins.
    none = early_verdict(POLICY, synthetic=None, out_of_domain=est(0.62, 0.55, 0.70))
    assert none is not None and none.reasons[0].code == "out-of-domain"
    # At the limit it is not out of domain.
    assert (
        early_verdict(POLICY, synthetic=est(0.1, 0.05, 0.2), out_of_domain=est(0.5, 0.4, 0.6))
        is None
    )


def test_c_comes_before_b_for_an_in_domain_estimate():
    # An embedding estimate can only call in-domain documents generated: with 95% of the
    # candidate outside the reference, 0.03 / 0.05 = 60% "generated in domain" is noise, and the
    # reference cannot judge the candidate.
    v = early_verdict(POLICY, synthetic=est(0.03, 0.0, 0.1), out_of_domain=est(0.95, 0.9, 0.98))
    assert v is not None and v.decision == "inconclusive"
    assert v.reasons[0].code == "out-of-domain"


def test_a_whole_candidate_estimate_rejects_even_out_of_domain():
    # The curvature mixture reads every document, whatever its domain: its point is the share.
    curv = Estimate(point=0.8, low=0.6, high=0.95, level=0.9, method="curvature-mixture")
    v = early_verdict(POLICY, synthetic=curv, out_of_domain=est(0.9, 0.8, 0.95))
    assert v is not None and v.decision == "reject"
    assert v.reasons[0].code == "mostly-generated"
    assert v.reasons[0].value == pytest.approx(0.8)
    # and a low one is not rescaled by the out-of-domain share: the domain then decides
    low = Estimate(point=0.1, low=0.0, high=0.2, level=0.9, method="curvature-mixture")
    v = early_verdict(POLICY, synthetic=low, out_of_domain=est(0.9, 0.8, 0.95))
    assert v is not None and v.reasons[0].code == "out-of-domain"


def test_d_no_synthetic_estimate_is_inconclusive():
    v = early_verdict(POLICY, synthetic=None, out_of_domain=None)
    assert v is not None and v.decision == "inconclusive"
    (reason,) = v.reasons
    assert reason.code == "no-synthetic-estimate"
    assert "could not be estimated" in reason.message and "audit notes" in reason.message
    assert "larger sample" in reason.message and "own domain" in reason.message


def test_e_wide_synthetic_interval_is_not_identifiable():
    v = early_verdict(POLICY, synthetic=est(0.2, 0.0, 0.6), out_of_domain=est(0.1, 0.05, 0.2))
    assert v is not None and v.decision == "inconclusive"
    (reason,) = v.reasons
    assert reason.code == "synthetic-not-identifiable"
    assert reason.value == pytest.approx(0.6) and reason.limit == 0.5
    for text in ("0.00-0.60", "0.60 wide", "limit 0.50", "COLLAPSE_GUARD_SYNTHETIC_EXAMPLES"):
        assert text in reason.message, (text, reason.message)
    # 0.45 wide is within the limit.
    assert early_verdict(POLICY, synthetic=est(0.2, 0.0, 0.45), out_of_domain=None) is None


def test_decide_returns_the_early_verdicts():
    # Each of these would be "keep" on the forecast alone (relative 0.97, beta not needed).
    cases = {
        "mostly-generated": (est(0.4, 0.3, 0.5), est(0.3, 0.2, 0.4), "reject"),
        "out-of-domain": (est(0.1, 0.05, 0.2), est(0.62, 0.55, 0.7), "inconclusive"),
        "no-synthetic-estimate": (None, None, "inconclusive"),
        "synthetic-not-identifiable": (est(0.2, 0.0, 0.6), None, "inconclusive"),
    }
    for code, (synthetic, outside, decision) in cases.items():
        v = verdict(synthetic, 0.97, out_of_domain=outside)
        assert v.decision == decision and [r.code for r in v.reasons] == [code]
        assert v.top_up_documents == 0
    # A top-up case (forecast short, top-up feasible) is also overridden by an early verdict.
    # (0.05 / (1 - 0.8) = 25% generated in domain: not rejected, but 80% out of domain.)
    v = verdict(
        est(0.05, 0.02, 0.1),
        0.7,
        beta=0.1,
        per_gen=100,
        feasible=True,
        out_of_domain=est(0.8, 0.7, 0.9),
    )
    assert v.decision == "inconclusive" and v.top_up_documents == 0


def test_keep_and_top_up_unchanged_with_a_small_out_of_domain_share():
    small = est(0.1, 0.05, 0.15)
    for kwargs in (
        dict(synthetic=est(0.1, 0.05, 0.2), relative=0.97),
        dict(synthetic=est(0.1, 0.05, 0.2), relative=0.7, beta=0.125, per_gen=125, feasible=True),
        dict(synthetic=est(0.35, 0.3, 0.4), relative=0.95),
    ):
        assert verdict(**kwargs, out_of_domain=small) == verdict(**kwargs)
    assert verdict(est(0.35, 0.3, 0.4), 0.95).top_up_documents == 334


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("max_out_of_domain_fraction", -0.1),
        ("max_out_of_domain_fraction", 1.5),
        ("max_synthetic_interval_width", 0.0),
        ("max_synthetic_interval_width", 1.2),
        ("reject_generated_share", 0.0),
        ("reject_generated_share", 2.0),
        ("reject_generated_share", "0.5"),  # strict: a string is not a number
    ],
)
def test_new_policy_fields_are_validated(field, bad):
    with pytest.raises(ValidationError, match=field):
        Policy(**{field: bad})


def test_new_policy_fields_defaults_and_bounds():
    p = Policy()
    assert (
        p.max_out_of_domain_fraction,
        p.max_synthetic_interval_width,
        p.reject_generated_share,
    ) == (0.5, 0.5, 0.5)
    edge = Policy(max_out_of_domain_fraction=0.0, max_synthetic_interval_width=1.0)
    assert edge.max_out_of_domain_fraction == 0.0 and edge.max_synthetic_interval_width == 1.0
    # A stricter policy changes the verdict: 30% generated in domain rejected at a 0.25 limit.
    strict = Policy(reject_generated_share=0.25)
    v = early_verdict(strict, synthetic=est(0.3, 0.25, 0.35), out_of_domain=None)
    assert v is not None and v.decision == "reject" and v.reasons[0].limit == 0.25


def test_a_forecast_no_top_up_fixes_is_inconclusive_when_the_domain_may_explain_it():
    """Human news of another outlet: 42% [30%, 54%] outside the reference's domain, its forecast
    below target and no allowed top-up restoring it. The reference's tails cannot tell domain
    from collapse, so: inconclusive, naming the domain, not reject. In domain, still reject."""
    low = est(0.0, 0.0, 0.08)
    args = dict(beta=0.5, per_gen=500, feasible=False)
    shifted = verdict(low, 0.7, **args, out_of_domain=est(0.42, 0.30, 0.54))
    assert shifted.decision == "inconclusive"
    assert [r.code for r in shifted.reasons] == ["forecast-tail-coverage", "forecast-out-of-domain"]
    assert shifted.reasons[-1].value == 0.54 and shifted.reasons[-1].limit == 0.5
    assert "30%-54%" in shifted.reasons[-1].message
    in_domain = verdict(low, 0.7, **args, out_of_domain=est(0.2, 0.1, 0.3))
    assert in_domain.decision == "reject"
    assert in_domain.reasons[-1].code == "top-up-insufficient"
    # A top-up that works is still a top-up, whatever the domain's upper bound.
    fixable = verdict(
        low, 0.7, beta=0.2, per_gen=200, feasible=True, out_of_domain=est(0.42, 0.3, 0.54)
    )
    assert fixable.decision == "top-up"


def test_a_shortfall_inside_the_forecasts_noise_keeps_and_says_so():
    """Point 0.87 below the limit 0.9, but the forecast's interval reaches 0.93: keep, with the
    reason naming the noise; the same point with an interval ending at 0.88 is a shortfall."""

    def with_high(high: float, **top_up):
        return decide(
            POLICY,
            n_documents=1000,
            synthetic=est(0.1, 0.05, 0.2),
            relative_tail_coverage=0.87,
            relative_tail_coverage_high=high,
            top_up_beta=top_up.get("beta"),
            top_up_per_generation=top_up.get("per_gen"),
            top_up_feasible=bool(top_up),
        )

    noisy = with_high(0.93)
    assert noisy.decision == "keep"
    assert [r.code for r in noisy.reasons] == ["forecast-within-noise", "within-limits"]
    assert noisy.reasons[0].value == 0.93 and "0.87" in noisy.reasons[0].message
    short = with_high(0.88, beta=0.125, per_gen=125)
    assert short.decision == "top-up" and short.top_up_documents == 125
    assert [r.code for r in short.reasons] == ["forecast-tail-coverage", "top-up-forecast"]


def test_a_top_up_neither_shown_to_work_nor_to_fail_is_inconclusive():
    """No fresh fraction up to the maximum can be shown to reach the target (its lower bound
    misses), but the maximum's interval reaches it: the data cannot tell whether it suffices, so
    inconclusive with the reason naming the noise and what decides it, not reject (which near
    that edge moved with the CPU). An interval that stays below the target is a shown shortfall:
    reject, as is a search without an interval."""

    def at_max(relative: Estimate | None, synthetic=None, out_of_domain=None):
        return decide(
            POLICY,
            n_documents=1000,
            synthetic=synthetic or est(0.1, 0.05, 0.2),
            relative_tail_coverage=0.77,
            relative_tail_coverage_high=0.81,
            top_up_beta=0.5,
            top_up_per_generation=500,
            top_up_feasible=False,
            top_up_relative=relative,
            out_of_domain=out_of_domain,
        )

    noisy = at_max(est(0.87, 0.83, 0.92))
    assert noisy.decision == "inconclusive" and noisy.top_up_documents == 0
    assert [r.code for r in noisy.reasons] == ["forecast-tail-coverage", "top-up-within-noise"]
    assert noisy.reasons[-1].value == 0.92 and noisy.reasons[-1].limit == 0.9
    message = noisy.reasons[-1].message
    assert "50% per generation (500 documents)" in message and "0.83-0.92" in message
    assert "seeds" in message and "max_top_up_fraction" in message  # what would decide it
    # The edge itself counts as reached (the search's own rule: >= target).
    assert at_max(est(0.86, 0.82, 0.9)).decision == "inconclusive"
    short = at_max(est(0.8, 0.76, 0.85))
    assert short.decision == "reject" and short.reasons[-1].code == "top-up-insufficient"
    assert at_max(None).decision == "reject"
    # The synthetic share's reason stays beside it.
    both = at_max(est(0.87, 0.83, 0.92), synthetic=est(0.35, 0.3, 0.4))
    assert [r.code for r in both.reasons] == [
        "synthetic-fraction",
        "forecast-tail-coverage",
        "top-up-within-noise",
    ]
    # With the domain in doubt too, the domain is named first (the remedy differs).
    outside = est(0.42, 0.3, 0.54)
    doubt = at_max(est(0.87, 0.83, 0.92), out_of_domain=outside)
    assert doubt.decision == "inconclusive"
    assert doubt.reasons[-1].code == "forecast-out-of-domain"
    # A top-up above the allowed maximum is not a top-up, whatever its interval.
    over = decide(
        POLICY,
        n_documents=1000,
        synthetic=est(0.1, 0.05, 0.2),
        relative_tail_coverage=0.77,
        relative_tail_coverage_high=0.81,
        top_up_beta=0.75,
        top_up_per_generation=750,
        top_up_feasible=False,
        top_up_relative=est(0.87, 0.83, 0.92),
    )
    assert over.decision == "reject"


def test_a_forecast_that_cannot_measure_tail_coverage_is_inconclusive_not_keep():
    # NaN compares false with every limit: read as a number it would pass as "not short".
    v = verdict(est(0.1, 0.05, 0.2), math.nan)
    assert v.decision == "inconclusive"
    assert [r.code for r in v.reasons] == ["forecast-undefined"]
    assert "larger reference" in v.reasons[0].message
    # The synthetic fraction still decides first when it can.
    assert verdict(est(0.9, 0.8, 0.95), math.nan).decision == "reject"


def test_a_policy_with_its_limits_out_of_order_is_refused():
    with pytest.raises(ValidationError, match="above hard_max_synthetic_fraction"):
        Policy(max_synthetic_fraction=0.7, hard_max_synthetic_fraction=0.6)
    assert Policy(max_synthetic_fraction=0.6, hard_max_synthetic_fraction=0.6)


def test_a_keep_names_the_generator_families_it_cannot_rule_out():
    from service.policy import blind_spots
    from service.schemas import FamilyVisibility

    seen = [
        FamilyVisibility(family="smollm2", examples=150, detectable_share=0.08),
        FamilyVisibility(family="gpt-3.5-turbo", examples=60, detectable_share=0.62),
        FamilyVisibility(family="gpt-4", examples=60, detectable_share=None),
    ]
    keep = blind_spots(POLICY, verdict(est(0.02, 0.0, 0.1), 0.97), seen)
    assert keep.decision == "keep"
    reason = keep.reasons[-1]
    assert reason.code == "not-ruled-out" and reason.value == 1.0
    assert (
        "gpt-3.5-turbo (below 62%)" in reason.message
        and "gpt-4 (not at any share)" in reason.message
    )
    assert "smollm2" not in reason.message  # seen at 8%, under the limit
    # Families all seen under the limit: nothing to add; other verdicts are left as they are.
    assert blind_spots(POLICY, verdict(est(0.02, 0.0, 0.1), 0.97), seen[:1]).reasons[-1].code == (
        "within-limits"
    )
    reject = verdict(est(0.9, 0.8, 0.95), 0.97)
    assert blind_spots(POLICY, reject, seen) == reject


def test_a_shortfall_of_a_candidate_on_other_topics_is_not_read_as_collapse():
    """In the domain but farther from the reference than its own held-out documents (the same
    source on topics the reference does not hold): its tail shortfall is the topics', so the
    synthetic fraction decides, and the verdict says the forecast was not judged."""

    def off(synthetic, off_topic):
        return decide(
            POLICY,
            n_documents=1000,
            synthetic=synthetic,
            relative_tail_coverage=0.6,
            top_up_beta=None,
            top_up_per_generation=None,
            top_up_feasible=False,
            out_of_domain=est(0.1, 0.0, 0.3),
            off_topic=off_topic,
        )

    human = off(est(0.0, 0.0, 0.1), 0.7)
    assert human.decision == "keep" and human.top_up_documents == 0
    assert [r.code for r in human.reasons] == ["forecast-off-topic", "within-limits"]
    assert human.reasons[0].value == 0.7 and "0.60" in human.reasons[0].message
    assert "not judged" in human.reasons[1].message
    diluted = off(est(0.35, 0.3, 0.4), 0.7)
    assert diluted.decision == "top-up" and diluted.top_up_documents == 334
    assert [r.code for r in diluted.reasons] == [
        "synthetic-fraction",
        "forecast-off-topic",
        "top-up-dilution",
    ]
    # At or below the limit the candidate's topics are the reference's: the shortfall counts.
    on_topic = off(est(0.0, 0.0, 0.1), 0.5)
    assert on_topic.decision == "reject"
    assert on_topic.reasons[0].code == "forecast-tail-coverage"
