"""Test data builders: small Delta tables and specs, written through the real Spark + Delta stack."""

from __future__ import annotations

from typing import Any

from lakewatch.config import Settings
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.tables import raw_table_path

SMALL_SPEC = {
    "name": "small",
    "table": "small",
    "entity": "host",
    "timestamp": "ts",
    "features": [{"name": "cpu", "min": 0, "max": 100}, {"name": "latency"}],
}


def small_spec(**overrides: Any) -> DatasetSpec:
    return DatasetSpec.model_validate({**SMALL_SPEC, **overrides})


def write_rows(spark, settings: Settings, name: str, rows: list[tuple], schema: str) -> str:
    path = raw_table_path(settings, name)
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").save(path)
    return path
