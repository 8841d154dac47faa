"""Run tracking: every job run has exactly one row in `runs`, `running` from its start, then its outcome."""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from lakewatch.config import Settings
from lakewatch.lakehouse.runs import FAILED, SUCCESS, RunRecord, write_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("lakewatch")
_WORKER_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def worker_cause(text: str) -> str | None:
    """The last `SomeError: message` line of a Python worker's traceback, as Spark forwards it."""
    causes = [m for m in (_WORKER_ERROR.match(line) for line in text.splitlines()) if m]
    if not causes:
        return None
    name, message = causes[-1].group(1), causes[-1].group(2)
    return f"{name.rsplit('.', 1)[-1]}: {message.strip()}"


def short_error(exc: BaseException) -> str:
    """The first meaningful line of an error, without a JVM stack trace; a Python worker's failure is told by
    its own cause (not Spark's "An exception was thrown from the Python worker")."""
    text = str(exc).strip() or type(exc).__name__
    if "Python worker" in text or type(exc).__name__ == "PythonException":
        cause = worker_cause(text)
        if cause:
            return f"a Spark Python worker failed: {cause}"[:2000]
    first = text.splitlines()[0]
    return f"{type(exc).__name__}: {first}"[:2000]


@contextmanager
def tracked_run(spark: "SparkSession", settings: Settings, record: RunRecord) -> Iterator[RunRecord]:
    """Write the record as running, yield it to fill in, then write it as success, or as failed with the
    error (and re-raise). A run killed in between keeps its `running` row: the interval is incomplete."""
    write_run(spark, settings, record, first=True)
    try:
        yield record
    except BaseException as exc:
        record.finish(FAILED, short_error(exc))
        log.error("run %s (%s) failed: %s", record.run_id, record.job, record.error)
        try:
            write_run(spark, settings, record)
        except Exception as write_exc:  # the original error matters more than the log row
            log.error("could not record the failed run %s: %s", record.run_id, short_error(write_exc))
        raise
    if record.status != SUCCESS:
        record.finish(SUCCESS)
    write_run(spark, settings, record)
