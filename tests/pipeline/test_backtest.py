"""`lakewatch backtest` walk-forward, with the statistical cascade on: folds, metrics per fold and overall in
`evaluation` under the backtest's id, the gate's own metrics, and nothing written to the production tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pyspark.sql import functions as F

from lakewatch.lakehouse.tables import EVALUATION, RUNS, SCORES
from lakewatch.pipeline.backtest import run_backtest


def test_walk_forward_backtest_with_the_cascade_reports_each_fold_and_the_gate(spark, trained_lake):
    settings, spec, _ = trained_lake
    cascade = settings.scoring.cascade.model_copy(update={"enabled": True, "gate_sigmas": 3.0})
    gated = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"cascade": cascade})})
    scores_before = spark.read.format("delta").load(SCORES.path(settings)).count() \
        if Path(SCORES.path(settings)).exists() else 0
    result = run_backtest(spark, gated, spec, ["baseline"], "walk-forward", date(2026, 3, 2), date(2026, 3, 6),
                          train_days=2, every_days=2, backtest_id="cascade-test")

    assert result.backtest_id == "backtest-cascade-test"
    assert [(f.train.start, f.train.end, f.test.start, f.test.end) for f in result.folds] == [
        (date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 4), date(2026, 3, 6))]  # the next cut is the end
    overall = result.overall("baseline")
    assert 0.98 * 2 * 4 * 288 < overall["rows"] <= 2 * 4 * 288  # two test days of four hosts, less invalid rows
    assert 0 < overall["gate_pass_rate"] < 1
    assert overall["labeled_anomalies"] > 0
    # the gate can only lose what the model would find: nothing it dropped is ever flagged
    assert overall["event_recall"] <= overall["gate_event_recall"] <= 1
    assert overall["recall"] <= overall["gate_recall"] <= 1
    assert 0 < overall["event_recall_at_far"] <= 1  # at the operating point of 0.5 % false alarms
    assert overall["roc_auc"] > 0.6  # rows the gate left unscored rank last, not first

    rows = spark.read.format("delta").load(EVALUATION.path(settings)).where(F.col("run_id") == result.backtest_id)
    per = {(r["model_version"], r["metric"]): r["value"] for r in rows.collect()}
    assert {v for v, _ in per} == {1, None}  # the fold, and overall
    assert per[(None, "gate_pass_rate")] == per[(1, "gate_pass_rate")] == overall["gate_pass_rate"]
    run = spark.read.format("delta").load(RUNS.path(settings)).where(F.col("run_id") == result.backtest_id).first()
    assert run["status"] == "success" and run["job"] == "backtest"
    after = spark.read.format("delta").load(SCORES.path(settings)).count() if Path(SCORES.path(settings)).exists() else 0
    assert after == scores_before  # a backtest writes no scores
