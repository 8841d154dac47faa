"""Promote and rollback without Spark (the Lakewatch view's buttons): packaging.stages' rules applied to the
models table through delta-rs, one commit per action."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema

from lakewatch.errors import RegistryError
from lakewatch.lakehouse.tables import MODELS
from lakewatch.packaging import registry_rs

UTC = timezone.utc


@pytest.fixture()
def lake(base_settings, tmp_path):
    settings = base_settings.with_lakehouse(str(tmp_path / "lakehouse"))
    schema = to_arrow_schema(MODELS.schema, timezone="UTC")
    rows = [
        {"name": "m", "version": 1, "stage": "archived", "promoted_at": datetime(2026, 3, 1, tzinfo=UTC)},
        {"name": "m", "version": 2, "stage": "production", "promoted_at": datetime(2026, 3, 8, tzinfo=UTC)},
        {"name": "m", "version": 3, "stage": "candidate", "promoted_at": None},
        {"name": "other", "version": 1, "stage": "production", "promoted_at": datetime(2026, 3, 2, tzinfo=UTC)},
    ]
    write_deltalake(f"{settings.lakehouse}/models",
                    pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema))
    return settings


def _stages(settings) -> dict[tuple[str, int], str]:
    return {(r["name"], r["version"]): r["stage"]
            for r in DeltaTable(f"{settings.lakehouse}/models").to_pyarrow_table().to_pylist()}


def test_promote_then_rollback_in_one_commit_each(lake, spark):
    table = DeltaTable(f"{lake.lakehouse}/models")
    v0 = table.version()
    changes = registry_rs.promote(lake, "m", 3)
    assert [(c.version, c.stage) for c in changes] == [(3, "production"), (2, "archived")]
    assert _stages(lake) == {("m", 1): "archived", ("m", 2): "archived", ("m", 3): "production",
                             ("other", 1): "production"}
    assert DeltaTable(f"{lake.lakehouse}/models").version() == v0 + 1
    assert registry_rs.promote(lake, "m", 3) == []  # production already: nothing written
    assert DeltaTable(f"{lake.lakehouse}/models").version() == v0 + 1

    registry_rs.rollback(lake, "m")  # back to v2, promoted before v3
    assert _stages(lake)[("m", 2)] == "production" and _stages(lake)[("m", 3)] == "archived"
    registry_rs.rollback(lake, "m")  # back to v1
    assert _stages(lake)[("m", 1)] == "production"
    # Spark's registry reads what delta-rs merged
    seen = spark.read.format("delta").load(f"{lake.lakehouse}/models").where("name = 'm'").collect()
    assert {r["version"]: r["stage"] for r in seen} == {1: "production", 2: "archived", 3: "archived"}
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry_rs.rollback(lake, "m")
    with pytest.raises(RegistryError, match="no model m v9"):
        registry_rs.promote(lake, "m", 9)
    with pytest.raises(RegistryError, match="no model nope"):
        registry_rs.rollback(lake, "nope")
