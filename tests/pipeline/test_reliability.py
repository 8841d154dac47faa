"""Runs that must end truthfully: quiet and empty days, extreme values, bad feature strings, tampered manifests,
a moved lakehouse, concurrent first runs, a killed run, and what a failed worker says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import torch
from pyspark.sql import functions as F

from lakewatch.cli import main
from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.errors import DataError, PackageError
from lakewatch.lakehouse.tables import DRIFT, EVENTS, QUARANTINE, RUNS, SCORES
from lakewatch.lakehouse.writes import table_version
from lakewatch.packaging.registry import ModelRef, artifact_dir
from lakewatch.pipeline.score import run_score
from lakewatch.pipeline.train import _finite_or_fail, run_train
from tests.conftest import SUBPROCESS_SPARK_OPTIONS, subprocess_env
from tests.helpers import GAUSS_SCHEMA, GAUSS_SPEC, gaussian_rows, write_rows

START = date(2026, 3, 2)
TRAIN = Interval(START, START + timedelta(days=2))
DAY3 = Interval(START + timedelta(days=2), START + timedelta(days=3))
EMPTY = Interval(START + timedelta(days=5), START + timedelta(days=6))
OUTPUTS = (SCORES, EVENTS, QUARANTINE, DRIFT)


@pytest.fixture(scope="module")
def lake(spark, base_settings, tmp_path_factory):
    """Three clean Gaussian days for two hosts; a dense_ae trained on two, with a tiny false-alarm target."""
    settings = base_settings.with_lakehouse(str(tmp_path_factory.mktemp("reliable") / "lakehouse"))
    settings = settings.model_copy(update={"training": settings.training.model_copy(
        update={"target_false_alarm_rate": 1e-6})})
    spec = DatasetSpec.model_validate(GAUSS_SPEC)
    write_rows(spark, settings, "gauss", gaussian_rows(START, 4), GAUSS_SCHEMA)
    run_train(spark, settings, spec, TRAIN, "dense_ae")
    shutil.copytree(settings.lakehouse, settings.lakehouse + "-never-scored")
    return settings, spec


def versions(spark, settings) -> dict[str, int]:
    return {t.name: table_version(spark, t.path(settings)) for t in OUTPUTS if Path(t.path(settings)).exists()}


def test_a_quiet_day_is_a_successful_run_with_no_events(spark, lake):
    settings, spec = lake
    record = run_score(spark, settings, spec, DAY3)
    assert (record.status, record.rows_scored, record.rows_anomalous, record.n_events) == ("success", 576, 0, 0)
    assert spark.read.format("delta").load(DRIFT.path(settings)).where(F.col("run_id") == record.run_id).count() > 0
    row = spark.read.format("delta").load(RUNS.path(settings)).where(F.col("run_id") == record.run_id).collect()
    assert [r["status"] for r in row] == ["success"]  # one row per run, running -> success


def test_an_empty_day_is_a_successful_run_that_says_so(spark, lake, capsys):
    settings, spec = lake
    code = main(["--lakehouse", settings.lakehouse, "score", "--dataset", _spec_file(settings, spec),
                 "--start", EMPTY.start.isoformat(), "--end", EMPTY.end.isoformat()])
    out = capsys.readouterr().out
    assert code == 0 and f"no input rows in {EMPTY}" in out
    run = spark.read.format("delta").load(RUNS.path(settings)).where(
        (F.col("job") == "score") & (F.col("logical_date") == F.lit(EMPTY.start))).first()
    assert (run["status"], run["rows_in"], run["rows_scored"], run["n_events"]) == ("success", 0, 0, 0)
    assert json.loads(run["details"])["note"] == f"no input rows in {EMPTY}"


def test_a_tampered_manifest_is_refused_before_any_write(spark, lake):
    settings, spec = lake
    manifest = Path(artifact_dir(settings, ModelRef("gauss", 1))) / "manifest.json"
    original = manifest.read_text()
    run_score(spark, settings, spec, DAY3)
    before = versions(spark, settings)
    try:
        edited = json.loads(original)
        edited["transforms"]["normalization"]["global_loc"][0] += 5.0  # every row would look anomalous
        manifest.write_text(json.dumps(edited, indent=2, sort_keys=True))
        with pytest.raises(PackageError, match="manifest checksum"):
            run_score(spark, settings, spec, DAY3)
    finally:
        manifest.write_text(original)
    assert versions(spark, settings) == before


def test_a_moved_lakehouse_keeps_its_models(spark, lake, tmp_path):
    settings, spec = lake
    moved = settings.with_lakehouse(str(tmp_path / "moved"))
    shutil.copytree(settings.lakehouse, moved.lakehouse)
    hidden = Path(settings.lakehouse + "-hidden")
    Path(settings.lakehouse).rename(hidden)  # the original is gone while the copy scores
    try:
        record = run_score(spark, moved, spec, DAY3)
    finally:
        hidden.rename(settings.lakehouse)
    assert record.status == "success" and record.rows_scored == 576


def test_values_too_large_for_the_model_are_quarantined_and_scores_are_never_nan(spark, lake):
    settings, spec = lake
    day = datetime(2026, 3, 4, 12, 0)
    extra = [("h0", day + timedelta(seconds=30 * (i + 1)), v, 0.0, 0.0, day.date())  # off the 5-minute grid
             for i, v in enumerate([1e308, -1e308, 3e38, -3e38])]
    write_rows(spark, settings, "gauss", gaussian_rows(START, 4) + extra, GAUSS_SCHEMA)
    try:
        record = run_score(spark, settings, spec, DAY3)
        reasons = [r["reason"] for r in spark.read.format("delta").load(QUARANTINE.path(settings))
                   .where(F.col("run_id") == record.run_id).collect()]
        assert sorted(reasons) == ["overflow:a", "overflow:a"]
        scores = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("run_id") == record.run_id)
        assert scores.count() == 578 and scores.where("isnan(score) OR score IS NULL").count() == 0
        big = scores.where(F.col("ts").isin([day + timedelta(seconds=90), day + timedelta(seconds=120)]))
        assert [r["is_anomaly"] for r in big.collect()] == [True, True]
    finally:
        write_rows(spark, settings, "gauss", gaussian_rows(START, 4), GAUSS_SCHEMA)


def test_non_finite_training_metrics_register_nothing():
    with pytest.raises(DataError, match="non-finite"):
        _finite_or_fail({"train_loss": float("nan"), "threshold": 1.0}, "metrics")


def test_concurrent_first_runs_both_create_the_tables(spark, lake):
    """Two days scored at once on a lakehouse trained but never scored: both create the output tables, and
    each run finds its own commits and counts (the scores of each day carry its run id only)."""
    trained, spec = lake
    settings = trained.with_lakehouse(trained.lakehouse + "-never-scored")
    days = [DAY3, Interval(DAY3.end, DAY3.end + timedelta(days=1))]
    with ThreadPoolExecutor(2) as pool:
        records = list(pool.map(lambda iv: run_score(spark, settings, spec, iv), days))
    assert [(r.status, r.rows_scored) for r in records] == [("success", 576), ("success", 576)]
    scores = spark.read.format("delta").load(SCORES.path(settings))
    for record, day in zip(records, days):
        ids = scores.where(F.col("logical_date") == F.lit(day.start)).select("run_id").distinct().collect()
        assert [r[0] for r in ids] == [record.run_id]


def test_a_worker_failure_says_its_cause(spark, lake, capsys):
    settings, spec = lake
    cuda = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"device": "cuda"})})
    profile = Path(settings.lakehouse).parent / "cuda.yaml"
    profile.write_text(f"lakehouse: {settings.lakehouse}\nspark: {{master: 'local[2]', shuffle_partitions: 2}}\n"
                       "scoring: {device: cuda}\n")
    code = main(["--conf", str(profile), "score", "--dataset", _spec_file(settings, spec), "--date", "2026-03-04"])
    err = capsys.readouterr().err
    if torch.cuda.is_available():  # a machine with a GPU scores on it
        assert code == 0
        return
    assert code == 2
    assert "a Spark Python worker failed: ConfigError: scoring.device is cuda but this worker has no CUDA device" in err
    failed = spark.read.format("delta").load(RUNS.path(cuda)).where("status = 'failed'").orderBy(
        F.col("started_at").desc()).first()
    assert failed["error"].startswith("a Spark Python worker failed: ConfigError: scoring.device is cuda")


def _spec_file(settings, spec: DatasetSpec) -> str:
    path = Path(settings.lakehouse).parent / f"{spec.name}.yaml"
    path.write_text(json.dumps(spec.model_dump(exclude_none=True)))  # JSON is YAML
    return str(path)


def test_anomalies_found_are_not_drift(spark, lake):
    settings, spec = lake
    rows = gaussian_rows(START, 4)
    spiked = [(h, ts, a + 12.0 if h == "h0" and i % 20 == 0 and d == DAY3.start else a, b, c, d)
              for i, (h, ts, a, b, c, d) in enumerate(rows)]
    write_rows(spark, settings, "gauss", spiked, GAUSS_SCHEMA)
    try:
        record = run_score(spark, settings, spec, DAY3)
    finally:
        write_rows(spark, settings, "gauss", rows, GAUSS_SCHEMA)
    drift = record.details["drift"]
    assert record.rows_anomalous >= 10
    assert drift["anomaly_rate"] == "alert"  # reported, as its own signal
    assert drift["alert"] == []  # the gate stays green: no feature or score-distribution drift


def test_training_on_a_string_feature_with_bad_values(spark, base_settings, tmp_path):
    settings = base_settings.with_lakehouse(str(tmp_path / "lakehouse"))
    rows = [(h, ts, "1e5x" if i % 50 == 0 else str(a), b, c, d)
            for i, (h, ts, a, b, c, d) in enumerate(gaussian_rows(START, 2))]
    write_rows(spark, settings, "gauss", rows, GAUSS_SCHEMA.replace("a DOUBLE", "a STRING"))
    trained = run_train(spark, settings, DatasetSpec.model_validate(GAUSS_SPEC), TRAIN, "dense_ae")
    profile = {p["name"]: p for p in _manifest(settings, trained.ref)["reference_profile"]["features"]}
    bad = len([r for i, r in enumerate(rows) if i % 50 == 0])
    assert profile["a"]["count"] == len(rows) - bad and profile["a"]["null_rate"] == pytest.approx(bad / len(rows))


def _manifest(settings, ref: ModelRef) -> dict:
    return json.loads((Path(artifact_dir(settings, ref)) / "manifest.json").read_text())


def commits_of(table: str, run_id: str) -> bool:
    for log in sorted(Path(table, "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info and info.get("userMetadata") == run_id:
                return True
    return False


def test_a_run_killed_after_its_scores_commit_shows_as_incomplete(spark, lake, tmp_path, capsys):
    settings, spec = lake
    before = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("logical_date") == F.lit(DAY3.start))
    assert before.count() == 576  # scored by the tests above
    spec_file = tmp_path / "gauss.yaml"
    spec_file.write_text(json.dumps(DatasetSpec.model_dump(spec, exclude_none=True)))
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"lakehouse: {settings.lakehouse}\nspark: {{master: 'local[2]', shuffle_partitions: 2, "
                       f"options: {{{SUBPROCESS_SPARK_OPTIONS}}}}}\n"
                       "training: {target_false_alarm_rate: 0.000001}\n")
    run_id = "score-killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakewatch.cli.main", "score", "--dataset", str(spec_file), "--date",
         DAY3.start.isoformat(), "--run-id", run_id],
        env=subprocess_env(profile), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not commits_of(SCORES.path(settings), run_id):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no scores commit in time"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    read = lambda t: spark.read.format("delta").load(t.path(settings))  # noqa: E731
    assert [r[0] for r in read(SCORES).where(F.col("logical_date") == F.lit(DAY3.start)).select("run_id").distinct()
            .collect()] == [run_id]
    assert read(RUNS).where(F.col("run_id") == run_id).select("status").collect()[0][0] == "running"
    assert main(["--lakehouse", settings.lakehouse, "summary", "--limit", "5"]) == 0
    assert "incomplete: not finished" in capsys.readouterr().out
    rerun = run_score(spark, settings, spec, DAY3)
    day = F.col("logical_date") == F.lit(DAY3.start)
    for table in (SCORES, EVENTS):
        ids = {r[0] for r in read(table).where(day).select("run_id").distinct().collect()}
        assert ids <= {rerun.run_id}
    assert rerun.rows_scored == 576
