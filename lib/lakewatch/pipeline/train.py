"""The train job: statistics in Spark, a sample of windows on the driver, a detector fitted, calibrated, registered.

1. The interval's rows, typed and checked as validation does; labeled anomalies and the spans analysts confirmed
   as anomalies (feedback) left out.
2. One rollup aggregation: per-entity and global statistics (normalisation), and the rows' spacing (the
   cadence, when the spec gives none); for a model with seasonal inputs, the time-of-day profile, and its
   cross-fitted reading that the model is fitted on (transforms.seasonal.CrossFittedProfile).
3. A block sample (data.sampling): contiguous per-entity blocks, whole blocks held out, brought to the
   driver sorted by (entity, ts) with the history their windows need.
4. The detector is fitted on the training windows; the scoring plan scores every sampled row's window once: the
   held-out windows calibrate what the detector learned, every window that holds the points a signal reads
   calibrates the signals it did not learn. Non-finite metrics or a non-finite threshold fail the run: nothing
   is registered.
5. The package (format 2) is registered: the first version of a name is production, later ones candidates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import functions as F

from lakewatch.config import Settings, TrainingSettings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points
from lakewatch.data.quality import flag_rows, select_interval, valid_rows
from lakewatch.data.sampling import block_sample, hold_out_one, sample_windows
from lakewatch.data.spec import DatasetSpec, read_source
from lakewatch.errors import DataError
from lakewatch.feedback.spans import drop_confirmed
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.models.base import DetectorOutput, WindowSet
from lakewatch.models.registry import detector_class, model_config
from lakewatch.monitoring.drift import SCORE_FEATURE, drift_columns, quantile_sample, reference_profiles
from lakewatch.monitoring.drift_stats import profile_from_values
from lakewatch.packaging.package import ModelPackage, build_package
from lakewatch.packaging.registry import CANDIDATE, PRODUCTION, ModelRef, next_version, register
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.scoring.calibration import calibrate, fit_entity_tails
from lakewatch.scoring.plan import Calibrations, ScoringPlan, WindowRules, entity_codes
from lakewatch.transforms.fitting import cross_fitted, seasonal_profile, training_stats
from lakewatch.transforms.normalization import NormalizationConfig, location_scale

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LABELED_SAMPLE = 5000
DEFAULT_CADENCE_S = 60.0
SEASONAL_FLOOR = 0.05  # the seasonal spread is at least this share of the entity's robust scale


@dataclass(frozen=True)
class TrainResult:
    ref: ModelRef
    stage: str
    metrics: dict[str, float]
    record: RunRecord


@dataclass(frozen=True)
class SampledRows:
    """Rows brought to the driver, sorted by (entity, ts)."""

    entity: pa.Array
    ts: np.ndarray  # int64 microseconds
    x: np.ndarray  # (n, d) float64
    extra: dict[str, np.ndarray]


def collect_rows(df: "DataFrame", features: list[str], extra: tuple[str, ...] = ()) -> SampledRows:
    """The rows of df on the driver in (entity, ts) order, through Arrow."""
    cols = [F.col("entity"), F.unix_micros("ts").alias("ts_us"), *[F.col(f).cast("double") for f in features],
            *[F.col(c) for c in extra]]
    table = df.orderBy("entity", "ts").select(*cols).toArrow()
    x = np.column_stack([table.column(f).to_numpy() for f in features]) if table.num_rows else np.zeros((0, len(features)))
    return SampledRows(
        entity=table.column("entity").combine_chunks(), ts=table.column("ts_us").to_numpy().astype(np.int64),
        x=x.astype(np.float64), extra={c: table.column(c).to_numpy(zero_copy_only=False) for c in extra},
    )


def _finite_or_fail(values: dict[str, float], what: str) -> None:
    bad = {k: v for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        raise DataError(f"training produced non-finite {what} {bad}: nothing was registered (check the data for "
                        "extreme values the spec's min/max do not exclude)")


@dataclass(frozen=True)
class Trained:
    """A fitted, calibrated package that is not registered yet, with its metrics and lineage."""

    package: ModelPackage
    metrics: dict[str, float]
    rows_normal: int
    input_version: int


RowFilter = Callable[["DataFrame"], "DataFrame"]


def fit_package(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, model_type: str, name: str,
    version: int, run_id: str, select_rows: RowFilter | None = None,
) -> Trained:
    """Steps 1-4 of the module docstring: a package from the valid, unlabeled rows of the interval (those
    `select_rows` keeps, when given: the backtests' protocols choose rows that way)."""
    cfg = settings.training
    features = spec.feature_names
    cls = detector_class(model_type)
    detector = cls(len(features), model_config(model_type, settings.models.get(model_type, {}),
                                                settings.source or "profile"))
    table, version_in = read_source(spark, settings, spec)
    flagged, cached = flag_rows(select_interval(table, spec, interval), spec)
    valid = valid_rows(flagged, spec)
    labels = label_points(spark, settings, spec, interval.start_ts, interval.end_ts)
    normal = valid if labels is None else valid.join(labels.select("entity", "ts"), ["entity", "ts"], "left_anti")
    normal, confirmed = drop_confirmed(spark, settings, spec.name, normal, interval.start_ts, interval.end_ts)
    if select_rows is not None:
        normal = select_rows(normal)
    normal = normal.persist()
    try:
        stats = training_stats(normal, features)
    except ValueError:
        raise DataError(f"no valid, unlabeled rows of {spec.name} in {interval} to train on") from None

    context = detector.context
    index, spacing = stats.index, stats.spacing(spec.cadence_seconds, DEFAULT_CADENCE_S)
    cap_us = int(cfg.window_max_horizon_days * 86_400e6)
    rules = WindowRules(cfg.window_horizon_factor, None)
    if context > 1:
        widest = float(np.max(spacing.seconds)) if len(spacing.seconds) else spacing.global_seconds
        rules = WindowRules(cfg.window_horizon_factor,
                            min(cap_us, int(round(max(widest, spacing.global_seconds) * context
                                                  * cfg.window_horizon_factor * 1e6))))
    normalizer = stats.normalizer(features, detector.config.normalization)
    seasonal, training_seasonal = None, None
    if detector.seasonal_bins:
        _, robust_scale = location_scale(stats.per_entity, NormalizationConfig(),
                                         normalizer.global_scale if len(normalizer.global_scale) else None)
        seasonal = seasonal_profile(normal, features, detector.seasonal_bins, list(stats.entities),
                                    stats.per_entity.median, SEASONAL_FLOOR * robust_scale)
        training_seasonal = seasonal
        if cfg.seasonal_folds > 1:
            training_seasonal = cross_fitted(normal, seasonal, list(stats.entities), stats.span_us, cfg.seasonal_folds)
    plan = ScoringPlan(features, index, normalizer, spacing, detector, None, rules, seasonal,
                       top_k=settings.scoring.top_features)
    horizon_s = spacing.seconds * context * cfg.window_horizon_factor if context > 1 else np.zeros(len(index))
    timing = spark.createDataFrame(pd.DataFrame({
        "entity": list(stats.entities), "block_s": spacing.seconds * cfg.block_points,
        "horizon_s": np.minimum(horizon_s, cap_us / 1e6)}))
    sample = block_sample(normal, cfg.sample_size, cfg.holdout_fraction, cfg.seed, timing)
    rows = collect_rows(sample, features, ("split", "target", "block"))
    located = plan.locate(rows.entity, len(rows.ts))
    values = plan.model_inputs(rows.x, rows.ts, located)  # as scoring reads them: what calibrates
    fit_values = values if training_seasonal is seasonal else (
        replace(plan, seasonal=training_seasonal).model_inputs(rows.x, rows.ts, located))
    codes = entity_codes(rows.entity)
    horizons = plan.horizons(located) if context > 1 else None
    target = rows.extra["target"].astype(bool)
    split = hold_out_one(codes, rows.extra["block"].astype(np.int64), rows.extra["split"].astype(np.int64), target)
    sampled = sample_windows(codes, rows.ts, split, target, context, horizons)
    n_train, n_held = int(sampled.train.sum()), int(sampled.held.sum())
    if n_train < 50 or n_held < 20:
        raise DataError(f"too few windows to train on: {n_train} train / {n_held} held out "
                        f"in {interval} (a longer interval, or a smaller training.block_points)")

    metrics = detector.fit(WindowSet(fit_values, sampled.where(sampled.train)), cfg.seed)
    del fit_values, training_seasonal  # only the fit reads the cross-fitted inputs
    # every sampled row's window is scored once; each signal calibrates on the windows it may (fit_calibrations)
    every, calib, is_held = sampled.rows, sampled.windows, sampled.held.copy()
    full = calib.n_valid == context
    if (is_held & full).sum() >= 20:
        # a window padded at an entity's first rows scores what the entity never does (a flat past, say): in the
        # calibration it would be a tail of its own, above the real one, and raise every threshold
        is_held &= full
    out = plan.detect_rows(values, codes, calib, every)
    _finite_or_fail({"heldout_score": float(np.max(out.score)) if len(out.score) else 0.0, **metrics}, "metrics")
    calibrations = fit_calibrations(plan, out, located.pos[every], len(index), cfg, is_held, calib.n_valid)
    # what the reference profile describes: held-out windows for a learned score, whole windows otherwise
    held = out.take(is_held if detector.learned_signals else full)
    plan = plan.with_calibrations(calibrations)
    first = calibrations.signals[detector.signal_names[0]]
    metrics.update(heldout_mean_score=float(held.score.mean()), threshold=first.threshold,
                   rows_normal=float(stats.overall.count[0]), train_windows=float(n_train),
                   heldout_windows=float(n_held), entities=float(len(stats.entities)),
                   cadence_s=float(spacing.global_seconds), feedback_confirmed_spans=float(confirmed))
    _finite_or_fail(metrics, "metrics")
    recall = labeled_recall(plan, valid, labels, features, (rules.max_horizon_us or 0) / 1e6)
    if recall is not None:
        metrics["labeled_anomaly_recall"] = recall
    reference = {
        "features": [p.to_dict() for p in reference_profiles(flagged, drift_columns(spec), quantile_sample(
            int(stats.per_entity.count.sum()), settings.drift.quantile_sample_rows))],
        "score": profile_from_values(SCORE_FEATURE, held.score).to_dict(),
    }
    manifest = {
        "name": name, "version": version, "dataset": spec.name, "created_at": datetime.now(timezone.utc).isoformat(),
        "features": [f.model_dump() for f in spec.features],
        "windows": {"context": context, "horizon_factor": rules.factor, "max_horizon_us": rules.max_horizon_us},
        "reference_profile": reference,
        "training": {"table": spec.table_path(settings), "delta_version": version_in, "start": interval.start.isoformat(),
                     "end": interval.end.isoformat(), "seed": cfg.seed, "run_id": run_id,
                     # how the model's seasonal residuals were read when it was fitted (1: in-sample)
                     **({"seasonal_folds": cfg.seasonal_folds} if seasonal is not None else {})},
        "metrics": metrics,
    }
    package = build_package(manifest, detector, index, spacing, normalizer, calibrations, seasonal)
    rows_normal = int(stats.overall.count[0])
    normal.unpersist()
    cached.unpersist()
    return Trained(package, metrics, rows_normal, version_in)


def fit_calibrations(plan: ScoringPlan, out: DetectorOutput, pos: np.ndarray, n_entities: int,
                     cfg: TrainingSettings, is_held: np.ndarray, n_valid: np.ndarray) -> Calibrations:
    """Each signal's calibration on the calibration windows; each entity's own tails of them when the profile
    calibrates per entity; each ensemble member's calibration (for the uncertainty).

    A signal the detector learned (`Detector.learned_signals`) calibrates on held-out windows only (`is_held`);
    one that learned nothing from the training windows on every window holding the points it reads
    (`Detector.signal_points`; n_valid: each window's real points): more scores, steadier tails, and a row-wise
    signal of a windowed model calibrated on exactly the rows a row-wise model would use."""
    signals = plan.signal_matrix(out)
    held = np.asarray(is_held, dtype=bool)
    learned = set(plan.detector.learned_signals)
    rate = cfg.target_false_alarm_rate
    cals, tails = {}, {} if cfg.calibration_scope == "entity" else None
    for k, name in enumerate(plan.detector.signal_names):
        rows = held if name in learned else n_valid >= plan.detector.signal_points(name)
        cals[name] = calibrate(signals[rows, k], rate)
        if tails is not None:
            tails[name] = fit_entity_tails(cals[name], pos[rows], signals[rows, k], n_entities, cfg.entity_tail_prior,
                                           cfg.entity_tail_pooling)
    members = None
    if out.members is not None:
        members = [calibrate(out.members[held, k], rate) for k in range(out.members.shape[1])]
    return Calibrations(cals, tails, members, cfg.signal_fusion)


def run_train(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, model_type: str | None = None,
    name: str | None = None, run_id: str | None = None, challenge: bool = False,
) -> TrainResult:
    """Train a model on an interval and register it (the first version of a name is production); with
    challenge, a candidate is compared with production and promoted if not worse (pipeline.challenge)."""
    model_type = model_type or settings.training.default_model
    name = name or spec.name
    record = RunRecord(run_id or new_run_id("train"), "train", spec.name, interval.start, interval.end, model_name=name)
    with tracked_run(spark, settings, record):
        record.input_table = spec.table_path(settings)
        trained = fit_package(spark, settings, spec, interval, model_type, name,
                              next_version(spark, settings, name), record.run_id)
        record.input_version = trained.input_version
        ref, stage = register(spark, settings, trained.package, {
            "dataset": spec.name, "metrics_json": json.dumps(trained.metrics, sort_keys=True),
            "table": record.input_table, "table_version": trained.input_version, "start": interval.start,
            "end": interval.end,
        })
        record.model_version, record.rows_valid = ref.version, trained.rows_normal
        record.details.update(stage=stage, model_type=model_type, metrics=trained.metrics)
        if challenge and stage == CANDIDATE:
            from lakewatch.pipeline.challenge import challenge as run_challenge

            comparison = run_challenge(spark, settings, spec, ref)
            if comparison is not None:
                record.details["challenge"] = comparison.to_dict()
                if comparison.decision.promote and settings.promotion.auto:
                    stage = PRODUCTION
                    record.details["stage"] = stage
    return TrainResult(ref, stage, trained.metrics, record)


def labeled_recall(plan: ScoringPlan, valid: "DataFrame", labels: "DataFrame | None", features: list[str],
                   horizon_s: float) -> float | None:
    """The share of (up to LABELED_SAMPLE) labeled anomalous points of the interval that the plan flags,
    each scored from its own window of valid rows."""
    if labels is None:
        return None
    points = (valid.join(labels.select("entity", "ts").distinct(), ["entity", "ts"], "left_semi")
              .orderBy("entity", "ts").limit(LABELED_SAMPLE).select("entity", "ts", F.lit(True).alias("_point")))
    if horizon_s > 0:  # the points and the rows of their windows
        p = points.select(F.col("entity").alias("_e"), F.col("ts").alias("_t"))
        cond = (F.col("entity") == F.col("_e")) & F.col("ts").between(
            F.col("_t") - F.expr(f"INTERVAL {int(math.ceil(horizon_s))} SECONDS"), F.col("_t"))
        rows = valid.join(F.broadcast(p), cond, "left_semi")
    else:
        rows = valid.join(F.broadcast(points.select("entity", "ts")), ["entity", "ts"], "left_semi")
    rows = rows.join(F.broadcast(points), ["entity", "ts"], "left").withColumn("_point", F.coalesce("_point", F.lit(False)))
    collected = collect_rows(rows, features, ("_point",))
    targets = np.flatnonzero(collected.extra["_point"].astype(bool))
    if len(targets) == 0:
        return None
    return float(plan.score_rows(collected.entity, collected.ts, collected.x, targets).is_anomaly.mean())
