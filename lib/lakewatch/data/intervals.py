"""Intervals of logical dates: [start, end) in whole UTC days, as every command takes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from lakewatch.errors import LakewatchError


@dataclass(frozen=True)
class Interval:
    """Logical dates [start, end): the unit every job reads, replaces and reports."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise LakewatchError(f"empty interval: end {self.end} is not after start {self.start}")

    @property
    def start_ts(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc)

    @property
    def end_ts(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=timezone.utc)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise LakewatchError(f"not a date (YYYY-MM-DD): {text!r}") from None


def interval_from_args(day: str | None, start: str | None, end: str | None) -> Interval:
    """--date D is the day [D, D+1); --start/--end any whole-day interval; --start alone is one day."""
    if day and (start or end):
        raise LakewatchError("give either --date or --start/--end, not both")
    if day:
        d = parse_date(day)
        return Interval(d, d + timedelta(days=1))
    if not start:
        raise LakewatchError("an interval is needed: --date YYYY-MM-DD or --start YYYY-MM-DD --end YYYY-MM-DD")
    s = parse_date(start)
    return Interval(s, parse_date(end) if end else s + timedelta(days=1))
