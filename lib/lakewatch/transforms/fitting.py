"""Per-entity and global statistics of the training rows in one Spark aggregation (a rollup on entity).

For each entity and for all rows together: the count, first and last timestamps, and per feature the
quartiles (approximate, 1/10000 rank error), mean and population standard deviation. What reaches the
driver is one row per entity (plus one), whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import functions as F

from lakewatch.transforms.entities import EntityIndex, Spacing
from lakewatch.transforms.normalization import MAD_TO_STD, FeatureStats, NormalizationConfig, Normalizer
from lakewatch.transforms.seasonal import US_PER_DAY, CrossFittedProfile, SeasonalProfile, fold_width

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def _stable(values: np.ndarray) -> np.ndarray:
    """12 significant digits: parallel float sums differ in their last bits from run to run, and training
    must be deterministic under its seed."""
    return np.array([float(f"{v:.12g}") for v in values.ravel()], dtype=np.float64).reshape(values.shape)


@dataclass(frozen=True)
class TrainingStats:
    """The statistics training needs: per entity (sorted by name) and overall, and the spacing of rows."""

    entities: np.ndarray  # (m,) object
    per_entity: FeatureStats
    overall: FeatureStats
    spacing_s: np.ndarray  # (m,): (last - first) / (count - 1) of each entity, NaN with one row
    span_us: np.ndarray  # (m, 2) int64: each entity's first and last timestamp, microseconds since the epoch

    @property
    def index(self) -> EntityIndex:
        return EntityIndex(pa.array(list(self.entities), pa.string()))

    def normalizer(self, features: list[str], cfg: NormalizationConfig) -> Normalizer:
        return Normalizer.fit(features, self.per_entity, self.overall, cfg)

    def spacing(self, cadence_s: float | None, default_s: float) -> Spacing:
        """The spacing of each entity's rows; the spec's cadence, when given, for all of them."""
        known = self.spacing_s[np.isfinite(self.spacing_s) & (self.spacing_s > 0)]
        global_s = cadence_s or (float(np.median(known)) if known.size else default_s)
        if cadence_s:
            return Spacing(np.full(len(self.entities), cadence_s), global_s)
        return Spacing(np.where(np.isfinite(self.spacing_s) & (self.spacing_s > 0), self.spacing_s, global_s), global_s)


def training_stats(df: "DataFrame", features: list[str]) -> TrainingStats:
    """One rollup aggregation over (entity, ts, features...) rows."""
    aggs = [F.count(F.lit(1)).alias("n"), F.min(F.unix_micros("ts")).alias("u0"),
            F.max(F.unix_micros("ts")).alias("u1")]
    for i, f in enumerate(features):
        aggs += [F.percentile_approx(f, [0.25, 0.5, 0.75], 10_000).alias(f"q{i}"), F.avg(f).alias(f"m{i}"),
                 F.stddev_pop(f).alias(f"s{i}")]
    rows = df.rollup("entity").agg(F.grouping("entity").alias("_all"), *aggs).collect()
    total = [r for r in rows if r["_all"] == 1]
    groups = sorted((r for r in rows if r["_all"] == 0), key=lambda r: str(r["entity"]))
    if not total or int(total[0]["n"]) == 0:
        raise ValueError("no rows to compute statistics from")

    def stats(rs: list) -> FeatureStats:
        d = len(features)
        q = np.array([[r[f"q{i}"] or [np.nan] * 3 for i in range(d)] for r in rs], dtype=np.float64)  # (m, d, 3)
        mean = np.array([[r[f"m{i}"] if r[f"m{i}"] is not None else np.nan for i in range(d)] for r in rs])
        std = np.array([[r[f"s{i}"] if r[f"s{i}"] is not None else 0.0 for i in range(d)] for r in rs])
        return FeatureStats(
            count=np.array([int(r["n"]) for r in rs], dtype=np.int64),
            median=q[:, :, 1].reshape(len(rs), d), iqr=(q[:, :, 2] - q[:, :, 0]).reshape(len(rs), d),
            mean=_stable(mean.reshape(len(rs), d)), std=_stable(std.reshape(len(rs), d)),
        )

    span = np.array([[r["u0"], r["u1"]] for r in groups], dtype=np.int64).reshape(len(groups), 2)
    count = np.array([int(r["n"]) for r in groups], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        spacing = np.where(count > 1, (span[:, 1] - span[:, 0]) / 1e6 / (count - 1), np.nan)
    return TrainingStats(
        entities=np.array([str(r["entity"]) for r in groups], dtype=object),
        per_entity=stats(groups), overall=stats(total), spacing_s=spacing.astype(np.float64), span_us=span,
    )


def time_of_day_bin(ts: "Column", bins: int) -> "Column":
    """A timestamp column's time-of-day bin (UTC), 0..bins-1: `transforms.seasonal.bin_of` as a Spark expression."""
    return (F.pmod(F.unix_micros(ts), F.lit(US_PER_DAY)) * F.lit(bins) / F.lit(US_PER_DAY)).cast("int")


