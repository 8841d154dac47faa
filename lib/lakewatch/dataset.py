"""The dataset spec: a user's YAML contract for an input table (entity, timestamp, features, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lakewatch.config import Settings
from lakewatch.tables import raw_table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


RESERVED_COLUMNS = {"entity", "ts", "logical_date", "reasons", "row", "dataset", "run_id"}


class FeatureSpec(BaseModel):
    """A numeric input of the model and its valid range (bounds inclusive, either optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    min: float | None = None
    max: float | None = None


class LabelsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str


class DatasetSpec(BaseModel):
    """What an input table holds; the names of its columns as the user has them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    table: str
    entity: str
    timestamp: str
    features: list[FeatureSpec] = Field(min_length=1)
    labels: LabelsSpec | None = None
    partition_column: str | None = None  # a date column of the table, used to prune reads

    @model_validator(mode="after")
    def _unique_features(self) -> "DatasetSpec":
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset {self.name}: features listed twice: {dupes}")
        reserved = sorted(set(names) & RESERVED_COLUMNS)
        if reserved:
            raise ValueError(f"dataset {self.name}: feature names {reserved} are reserved for output columns")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def table_path(self, settings: Settings) -> str:
        return raw_table_path(settings, self.table)

    def labels_path(self, settings: Settings) -> str | None:
        return raw_table_path(settings, self.labels.table) if self.labels else None


def load_dataset_spec(name_or_path: str, settings: Settings) -> DatasetSpec:
    """A spec by name from conf/datasets/, or from any YAML path."""
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = Path(settings.datasets_dir) / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in Path(settings.datasets_dir).glob("*.yaml"))
        raise FileNotFoundError(f"dataset spec not found: {name_or_path!r} (known: {', '.join(known)})")
    return DatasetSpec.model_validate(yaml.safe_load(path.read_text()))


def check_columns(spec: DatasetSpec, df: "DataFrame") -> None:
    """Fail before anything is written when the spec names a column the table lacks."""
    present = set(df.columns)
    wanted = [spec.entity, spec.timestamp, *spec.feature_names]
    if spec.partition_column:
        wanted.append(spec.partition_column)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ValueError(
            f"dataset {spec.name}: table {spec.table} has no column(s) {', '.join(missing)} "
            f"(it has: {', '.join(df.columns)})"
        )


def read_source(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> tuple["DataFrame", int]:
    """The source table pinned at its current Delta version (recorded as the run's lineage)."""
    from lakewatch.tables import is_delta, table_version

    path = spec.table_path(settings)
    if not is_delta(spark, path):
        raise FileNotFoundError(f"dataset {spec.name}: no Delta table at {path}")
    version = table_version(spark, path)
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    check_columns(spec, df)
    return df, version
