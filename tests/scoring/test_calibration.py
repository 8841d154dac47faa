"""Calibration maths on numpy: p-values, threshold at the target false-alarm rate."""

import numpy as np
import pytest

from lakewatch.errors import DataError
from lakewatch.scoring.calibration import calibrate, calibrated_values, p_values


def test_threshold_meets_the_target_rate_on_fresh_normal_data():
    rng = np.random.default_rng(0)
    held = rng.gamma(2.0, 1.0, 20_000)
    cal = calibrate(held, 0.01)
    fresh = rng.gamma(2.0, 1.0, 200_000)
    rate = float((fresh >= cal.threshold).mean())
    assert 0.007 < rate < 0.013
    # the p-value at the threshold is the target rate
    assert p_values(cal, np.array([cal.threshold]))[0] == pytest.approx(0.01, rel=1e-6)


def test_p_values_are_monotone_and_calibrated_in_unit_interval():
    rng = np.random.default_rng(1)
    cal = calibrate(rng.exponential(1.0, 5000), 0.001)
    s = np.linspace(-1, 40, 2000)
    p = p_values(cal, s)
    assert np.all(np.diff(p) <= 1e-12)
    c = calibrated_values(cal, s)
    assert c.min() >= 0 and c.max() <= 1
    # beyond every held-out score the tail still orders scores
    assert p_values(cal, np.array([20.0]))[0] > p_values(cal, np.array([30.0]))[0] > 0


def test_small_rate_threshold_comes_from_the_tail():
    rng = np.random.default_rng(2)
    held = rng.exponential(2.0, 50_000)
    cal = calibrate(held, 1e-4)
    # for an exponential the tail fit is exact in expectation: threshold = 2 * ln(1e4)
    assert cal.threshold == pytest.approx(2.0 * np.log(1e4), rel=0.05)


def test_too_few_heldout_rows_is_an_error():
    with pytest.raises(DataError, match="at least 20"):
        calibrate(np.ones(5), 0.01)
