"""The registry's stage rules as plain functions: which versions change stage on a promotion or a rollback.

Stages: candidate, production, archived; at most one production version per name. The Spark registry
(packaging.registry) and the Lakewatch view (through delta-rs) apply the same changes, each in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakewatch.errors import RegistryError

PRODUCTION, CANDIDATE, ARCHIVED = "production", "candidate", "archived"


@dataclass(frozen=True)
class StageChange:
    name: str
    version: int
    stage: str
    promoted_at: datetime | None  # set when the version becomes production by a promotion; else kept


def _production(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in rows if r["stage"] == PRODUCTION), None)


def promotion(rows: list[dict[str, Any]], name: str, version: int, now: datetime) -> list[StageChange]:
    """Make `version` production and archive the current production (rows: the name's versions); no change
    when it is production already."""
    if not any(int(r["version"]) == version for r in rows):
        raise RegistryError(f"no model {name} v{version} in the registry")
    current = _production(rows)
    if current is not None and int(current["version"]) == version:
        return []
    changes = [StageChange(name, version, PRODUCTION, now)]
    if current is not None:
        changes.append(StageChange(name, int(current["version"]), ARCHIVED, None))
    return changes


def rollback(rows: list[dict[str, Any]], name: str) -> list[StageChange]:
    """Archive the production version and bring back the one promoted before it."""
    current = _production(rows)
    if current is None:
        raise RegistryError(f"model {name} has no production version to roll back")
    earlier = [r for r in rows if r["stage"] != PRODUCTION and r.get("promoted_at") is not None
               and r["promoted_at"] < current["promoted_at"]]
    if not earlier:
        raise RegistryError(f"model {name}: v{current['version']} is the first production version, "
                            "nothing to roll back to")
    previous = max(earlier, key=lambda r: r["promoted_at"])
    return [StageChange(name, int(current["version"]), ARCHIVED, None),
            StageChange(name, int(previous["version"]), PRODUCTION, None)]
