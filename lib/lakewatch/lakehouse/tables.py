"""Every lakehouse table, declared once: name, schema and partitioning (the writes are in lakehouse.writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import types as T

from lakewatch.config import Settings

RAW_DIR = "raw"
FEATURE_SHARES = T.ArrayType(
    T.StructType([T.StructField("feature", T.StringType()), T.StructField("share", T.DoubleType())])
)


@dataclass(frozen=True)
class Table:
    """A Delta table of the lakehouse: its name, schema and partition columns."""

    name: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    small: bool = False  # its commits carry a few rows: written from the driver (lakehouse.writes.driver_rows)

    def path(self, settings: Settings) -> str:
        return join(settings.lakehouse, self.name)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]


def _schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, True) for name, dtype in fields])


S, D, L, I, B, TS, DT = T.StringType(), T.DoubleType(), T.LongType(), T.IntegerType(), T.BooleanType(), T.TimestampType(), T.DateType()

QUARANTINE = Table(
    "quarantine",
    _schema(("dataset", S), ("entity", S), ("ts", TS), ("row", S), ("reason", S), ("run_id", S), ("logical_date", DT)),
    ("dataset", "logical_date"),
    small=True,
)
SCORES = Table(
    "scores",
    _schema(
        ("dataset", S), ("entity", S), ("ts", TS), ("score", D), ("calibrated", D), ("uncertainty", D),
        ("is_anomaly", B), ("top_features", FEATURE_SHARES), ("warming_up", B), ("model_name", S),
        ("model_version", I), ("run_id", S), ("logical_date", DT),
    ),
    ("dataset", "logical_date"),
)
EVENTS = Table(
    "events",
    _schema(
        ("event_id", S), ("dataset", S), ("entity", S), ("start_ts", TS), ("end_ts", TS), ("n_points", L),
        ("peak_ts", TS), ("peak_score", D), ("peak_calibrated", D), ("severity", S),
        ("top_features", FEATURE_SHARES), ("model_name", S), ("model_version", I), ("run_id", S),
        ("logical_date", DT),
    ),
    ("dataset", "logical_date"),
    small=True,
)
DRIFT = Table(
    "drift",
    _schema(
        ("dataset", S), ("run_id", S), ("logical_date", DT), ("feature", S), ("metric", S), ("value", D),
        ("threshold", D), ("status", S), ("model_name", S), ("model_version", I),
    ),
    ("dataset", "logical_date"),
    small=True,
)
RUNS = Table(
    "runs",
    _schema(
        ("run_id", S), ("job", S), ("dataset", S), ("logical_date", DT), ("interval_start", DT),
        ("interval_end", DT), ("input_table", S), ("input_version", L), ("model_name", S),
        ("model_version", I), ("rows_in", L), ("rows_valid", L), ("rows_quarantined", L), ("rows_scored", L),
        ("rows_anomalous", L), ("n_events", L), ("started_at", TS), ("ended_at", TS), ("duration_s", D),
        ("status", S), ("error", S), ("report_path", S), ("details", S),
    ),
    small=True,
)
MODELS = Table(
    "models",
    _schema(
        ("name", S), ("version", I), ("stage", S), ("model_type", S), ("dataset", S), ("artifact", S),
        ("checksum", S), ("metrics", S), ("training_table", S), ("training_version", L),
        ("training_start", DT), ("training_end", DT), ("created_at", TS), ("promoted_at", TS), ("updated_at", TS),
    ),
)
EVALUATION = Table(
    "evaluation",
    _schema(
        ("dataset", S), ("run_id", S), ("logical_date", DT), ("interval_start", DT), ("interval_end", DT),
        ("model_name", S), ("model_version", I), ("metric", S), ("value", D), ("computed_at", TS),
    ),
    ("dataset", "logical_date"),
    small=True,
)
FEEDBACK = Table(
    "feedback",
    _schema(
        ("dataset", S), ("event_id", S), ("entity", S), ("start_ts", TS), ("end_ts", TS), ("label", S),
        ("author", S), ("at", TS), ("note", S), ("source", S),
    ),
)

OUTPUT_TABLES: tuple[Table, ...] = (QUARANTINE, SCORES, EVENTS, DRIFT, RUNS, MODELS, EVALUATION, FEEDBACK)


def join(root: str, *parts: str) -> str:
    """Join lakehouse paths for local folders and URIs (s3a://) alike."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def raw_table_path(settings: Settings, name: str) -> str:
    """A source table named in a dataset spec: a path as given, or a name under the lakehouse's raw/."""
    if "/" in name or "://" in name:
        return name
    return join(settings.lakehouse, RAW_DIR, name)


def interval_predicate(dataset: str, start: date, end: date) -> str:
    """The replaceWhere predicate of one dataset's logical dates [start, end): partition columns only."""
    safe = dataset.replace("'", "''")
    return f"dataset = '{safe}' AND logical_date >= DATE'{start.isoformat()}' AND logical_date < DATE'{end.isoformat()}'"
