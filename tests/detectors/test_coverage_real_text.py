"""Tail coverage on real embedded text: a candidate without the human tails is caught."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.coverage import coverage_report
from detectors.reference import ReferenceCorpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wiki_reference(wiki_vectors) -> ReferenceCorpus:
    return ReferenceCorpus(k=5, tail_quantile=0.1, holdout_fraction=0.3, random_state=0).fit(
        wiki_vectors
    )


def test_dense_core_candidate_loses_tail_coverage_but_keeps_precision(wiki_reference):
    ref = wiki_reference
    held_out = ref.holdout_
    # The dense core: held-out documents whose k-th nearest reference neighbour is closer than
    # the median, i.e. what a collapsing generator keeps when it drops the rare topics.
    radius_to_ref = ref.neighbours(held_out)[0][:, -1]
    core = held_out[radius_to_ref < np.median(radius_to_ref)]
    rng = np.random.default_rng(0)
    uniform = held_out[rng.choice(len(held_out), len(core), replace=False)]

    core_report = coverage_report(ref, core, random_state=1)
    uniform_report = coverage_report(ref, uniform, random_state=1)
    assert core_report.sample_size == uniform_report.sample_size == len(core)

    # Tail coverage falls clearly: the 90% bootstrap intervals do not even overlap.
    assert core_report.tail_coverage.value_high < uniform_report.tail_coverage.value_low
    # and the ratio to the size-matched human baseline says so with its interval below 1.
    assert core_report.tail_coverage.high < 1.0
    # The loss is specific to the tails: overall coverage and precision do not fall.
    assert core_report.tail_coverage.ratio < core_report.coverage.ratio
    assert core_report.precision.value >= uniform_report.precision.value
    assert core_report.precision.value > 0.9


def test_uniform_human_sample_matches_its_baseline(wiki_reference):
    uniform = wiki_reference.holdout_[::2]
    report = coverage_report(wiki_reference, uniform, random_state=2)
    for metric in (report.tail_coverage, report.coverage, report.precision, report.recall):
        assert metric.low <= 1.0 <= metric.high


def test_modes_show_a_missing_topic(wiki_reference):
    # Remove every held-out document of the largest reference mode: the table must say "missing".
    centroids, labels = wiki_reference.modes_
    largest = int(np.bincount(labels).argmax())
    held_out = wiki_reference.holdout_
    nearest = np.argmin(((held_out[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    report = coverage_report(wiki_reference, held_out[nearest != largest], random_state=3)
    rows = {row.mode: row for row in report.modes}
    assert rows[largest].status == "missing"
    assert rows[largest].candidate_mass == 0.0
    assert rows[largest].reference_mass > 0.05
    others_ok = [r.status in ("ok", "over") for m, r in rows.items() if m != largest]
    assert np.mean(others_ok) > 0.8
