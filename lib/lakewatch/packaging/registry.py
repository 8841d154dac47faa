"""The model registry: the `models` table, package files, and the stage rules.

Stages: candidate, production, archived. At most one production version per name; the first version of a
name becomes production, later ones candidates; every stage change is one Delta commit (a MERGE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.errors import RegistryError
from lakewatch.lakehouse.storage import read_bytes, write_bytes
from lakewatch.lakehouse.tables import MODELS, join
from lakewatch.lakehouse.writes import append, ensure_table, read_table
from lakewatch.packaging import stages
from lakewatch.packaging.package import MANIFEST_FILE, ModelPackage, parse_package, sha256
from lakewatch.packaging.stages import ARCHIVED, CANDIDATE, PRODUCTION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

ARTIFACTS_DIR = "artifacts/models"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def artifact_location(ref: ModelRef) -> str:
    """Where a version's files go, relative to the lakehouse root (so a moved lakehouse keeps its models)."""
    return f"{ARTIFACTS_DIR}/{ref.name}/v{ref.version}"


def artifact_dir(settings: Settings, ref_or_location: "ModelRef | str") -> str:
    """The absolute folder of a version's files; a stored location may be relative (or, from older
    versions, absolute)."""
    loc = artifact_location(ref_or_location) if isinstance(ref_or_location, ModelRef) else ref_or_location
    if "://" in loc or loc.startswith("/"):
        return loc
    return join(settings.lakehouse, loc)


def versions(spark: "SparkSession", settings: Settings, name: str | None = None) -> "DataFrame":
    df = read_table(spark, settings, MODELS)
    return df.where(F.col("name") == name) if name else df


def next_version(spark: "SparkSession", settings: Settings, name: str) -> int:
    top = versions(spark, settings, name).agg(F.max("version")).first()[0]
    return int(top or 0) + 1


def get_version(spark: "SparkSession", settings: Settings, ref: ModelRef) -> "Row":
    row = versions(spark, settings, ref.name).where(F.col("version") == ref.version).first()
    if row is None:
        raise RegistryError(f"no model {ref} in the registry")
    return row


def production(spark: "SparkSession", settings: Settings, name: str) -> "Row | None":
    return versions(spark, settings, name).where(F.col("stage") == PRODUCTION).first()


def register(spark: "SparkSession", settings: Settings, package: ModelPackage, lineage: dict[str, Any]) -> tuple[ModelRef, str]:
    """Store the package files, then add its row: production if it is the name's first version."""
    manifest = package.manifest
    ref = ModelRef(manifest["name"], int(manifest["version"]))
    location = artifact_location(ref)
    for name, data in sorted(package.files.items()):
        write_bytes(spark, join(artifact_dir(settings, location), name), data)
    write_bytes(spark, join(artifact_dir(settings, location), MANIFEST_FILE), package.manifest_json)
    stage = PRODUCTION if ref.version == 1 else CANDIDATE
    now = datetime.now(timezone.utc)
    row = {
        "name": ref.name, "version": ref.version, "stage": stage, "model_type": manifest["model"]["type"],
        "dataset": lineage["dataset"], "artifact": location, "checksum": package.checksum,
        "metrics": lineage["metrics_json"], "training_table": lineage["table"],
        "training_version": lineage["table_version"], "training_start": lineage["start"],
        "training_end": lineage["end"], "created_at": now, "promoted_at": now if stage == PRODUCTION else None,
        "updated_at": now,
    }
    append(spark, settings, MODELS, spark.createDataFrame([tuple(row[c] for c in MODELS.columns)], MODELS.schema))
    return ref, stage


