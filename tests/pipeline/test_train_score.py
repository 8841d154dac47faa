"""End to end on generated data: train, score, rerun, refuse bad packages, and move stages."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakewatch.cli.main import main
from lakewatch.data.intervals import Interval
from lakewatch.data.spec import load_dataset_spec
from lakewatch.demo.generate import GeneratorParams, write_generated
from lakewatch.errors import RegistryError
from lakewatch.feedback import store
from lakewatch.lakehouse.tables import EVENTS, MODELS, QUARANTINE, SCORES
from lakewatch.lakehouse.writes import table_version
from lakewatch.packaging.package import PackageError
from lakewatch.packaging.registry import (
    ModelRef,
    artifact_dir,
    get_version,
    load_package,
    production,
    promote,
    rollback,
    versions,
)
from lakewatch.pipeline.alert_budget import tune_alert_budget
from lakewatch.pipeline.challenge import challenge
from lakewatch.pipeline.score import run_score
from lakewatch.pipeline.train import run_train

PARAMS = GeneratorParams(start=date(2026, 3, 2), days=6, entities=6, seed=5, anomaly_rate=0.7)
TRAIN = Interval(date(2026, 3, 2), date(2026, 3, 5))
SCORE = Interval(date(2026, 3, 5), date(2026, 3, 8))


@pytest.fixture(scope="module")
def lake(spark, base_settings, tmp_path_factory):
    settings = base_settings.with_lakehouse(str(tmp_path_factory.mktemp("e2e") / "lakehouse"))
    spec = load_dataset_spec("demo_metrics", settings)
    write_generated(spark, PARAMS, spec.table_path(settings), spec.labels_path(settings))
    trained = run_train(spark, settings, spec, TRAIN, "dense_ae")
    first = run_score(spark, settings, spec, SCORE)
    return settings, spec, trained, first


def read(spark, settings, table):
    return spark.read.format("delta").load(table.path(settings))


def test_first_model_is_production_and_package_is_complete(spark, lake):
    settings, spec, trained, _ = lake
    assert trained.ref == ModelRef("demo_metrics", 1) and trained.stage == "production"
    folder = Path(artifact_dir(settings, trained.ref))
    assert sorted(p.name for p in folder.iterdir()) == ["entities.arrow", "manifest.json", "member-0.safetensors"]
    row = versions(spark, settings, "demo_metrics").first()
    assert row["training_version"] == 0 and row["training_start"] == TRAIN.start
    assert row["artifact"] == "artifacts/models/demo_metrics/v1"  # relative to the lakehouse: a moved lakehouse works
    # each entity's tail comes back with the excesses behind its scale (the prior's share of 1 at least)
    package = load_package(spark, settings, trained.ref)
    tails = package.calibrations().entity_tails
    # and the rule that fuses its signals, Bonferroni unless the profile says otherwise
    assert package.manifest["signal_fusion"] == "bonferroni" == package.calibrations().fusion
    assert tails and all(t.excesses is not None and len(t.excesses) == PARAMS.entities and (t.excesses >= 1.0).all()
                         for t in tails.values())


def test_counts_add_up(spark, lake):
    settings, _, _, r = lake
    assert r.rows_in == r.rows_scored + r.rows_quarantined
    assert read(spark, settings, SCORES).count() == r.rows_scored
    assert read(spark, settings, QUARANTINE).count() == r.rows_quarantined > 0
    assert read(spark, settings, SCORES).where("is_anomaly").count() == r.rows_anomalous
    assert read(spark, settings, EVENTS).count() == r.n_events > 0


def test_drift_from_the_scoring_pass_is_the_drift_of_every_input_row(spark, lake):
    """The run's drift comes from the summary the scoring pass gathers plus its quarantined rows; computed here
    from all of the interval's input rows and written scores at once, by drift_stats' numpy definitions."""
    from lakewatch.data.quality import flag_faults, select_interval
    from lakewatch.data.spec import read_source
    from lakewatch.lakehouse.tables import DRIFT
    from lakewatch.monitoring.drift_stats import CurrentSummary, bin_counts, feature_drift, quantiles_of, split_values
    from lakewatch.pipeline.drift import reference_profiles_of

    settings, spec, _, first = lake
    profiles = reference_profiles_of(load_package(spark, settings, ModelRef(first.model_name, first.model_version)))
    table, _ = read_source(spark, settings, spec)
    rows = flag_faults(select_interval(table, spec, SCORE), spec).select(*spec.feature_names).toPandas()
    scores = read(spark, settings, SCORES).select("score", "warming_up").toPandas()
    assert len(rows) == first.rows_in and int(scores["warming_up"].sum()) == first.details["rows_warming_up"]
    columns = {f.name: (rows[f.name].to_numpy(float), f.min, f.max) for f in spec.features}
    columns["__score__"] = (scores["score"].to_numpy(float), None, None)
    written = {(r["feature"], r["metric"]): r["value"] for r in
               read(spark, settings, DRIFT).where(F.col("run_id") == first.run_id).collect()}
    checked = 0
    for name, (values, lo, hi) in columns.items():
        finite, nulls, oor = split_values(values, lo, hi)
        summary = CurrentSummary(count=len(finite), n_rows=len(values), null_count=nulls, out_of_range_count=oor,
                                 bin_counts=bin_counts(profiles[name].edges, finite).tolist(),
                                 quantiles=quantiles_of(finite), mean=float(finite.mean()))
        for metric, value in feature_drift(profiles[name], summary).items():
            if (name, metric) in written and written[(name, metric)] is not None:
                assert written[(name, metric)] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, metric)
                checked += 1
    assert checked >= 3 * len(spec.features)


def test_injected_spikes_and_level_shifts_are_found(spark, lake):
    settings, spec, _, _ = lake
    labels = spark.read.format("delta").load(spec.labels_path(settings)).where(
        F.col("kind").isin("spike", "level_shift") & (F.col("ts") >= F.lit(SCORE.start_ts))
    ).select("host", "ts", "anomaly_id", "kind")
    scores = read(spark, settings, SCORES).select(F.col("entity").alias("host"), "ts", "is_anomaly")
    found = labels.join(scores, ["host", "ts"]).groupBy("anomaly_id", "kind").agg(F.max("is_anomaly").alias("hit"))
    per_kind = {r["kind"]: (r["n"], r["hits"]) for r in found.groupBy("kind").agg(
        F.count("*").alias("n"), F.sum(F.col("hit").cast("int")).alias("hits")).collect()}
    assert set(per_kind) == {"spike", "level_shift"}
    for kind, (n, hits) in per_kind.items():
        assert hits / n >= 0.6, f"{kind}: found {hits} of {n}"


def test_anomalies_carry_their_top_features(spark, lake):
    settings, _, _, _ = lake
    s = read(spark, settings, SCORES)
    assert s.where("is_anomaly AND size(top_features) = 3").count() == s.where("is_anomaly").count()
    assert s.where("NOT is_anomaly AND top_features IS NOT NULL").count() == 0
    shares = s.where("is_anomaly").select(F.expr("aggregate(top_features, 0D, (a, t) -> a + t.share)").alias("t"))
    assert shares.where("t > 1.0000001 OR t <= 0").count() == 0


def test_rerun_replaces_the_interval_without_duplicates(spark, lake, monkeypatch):
    """The rerun's scoring pass keeps too few anomalous rows for its events (MAX_ANOMALIES of 1, as on a day the
    model flags wholesale), so they are grouped in Spark from the written scores: the same events, same ids."""
    import lakewatch.monitoring.pass_summary as pass_summary

    settings, spec, _, first = lake
    counts = {t.name: read(spark, settings, t).count() for t in (SCORES, EVENTS, QUARANTINE)}
    columns = ["event_id", "entity", "start_ts", "end_ts", "n_points", "peak_ts", "peak_score", "peak_calibrated",
               "severity", F.to_json("top_features")]
    events = sorted(read(spark, settings, EVENTS).select(*columns).collect())
    monkeypatch.setattr(pass_summary, "MAX_ANOMALIES", 1)
    again = run_score(spark, settings, spec, SCORE)
    assert {t.name: read(spark, settings, t).count() for t in (SCORES, EVENTS, QUARANTINE)} == counts
    assert read(spark, settings, SCORES).groupBy("entity", "ts").count().where("count > 1").count() == 0
    assert [r[0] for r in read(spark, settings, SCORES).select("run_id").distinct().collect()] == [again.run_id]
    # events keep their ids across reruns, whichever way they were grouped
    assert (first.details["events_grouped_in"], again.details["events_grouped_in"]) == ("driver", "spark")
    assert len(events) == first.n_events == again.n_events
    assert sorted(read(spark, settings, EVENTS).select(*columns).collect()) == events


def test_tampered_package_is_refused_before_anything_is_written(spark, lake):
    settings, spec, trained, _ = lake
    weights = Path(artifact_dir(settings, trained.ref)) / "member-0.safetensors"
    original = weights.read_bytes()
    before = {t.name: table_version(spark, t.path(settings)) for t in (SCORES, EVENTS, QUARANTINE)}
    try:
        weights.write_bytes(original[:-4] + bytes(4))
        with pytest.raises(PackageError, match="checksum mismatch"):
            run_score(spark, settings, spec, SCORE)
    finally:
        weights.write_bytes(original)
    assert {t.name: table_version(spark, t.path(settings)) for t in (SCORES, EVENTS, QUARANTINE)} == before


def test_mismatched_schema_is_refused_before_anything_is_written(spark, lake):
    settings, spec, _, _ = lake
    other = spec.model_copy(update={"features": list(reversed(spec.features))})
    before = table_version(spark, SCORES.path(settings))
    with pytest.raises(PackageError, match="feature schema differs"):
        run_score(spark, settings, other, SCORE)
    assert table_version(spark, SCORES.path(settings)) == before


def test_same_seed_same_weights_then_promote_and_rollback(spark, lake):
    settings, spec, trained, _ = lake
    second = run_train(spark, settings, spec, TRAIN, "dense_ae")
    assert second.ref.version == 2 and second.stage == "candidate"
    stages = lambda: {r["version"]: r["stage"] for r in versions(spark, settings, "demo_metrics").collect()}  # noqa: E731
    files = {v: load_package(spark, settings, ModelRef("demo_metrics", v)).manifest["files"] for v in (1, 2)}
    assert files[1] == files[2]  # deterministic under the seed: every file of the package, byte for byte
    assert stages() == {1: "production", 2: "candidate"}

    v0 = table_version(spark, MODELS.path(settings))
    promote(spark, settings, second.ref)
    assert stages() == {1: "archived", 2: "production"}
    assert table_version(spark, MODELS.path(settings)) == v0 + 1  # one commit

    old, new = rollback(spark, settings, "demo_metrics")
    assert (old.version, new.version) == (2, 1)
    assert stages() == {1: "production", 2: "archived"}
    assert production(spark, settings, "demo_metrics")["version"] == 1
    assert table_version(spark, MODELS.path(settings)) == v0 + 2
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        rollback(spark, settings, "demo_metrics")


def test_drift_and_report_are_written_with_the_run(spark, lake):
    from lakewatch.cli import main
    from lakewatch.lakehouse.tables import DRIFT, RUNS

    settings, spec, _, _ = lake
    # the latest successful scoring run of the interval owns its drift rows (a rerun replaces them)
    run = read(spark, settings, RUNS).where("job = 'score' AND status = 'success'").orderBy(F.col("started_at").desc()).first()
    drift = read(spark, settings, DRIFT).where(F.col("run_id") == run["run_id"])
    features = {r[0] for r in drift.select("feature").distinct().collect()}
    assert features == set(spec.feature_names) | {"__score__"}
    assert drift.count() == read(spark, settings, DRIFT).count()
    assert drift.where("status NOT IN ('ok', 'warn', 'alert', 'unknown')").count() == 0
    report = Path(run["report_path"])
    page = report.read_text()
    assert run["run_id"] in page and page.count("<img ") == 3
    report.unlink()
    assert main(["--lakehouse", settings.lakehouse, "report", "--run-id", run["run_id"]]) == 0
    assert report.read_text().count("data:image/png;base64,") == 3


def test_false_alarms_marked_by_analysts_raise_the_event_threshold_of_the_alert_budget(spark, lake, capsys):
    settings, spec, _, _ = lake
    without = tune_alert_budget(spark, settings, spec, SCORE, budget=0.1, record=False)[1]
    assert without.false_alarms == 0 and without.within_budget
    events = read(spark, settings, EVENTS).where(F.col("peak_calibrated") >= without.threshold).orderBy(
        "peak_calibrated").select("event_id", "peak_calibrated").collect()
    marked = [e for e in events if e["peak_calibrated"] < 1.0][:3]
    assert len({e["peak_calibrated"] for e in marked}) == 3, "the test needs three raised events with distinct peaks"
    for e in marked:
        store.add(settings, e["event_id"], "false_alarm", "ana")

    assert main(["--lakehouse", settings.lakehouse, "alert-budget", "--dataset", "demo_metrics", "--start",
                 str(SCORE.start), "--end", str(SCORE.end), "--budget", "0.1"]) == 0
    assert "recorded" in capsys.readouterr().out
    row = production(spark, settings, "demo_metrics")
    chosen = json.loads(row["metrics"])["alert_budget"]
    # 3 entity-days x 6 hosts: 0.1 a day leaves room for one of the three false alarms, the highest
    assert marked[1]["peak_calibrated"] < chosen["threshold"] <= marked[2]["peak_calibrated"]
    assert chosen["threshold"] > without.threshold and chosen["within_budget"] and chosen["recall"] is not None

    before = read(spark, settings, EVENTS).count()
    rescored = run_score(spark, settings, spec, SCORE)
    after = read(spark, settings, EVENTS)
    assert rescored.details["event_threshold"] == chosen["threshold"] and rescored.n_events == after.count() < before
    assert after.where(F.col("peak_calibrated") < chosen["threshold"]).count() == 0
    kept = {r["event_id"] for r in after.select("event_id").collect()}
    assert [e["event_id"] in kept for e in marked] == [False, False, True]


def test_a_worse_challenger_is_kept_out_of_production_and_a_better_one_is_promoted(spark, lake):
    settings, spec, _, _ = lake
    champion = production(spark, settings, "demo_metrics")
    one_day = settings.model_copy(update={"promotion": settings.promotion.model_copy(update={"compare_days": 1})})
    # calibrated to flag one normal point in a billion, it misses most labeled anomalies: worse event recall.
    # Trained on one day and compared with production on that day (the last compare_days of its training).
    strict = one_day.model_copy(update={"training": settings.training.model_copy(
        update={"target_false_alarm_rate": 1e-9})}).with_model_overrides("dense_ae", {"epochs": 2})
    worse = run_train(spark, strict, spec, Interval(SCORE.start - timedelta(days=1), SCORE.start), "dense_ae",
                      challenge=True)
    decision = worse.record.details["challenge"]
    ours, theirs = decision["metrics"][str(champion["version"])], decision["metrics"][str(worse.ref.version)]
    assert worse.stage == "candidate" and decision["decision"] == "keep production" and decision["basis"] == "labels"
    assert theirs["event_recall"] < ours["event_recall"] - settings.promotion.max_event_recall_drop
    assert any(r.startswith("event_recall ") for r in decision["reasons"])
    row = get_version(spark, settings, worse.ref)
    assert row["stage"] == "candidate" and json.loads(row["metrics"])["challenge"]["decision"] == "keep production"

    # v2 (test_same_seed_same_weights_then_promote_and_rollback): production's weights, so not worse: promoted
    equal = ModelRef("demo_metrics", 2)
    better = challenge(spark, one_day, spec, equal, Interval(SCORE.start, SCORE.start + timedelta(days=1)))
    assert better.decision.promote
    assert production(spark, settings, "demo_metrics")["version"] == 2
    metrics = json.loads(get_version(spark, settings, equal)["metrics"])
    assert metrics["challenge"]["promoted"] and metrics["challenge"]["vs"] == champion["version"]
    same = ("pr_auc", "event_recall", "false_alerts_per_entity_day")
    ours, theirs = better.metrics[champion["version"]], better.metrics[2]
    assert [theirs[k] for k in same] == [ours[k] for k in same]
    # compared at production's tuned alert level (the budget test before this one), it keeps that level
    assert metrics["alert_budget"]["inherited_from"] == champion["version"]
    assert metrics["alert_budget"]["threshold"] == json.loads(champion["metrics"])["alert_budget"]["threshold"]