def _medians_by(rows: "DataFrame", keys: list[str], features: list[str],
                slot: dict[str, int]) -> tuple[pd.DataFrame, np.ndarray]:
    """Each feature's median (m0, m1, ...) per group of `keys` (the entity first) that has rows, as pandas through
    Arrow (a fleet of 100k entities has millions of groups): the groups with `_slot`, their entity's position in
    `slot` (entities not in it dropped), and their (g, d) medians, NaN where a feature had none."""
    medians = [f"m{j}" for j in range(len(features))]
    meds = rows.groupBy(*keys).agg(
        *[F.percentile_approx(f, 0.5, 10_000).alias(m) for m, f in zip(medians, features)]).toPandas()
    meds = meds.assign(_slot=meds["entity"].astype(str).map(slot)).dropna(subset=["_slot"])
    return meds, meds[medians].to_numpy(np.float64, na_value=np.nan)


def seasonal_profile(df: "DataFrame", features: list[str], bins: int, entities: list[str], loc: np.ndarray,
                     floor: np.ndarray) -> SeasonalProfile:
    """Two aggregations over (entity, ts, features...) rows: each entity's median per time-of-day bin and
    feature, then the median absolute deviation from it (x 1.4826, at least `floor`, per entity and feature).
    A bin without rows falls back to `loc` (the entity's median)."""
    d = len(features)
    slot = {e: i for i, e in enumerate(entities)}
    rows = df.select("entity", time_of_day_bin(F.col("ts"), bins).alias("_bin"), *features)
    medians = [f"m{j}" for j in range(d)]
    meds, got = _medians_by(rows, ["entity", "_bin"], features, slot)
    at, k = meds["_slot"].to_numpy(np.int64), meds["_bin"].to_numpy(np.int64)
    median = np.repeat(np.asarray(loc, dtype=np.float64)[:, None, :], bins, axis=1).copy()
    median[at, k] = np.where(np.isnan(got), median[at, k], got)
    scale = np.array(floor, dtype=np.float64).copy()
    if meds.empty:
        return SeasonalProfile(features, bins, median, scale)
    table = meds[["entity", "_bin"]].assign(**{m: median[at, k, j] for j, m in enumerate(medians)})
    dev = rows.join(df.sparkSession.createDataFrame(table), ["entity", "_bin"]).groupBy("entity").agg(
        *[F.percentile_approx(F.abs(F.col(f) - F.col(m)), 0.5, 10_000).alias(f"d{j}")
          for j, (m, f) in enumerate(zip(medians, features))]).toPandas()
    dev = dev.assign(_slot=dev["entity"].astype(str).map(slot)).dropna(subset=["_slot"])
    at = dev["_slot"].to_numpy(np.int64)
    mad = dev[[f"d{j}" for j in range(d)]].to_numpy(np.float64, na_value=np.nan)
    scale[at] = np.maximum(MAD_TO_STD * np.nan_to_num(mad, nan=0.0), scale[at])
    return SeasonalProfile(features, bins, median, scale)


def fold_column(ts: "Column", start_us: "Column", width_us: "Column", k: int) -> "Column":
    """A timestamp column's fold, 0..k-1: `transforms.seasonal.fold_of` as a Spark expression (integral
    division of microseconds by the fold's width, `fold_width`)."""
    return F.least(F.greatest(F.floor((F.unix_micros(ts) - start_us) / width_us).cast("long"), F.lit(0)), F.lit(k - 1))


def cross_fitted(df: "DataFrame", profile: SeasonalProfile, entities: list[str], span_us: np.ndarray,
                 k: int) -> CrossFittedProfile:
    """`profile` as training reads it (`CrossFittedProfile`): one more aggregation over the same (entity, ts,
    features...) rows, each row counted once for every fold of its entity's span but its own (k contiguous
    folds of `span_us`, (m, 2): first and last timestamp), for each entity, fold and time-of-day bin the median
    of the rows outside that fold. What reaches the driver is k rows per entity and bin (the profile's: one)."""
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    bins, features = profile.bins, profile.features
    start = np.asarray(span_us[:, 0], dtype=np.int64)
    span = np.asarray(span_us[:, 1], dtype=np.int64) - start + 1
    folds = np.repeat(profile.median[:, None], k, axis=1).copy()
    if len(entities):
        spans = df.sparkSession.createDataFrame(
            pd.DataFrame({"entity": list(entities), "_start": start, "_width": fold_width(span, k)}))
        own = fold_column(F.col("ts"), F.col("_start"), F.col("_width"), k)
        others = F.filter(F.sequence(F.lit(0), F.lit(k - 1)), lambda f: f != own)
        rows = df.select(F.col("entity").cast("string").alias("entity"), "ts", *features).join(
            F.broadcast(spans), "entity").select(
            "entity", F.explode(others).alias("_fold"), time_of_day_bin(F.col("ts"), bins).alias("_bin"), *features)
        meds, got = _medians_by(rows, ["entity", "_fold", "_bin"], features, {e: i for i, e in enumerate(entities)})
        at, fold, b = (meds[c].to_numpy(np.int64) for c in ("_slot", "_fold", "_bin"))
        folds[at, fold, b] = np.where(np.isnan(got), folds[at, fold, b], got)
    return CrossFittedProfile(features, bins, profile.median, profile.scale, folds, start, span)
