"""The generator: deterministic under a seed, realistic structure, every kind of anomaly labeled."""

from dataclasses import replace
from datetime import date

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakewatch.demo.generate import KINDS, METRICS, GeneratorParams, generate_frames, write_generated
from lakewatch.errors import ConfigError

PARAMS = GeneratorParams(start=date(2026, 3, 2), days=6, entities=6, seed=11, anomaly_rate=0.6)


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    write_generated(spark, PARAMS, str(root / "m"), str(root / "l"))
    read = lambda p: spark.read.format("delta").load(str(root / p))  # noqa: E731
    return read("m"), read("l")


def test_same_seed_same_data_whatever_the_partitioning(spark, generated):
    a, la = generated
    b, lb = generate_frames(spark, PARAMS)
    assert_df_equality(a.repartition(5), b.coalesce(1), ignore_row_order=True, allow_nan_equality=True,
                       ignore_nullable=True)
    assert_df_equality(la, lb, ignore_row_order=True, ignore_nullable=True)


def test_other_seed_other_data(spark, generated):
    a, _ = generated
    b, _ = generate_frames(spark, GeneratorParams(start=PARAMS.start, days=6, entities=6, seed=12))
    joined = a.alias("a").join(b.alias("b"), ["host", "ts"]).where("a.cpu_pct != b.cpu_pct")
    assert joined.count() > 0.9 * PARAMS.rows


def test_shape_seasonality_and_correlation(generated):
    df, labels = generated
    base = df.dropDuplicates(["host", "ts"])
    assert base.count() == PARAMS.rows == 6 * 6 * 288
    normal = base.join(labels, ["host", "ts"], "left_anti")
    assert normal.stat.corr("cpu_pct", "throughput_rps") > 0.8
    by_hour = {r[0]: r[1] for r in normal.groupBy(F.hour("ts")).agg(F.avg("cpu_pct")).collect()}
    assert by_hour[14] - by_hour[2] > 15  # afternoon busier than the night


def test_every_kind_is_injected_and_labeled(generated):
    df, labels = generated
    assert {r[0] for r in labels.select("kind").distinct().collect()} == set(KINDS)
    malformed = df.join(labels.where("kind = 'malformed'"), ["host", "ts"])
    faults = " OR ".join(f"{c} IS NULL OR isnan({c}) OR {c} < 0 OR {c} = double('inf')" for c, *_ in METRICS)
    assert malformed.where(faults).count() > 0
    assert df.count() > df.dropDuplicates(["host", "ts"]).count()  # some duplicated keys
    # each anomaly is one contiguous run of points of one host
    spans = labels.groupBy("anomaly_id").agg(F.count("*").alias("n"), F.min("ts").alias("a"), F.max("ts").alias("b"))
    assert spans.where("(unix_timestamp(b) - unix_timestamp(a)) / 300 + 1 != n").count() == 0


def test_decoupling_keeps_the_values_but_not_the_relation(spark, generated):
    """A decoupled metric takes values its host always takes (its own cycle, half a day out of phase) while the
    other metrics stay as they were: it is visible only against them (or against its hour)."""
    df, labels = generated
    clean, _ = generate_frames(spark, replace(PARAMS, anomaly_rate=0.0))  # the same normal values, no anomaly
    names = [m for m, *_ in METRICS]
    got = df.dropDuplicates(["host", "ts"]).select("host", "ts", *[F.col(m).alias(f"a_{m}") for m in names])
    ref = clean.select("host", "ts", *[F.col(m).alias(f"c_{m}") for m in names])
    rows = (got.join(labels.where("kind = 'decoupling'").select("host", "ts"), ["host", "ts"])
            .join(ref, ["host", "ts"]).collect())
    assert len(rows) >= 24
    moved = [[m for m in names if abs(r[f"a_{m}"] - r[f"c_{m}"]) > 1e-9] for r in rows]
    assert all(len(m) <= 1 for m in moved)  # one metric decouples, the others are untouched
    assert sum(len(m) == 1 for m in moved) >= 0.9 * len(rows)
    bounds = {r["host"]: r for r in clean.groupBy("host").agg(
        *[F.min(m).alias(f"lo_{m}") for m in names], *[F.max(m).alias(f"hi_{m}") for m in names]).collect()}
    scale = {m: sc for m, sc, *_ in METRICS}
    gaps = []
    for r, m in zip(rows, moved):
        if m:
            b = bounds[r["host"]]
            assert b[f"lo_{m[0]}"] - 1e-9 <= r[f"a_{m[0]}"] <= b[f"hi_{m[0]}"] + 1e-9  # a value the host always takes
            gaps.append(abs(r[f"a_{m[0]}"] - r[f"c_{m[0]}"]) / scale[m[0]])
    assert sum(gaps) / len(gaps) > 1.0  # yet far from what the other metrics say it should be


def test_drift_day_shifts_one_metric_for_every_host(spark):
    drift = GeneratorParams(start=date(2026, 3, 2), days=3, entities=4, seed=3, anomaly_rate=0.0,
                            drift_date=date(2026, 3, 3))
    df, _ = generate_frames(spark, drift)
    means = {(r[0], r[1]): r[2] for r in df.groupBy("host", "date").agg(F.avg("mem_pct")).collect()}
    for h in range(4):
        host = f"host-{h:04d}"
        assert means[(host, date(2026, 3, 3))] - means[(host, date(2026, 3, 2))] > 15


def test_kinds_restricts_what_is_injected(spark):
    only = GeneratorParams(start=date(2026, 3, 2), days=3, entities=4, seed=3, anomaly_rate=1.0, kinds=("decoupling",))
    _, labels = generate_frames(spark, only)
    kinds = {r[0]: r[1] for r in labels.groupBy("kind").agg(F.countDistinct("anomaly_id")).collect()}
    assert kinds == {"decoupling": 12}  # every host, every day


def test_unknown_kinds_are_a_user_error():
    with pytest.raises(ConfigError, match="kinds must name some of"):
        GeneratorParams(start=date(2026, 3, 2), kinds=("decoupling", "meteor"))
