"""The runs table: one row per job run, with its counts, lineage, duration and outcome.

A run's row is written as `running` before the run's first commit to any other table and replaced (one
MERGE on run_id) by its final row: a run killed in between stays `running` in the table, so a reader sees
that the interval's outputs may be partly from that run (see `lakewatch summary`).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator

from lakewatch.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


RUNNING, SUCCESS, FAILED = "running", "success", "failed"


def new_run_id(job: str) -> str:
    return f"{job}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


BACKTEST_PREFIX = "backtest-"  # every backtest's run id starts so: `evaluate` never replaces a backtest's rows


def backtest_run_id(given: str | None = None) -> str:
    """A backtest's run id: the given one (prefixed when it lacks the prefix) or a new one."""
    if not given:
        return f"{BACKTEST_PREFIX}{uuid.uuid4().hex[:10]}"
    return given if given.startswith(BACKTEST_PREFIX) else BACKTEST_PREFIX + given


@dataclass
class RunRecord:
    """What a job did, filled in as it goes and written once at its end (success or failure)."""

    run_id: str
    job: str
    dataset: str
    interval_start: date | None = None
    interval_end: date | None = None
    input_table: str | None = None
    input_version: int | None = None
    model_name: str | None = None
    model_version: int | None = None
    rows_in: int | None = None
    rows_valid: int | None = None
    rows_quarantined: int | None = None
    rows_scored: int | None = None
    rows_anomalous: int | None = None
    n_events: int | None = None
    status: str = RUNNING
    error: str | None = None
    report_path: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage of the run into details["stages_s"]: where a run's time goes."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            stages = self.details.setdefault("stages_s", {})
            stages[name] = round(stages.get(name, 0.0) + time.monotonic() - t0, 3)

    def finish(self, status: str, error: str | None = None) -> None:
        self.status, self.error = status, error
        self.details["duration_s"] = round(time.monotonic() - self._t0, 3)

    def as_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        row["logical_date"] = self.interval_start
        running = self.status == RUNNING
        row["ended_at"] = None if running else datetime.now(timezone.utc)
        row["duration_s"] = None if running else float(self.details.get("duration_s", time.monotonic() - self._t0))
        row["details"] = json.dumps(json_safe(self.details), default=str, sort_keys=True)
        return row


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON (and Airflow's XCom) has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_run(spark: "SparkSession", settings: Settings, record: RunRecord, first: bool = False) -> None:
    """Write the run's row: the first write of a run (its `running` row) is a blind append, cheap and never in
    conflict; every later write replaces all rows of its run id in one commit (replaceWhere, which finds them by
    the files' run_id statistics instead of joining the whole table as a MERGE would). A retried DAG task keeps
    its run id, so its retry appends a second `running` row until its outcome replaces both; a rerun has a new
    id and adds a row.
    """
    from lakewatch.lakehouse.tables import RUNS
    from lakewatch.lakehouse.writes import append, replace_where

    row = record.as_row()
    df = spark.createDataFrame([tuple(row.get(c) for c in RUNS.columns)], RUNS.schema)
    if first:
        append(spark, settings, RUNS, df)
        return
    replace_where(spark, settings, RUNS, df, f"run_id = '{record.run_id.replace(chr(39), chr(39) * 2)}'")
