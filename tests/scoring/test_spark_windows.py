"""Causal windows through Spark: across Arrow batches and interval boundaries, with too little history."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.tables import SCORES
from lakewatch.pipeline.score import run_score
from lakewatch.pipeline.train import run_train
from tests.helpers import write_rows

START = datetime(2026, 3, 1)
STEP = timedelta(minutes=5)
WINDOW = 12


def rows() -> list[tuple]:
    """Two hosts for four days, and one that starts at noon on the third day (little history)."""
    rng = np.random.default_rng(4)
    out = []
    for host, first in (("a", 0), ("b", 0), ("late", 2 * 288 + 144)):
        for i in range(first, 4 * 288):
            v = 50 + 10 * np.sin(2 * np.pi * i / 288) + rng.normal()
            if host == "a" and i == 2 * 288 + 30:
                v += 40  # a spike on day 3
            out.append((host, START + i * STEP, float(v), (START + i * STEP).date()))
    return out


@pytest.fixture(scope="module")
def lake(spark, base_settings, tmp_path_factory):
    settings = base_settings.with_lakehouse(str(tmp_path_factory.mktemp("windows") / "lakehouse"))
    settings = settings.model_copy(update={
        "scoring": settings.scoring.model_copy(update={"batch_size": 50}),  # windows span many Arrow batches
        "training": settings.training.model_copy(update={"block_points": 32}),
    }).with_model_overrides("robust_z", {"window": WINDOW})
    spec = DatasetSpec(name="w", table="w", entity="host", timestamp="ts", cadence="5m", partition_column="date",
                       features=[{"name": "v"}])
    write_rows(spark, settings, "w", rows(), "host STRING, ts TIMESTAMP, v DOUBLE, date DATE")
    run_train(spark, settings, spec, Interval(date(2026, 3, 1), date(2026, 3, 3)), "robust_z")
    return settings, spec


def day_scores(spark, settings, day: date):
    df = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("logical_date") == F.lit(day))
    return {(r["entity"], r["ts"]): r for r in df.collect()}


def test_a_day_alone_equals_the_same_day_inside_a_longer_interval(spark, lake):
    settings, spec = lake
    day = date(2026, 3, 3)
    alone = run_score(spark, settings, spec, Interval(day, day + timedelta(days=1)))
    first = day_scores(spark, settings, day)
    longer = run_score(spark, settings, spec, Interval(date(2026, 3, 2), date(2026, 3, 5)))
    second = day_scores(spark, settings, day)
    assert alone.rows_scored == len(first) == 288 * 2 + 144
    assert longer.rows_scored == 3 * 288 * 2 + 144 + 288
    assert first.keys() == second.keys()
    for key, row in first.items():
        assert second[key]["score"] == pytest.approx(row["score"], rel=1e-5, abs=1e-9), key
        assert second[key]["is_anomaly"] == row["is_anomaly"], key
        assert second[key]["warming_up"] == row["warming_up"], key
    spike = first[("a", START + (2 * 288 + 30) * STEP)]
    assert spike["is_anomaly"] and spike["score"] > 100


def test_history_rows_are_read_but_never_written_and_short_histories_warm_up(spark, lake):
    settings, spec = lake
    day = date(2026, 3, 3)
    record = run_score(spark, settings, spec, Interval(day, day + timedelta(days=1)))
    scores = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("run_id") == record.run_id)
    assert scores.where(F.col("ts") < F.lit(datetime(2026, 3, 3))).count() == 0
    assert record.rows_in == record.rows_scored + record.rows_quarantined
    late = sorted((r["ts"], r["warming_up"]) for r in scores.where("entity = 'late'").collect())
    assert [w for _, w in late[:WINDOW]] == [True] * (WINDOW - 1) + [False]
    assert not any(w for _, w in late[WINDOW:])
    # a and b have the history of the day before: none of their rows warms up
    assert scores.where("entity != 'late' AND warming_up").count() == 0
    assert record.details["rows_warming_up"] == WINDOW - 1
    assert record.details["unseen_entities"] == 1  # `late` was not in the training days


def test_the_cascade_scores_the_gates_candidates_as_the_model_alone_would_and_leaves_the_rest_unscored(spark, lake):
    """scoring.cascade: the gate (native Spark) passes the rows a feature puts `gate_sigmas` scales from its
    entity's median or that stayed flat; those get exactly the model's scores (their windows are complete), every
    other row of the day is written once, unscored and not anomalous."""
    from lakewatch.packaging.registry import load_package, resolve

    settings, spec = lake
    day = date(2026, 3, 3)
    interval = Interval(day, day + timedelta(days=1))
    alone = day_scores(spark, settings, day)  # the tests above scored it without the gate
    if not alone:
        run_score(spark, settings, spec, interval)
        alone = day_scores(spark, settings, day)
    cascade = settings.scoring.cascade.model_copy(update={"enabled": True, "gate_sigmas": 0.9})
    gated_settings = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"cascade": cascade})})
    record = run_score(spark, gated_settings, spec, interval)
    gated = day_scores(spark, settings, day)
    assert record.status == "success" and record.rows_in == record.rows_scored + record.rows_quarantined
    assert gated.keys() == alone.keys()

    # the gate, recomputed here from the package's statistics: |v - median| >= 0.9 scales, or flat over 6 points
    table = load_package(spark, settings, resolve(spark, settings, spec.name, None)).entity_table().to_pandas()
    stats = dict(zip(table["entity"], zip(table["loc:v"], table["scale:v"])))
    source = {(h, ts): v for h, ts, v, _ in rows()}
    expected = set()
    for host, ts in gated:
        loc, scale = stats.get(host, (None, None))
        if loc is None:
            continue  # `late` is unseen: the global statistics, checked through the counts below
        recent = [source[(host, ts - k * STEP)] for k in range(6)]
        if abs(source[(host, ts)] - loc) >= 0.9 * scale or max(recent) - min(recent) <= 0.05 * scale:
            expected.add((host, ts))
    passed = {key for key, row in gated.items() if row["calibrated"] is not None}
    assert {k for k in passed if k[0] != "late"} == expected
    assert 0.05 * len(gated) < len(passed) < 0.5 * len(gated)  # a gate that passes some rows, not all
    for key, row in gated.items():
        if key in passed:
            assert row["score"] == pytest.approx(alone[key]["score"], rel=1e-6), key
            assert (row["is_anomaly"], row["warming_up"]) == (alone[key]["is_anomaly"], alone[key]["warming_up"]), key
        else:
            assert row["score"] is None and row["uncertainty"] is None and row["is_anomaly"] is False, key
    spike = (("a", START + (2 * 288 + 30) * STEP))
    assert spike in passed and gated[spike]["is_anomaly"]
    assert record.rows_anomalous == sum(r["is_anomaly"] for r in gated.values())
