"""The interval of a DAG run in whole UTC days: the run's Params, else its data interval."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from lakewatch.errors import LakewatchError


def resolve_interval(
    start: str | None, end: str | None, interval_start: datetime | None, interval_end: datetime | None,
    logical_date: datetime | None,
) -> dict[str, str]:
    """The run's [start, end) in whole UTC days: the params if given, else the run's data interval.

    A zero-length data interval (Airflow 3's cron-trigger timetables, manual runs) stands for the day it
    starts, so that a daily run always scores a whole day.
    """
    if start:
        s = date.fromisoformat(start[:10])
        e = date.fromisoformat(end[:10]) if end else s + timedelta(days=1)
    else:
        begin = interval_start or logical_date
        if begin is None:
            raise LakewatchError("the run has neither a data interval nor a logical date: pass params start/end")
        s = begin.astimezone(timezone.utc).date()
        e = interval_end.astimezone(timezone.utc).date() if interval_end else s
        if e <= s:
            e = s + timedelta(days=1)
    if e <= s:
        raise LakewatchError(f"empty interval: end {e} is not after start {s}")
    return {"start": s.isoformat(), "end": e.isoformat()}


def lookback_interval(logical_date: datetime, days: int) -> dict[str, str]:
    """The `days` whole UTC days before the logical date: what a scheduled training run learns from."""
    end = logical_date.astimezone(timezone.utc).date()
    return {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat()}
