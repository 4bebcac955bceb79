"""Where the synthetic stage keeps what it computed once: the generated examples' scores.

Fast: a counting stand-in for the language-model scorer (the real scorer's caching through the
audit is tested in test_audit.py and test_audit_curvature.py).
"""

from __future__ import annotations

import numpy as np

from detectors.synthetic.curvature import CurvatureProfiles
from service.scoring import EXAMPLES_SCORED, example_profiles
from service.settings import Settings


class CountingScorer:
    model_name, version, max_tokens, precision = "stand-in", "1", 16, "float32"

    @property
    def cache_key(self):
        return (self.model_name, self.version, self.max_tokens, self.precision)

    def __init__(self) -> None:
        self.calls = 0

    def profiles(self, texts):
        self.calls += 1
        scores = np.arange(len(texts), dtype=float)[:, None] + self.calls / 10
        return CurvatureProfiles(
            num=scores, var=np.ones_like(scores), positions=np.ones(len(texts), dtype=np.int64)
        )


def test_examples_are_scored_once_per_machine_not_per_data_directory(tmp_path):
    scorer = CountingScorer()
    shared = tmp_path / "model-cache"
    first = example_profiles(Settings(data_dir=tmp_path / "a", model_cache_dir=shared), scorer)
    again = example_profiles(Settings(data_dir=tmp_path / "b", model_cache_dir=shared), scorer)
    assert scorer.calls == 1 and len(first.positions) == EXAMPLES_SCORED
    np.testing.assert_array_equal(first.num, again.num)
    # Another scorer set-up (here: more tokens) is another entry, never a stale read.
    scorer.max_tokens = 32
    example_profiles(Settings(data_dir=tmp_path / "a", model_cache_dir=shared), scorer)
    assert scorer.calls == 2
    # A damaged entry is a miss: scored again and replaced, not an error.
    scorer.max_tokens = 16
    for path in shared.glob("examples-curvature-*.npz"):
        path.write_bytes(b"not an npz file")
    fixed = example_profiles(Settings(data_dir=tmp_path / "c", model_cache_dir=shared), scorer)
    assert scorer.calls == 3 and not np.array_equal(fixed.num, first.num)
    assert not list(shared.glob("*.tmp.npz"))  # no temporary file left behind
    # Without a model cache the entry lives in the data directory.
    example_profiles(Settings(data_dir=tmp_path / "d", model_cache_dir=None), scorer)
    assert list((tmp_path / "d" / "cache").glob("examples-curvature-*.npz"))
