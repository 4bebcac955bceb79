"""The audit's sample: which path draws it, and the one place its design widens intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.results import Estimate
from detectors.shard_sampling import ShardedSample
from service.inputs import CorpusReader
from service.sampled import draw_sample, sampling_info, widen_synthetic, widen_tail
from service.schemas import SyntheticFraction, TailCoverage
from service.settings import Settings


def test_texts_readers_and_sent_samples_each_take_their_path(tmp_path):
    settings = Settings(data_dir=tmp_path, audit_size=20, full_read_bytes=0)
    texts = [f"document number {i}" for i in range(100)]
    plain = draw_sample(iter(texts), settings, np.random.default_rng(0))
    assert plain.sampling == "full read" and plain.corpus_size == 100 and plain.bytes_read is None
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts * 50))
    drawn = draw_sample(CorpusReader([path]), settings, np.random.default_rng(0))
    assert drawn.sampling == "two-stage" and drawn.bytes_total == path.stat().st_size
    # The two-stage sample's size is random; the audit's never exceeds the audit size.
    assert 0 < len(drawn.texts) <= settings.audit_size and len(drawn.clusters) == len(drawn.texts)
    sent = ShardedSample(
        texts=texts,
        corpus_size=10**6,
        corpus_size_exact=False,
        bytes_read=5,
        bytes_total=9,
        clusters=np.repeat(np.arange(10), 10),
        sampling="two-stage",
    )
    again = draw_sample(sent, settings, np.random.default_rng(0))
    assert len(again.texts) == 20 and again.corpus_size == 10**6
    assert [texts.index(t) // 10 for t in again.texts] == list(again.clusters)


def test_clustered_vectors_raise_the_design_effect(tmp_path):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(30, 16)) * 3
    clusters = np.repeat(np.arange(30), 10)
    vectors = centres[clusters] + rng.normal(size=(300, 16))
    two = ShardedSample(
        texts=["x"] * 300,
        corpus_size=10**5,
        corpus_size_exact=False,
        bytes_read=1,
        bytes_total=2,
        clusters=clusters,
        sampling="two-stage",
    )
    info = sampling_info(two, vectors)
    assert info.design_effect > 5 and info.effective_sample_size == pytest.approx(
        300 / info.design_effect
    )
    iid = sampling_info(two, rng.normal(size=(300, 16)))
    assert iid.design_effect < 1.5


def test_intervals_widen_by_the_root_of_the_design_effect():
    e = Estimate(point=0.2, low=0.1, high=0.35, level=0.9, method="m")
    s = widen_synthetic(SyntheticFraction(estimate=e, out_of_domain_fraction=e), 4.0)
    assert s is not None
    assert (s.estimate.low, s.estimate.high) == pytest.approx((0.0, 0.5))
    assert s.out_of_domain_fraction is not None and s.out_of_domain_fraction.high == pytest.approx(
        0.5
    )
    assert widen_synthetic(SyntheticFraction(estimate=e), 1.0).estimate == e  # type: ignore[union-attr]
    t = TailCoverage(value=0.5, baseline=0.6, ratio=0.8, low=0.7, high=0.95, level=0.9)
    w = widen_tail(t, 2.25)
    assert (w.low, w.high) == pytest.approx((0.65, 1.025)) and w.ratio == 0.8
