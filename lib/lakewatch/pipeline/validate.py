"""The validate job: quarantine an interval's bad rows and count what is valid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.quality import validate_interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.pipeline.tracking import tracked_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_validate(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str | None = None
) -> RunRecord:
    record = RunRecord(run_id or new_run_id("validate"), "validate", spec.name, interval.start, interval.end)
    with tracked_run(spark, settings, record):
        record.input_table = spec.table_path(settings)
        validated = validate_interval(spark, settings, spec, interval, record.run_id)
        record.input_version = validated.input_version
        counts = validated.counts
        record.rows_in, record.rows_valid, record.rows_quarantined = counts.rows_in, counts.rows_valid, counts.rows_quarantined
        validated.release()
    return record
