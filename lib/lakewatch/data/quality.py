"""Data quality: every input row is either valid or quarantined with its reasons, never dropped.

Spark 4 runs with ANSI casts, which fail the whole job on one bad value: every cast of user data here is a
try_cast (or try_to_timestamp), and a value that does not convert quarantines its row with a reason.
A finite value too large for the models' float32 (|x| > 3.4e38) is quarantined as `overflow:<feature>`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec, read_source
from lakewatch.lakehouse.tables import QUARANTINE
from lakewatch.lakehouse.writes import replace_interval

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
DUPLICATE = "duplicate_key"
FLOAT32_MAX = 3.4028234663852886e38
MAX_DUPLICATE_KEYS = 10_000  # more duplicated keys than this in one read: every row is ranked instead
ROW_ID = "_row_id"


def timestamp_of(df: "DataFrame", spec: DatasetSpec) -> Column:
    """The spec's timestamp column as a timestamp, NULL where it does not parse (never an ANSI error)."""
    dtype = dict((f.name, f.dataType) for f in df.schema.fields)[spec.timestamp]
    name = f"`{spec.timestamp}`"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return F.col(spec.timestamp).cast("timestamp")
    if isinstance(dtype, T.StringType) and spec.timestamp_format:
        fmt = spec.timestamp_format.replace("'", "\\'")
        return F.expr(f"try_to_timestamp({name}, '{fmt}')")
    return F.expr(f"try_cast({name} AS TIMESTAMP)")


def partition_date_of(spec: DatasetSpec) -> Column:
    return F.expr(f"try_cast(`{spec.partition_column}` AS DATE)")


@dataclass(frozen=True)
class QualityCounts:
    """Rows in = valid + quarantined, for one dataset and interval."""

    rows_in: int
    rows_valid: int
    rows_quarantined: int

    def check(self) -> "QualityCounts":
        if self.rows_in != self.rows_valid + self.rows_quarantined:
            raise RuntimeError(
                f"row counts do not add up: {self.rows_in} in != {self.rows_valid} valid + "
                f"{self.rows_quarantined} quarantined"
            )
        return self


def select_interval(df: "DataFrame", spec: DatasetSpec, interval: Interval, lookback_s: float = 0.0) -> "DataFrame":
    """Rows of [start - lookback, end): by timestamp, and by the partition column for rows whose timestamp
    is null or does not parse (so that they reach quarantine on their day)."""
    ts = timestamp_of(df, spec)
    begin = interval.start_ts - timedelta(seconds=lookback_s)
    in_time = (ts >= F.lit(begin)) & (ts < F.lit(interval.end_ts))
    if not spec.partition_column:
        return df.where(in_time)
    part = partition_date_of(spec)
    in_part = (part >= F.lit(begin.date())) & (part < F.lit(interval.end))
    return df.where(in_part & (in_time | ts.isNull()))


def _feature_checks(df: "DataFrame", spec: DatasetSpec) -> tuple[list[Column], list[Column], list[Column]]:
    """Typed feature columns (double) and, per feature, the reason it fails or null, and whether it fails (a
    boolean that is cheap to evaluate on every row: the reasons' strings are only built where one is true)."""
    dtypes = dict((f.name, f.dataType) for f in df.schema.fields)
    values, reasons, faults = [], [], []
    for feat in spec.features:
        raw = F.col(feat.name)
        numeric = isinstance(dtypes[feat.name], NUMERIC)
        value = raw.cast("double") if numeric else F.expr(f"try_cast(`{feat.name}` AS DOUBLE)")
        out_of_range = ([value < F.lit(feat.min)] if feat.min is not None else []) + (
            [value > F.lit(feat.max)] if feat.max is not None else [])
        bad = [
            (raw.isNull(), "null"),
            (value.isNull(), "not_numeric"),
            (F.isnan(value) | (F.abs(value) == float("inf")), "nan_or_inf"),
            (F.abs(value) > F.lit(FLOAT32_MAX), "overflow"),
            *[(cond, "out_of_range") for cond in out_of_range],
        ]
        reason = F.lit(None).cast("string")
        for cond, label in reversed(bad):
            reason = F.when(cond, F.lit(f"{label}:{feat.name}")).otherwise(reason)
        values.append(value.alias(feat.name))
        reasons.append(reason)
        # the conditions above, cheaper: a null raw value has a null value too, and +-inf is above FLOAT32_MAX
        faults.append(reduce(operator.or_, [value.isNull(), F.isnan(value), F.abs(value) > F.lit(FLOAT32_MAX),
                                            *out_of_range]))
    return values, reasons, faults


