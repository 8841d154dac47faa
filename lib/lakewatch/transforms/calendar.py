"""Calendar inputs: where a point falls in its day and week, as sin/cos pairs a model can learn cycles from.

Computed from the row's timestamp (UTC) alone, so they cost nothing to store and are the same at training
and scoring. A model that wants them declares `calendar_channels`; the scoring plan appends them after the
features of every window row.
"""

from __future__ import annotations

import numpy as np

CALENDAR_CHANNELS = 4
_US_PER_DAY = 86_400_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def calendar_features(ts_us: np.ndarray) -> np.ndarray:
    """(n, 4) float32: sin and cos of the time of day, sin and cos of the day of the week."""
    ts = np.asarray(ts_us, dtype=np.int64)
    day_frac = (ts % _US_PER_DAY) / _US_PER_DAY
    week_frac = (((ts // _US_PER_DAY) + _EPOCH_WEEKDAY) % 7 + day_frac) / 7.0
    out = np.column_stack([np.sin(2 * np.pi * day_frac), np.cos(2 * np.pi * day_frac),
                           np.sin(2 * np.pi * week_frac), np.cos(2 * np.pi * week_frac)])
    return out.astype(np.float32)
