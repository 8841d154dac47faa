"""Run tracking: every job run ends with exactly one row in `runs`, success or failure."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from lakewatch.config import Settings
from lakewatch.runs import RunRecord, write_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("lakewatch")


def short_error(exc: BaseException) -> str:
    """The first meaningful line of an error, without a JVM stack trace."""
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return f"{type(exc).__name__}: {first}"[:2000]


@contextmanager
def tracked_run(spark: "SparkSession", settings: Settings, record: RunRecord) -> Iterator[RunRecord]:
    """Yield the record to fill in; write it as success, or as failed with the error, then re-raise."""
    try:
        yield record
    except BaseException as exc:
        record.finish("failed", short_error(exc))
        log.error("run %s (%s) failed: %s", record.run_id, record.job, record.error)
        try:
            write_run(spark, settings, record)
        except Exception as write_exc:  # the original error matters more than the log row
            log.error("could not record the failed run %s: %s", record.run_id, short_error(write_exc))
        raise
    record.finish("success")
    write_run(spark, settings, record)
