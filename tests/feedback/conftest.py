"""A lakehouse with two events of the demo dataset, as a score job writes them (through delta-rs: no Spark)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema

from lakewatch.config import Settings
from lakewatch.lakehouse.tables import EVENTS

UTC = timezone.utc
E1, E2 = "0123456789abcdef0123", "fedcba9876543210fedc"


def write_events(settings: Settings) -> None:
    """Two events of the demo dataset, as a score job writes them."""
    schema = to_arrow_schema(EVENTS.schema, timezone="UTC")
    rows = [
        {"event_id": E1, "dataset": "demo_metrics", "entity": "host-0001",
         "start_ts": datetime(2026, 3, 10, 4, tzinfo=UTC),
         "end_ts": datetime(2026, 3, 10, 5, tzinfo=UTC), "n_points": 13, "severity": "high", "run_id": "r1",
         "logical_date": datetime(2026, 3, 10).date()},
        {"event_id": E2, "dataset": "demo_metrics", "entity": "host-0002",
         "start_ts": datetime(2026, 3, 11, 8, tzinfo=UTC),
         "end_ts": datetime(2026, 3, 11, 8, 30, tzinfo=UTC), "n_points": 7, "severity": "low", "run_id": "r2",
         "logical_date": datetime(2026, 3, 11).date()},
    ]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    write_deltalake(f"{settings.lakehouse}/events", table, partition_by=list(EVENTS.partition_by))


@pytest.fixture()
def lake(tmp_path: Path, base_settings: Settings) -> Settings:
    settings = base_settings.with_lakehouse(str(tmp_path / "lakehouse"))
    write_events(settings)
    return settings