def load_package(spark: "SparkSession", settings: Settings, ref: ModelRef, row: "Row | None" = None) -> ModelPackage:
    """Read a registered package and verify it: its manifest must be the one the registry recorded (by its
    SHA-256), and every file the one the manifest lists. Nothing is loaded from a package that fails. `row`:
    the version's registry row when the caller has read it already."""
    row = row if row is not None else get_version(spark, settings, ref)
    folder = artifact_dir(settings, row["artifact"])
    manifest_json = read_bytes(spark, join(folder, MANIFEST_FILE))
    if sha256(manifest_json) != row["checksum"]:  # before the manifest says which other files to read
        parse_package(manifest_json, {}, row["checksum"])
    listed = _listed_files(manifest_json)
    files = {name: read_bytes(spark, join(folder, name)) for name in listed}
    return parse_package(manifest_json, files, row["checksum"])


def _listed_files(manifest_json: bytes) -> list[str]:
    """The files a manifest lists (empty for a manifest that parse_package will refuse with its reason)."""
    import json

    try:
        files = json.loads(manifest_json).get("files", {})
    except ValueError:
        return []
    return sorted(files) if isinstance(files, dict) else []


def resolve(spark: "SparkSession", settings: Settings, name: str, version: int | None) -> ModelRef:
    """The given version, or the name's production version."""
    if version is not None:
        return ModelRef(name, int(get_version(spark, settings, ModelRef(name, version))["version"]))
    row = production(spark, settings, name)
    if row is None:
        raise RegistryError(f"model {name} has no production version: train one, or promote a candidate")
    return ModelRef(name, int(row["version"]))


def _stage_rows(spark: "SparkSession", settings: Settings, name: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in versions(spark, settings, name).select("version", "stage", "promoted_at").collect()]


def _set_stages(spark: "SparkSession", settings: Settings, changes: list[stages.StageChange]) -> None:
    """Apply stage changes to several versions in one MERGE: one Delta commit."""
    from delta.tables import DeltaTable

    updates = spark.createDataFrame([(c.name, c.version, c.stage, c.promoted_at) for c in changes],
                                    "name STRING, version INT, stage STRING, promoted_at TIMESTAMP")
    (
        DeltaTable.forPath(spark, ensure_table(spark, settings, MODELS))
        .alias("m")
        .merge(updates.alias("u"), "m.name = u.name AND m.version = u.version")
        .whenMatchedUpdate(
            set={
                "stage": "u.stage",
                "promoted_at": "coalesce(u.promoted_at, m.promoted_at)",
                "updated_at": "current_timestamp()",
            }
        )
        .execute()
    )


def promote(spark: "SparkSession", settings: Settings, ref: ModelRef) -> ModelRef | None:
    """Make ref production and archive the current production; returns the version it replaced."""
    changes = stages.promotion(_stage_rows(spark, settings, ref.name), ref.name, ref.version,
                               datetime.now(timezone.utc))
    if changes:
        _set_stages(spark, settings, changes)
    return next((ModelRef(c.name, c.version) for c in changes if c.stage == ARCHIVED), None)


def rollback(spark: "SparkSession", settings: Settings, name: str) -> tuple[ModelRef, ModelRef]:
    """Archive the production version and bring back the one that was production before it."""
    changes = stages.rollback(_stage_rows(spark, settings, name), name)
    _set_stages(spark, settings, changes)
    return ModelRef(name, changes[0].version), ModelRef(name, changes[1].version)


def update_metrics(spark: "SparkSession", settings: Settings, ref: ModelRef, entries: dict[str, Any]) -> None:
    """Merge entries into a version's `metrics` JSON (an alert budget's threshold, a challenger comparison):
    one Delta commit; the package itself is never changed."""
    import json

    from delta.tables import DeltaTable

    row = get_version(spark, settings, ref)
    metrics = {**json.loads(row["metrics"] or "{}"), **entries}
    updates = spark.createDataFrame([(ref.name, ref.version, json.dumps(metrics, default=str))],
                                    "name STRING, version INT, metrics STRING")
    (
        DeltaTable.forPath(spark, ensure_table(spark, settings, MODELS)).alias("m")
        .merge(updates.alias("u"), "m.name = u.name AND m.version = u.version")
        .whenMatchedUpdate(set={"metrics": "u.metrics", "updated_at": "current_timestamp()"})
        .execute()
    )