def flag_faults(df: "DataFrame", spec: DatasetSpec) -> "DataFrame":
    """Standard columns (entity, ts, logical_date, features as double), the row's reasons, and its JSON: every
    fault a row has on its own (duplicated keys are `flag_rows`' business)."""
    ts_raw = F.col(spec.timestamp)
    ts = timestamp_of(df, spec)
    entity = F.col(spec.entity).cast("string")
    values, feature_reasons, feature_faults = _feature_checks(df, spec)
    key_reasons = [
        F.when(entity.isNull(), F.lit("null_entity")),
        F.when(ts_raw.isNull(), F.lit("null_timestamp")).when(ts.isNull(), F.lit("bad_timestamp")),
    ]
    logical = F.to_date(ts)
    if spec.partition_column:
        logical = F.coalesce(logical, partition_date_of(spec))
    faulty = reduce(operator.or_, [entity.isNull(), ts.isNull(), *feature_faults])
    # most rows have no fault: an empty array for them, without building one string per check
    reasons = F.when(faulty, F.array_compact(F.array(*key_reasons, *feature_reasons))).otherwise(
        F.array().cast("array<string>"))
    return df.select(
        entity.alias("entity"),
        ts.alias("ts"),
        logical.alias("logical_date"),
        *values,
        reasons.alias("reasons"),
        # the original row, as JSON, only where it will be quarantined: valid rows carry no copy
        F.when(F.size(reasons) > 0, F.to_json(F.struct(*[F.col(c) for c in df.columns]))).alias("row"),
    )


def flag_rows(
    df: "DataFrame", spec: DatasetSpec, max_keys: int = MAX_DUPLICATE_KEYS
) -> tuple["DataFrame", "DataFrame"]:
    """Every row flagged: `flag_faults`' columns, with the rows of a duplicated key other than the first marked
    `duplicate_key` (see `_mark_duplicates`). Returns (flagged, the cached frame it is a projection of):
    unpersist the second when done."""
    # the row ids are only stable within one computation of the frame: cached, they are computed once
    cached = flag_faults(df, spec).withColumn(ROW_ID, F.monotonically_increasing_id()).persist()
    return _mark_duplicates(cached, spec, max_keys), cached


def _mark_duplicates(flagged: "DataFrame", spec: DatasetSpec, max_keys: int) -> "DataFrame":
    """Among the rows with no other fault, keep the first of each (entity, ts), in the order of their feature
    values, and mark the others `duplicate_key`.

    Most tables have no duplicated key, and ranking every row by a window over (entity, ts) shuffles them all.
    So the clean rows' keys are counted first (a shuffle of two columns, aggregated before it), only the rows
    of the duplicated keys are ranked (up to max_keys keys; with more, every row is), and the duplicates are
    marked by their row ids: a projection of `flagged`, no join. Runs its Spark jobs at once and reads
    `flagged` more than once: a cached frame with row ids.
    """
    clean = (F.size("reasons") == 0) & F.col("entity").isNotNull() & F.col("ts").isNotNull()
    keys = (flagged.where(clean).groupBy("entity", "ts").count().where("count > 1")
            .select("entity", F.unix_micros("ts").alias("_us")).limit(max_keys + 1).collect())
    if not keys:
        return flagged.drop(ROW_ID)
    rank = F.row_number().over(Window.partitionBy("entity", "ts").orderBy(*_first_kept(spec)))
    if len(keys) > max_keys:
        return _as_duplicates(flagged, clean & (rank > 1), spec)
    duplicated = flagged.sparkSession.createDataFrame(keys, "entity STRING, _us BIGINT").select(
        "entity", F.timestamp_micros("_us").alias("ts"))
    ids = [r[0] for r in flagged.where(clean).join(F.broadcast(duplicated), ["entity", "ts"], "left_semi")
           .withColumn("_rank", rank).where("_rank > 1").select(ROW_ID).collect()]
    return _as_duplicates(flagged, F.col(ROW_ID).isin(ids), spec)


