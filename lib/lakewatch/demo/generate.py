"""Demo data: hosts x operations metrics with seasonality, correlation and labeled anomalies, made in Spark.

Every value is a pure function of (seed, host, step), computed with hash-based randomness, so the same
seed gives the same table whatever the partitioning, and the table scales with the cluster, not the driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakewatch.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# name, scale (a typical size of a change), lower bound, upper bound
METRICS: list[tuple[str, float, float | None, float | None]] = [
    ("cpu_pct", 10.0, 0.0, 100.0),
    ("mem_pct", 8.0, 0.0, 100.0),
    ("latency_ms", 25.0, 0.0, None),
    ("error_rate", 0.5, 0.0, 100.0),
    ("throughput_rps", 150.0, 0.0, None),
    ("disk_io_mbps", 10.0, 0.0, None),
    ("net_in_mbps", 15.0, 0.0, None),
    ("gc_pause_ms", 5.0, 0.0, None),
]
KINDS = ["spike", "level_shift", "slow_drift", "correlation_break", "stuck", "decoupling", "malformed"]
# duration range of each kind, in minutes
DURATIONS = {
    "spike": (5, 15),
    "level_shift": (120, 240),
    "slow_drift": (360, 720),
    "correlation_break": (120, 180),
    "stuck": (120, 240),
    "decoupling": (120, 240),
    "malformed": (30, 60),
}
TWO_53 = float(2**53)


@dataclass(frozen=True)
class GeneratorParams:
    """What to generate; the defaults make a small demo."""

    start: date
    days: int = 7
    entities: int = 8
    seed: int = 42
    cadence_minutes: int = 5
    anomaly_rate: float = 0.35  # chance that a host has one injected anomaly on a given day
    extra_features: int = 0  # aux_XX features beyond the 8 metrics, for wide benchmarks
    drift_date: date | None = None  # a day on which drift_metric shifts for every host
    drift_metric: str = "mem_pct"
    drift_shift: float = 3.0  # in units of the metric's scale
    kinds: tuple[str, ...] = tuple(KINDS)  # the kinds injected, cycled over (day, host) cells

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if not self.kinds or unknown:
            raise ConfigError(f"kinds must name some of {', '.join(KINDS)}; got {list(self.kinds)}")

    @property
    def steps_per_day(self) -> int:
        return 24 * 60 // self.cadence_minutes

    @property
    def rows(self) -> int:
        return self.entities * self.days * self.steps_per_day

    def feature_specs(self) -> list[dict[str, object]]:
        specs: list[dict[str, object]] = []
        for name, _, lo, hi in METRICS:
            spec: dict[str, object] = {"name": name}
            if lo is not None:
                spec["min"] = lo
            if hi is not None:
                spec["max"] = hi
            specs.append(spec)
        specs += [{"name": f"aux_{i:02d}"} for i in range(self.extra_features)]
        return specs


def _uniform(seed: int, tag: str, *cols: Column) -> Column:
    """A deterministic uniform [0, 1) from a hash of the seed, a tag and some columns."""
    h = F.xxhash64(F.lit(seed), F.lit(tag), *cols)
    return F.pmod(h, F.lit(2**53)).cast("double") / F.lit(TWO_53)


def _normal(seed: int, tag: str, *cols: Column) -> Column:
    u1 = _uniform(seed, tag + "/1", *cols)
    u2 = _uniform(seed, tag + "/2", *cols)
    return F.sqrt(-2.0 * F.log(u1 + F.lit(1e-12))) * F.cos(2 * math.pi * u2)


def _metrics(p: GeneratorParams, host: Column, step: Column) -> dict[str, Column]:
    """The normal behaviour of every feature at (host, step): load with daily and weekly cycles."""
    minutes = step * p.cadence_minutes
    day_frac = (minutes % 1440) / 1440.0
    weekday = F.pmod(F.floor(minutes / 1440) + F.dayofweek(F.lit(p.start)) - 1, 7)  # 0 = Sunday
    weekend = F.when(weekday.isin(0, 6), F.lit(-0.15)).otherwise(F.lit(0.0))
    scale = 0.6 + 0.8 * _uniform(p.seed, "scale", host)
    phase = 2 * math.pi * _uniform(p.seed, "phase", host)
    daily = 0.5 - 0.35 * F.cos(2 * math.pi * (day_frac - 0.08))
    wander = 0.05 * F.sin(2 * math.pi * step / 97.0 + phase)
    load = scale * (daily + weekend) + wander + 0.04 * _normal(p.seed, "load", host, step)
    n = lambda tag: _normal(p.seed, tag, host, step)  # noqa: E731
    values = {
        "cpu_pct": 15 + 60 * load + 3 * n("cpu"),
        "mem_pct": 40 + 20 * load + 4 * F.sin(2 * math.pi * step / 2016.0 + phase) + 2 * n("mem"),
        "latency_ms": 20 + 40 * load + 30 * load * load + 4 * n("lat"),
        "error_rate": 0.2 + 0.5 * load * load + 0.05 * n("err"),
        "throughput_rps": 800 * load + 30 * n("thr"),
        "disk_io_mbps": 20 + 30 * load + 5 * n("disk"),
        "net_in_mbps": 10 + 60 * load + 4 * n("net"),
        "gc_pause_ms": 5 + 15 * load + 3 * n("gc"),
    }
    for i in range(p.extra_features):
        weight = 0.5 + (i % 7) / 7.0
        values[f"aux_{i:02d}"] = 10 * weight * load + F.lit(i % 5) + n(f"aux{i}")
    return values


def _clip(value: Column, lo: float | None, hi: float | None) -> Column:
    if lo is not None:
        value = F.greatest(value, F.lit(lo))
    if hi is not None:
        value = F.least(value, F.lit(hi))
    return value


def generate_frames(spark: "SparkSession", p: GeneratorParams) -> tuple["DataFrame", "DataFrame"]:
    """(metrics, labels): the metrics rows with anomalies and faults injected, and one label per injected point."""
    partitions = max(2, p.rows // 400_000)
    base = spark.range(0, p.rows, numPartitions=partitions)
    host_idx = (F.col("id") % p.entities).cast("long")
    step = (F.col("id") / p.entities).cast("long")
    df = base.select(host_idx.alias("h"), step.alias("step"))
    h, s = F.col("h"), F.col("step")
    day = F.floor(s / p.steps_per_day)
    pos = s % p.steps_per_day

    # at most one anomaly per host and day: its kind, metric, start and length are drawn from (host, day)
    has = _uniform(p.seed, "anom", h, day) < p.anomaly_rate
    # kinds cycle over (day, host) cells, so that every kind appears in any table of a few host-days
    kinds = list(p.kinds)
    kind_idx = F.pmod(day * p.entities + h + p.seed, F.lit(len(kinds))).cast("int")
    kind = F.element_at(F.array(*[F.lit(k) for k in kinds]), kind_idx + 1)
    metric_idx = F.floor(_uniform(p.seed, "metric", h, day) * len(METRICS)).cast("int")
    lo_steps = F.element_at(F.array(*[F.lit(DURATIONS[k][0] // p.cadence_minutes) for k in kinds]), kind_idx + 1)
    hi_steps = F.element_at(F.array(*[F.lit(DURATIONS[k][1] // p.cadence_minutes) for k in kinds]), kind_idx + 1)
    length = F.greatest(F.lit(1), lo_steps + F.floor(_uniform(p.seed, "len", h, day) * (hi_steps - lo_steps + 1)))
    start = F.floor(_uniform(p.seed, "start", h, day) * (p.steps_per_day - length)).cast("long")
    df = df.select(
        "h", "step", day.alias("day"), pos.alias("pos"), has.alias("has"), kind.alias("kind"),
        metric_idx.alias("m"), length.cast("long").alias("len"), start.alias("a_start"),
    )
    in_anom = F.col("has") & (F.col("pos") >= F.col("a_start")) & (F.col("pos") < F.col("a_start") + F.col("len"))
    df = df.withColumn("in_anom", in_anom)

    # normal values, the values at the anomaly's start (for `stuck`) and half a day away (for `decoupling`) as
    # columns of their own, so that each effect below refers to a column instead of repeating the whole expression
    normal = _metrics(p, h, s)
    stuck_at = _metrics(p, h, F.col("day") * p.steps_per_day + F.col("a_start"))
    other_half = _metrics(p, h, s + p.steps_per_day // 2)
    df = df.select(
        "*",
        *[c.alias(f"n_{n}") for n, c in normal.items()],
        *[stuck_at[n].alias(f"s_{n}") for n, _, _, _ in METRICS],
        *[other_half[n].alias(f"o_{n}") for n, _, _, _ in METRICS],
    )
    progress = (F.col("pos") - F.col("a_start") + 1) / F.col("len")
    cols: dict[str, Column] = {}
    for i, (name, scale, lo, hi) in enumerate(METRICS):
        v = F.col(f"n_{name}")
        target = F.col("in_anom") & (F.col("m") == i)
        k = F.col("kind")
        v = (
            F.when(target & (k == "spike"), v + 8 * scale)
            .when(target & (k == "level_shift"), v + 4 * scale)
            .when(target & (k == "slow_drift"), v + 6 * scale * progress)
            .when(target & (k == "stuck"), F.col(f"s_{name}"))
            # the metric follows its own daily cycle half a day out of phase: the same values as always, no longer
            # moving with the metrics it usually follows
            .when(target & (k == "decoupling"), F.col(f"o_{name}"))
            .when(F.col("in_anom") & (k == "correlation_break") & F.lit(name == "cpu_pct"), v + 3 * scale)
            .when(F.col("in_anom") & (k == "correlation_break") & F.lit(name == "throughput_rps"), v * 0.4)
            .otherwise(v)
        )
        if p.drift_date is not None and name == p.drift_metric:
            drift_day = (p.drift_date - p.start).days
            v = F.when(F.col("day") == drift_day, v + p.drift_shift * scale).otherwise(v)
        cols[name] = _clip(v, lo, hi)
    for i in range(p.extra_features):
        cols[f"aux_{i:02d}"] = F.col(f"n_aux_{i:02d}")
    df = df.select("h", "step", "day", "in_anom", "kind", "m", *[c.alias(n) for n, c in cols.items()])
    cols = {n: F.col(n) for n in cols}

    # malformed bursts: each row of the burst gets one fault in its anomaly's metric
    fault = F.floor(_uniform(p.seed, "fault", h, s) * 5).cast("int")
    malformed = F.col("in_anom") & (F.col("kind") == "malformed")
    for i, (name, _, _, _) in enumerate(METRICS):
        hit = malformed & (F.col("m") == i)
        cols[name] = (
            F.when(hit & (fault == 0), F.lit(None).cast("double"))
            .when(hit & (fault == 1), F.lit(float("nan")))
            .when(hit & (fault == 2), F.lit(-1.0))
            .when(hit & (fault == 3), F.lit(float("inf")))
            .otherwise(cols[name])
        )
    ts = F.timestamp_seconds(F.lit(_epoch(p.start)) + s * (60 * p.cadence_minutes))
    host = F.format_string("host-%04d", h)
    full = df.select(
        host.alias("host"),
        ts.alias("ts"),
        *[c.alias(n) for n, c in cols.items()],
        F.to_date(ts).alias("date"),
        "in_anom", "kind", "day", "h", "step", (malformed & (fault == 4)).alias("dup"),
    )
    metrics_cols = ["host", "ts", *cols.keys(), "date"]
    metrics = full.select(*metrics_cols).unionByName(full.where("dup").select(*metrics_cols))
    labels = full.where("in_anom").select(
        "host",
        "ts",
        # malformed bursts are data-quality faults, caught by quarantine, not anomalies for the model
        (F.col("kind") != "malformed").alias("is_anomaly"),
        "kind",
        F.format_string("%s-%d-%s", F.col("host"), F.col("day"), F.col("kind")).alias("anomaly_id"),
        "date",
    )
    return metrics, labels


def _epoch(d: date) -> int:
    return (d - date(1970, 1, 1)).days * 86400


def write_generated(
    spark: "SparkSession", p: GeneratorParams, table_path: str, labels_path: str
) -> tuple[int, int]:
    """Write (overwrite) the metrics and labels tables, partitioned by date; return their row counts."""
    metrics, labels = generate_frames(spark, p)
    metrics.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("date").save(table_path)
    labels.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("date").save(labels_path)
    n_metrics = spark.read.format("delta").load(table_path).count()
    n_labels = spark.read.format("delta").load(labels_path).count()
    return n_metrics, n_labels
