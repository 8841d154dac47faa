"""The train job: statistics in Spark, a sample on the driver, a detector fitted, calibrated and registered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import functions as F

from lakewatch.calibration import calibrate
from lakewatch.config import Settings
from lakewatch.dataset import DatasetSpec
from lakewatch.intervals import Interval
from lakewatch.models import detector_class
from lakewatch.package import build_package
from lakewatch.pipeline.tracking import tracked_run
from lakewatch.dataset import read_source
from lakewatch.drift import SCORE_FEATURE, drift_columns, reference_profiles
from lakewatch.drift_stats import profile_from_values
from lakewatch.profile import even_sample, feature_moments, hash_uniform, split_labeled
from lakewatch.quality import flag_rows, select_interval, valid_rows
from lakewatch.registry import ModelRef, next_version, register
from lakewatch.runs import RunRecord, new_run_id

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LABELED_SAMPLE = 5000


@dataclass(frozen=True)
class TrainResult:
    ref: ModelRef
    stage: str
    metrics: dict[str, float]
    record: RunRecord


def _to_numpy(df: "DataFrame", features: list[str]) -> np.ndarray:
    """Driver-side rows in a fixed order (entity, ts), so that training is deterministic."""
    pdf = df.orderBy("entity", "ts").select(*features).toPandas()
    return pdf.to_numpy(dtype=np.float64)


def run_train(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, model_type: str,
    name: str | None = None, run_id: str | None = None,
) -> TrainResult:
    cfg = settings.training
    name = name or spec.name
    record = RunRecord(run_id or new_run_id("train"), "train", spec.name, interval.start, interval.end, model_name=name)
    with tracked_run(spark, settings, record):
        cls = detector_class(model_type)
        features = spec.feature_names
        table, version = read_source(spark, settings, spec)
        raw = select_interval(table, spec, interval)
        normal, anomalous = split_labeled(spark, settings, spec, interval, valid_rows(flag_rows(raw, spec), spec))
        record.input_table, record.input_version = spec.table_path(settings), version
        n_normal, mean, std = feature_moments(normal, features)
        sample = even_sample(normal, cfg.sample_size, cfg.seed).withColumn(
            "_holdout", hash_uniform(cfg.seed + 1, "entity", "ts") < cfg.holdout_fraction
        )
        x_train = _to_numpy(sample.where(~F.col("_holdout")), features)
        x_hold = _to_numpy(sample.where(F.col("_holdout")), features)
        if len(x_train) < 50 or len(x_hold) < 20:
            raise ValueError(f"too few rows to train on: {len(x_train)} train / {len(x_hold)} held out in {interval}")
        z = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
        detector = cls(len(features), cls.hyperparameters_from(len(features), cfg))
        metrics = detector.fit(z(x_train), cfg)
        held_scores = detector.score(z(x_hold))
        calibration = calibrate(held_scores, cfg.target_false_alarm_rate)
        reference = {
            "features": [p.to_dict() for p in reference_profiles(raw, drift_columns(spec))],
            "score": profile_from_values(SCORE_FEATURE, held_scores).to_dict(),
        }
        metrics.update(heldout_mean_score=float(held_scores.mean()), threshold=calibration.threshold,
                       rows_normal=float(n_normal), rows_train=float(len(x_train)), rows_heldout=float(len(x_hold)))
        if anomalous is not None:
            x_anom = _to_numpy(anomalous.limit(LABELED_SAMPLE), features)
            if len(x_anom):
                metrics["labeled_anomaly_recall"] = float((detector.score(z(x_anom)) >= calibration.threshold).mean())
        version_no = next_version(spark, settings, name)
        manifest = {
            "name": name, "version": version_no, "dataset": spec.name, "created_at": datetime.now(timezone.utc).isoformat(),
            "features": [f.model_dump() for f in spec.features],
            "normalization": {"mean": mean.tolist(), "std": std.tolist()},
            "calibration": calibration.to_dict(),
            "reference_profile": reference,
            "training": {"table": record.input_table, "delta_version": version, "start": interval.start.isoformat(),
                         "end": interval.end.isoformat(), "seed": cfg.seed, "run_id": record.run_id},
            "metrics": metrics,
        }
        package = build_package(manifest, detector)
        ref, stage = register(spark, settings, package, {
            "dataset": spec.name, "metrics_json": json.dumps(metrics, sort_keys=True), "table": record.input_table,
            "table_version": version, "start": interval.start, "end": interval.end,
        })
        record.model_version, record.rows_valid = ref.version, n_normal
        record.details.update(stage=stage, metrics=metrics)
    return TrainResult(ref, stage, metrics, record)
