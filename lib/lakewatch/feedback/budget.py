"""The alert budget: the event threshold that keeps expected false alerts per entity-day within
`alerting.max_alerts_per_entity_day`, and the recall it costs.

An event raises an alert when its peak calibrated score (1 - tail p-value) reaches the threshold c. Two
estimates of the false alerts per entity-day at c, the larger counts:
- from the calibration (held-out normal scores): a normal point reaches c with probability 1 - c, so an
  entity with r points a day raises at most r (1 - c) false alerts a day (at most: an alert may span points);
- from the analysts: the events they marked `false_alarm` whose peak reaches c, per entity-day observed.
The threshold is the lowest c (the most sensitive) whose estimate is within the budget, never below the
model's own alarm level; the recall it costs is the share of the events analysts confirmed (or labels show)
as anomalies whose peak falls below it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

STEPS_PER_DECADE = 16
DECADES = 8


@dataclass(frozen=True)
class BudgetChoice:
    budget: float
    threshold: float  # the event threshold on peak_calibrated
    base_threshold: float  # 1 - the model's alarm rate: what every event reached before
    expected_false_alerts: float  # per entity-day at the threshold (the larger of the two estimates)
    normal_false_alerts: float  # the calibration's bound at the threshold
    observed_false_alerts: float  # analysts' false alarms still raised at the threshold, per entity-day
    within_budget: bool
    recall: float | None  # of the confirmed anomalies' events, at the threshold
    recall_at_base: float | None
    false_alarms: int
    confirmed: int
    entity_days: float

    def to_dict(self) -> dict:
        return asdict(self)


def candidates(alarm_rate: float, false_alarm_peaks: np.ndarray) -> np.ndarray:
    """Thresholds to try, ascending: the base level, a log grid of tail probabilities below the alarm rate,
    and just above each false alarm's peak (where it stops being raised)."""
    grid = 1.0 - alarm_rate * 10.0 ** (-np.arange(0, DECADES * STEPS_PER_DECADE + 1) / STEPS_PER_DECADE)
    above = np.nextafter(false_alarm_peaks[false_alarm_peaks >= 1.0 - alarm_rate], 2.0)
    return np.unique(np.clip(np.concatenate([grid, above]), 1.0 - alarm_rate, 1.0))


def choose_threshold(budget: float, alarm_rate: float, rows_per_entity_day: float, entity_days: float,
                     false_alarm_peaks: np.ndarray, confirmed_peaks: np.ndarray) -> BudgetChoice:
    """The lowest event threshold whose expected false alerts per entity-day are within the budget (the
    highest candidate, flagged not within budget, when none is)."""
    fa = np.asarray(false_alarm_peaks, dtype=np.float64)
    ok = np.asarray(confirmed_peaks, dtype=np.float64)
    base = 1.0 - alarm_rate
    days = max(float(entity_days), 1e-9)
    chosen, normal, observed = base, 0.0, 0.0
    for c in candidates(alarm_rate, fa):
        chosen, normal = float(c), rows_per_entity_day * (1.0 - float(c))
        observed = float(np.count_nonzero(fa >= c)) / days
        if max(normal, observed) <= budget:
            break

    def recall(c: float) -> float | None:
        return float(np.mean(ok >= c)) if len(ok) else None

    expected = max(normal, observed)
    return BudgetChoice(budget, chosen, base, expected, normal, observed, expected <= budget, recall(chosen),
                        recall(base), int(len(fa)), int(len(ok)), float(entity_days))
