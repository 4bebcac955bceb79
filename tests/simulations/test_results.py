"""Bands over chains (`simulations.results.summarise`): every number finite or absent, never NaN,
so a result survives JSON and reads back as its schema says."""

from __future__ import annotations

import math

import numpy as np

from detectors.results import non_finite_paths
from simulations.results import Band, Trajectory, summarise


def test_a_generation_with_no_finite_chain_has_absent_numbers_and_a_note():
    values = np.array([[0.5, 0.7, np.nan], [np.nan, np.nan, np.nan], [0.2, 0.4, 0.3]])
    traj = summarise(values, metric="recall", description="recall")
    empty = traj.bands[1]
    assert empty.n == 0 and not empty.defined
    assert (empty.mean, empty.median, empty.low, empty.high, empty.sem) == (None,) * 5
    assert traj.note is not None and "generation 1" in traj.note
    # The other generations use their finite chains only.
    assert traj.bands[0].n == 2 and math.isclose(traj.bands[0].mean or 0, 0.6)
    assert traj.bands[2].n == 3 and traj.bands[2].sem is not None
    # Arrays for arithmetic and plots put NaN where the band is absent.
    assert np.isnan(traj.means()[1]) and np.isfinite(traj.means()[[0, 2]]).all()


def test_one_finite_chain_has_no_standard_error_rather_than_nan():
    traj = summarise(np.array([[0.5, np.nan]]), metric="m", description="m")
    band = traj.bands[0]
    assert band.n == 1 and band.mean == 0.5 and band.sem is None
    assert traj.note is None  # defined: one chain is a number, only its spread is unknown


def test_every_band_round_trips_through_json():
    values = np.array([[np.nan, np.nan], [0.1, np.nan], [0.1, 0.3]])
    traj = summarise(values, metric="m", description="m")
    assert non_finite_paths(traj) == []
    assert Trajectory.model_validate_json(traj.model_dump_json()) == traj


def test_a_row_stored_with_nulls_by_an_earlier_version_still_reads():
    # What an earlier version wrote for a metric undefined everywhere: NaN as null, n = 1.
    old = '{"mean":null,"median":null,"low":null,"high":null,"sem":null,"level":0.9,"n":1}'
    band = Band.model_validate_json(old)
    assert band.mean is None and not band.defined


def test_non_finite_paths_names_each_nan_and_infinity():
    band = Band(mean=0.5, median=0.5, low=0.4, high=0.6, sem=0.1, level=0.9, n=3)
    assert non_finite_paths(band) == []
    bad = Band.model_construct(
        mean=float("nan"), median=0.5, low=float("-inf"), high=0.6, sem=0.1, level=0.9, n=3
    )
    assert non_finite_paths(bad) == ["low", "mean"]
