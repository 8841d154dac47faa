"""The dataset spec: errors that name the file, line and field; durations; string timestamps."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.data.spec import load_dataset_spec, parse_duration
from lakewatch.errors import ConfigError
from lakewatch.lakehouse.tables import QUARANTINE
from lakewatch.pipeline.validate import run_validate
from tests.helpers import small_spec, write_rows


def test_a_misspelt_key_names_file_line_and_field(settings, tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\ntable: x\nentity: host\ntimestamp: ts\nfeatures:\n  - {name: cpu, mx: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_dataset_spec(str(spec), settings)
    assert str(spec) in str(err.value) and "features.0.mx (line 6): unknown key" in str(err.value)


def test_a_spec_that_is_not_yaml_or_misses_fields(settings, tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: [x\n")
    with pytest.raises(ConfigError, match="line 2 is not valid YAML|line 1 is not valid YAML"):
        load_dataset_spec(str(spec), settings)
    spec.write_text("name: x\ntable: x\n")
    with pytest.raises(ConfigError, match="entity: Field required"):
        load_dataset_spec(str(spec), settings)


def test_durations():
    assert [parse_duration(t) for t in ("300", "30s", "5m", "1.5h", "1d", 60)] == [300, 30, 300, 5400, 86400, 60]
    with pytest.raises(ValueError):
        parse_duration("five minutes")


def test_a_string_timestamp_that_does_not_parse_is_quarantined(spark, settings):
    rows = [("a", "2026-03-04 00:20:00", 1.0, 1.0, date(2026, 3, 4)), ("a", "04/03/2026 00:25", 1.0, 1.0, date(2026, 3, 4))]
    write_rows(spark, settings, "small", rows, "host STRING, ts STRING, cpu DOUBLE, latency DOUBLE, date DATE")
    day = Interval(date(2026, 3, 4), date(2026, 3, 5))
    record = run_validate(spark, settings, small_spec(partition_column="date"), day, run_id="iso")
    assert (record.rows_in, record.rows_valid, record.rows_quarantined) == (2, 1, 1)
    bad = spark.read.format("delta").load(QUARANTINE.path(settings)).first()
    assert bad["reason"] == "bad_timestamp" and "04/03/2026" in bad["row"]
    # with the spec's format, the other row is the bad one
    spec = small_spec(partition_column="date", timestamp_format="dd/MM/yyyy HH:mm")
    record = run_validate(spark, settings, spec, day, run_id="fmt")
    assert (record.rows_valid, record.rows_quarantined) == (1, 1)
    bad = spark.read.format("delta").load(QUARANTINE.path(settings)).where(F.col("run_id") == "fmt").first()
    assert "2026-03-04 00:20:00" in bad["row"]
    valid_ts = datetime(2026, 3, 4, 0, 25)
    assert valid_ts.date() == day.start