def _first_kept(spec: DatasetSpec) -> list[Column]:
    """The order among rows of one key: the first is kept."""
    return [F.size("reasons").asc(), *[F.col(f).asc_nulls_last() for f in spec.feature_names]]


def _as_duplicates(flagged: "DataFrame", duplicate: Column, spec: DatasetSpec) -> "DataFrame":
    """flagged without its row ids, the rows where `duplicate` holds marked `duplicate_key`."""
    # a duplicate is valid in every other respect: its typed values are its original ones
    as_given = F.to_json(F.struct(F.col("entity").alias(spec.entity), F.col("ts").alias(spec.timestamp),
                                  *[F.col(f) for f in spec.feature_names]))
    marked = flagged.withColumn("_dup", duplicate)
    return marked.select(
        *[c for c in flagged.columns if c not in ("reasons", "row", ROW_ID)],
        F.when(F.col("_dup"), F.array(F.lit(DUPLICATE))).otherwise(F.col("reasons")).alias("reasons"),
        F.when(F.col("_dup"), as_given).otherwise(F.col("row")).alias("row"),
    )


def valid_rows(flagged: "DataFrame", spec: DatasetSpec) -> "DataFrame":
    return flagged.where(F.size("reasons") == 0).select("entity", "ts", "logical_date", *spec.feature_names)


def quarantine_rows(flagged: "DataFrame", spec: DatasetSpec, run_id: str) -> "DataFrame":
    return flagged.where(F.size("reasons") > 0).select(
        F.lit(spec.name).alias("dataset"),
        "entity",
        "ts",
        "row",
        F.array_join("reasons", "; ").alias("reason"),
        F.lit(run_id).alias("run_id"),
        "logical_date",
    )


def count_rows(flagged: "DataFrame") -> tuple[QualityCounts, dict[str, int]]:
    """(in, valid, quarantined) of the interval's rows (column `_in`) and the count of each quarantine
    reason, in one pass."""
    by_reason = {r["reason"]: int(r["n"]) for r in flagged.where("_in").groupBy(
        F.array_join("reasons", "; ").alias("reason")).agg(F.count(F.lit(1)).alias("n")).collect()}
    valid = by_reason.pop("", 0)
    bad = sum(by_reason.values())
    return QualityCounts(valid + bad, valid, bad).check(), by_reason


@dataclass
class Validated:
    """The outcome of validating an interval: its counts, and its rows (cached until release).

    `flagged` holds every row read, features as double, with its reasons and `_in` (whether the row belongs
    to the interval or is history read for causal windows); `valid` the valid rows, history included;
    `quarantined` the interval's faulty rows, held in memory of their own once something has read them (the
    quarantine's write): a later reader, the drift step, then reads those few rows, not every row again.
    """

    flagged: "DataFrame"
    counts: QualityCounts
    input_version: int
    reasons: dict[str, int]  # quarantined rows of the interval per reason
    cached: "DataFrame"  # what flagged is computed from, held in memory
    quarantined: "DataFrame"

    @property
    def valid(self) -> "DataFrame":
        return self.flagged.where(F.size("reasons") == 0)

    @property
    def interval_rows(self) -> "DataFrame":
        return self.flagged.where("_in")

    def release(self) -> None:
        self.quarantined.unpersist()
        self.cached.unpersist()


def validate_interval(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str,
    lookback_s: float = 0.0, quarantine: bool = True,
) -> Validated:
    """Quarantine the interval's bad rows (replacing any earlier run's) and return its rows, flagged.

    lookback_s: also read (and validate, but neither count nor quarantine) the rows of that many seconds
    before the interval: the history that causal windows need. quarantine=False writes nothing (backtests).
    """
    table, version = read_source(spark, settings, spec)
    in_interval = (F.col("logical_date") >= F.lit(interval.start)) & (F.col("logical_date") < F.lit(interval.end))
    flagged, cached = flag_rows(select_interval(table, spec, interval, lookback_s), spec)
    flagged = flagged.withColumn("_in", in_interval)
    counts, reasons = count_rows(flagged)
    validated = Validated(flagged, counts, version, reasons, cached,
                          flagged.where(F.col("_in") & (F.size("reasons") > 0)).persist())
    if quarantine:
        replace_interval(spark, settings, QUARANTINE, quarantine_rows(validated.quarantined, spec, run_id), spec.name,
                         interval.start, interval.end, run_id)
    return validated
