"""The evaluation table: an evaluation of an interval replaces the earlier ones of it, never a backtest's."""

from __future__ import annotations

from datetime import date

from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.tables import EVALUATION
from lakewatch.pipeline.evaluate import MetricSet, evaluation_of, write_metrics

SPEC = DatasetSpec.model_validate({"name": "d", "table": "raw/d", "entity": "host", "timestamp": "ts",
                                   "features": [{"name": "cpu"}]})
WEEK = Interval(date(2026, 3, 9), date(2026, 3, 16))


def test_an_evaluation_replaces_the_intervals_earlier_evaluation_and_keeps_backtests(spark, settings):
    def evaluate(run_id: str, value: float) -> None:
        write_metrics(spark, settings, SPEC, run_id, [MetricSet(WEEK, "m", 1, {"pr_auc": value})],
                      evaluation_of(WEEK))

    evaluate("evaluate-1", 0.5)
    write_metrics(spark, settings, SPEC, "backtest-x", [MetricSet(WEEK, "m", 1, {"pr_auc": 0.7})],
                  "run_id = 'backtest-x'")
    evaluate("evaluate-2", 0.6)
    rows = spark.read.format("delta").load(EVALUATION.path(settings)).collect()
    assert sorted((r["run_id"], r["value"]) for r in rows) == [("backtest-x", 0.7), ("evaluate-2", 0.6)]
