"""The alert budget's threshold: the calibration's bound alone, then moved by the false alarms analysts marked,
with the recall of confirmed anomalies it costs. Expected values are worked out by hand from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from lakewatch.feedback.budget import choose_threshold


def test_without_feedback_the_calibration_bound_sets_the_threshold():
    # 100 points per entity-day at an alarm rate of 0.002: at most 0.2 false alerts a day, within a budget of 0.5
    loose = choose_threshold(0.5, 0.002, 100.0, 40.0, np.array([]), np.array([]))
    assert loose.threshold == pytest.approx(0.998) and loose.within_budget and loose.recall is None
    # a budget of 0.05 needs 100 (1 - c) <= 0.05: c >= 0.9995, the first grid point at or above it
    tight = choose_threshold(0.05, 0.002, 100.0, 40.0, np.array([]), np.array([]))
    assert tight.normal_false_alerts <= 0.05 and tight.threshold >= 0.9995
    assert tight.threshold == pytest.approx(1 - 0.002 * 10 ** (-10 / 16))  # 0.002 * 10^(-10/16) = 4.74e-4 <= 5e-4


def test_false_alarms_marked_by_analysts_move_the_threshold_above_them_at_a_cost_in_recall():
    false_alarms = np.array([0.9999, 0.99995, 0.99999, 0.9985])  # 4 in 10 entity-days: 0.4 a day
    confirmed = np.array([0.99999, 0.999999, 0.9991, 0.99995])
    without = choose_threshold(0.25, 0.002, 10.0, 10.0, np.array([]), confirmed)
    assert without.threshold == pytest.approx(0.998) and without.recall == 1.0
    moved = choose_threshold(0.25, 0.002, 10.0, 10.0, false_alarms, confirmed)
    # 0.25 a day over 10 entity-days: at most 2 of the 4 false alarms may still fire, so the threshold passes
    # the two lowest (0.9985, 0.9999) and stops there; the calibration's bound, 10 (1 - 0.9999) = 0.001, is far below
    assert 0.9999 < moved.threshold <= 0.99995 and moved.within_budget
    assert moved.observed_false_alerts == pytest.approx(0.2) and moved.normal_false_alerts < 0.0011
    assert moved.recall == 0.75 and moved.recall_at_base == 1.0  # the confirmed anomaly at 0.9991 is lost
    assert (moved.false_alarms, moved.confirmed) == (4, 4)


def test_a_budget_no_threshold_meets_is_reported_as_missed():
    choice = choose_threshold(0.01, 0.002, 1e9, 1.0, np.array([]), np.array([]))
    assert not choice.within_budget and choice.expected_false_alerts > 0.01 and choice.threshold < 1.0
