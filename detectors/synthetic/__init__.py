"""Synthetic-fraction estimation: how much of a corpus is generated text, with an interval."""

from detectors.synthetic.estimator import SyntheticFractionEstimator

__all__ = ["SyntheticFractionEstimator"]
