"""Calibration: raw scores to tail p-values against held-out normal scores, and the alarm threshold.

Below the tail the p-value is the empirical survival function of the held-out scores; in the tail
(the top `tail_fraction`) it is an exponential fit to the excesses, so that scores beyond anything
seen in held-out data still get distinct, ordered p-values instead of a floor of 1/(n+1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lakewatch.errors import DataError

QUANTILE_POINTS = 512
TAIL_FRACTION = 0.05


@dataclass(frozen=True)
class Calibration:
    """What a package keeps to turn raw scores into p-values, calibrated values and anomaly flags."""

    target_false_alarm_rate: float
    threshold: float
    quantiles: list[float]  # held-out scores at evenly spaced probabilities 0..1
    tail_start: float  # u: the score where the exponential tail begins
    tail_fraction: float  # P(score > u) under held-out data
    tail_scale: float  # beta: mean excess over u
    n_heldout: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**data)


def calibrate(heldout_scores: np.ndarray, target_false_alarm_rate: float, tail_fraction: float = TAIL_FRACTION) -> Calibration:
    """Fit the calibration to held-out normal scores and set the threshold for the target false-alarm rate."""
    scores = np.sort(np.asarray(heldout_scores, dtype=np.float64))
    if len(scores) < 20:
        raise DataError(f"calibration needs at least 20 held-out scores, got {len(scores)}")
    if not 0 < target_false_alarm_rate < 1:
        raise ValueError(f"target false-alarm rate must be in (0, 1), got {target_false_alarm_rate}")
    probs = np.linspace(0.0, 1.0, QUANTILE_POINTS)
    quantiles = np.quantile(scores, probs)
    u = float(np.quantile(scores, 1.0 - tail_fraction))
    excess = scores[scores > u] - u
    beta = float(excess.mean()) if len(excess) else float(np.std(scores) or 1e-12)
    partial = Calibration(target_false_alarm_rate, 0.0, quantiles.tolist(), u, tail_fraction, max(beta, 1e-12), len(scores))
    return Calibration(**{**asdict(partial), "threshold": threshold_for(partial, target_false_alarm_rate)})


def threshold_for(cal: Calibration, rate: float) -> float:
    """The score whose p-value is `rate`: an empirical quantile, or a point of the exponential tail."""
    if rate >= cal.tail_fraction:
        probs = np.linspace(0.0, 1.0, len(cal.quantiles))
        return float(np.interp(1.0 - rate, probs, cal.quantiles))
    return cal.tail_start + cal.tail_scale * float(np.log(cal.tail_fraction / rate))


def p_values(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    """P(score >= s) for normal data: 1 at the lowest scores, towards 0 for the most anomalous."""
    s = np.asarray(scores, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, len(cal.quantiles))
    q = np.asarray(cal.quantiles)
    body = 1.0 - np.interp(s, q, probs)
    tail = cal.tail_fraction * np.exp(-(s - cal.tail_start) / cal.tail_scale)
    return np.where(s > cal.tail_start, tail, np.maximum(body, cal.tail_fraction))


def calibrated_values(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    """1 - p-value: in [0, 1], higher is more anomalous, comparable across models."""
    return 1.0 - p_values(cal, scores)
