from datetime import date

import pytest

from lakewatch.data.intervals import Interval, interval_from_args
from lakewatch.errors import LakewatchError


def test_date_is_one_day():
    assert interval_from_args("2026-03-04", None, None) == Interval(date(2026, 3, 4), date(2026, 3, 5))


def test_start_end():
    iv = interval_from_args(None, "2026-03-04", "2026-03-07")
    assert iv.days == 3 and str(iv) == "[2026-03-04, 2026-03-07)"


@pytest.mark.parametrize(
    "args, message",
    [
        (("2026-03-04", "2026-03-04", None), "not both"),
        ((None, None, None), "interval is needed"),
        ((None, "2026-03-05", "2026-03-04"), "empty interval"),
        ((None, "2026-3-x", None), "not a date"),
    ],
)
def test_bad_intervals(args, message):
    with pytest.raises(LakewatchError, match=message):
        interval_from_args(*args)
