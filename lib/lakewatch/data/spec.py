"""The dataset spec: a user's YAML contract for an input table (entity, timestamp, features, labels).

A timestamp column may be a timestamp, a date, or a string: a string is read with `timestamp_format`
(a Spark datetime pattern such as `dd/MM/yyyy HH:mm`) when the spec gives one, else as ISO 8601
(`2026-03-04 00:20:00`, `2026-03-04T00:20:00Z`); a value that does not parse is quarantined as
`bad_timestamp`. `cadence` (`5m`, `30s`, `1h`, `1d`) is the series' expected spacing; when absent it is
inferred at training and stored with the model (it bounds how far back a causal window reaches).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lakewatch.config import Settings, describe_validation, read_yaml
from lakewatch.errors import ConfigError, DataError
from lakewatch.lakehouse.tables import raw_table_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


RESERVED_COLUMNS = {"entity", "ts", "logical_date", "reasons", "row", "dataset", "run_id"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> float:
    """Seconds of a duration written as 300, '300s', '5m', '1h' or '1d'."""
    if isinstance(text, (int, float)):
        return float(text)
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", str(text)):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 1d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0]]


class FeatureSpec(BaseModel):
    """A numeric input of the model and its valid range (bounds inclusive, either optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    min: float | None = None
    max: float | None = None


class LabelsSpec(BaseModel):
    """Ground truth: a table of labeled points; its entity and timestamp columns default to the dataset's
    names, else `entity` and `ts` (PRODUCT.md's contract), whichever the table has. `windows` optionally
    names a table of anomaly windows (entity, window_start, window_end) scored the NAB way by evaluate."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    entity: str | None = None
    timestamp: str | None = None
    windows: str | None = None


class DatasetSpec(BaseModel):
    """What an input table holds; the names of its columns as the user has them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    table: str
    entity: str
    timestamp: str
    timestamp_format: str | None = None
    cadence: str | None = None
    features: list[FeatureSpec] = Field(min_length=1)
    labels: LabelsSpec | None = None
    partition_column: str | None = None  # a date column of the table, used to prune reads

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

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

    @property
    def cadence_seconds(self) -> float | None:
        return parse_duration(self.cadence) if self.cadence else None

    def table_path(self, settings: Settings) -> str:
        return raw_table_path(settings, self.table)

    def labels_path(self, settings: Settings) -> str | None:
        return raw_table_path(settings, self.labels.table) if self.labels else None

    def windows_path(self, settings: Settings) -> str | None:
        return raw_table_path(settings, self.labels.windows) if self.labels and self.labels.windows else None


def load_dataset_spec(name_or_path: str, settings: Settings) -> DatasetSpec:
    """A spec by name from conf/datasets/, or from any YAML path; errors name the file, line and field."""
    path = Path(name_or_path)
    datasets = settings.path(settings.datasets_dir)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = datasets / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in datasets.glob("*.yaml"))
        raise ConfigError(f"dataset spec not found: {name_or_path!r} (known: {', '.join(known)})")
    raw, node = read_yaml(path, "dataset spec")
    if not isinstance(raw, dict):
        raise ConfigError(f"dataset spec {path} must be a YAML mapping (name, table, entity, timestamp, features)")
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise describe_validation(exc, path, node, "dataset spec") from None


def check_columns(spec: DatasetSpec, df: "DataFrame") -> None:
    """Fail before anything is written when the spec names a column the table lacks."""
    present = set(df.columns)
    wanted = [spec.entity, spec.timestamp, *spec.feature_names]
    if spec.partition_column:
        wanted.append(spec.partition_column)
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(
            f"dataset {spec.name}: table {spec.table} has no column(s) {', '.join(missing)} "
            f"(it has: {', '.join(df.columns)})"
        )


def read_source(spark: "SparkSession", settings: Settings, spec: DatasetSpec) -> tuple["DataFrame", int]:
    """The source table pinned at its current Delta version (recorded as the run's lineage)."""
    from lakewatch.lakehouse.writes import is_delta, table_version

    path = spec.table_path(settings)
    if not is_delta(spark, path):
        raise DataError(f"dataset {spec.name}: no Delta table at {path}")
    version = table_version(spark, path)
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    check_columns(spec, df)
    return df, version
