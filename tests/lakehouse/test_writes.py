"""Commit retries: what a retried write accumulates starts over before each attempt."""

from __future__ import annotations

import pytest

from lakewatch.lakehouse import writes


class ConcurrentAppendException(Exception):
    """Named as Delta's: a lost race."""


def test_a_lost_race_is_retried_and_each_attempt_starts_over(monkeypatch):
    monkeypatch.setattr(writes.time, "sleep", lambda s: None)
    events: list[str] = []

    def action() -> None:
        events.append("write")
        if events.count("write") == 1:
            raise ConcurrentAppendException("a concurrent writer committed first")

    writes.with_retries(action, "replace scores", before_attempt=lambda: events.append("reset"))
    assert events == ["reset", "write", "reset", "write"]


def test_any_other_error_is_raised_at_once():
    events: list[str] = []

    def action() -> None:
        events.append("write")
        raise ValueError("bad rows")

    with pytest.raises(ValueError, match="bad rows"):
        writes.with_retries(action, "replace scores", before_attempt=lambda: events.append("reset"))
    assert events == ["reset", "write"]
