"""The drift step: an interval's features and scores against the model's reference profile, into `drift`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval
from lakewatch.data.quality import flag_faults, select_interval
from lakewatch.data.spec import DatasetSpec, read_source
from lakewatch.errors import DataError, PackageError
from lakewatch.lakehouse.runs import RunRecord, new_run_id
from lakewatch.lakehouse.tables import DRIFT, SCORES, interval_predicate
from lakewatch.lakehouse.writes import read_table, replace_interval
from lakewatch.monitoring.drift import (
    SCORE_FEATURE,
    Column_,
    anomaly_rate_records,
    current_summaries,
    drift_columns,
    drift_records,
    quantile_sample,
)
from lakewatch.monitoring.drift_stats import CurrentSummary, FeatureProfile
from lakewatch.packaging.package import ModelPackage, check_schema
from lakewatch.packaging.registry import ModelRef, load_package
from lakewatch.pipeline.tracking import tracked_run

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class DriftOutcome:
    """Which features (and the score) drifted into warn or alert: what the drift gate and the report show.

    The anomaly rate is its own signal: anomalies found are not drift, so an unusual rate of them never
    turns the gate red; it is reported as `anomaly_rate` (ok / warn / alert).
    """

    alert: list[str] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)
    anomaly_rate: str = "ok"
    rows: int = 0
    records: list[tuple] = field(default_factory=list, repr=False)  # (feature, metric, value, threshold, status)

    def as_dict(self) -> dict:
        return {"alert": self.alert, "warn": self.warn, "anomaly_rate": self.anomaly_rate, "rows": self.rows}

    def frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame([(f, m, _num(v), _num(t), st) for f, m, v, t, st in self.records],
                            columns=["feature", "metric", "value", "threshold", "status"])


def compute_drift(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, package: ModelPackage,
    rows: "DataFrame", scores: "DataFrame", run_id: str, n_anomalous: int | None = None, n_rows: int | None = None,
) -> DriftOutcome:
    """Write the interval's drift rows (replacing earlier ones); rows: its input rows; scores: its scores;
    n_anomalous: the anomalous scores, n_rows: the input rows, when the caller has counted them already (with
    n_rows, a large interval's quantiles come from a sample: `drift.quantile_sample_rows`)."""
    profiles = reference_profiles_of(package)
    sample = quantile_sample(n_rows, settings.drift.quantile_sample_rows)
    features = current_summaries(rows, drift_columns(spec), profiles, sample)
    score = current_summaries(scores.select("entity", "ts", F.col("score").alias(SCORE_FEATURE)),
                              [Column_(SCORE_FEATURE)], profiles, sample)[SCORE_FEATURE]
    n_anom = scores.where("is_anomaly").count() if n_anomalous is None else n_anomalous
    return record_drift(spark, settings, spec, interval, package, features, score, run_id, n_anom)


def reference_profiles_of(package: ModelPackage) -> dict[str, FeatureProfile]:
    """The package's reference profile of every feature and of the score (SCORE_FEATURE)."""
    ref = package.manifest.get("reference_profile")
    if not ref:
        raise PackageError(f"model {package.manifest['name']} v{package.manifest['version']} has no reference profile")
    profiles = {p["name"]: FeatureProfile.from_dict(p) for p in ref["features"]}
    profiles[SCORE_FEATURE] = FeatureProfile.from_dict(ref["score"])
    return profiles


def record_drift(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, package: ModelPackage,
    features: dict[str, CurrentSummary], score: CurrentSummary, run_id: str, n_anomalous: int,
) -> DriftOutcome:
    """Judge the interval's summaries (each feature's, in the spec's order, and the score's) against the
    reference profiles and replace the interval's drift rows with the verdicts."""
    profiles = reference_profiles_of(package)
    cfg = settings.drift
    records = drift_records(profiles, {f.name: features[f.name] for f in spec.features}, cfg)
    if score.null_count == 0:  # a score is never null, but where a cascade's gate left the row unscored:
        # then only its candidates have one, whose distribution is not the reference's by design
        records += [r for r in drift_records(profiles, {SCORE_FEATURE: score}, cfg) if r[1] in ("psi", "ks", "ks_pvalue")]
    records += anomaly_rate_records(package.target_false_alarm_rate, n_anomalous, score.n_rows, cfg)
    name, version = package.manifest["name"], int(package.manifest["version"])
    df = spark.createDataFrame(
        [(spec.name, run_id, interval.start, f, m, _num(v), _num(t), s, name, version) for f, m, v, t, s in records],
        DRIFT.schema,
    )
    replace_interval(spark, settings, DRIFT, df, spec.name, interval.start, interval.end, run_id)
    outcome = DriftOutcome(rows=len(records), records=records)
    for f, metric, _, _, status in records:
        if metric.startswith("anomaly_rate"):
            outcome.anomaly_rate = status
            continue
        bucket = outcome.alert if status == "alert" else outcome.warn if status == "warn" else None
        if bucket is not None and f not in bucket:
            bucket.append(f)
    outcome.warn = [f for f in outcome.warn if f not in outcome.alert]
    return outcome


def _num(v: float | None) -> float | None:
    return None if v is None or v != v else float(v)


def run_drift(
    spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, run_id: str | None = None
) -> tuple[DriftOutcome, RunRecord]:
    """Drift of an interval already scored: against the model that scored it."""
    record = RunRecord(run_id or new_run_id("drift"), "drift", spec.name, interval.start, interval.end)
    with tracked_run(spark, settings, record):
        scores = read_table(spark, settings, SCORES).where(interval_predicate(spec.name, interval.start, interval.end))
        first = scores.select("model_name", "model_version").first()
        if first is None:
            raise DataError(f"no scores for {spec.name} in {interval}: run `lakewatch score` first")
        package = load_package(spark, settings, ModelRef(first["model_name"], int(first["model_version"])))
        check_schema(package, spec)
        record.model_name, record.model_version = first["model_name"], int(first["model_version"])
        table, record.input_version = read_source(spark, settings, spec)
        record.input_table = spec.table_path(settings)
        outcome = compute_drift(spark, settings, spec, interval, package, flag_faults(select_interval(table, spec, interval), spec),
                                scores, record.run_id)
        record.details["drift"] = outcome.as_dict()
    return outcome, record
