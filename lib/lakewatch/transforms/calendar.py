"""Calendar inputs: where a point falls in its day and week, as sin/cos pairs a model can learn cycles from.

Computed from the row's timestamp (UTC) alone, so they cost nothing to store and are the same at training
and scoring. A model that wants them declares `calendar_channels`; the scoring plan appends them after the
features of every window row.
"""

from __future__ import annotations

import numpy as np

CHANNELS = {"none": 0, "day": 2, "week": 4}
_US_PER_DAY = 86_400_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def calendar_features(ts_us: np.ndarray, channels: int = 4) -> np.ndarray:
    """(n, channels) float32: sin and cos of the time of day, then (channels 4) sin and cos of the day of the
    week. A model trained on a few days should not see the day of the week: it cannot learn a weekly cycle
    from them, only what its few weekdays looked like."""
    ts = np.asarray(ts_us, dtype=np.int64)
    day_frac = (ts % _US_PER_DAY) / _US_PER_DAY
    week_frac = (((ts // _US_PER_DAY) + _EPOCH_WEEKDAY) % 7 + day_frac) / 7.0
    out = np.column_stack([np.sin(2 * np.pi * day_frac), np.cos(2 * np.pi * day_frac),
                           np.sin(2 * np.pi * week_frac), np.cos(2 * np.pi * week_frac)])
    return out[:, :channels].astype(np.float32)
