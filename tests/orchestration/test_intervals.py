"""The run interval of a DAG run: Params first, else its data interval, never zero-length."""

from datetime import datetime, timezone

import pytest

from lakewatch.errors import LakewatchError
from lakewatch.orchestration.intervals import lookback_interval, resolve_interval

UTC = timezone.utc


def test_params_win():
    assert resolve_interval("2026-03-04", "2026-03-06", None, None, None) == {"start": "2026-03-04", "end": "2026-03-06"}
    assert resolve_interval("2026-03-04", None, None, None, None) == {"start": "2026-03-04", "end": "2026-03-05"}


def test_daily_data_interval_is_that_day():
    got = resolve_interval(None, None, datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC), None)
    assert got == {"start": "2026-03-04", "end": "2026-03-05"}


def test_zero_length_interval_still_scores_the_whole_day():
    t = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
    assert resolve_interval(None, None, t, t, t) == {"start": "2026-03-04", "end": "2026-03-05"}
    assert resolve_interval(None, None, None, None, t) == {"start": "2026-03-04", "end": "2026-03-05"}


def test_bad_intervals():
    with pytest.raises(LakewatchError, match="empty interval"):
        resolve_interval("2026-03-05", "2026-03-04", None, None, None)
    with pytest.raises(LakewatchError, match="logical date"):
        resolve_interval(None, None, None, None, None)


def test_lookback():
    assert lookback_interval(datetime(2026, 3, 9, 3, tzinfo=UTC), 7) == {"start": "2026-03-02", "end": "2026-03-09"}
