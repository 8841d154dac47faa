"""Which windows calibrate which signal (`fit_calibrations`): a learned signal only held-out windows, a signal
learned from nothing every window that holds the points it reads."""

from __future__ import annotations

import numpy as np

from lakewatch.config import TrainingSettings
from lakewatch.models.base import DetectorOutput
from lakewatch.models.tcn import TCNConfig, TCNDetector
from lakewatch.pipeline.train import fit_calibrations
from tests.models.test_contract import identity_plan

W, K = 16, 6


def test_each_signal_calibrates_on_the_windows_that_hold_what_it_reads():
    det = TCNDetector(1, TCNConfig(window=W, dilations=[1, 2], channels=4, members=2, calendar="none",
                                   evidence=["forecast", "level", "flatline"], flat_points=K))
    n = 100
    n_valid = np.full(n, W, dtype=np.int32)
    n_valid[:30] = 1  # an entity's first rows: one real point
    n_valid[30:40] = K  # enough for flatline, not for a forecast
    held = np.zeros(n, dtype=bool)
    held[75:] = True
    signals = np.column_stack([np.arange(n, dtype=np.float64), np.linspace(0, 3, n), np.linspace(0, 2, n)])
    out = DetectorOutput(signals[:, 0], np.ones((n, 1)), members=np.column_stack([signals[:, 0]] * 2),
                         signals=signals)
    cals = fit_calibrations(identity_plan(det, 1), out, np.zeros(n, dtype=np.int64), 1, TrainingSettings(), held,
                            n_valid)
    assert {name: c.n_heldout for name, c in cals.signals.items()} == {"forecast": 25, "level": 100, "flatline": 70}
    assert [c.n_heldout for c in cals.members] == [25, 25]
    assert cals.signals["forecast"].quantiles[0] == 75.0  # the held-out windows' smallest forecast score


def test_signal_points_of_the_tcn_evidence():
    det = TCNDetector(2, TCNConfig(window=W, dilations=[1, 2], flat_points=K))
    # forecast, level, seasonal, flatline, relational (its residual averaged over the last 2 points by default)
    assert [det.signal_points(s) for s in det.signal_names] == [W, 1, 1, K, 2]
    assert det.learned_signals == ("forecast", "relational")  # the two fitted to the training windows
