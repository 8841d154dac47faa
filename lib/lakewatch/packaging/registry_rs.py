"""Stage changes of the registry without Spark, through delta-rs: the Lakewatch view's promote and rollback.

The rules are packaging.stages', as for the Spark registry; the changes of one action are one MERGE, one commit.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lakewatch.config import Settings
from lakewatch.errors import RegistryError
from lakewatch.lakehouse import delta_rs
from lakewatch.packaging import stages


def _rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    pdf = delta_rs.read_pandas(settings, "models", filters=[("name", "=", name)],
                               columns=["version", "stage", "promoted_at"], required=False)
    if pdf.empty:
        raise RegistryError(f"no model {name} in the registry")
    return [{"version": int(r.version), "stage": r.stage,
             "promoted_at": None if r.promoted_at is None or r.promoted_at != r.promoted_at
             else r.promoted_at.to_pydatetime()} for r in pdf.itertuples()]


def _apply(settings: Settings, changes: list[stages.StageChange]) -> None:
    import pyarrow as pa

    if not changes:
        return
    table = delta_rs.open_table(settings, "models")
    source = pa.table({
        "name": pa.array([c.name for c in changes], pa.string()),
        "version": pa.array([c.version for c in changes], pa.int32()),
        "stage": pa.array([c.stage for c in changes], pa.string()),
        "promoted_at": pa.array([c.promoted_at for c in changes], pa.timestamp("us", tz="UTC")),
        "updated_at": pa.array([datetime.now(timezone.utc)] * len(changes), pa.timestamp("us", tz="UTC")),
    })
    (table.merge(source, "t.name = s.name AND t.version = s.version", source_alias="s", target_alias="t")
     .when_matched_update({"stage": "s.stage", "promoted_at": "coalesce(s.promoted_at, t.promoted_at)",
                           "updated_at": "s.updated_at"})
     .execute())


def promote(settings: Settings, name: str, version: int) -> list[stages.StageChange]:
    changes = stages.promotion(_rows(settings, name), name, version, datetime.now(timezone.utc))
    _apply(settings, changes)
    return changes


def rollback(settings: Settings, name: str) -> list[stages.StageChange]:
    changes = stages.rollback(_rows(settings, name), name)
    _apply(settings, changes)
    return changes
