"""The labels contract: the dataset's own column names, PRODUCT.md's entity/ts, or the spec's, with clear errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from lakewatch.data.labels import label_points
from lakewatch.errors import DataError
from tests.helpers import small_spec, write_rows

START, END = datetime(2026, 3, 4), datetime(2026, 3, 5)
POINT = datetime(2026, 3, 4, 1, 0)


def points(spark, settings, spec):
    return [(r["entity"], r["ts"], r["kind"]) for r in label_points(spark, settings, spec, START, END).collect()]


def test_labels_with_the_datasets_names_or_the_documented_ones(spark, settings):
    spec = small_spec(labels={"table": "small_labels"})
    write_rows(spark, settings, "small_labels", [("a", POINT, True, "spike")],
               "host STRING, ts TIMESTAMP, is_anomaly BOOLEAN, kind STRING")
    assert points(spark, settings, spec) == [("a", POINT, "spike")]
    write_rows(spark, settings, "small_labels", [("a", POINT, True)], "entity STRING, ts TIMESTAMP, is_anomaly BOOLEAN")
    assert points(spark, settings, spec) == [("a", POINT, "anomaly")]


def test_labels_columns_named_in_the_spec(spark, settings):
    spec = small_spec(labels={"table": "small_labels", "entity": "machine", "timestamp": "at"})
    write_rows(spark, settings, "small_labels", [("a", POINT, True)], "machine STRING, at TIMESTAMP, is_anomaly BOOLEAN")
    assert points(spark, settings, spec) == [("a", POINT, "anomaly")]


def test_a_labels_table_that_fits_nothing_says_which_table_and_columns(spark, settings):
    spec = small_spec(labels={"table": "small_labels"})
    write_rows(spark, settings, "small_labels", [("a", POINT, True)], "machine STRING, ts TIMESTAMP, is_anomaly BOOLEAN")
    with pytest.raises(DataError) as err:
        points(spark, settings, spec)
    message = str(err.value)
    assert "labels table small_labels" in message and "'host' or 'entity'" in message
    assert "it has: machine, ts, is_anomaly" in message
