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
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    return path


GAUSS_SCHEMA = "host STRING, ts TIMESTAMP, a DOUBLE, b DOUBLE, c DOUBLE, date DATE"
GAUSS_SPEC = {"name": "gauss", "table": "gauss", "entity": "host", "timestamp": "ts", "partition_column": "date",
              "cadence": "5m", "features": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}


def gaussian_rows(start, days: int, hosts: int = 2, seed: int = 0) -> list[tuple]:
    """Clean data: three independent standard normal features per host, every 5 minutes."""
    from datetime import datetime, timedelta

    import numpy as np

    rng = np.random.default_rng(seed)
    t0 = datetime(start.year, start.month, start.day)
    out = []
    for h in range(hosts):
        for i in range(days * 288):
            ts = t0 + timedelta(minutes=5 * i)
            a, b, c = rng.standard_normal(3)
            out.append((f"h{h}", ts, float(a), float(b), float(c), ts.date()))
    return out
