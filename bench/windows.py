"""How causal windows are assembled in Spark, measured: the mechanism lakewatch.scoring.spark uses and the
alternatives, against the row-wise path, on the same data in one process (`make bench-windows`).

Data: the generated 8-metric table, one day of history and one scored day of about --rows rows. Every
contender scores the scored day through the same package's plan and ends in a `noop` write (the compute,
not the Delta write), timed after a warm-up on a small slice; the Python workers' peak RSS is sampled.

  (1) row-wise: dense_ae through the scalar Arrow UDF (no shuffle)
  (2) dense_ae forced through the windows mechanism (repartition by entity + sort + mapInArrow): the
      mechanism's own cost with the same model
  (3) robust_z (context W) through the windows mechanism
  (4) robust_z through groupBy(entity).applyInArrow, iterator form (one Python call per entity)
  (5) robust_z through window-function arrays (collect_list over W rows) into a scalar Arrow UDF
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa

from bench.baselines import MemoryPeak, WorkerMemorySampler
from lakewatch.config import Settings, load_settings
from lakewatch.data.intervals import Interval

START = date(2026, 1, 5)
WINDOW = 32


def log(message: str) -> None:
    print(f"[bench-windows {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def settings_for(workdir: Path) -> Settings:
    base = load_settings("local").with_lakehouse(str(workdir / "lakehouse"))
    return base.model_copy(update={
        "spark": base.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 4}),
        "training": base.training.model_copy(update={"sample_size": 20_000}),
    }).with_model_overrides("dense_ae", {"epochs": 3}).with_model_overrides("robust_z", {"window": WINDOW})


def timed(name: str, rows: int, df: Any) -> dict[str, Any]:
    sampler = WorkerMemorySampler()
    with sampler:
        t0 = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - t0
    peak: MemoryPeak = sampler.peak
    log(f"{name}: {rows:,} rows in {seconds:.1f}s, worker peak {peak.process_bytes / 2**20:.0f} MiB")
    return {"name": name, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, **peak.as_dict()}


def collect_list_frame(df: Any, shipped: Any, features: list[str], start_us: int) -> Any:
    """(5): each row carries its window as an array of structs, built by a window function."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lakewatch.scoring.spark import OUTPUT_COLUMNS, result_type, result_arrays

    w = Window.partitionBy("entity").orderBy("ts").rowsBetween(-(WINDOW - 1), 0)
    framed = df.select("entity", "ts", "logical_date",
                       F.collect_list(F.struct(*[F.col(f).cast("double") for f in features])).over(w).alias("win"))
    framed = framed.where(F.unix_micros("ts") >= F.lit(start_us))

    @F.arrow_udf(result_type())
    def apply(batches: Iterator[tuple[pa.Array, pa.Array]]) -> Iterator[pa.Array]:
        plan = shipped.plan()
        for entity, win in batches:
            lengths = win.value_lengths().to_numpy()
            flat = win.flatten()
            values = np.column_stack([flat.field(i).to_numpy(zero_copy_only=False) for i in range(len(features))])
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            idx = np.maximum(offsets[1:, None] - WINDOW + np.arange(WINDOW)[None, :], offsets[:-1, None])
            owners = entity.take(pa.array(np.repeat(np.arange(len(lengths)), lengths)))
            z = plan.normalizer.apply(values, plan.locate(owners, len(values)))
            out = plan.detector.score(z[idx])
            scored = plan.finish(out, lengths < WINDOW, np.zeros(len(lengths), dtype=bool))
            yield pa.StructArray.from_arrays(result_arrays(scored, features), names=OUTPUT_COLUMNS)

    return framed.select("entity", "ts", "logical_date", apply("entity", "win").alias("s")).select("entity", "ts", "s.*")


def run(rows: int, workdir: Path) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    from bench.scoring import stage_valid
    from lakewatch.data.spec import DatasetSpec, FeatureSpec
    from lakewatch.demo.generate import METRICS, GeneratorParams, write_generated
    from lakewatch.lakehouse.session import build_session
    from lakewatch.packaging.registry import load_package, resolve
    from lakewatch.pipeline.train import run_train
    from lakewatch.scoring.spark import score_rowwise, score_windowed, ship, stream_windows, window_schema

    settings = settings_for(workdir)
    spark = build_session(settings, app_name="lakewatch-bench-windows")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.scoring.batch_size))
    params = GeneratorParams(start=START, days=2, entities=max(2, rows // 288), seed=42)
    raw = str(workdir / "lakehouse" / "raw" / "w")
    spec = DatasetSpec(name="w", table=raw, entity="host", timestamp="ts", partition_column="date", cadence="5m",
                       features=[FeatureSpec.model_validate(f) for f in params.feature_specs()])
    t0 = time.perf_counter()
    write_generated(spark, params, raw, raw + "_labels")
    log(f"generated {params.rows:,} rows ({params.entities} entities x 2 days) in {time.perf_counter() - t0:.0f}s")
    day1 = Interval(START, START + timedelta(days=1))
    for model in ("dense_ae", "robust_z"):
        run_train(spark, settings, spec, day1, model, name=model)
    features = [m[0] for m in METRICS]
    both = Interval(START, START + timedelta(days=2))
    staged = str(workdir / "staged")
    stage_valid(spark, settings, spec, both, staged, 2)
    data = spark.read.format("delta").load(staged)
    start_us = int(Interval(START + timedelta(days=1), START + timedelta(days=2)).start_ts.timestamp() * 1e6)
    n_scored = data.where(F.unix_micros("ts") >= F.lit(start_us)).count()
    warm = data.where(F.col("entity").isin([f"host-{i:04d}" for i in range(4)]))
    packages = {m: load_package(spark, settings, resolve(spark, settings, m, None)) for m in ("dense_ae", "robust_z")}
    sc, parts = settings.scoring, settings.spark.shuffle_partitions

    def rowwise(df: Any) -> Any:
        p = packages["dense_ae"]
        return score_rowwise(df.where(F.unix_micros("ts") >= F.lit(start_us)), ship(df, p, sc), p.features,
                             p.needs_entity, p.needs_time)

    def windows(model: str) -> Callable[[Any], Any]:
        return lambda df: score_windowed(df, ship(df, packages[model], sc), features, start_us, parts)

    def forced_dense(df: Any) -> Any:  # dense_ae's plan, but fed through the windows mechanism
        shipped = ship(df, packages["dense_ae"], sc)
        names = window_schema().fieldNames()

        def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            plan = shipped.plan()
            yield from stream_windows(plan, batches, features, start_us, names)

        ordered = df.repartition(parts, "entity").sortWithinPartitions("entity", "ts")
        return ordered.mapInArrow(apply, window_schema())

    def grouped(df: Any) -> Any:
        shipped = ship(df, packages["robust_z"], sc)
        names = window_schema().fieldNames()

        def apply(key: tuple, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            yield from stream_windows(shipped.plan(), batches, features, start_us, names)

        return df.groupBy("entity").applyInArrow(apply, window_schema())

    contenders: list[tuple[str, Callable[[Any], Any]]] = [
        ("(1) row-wise dense_ae: scalar Arrow UDF", rowwise),
        ("(2) dense_ae through the windows mechanism", forced_dense),
        (f"(3) robust_z W={WINDOW}: repartition+sort+mapInArrow", windows("robust_z")),
        (f"(4) robust_z W={WINDOW}: groupBy.applyInArrow (iterator)", grouped),
        (f"(5) robust_z W={WINDOW}: collect_list arrays + Arrow UDF",
         lambda df: collect_list_frame(df, ship(df, packages["robust_z"], sc), features, start_us)),
    ]
    results = []
    for name, build in contenders:
        build(warm).write.format("noop").mode("overwrite").save()
        results.append(timed(name, n_scored, build(data)))
    spark.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.windows", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the scored day (about)")
    p.add_argument("--out", default="bench-results/windows.json")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="lakewatch-bench-windows-"))
    try:
        results = run(args.rows, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = results[0]["rows_per_s"]
    print(f"\n{'contender':<58}{'rows':>11}{'s':>8}{'rows/s':>11}{'vs (1)':>8}{'worker peak MiB':>17}")
    for r in results:
        print(f"{r['name']:<58}{r['rows']:>11,}{r['seconds']:>8.1f}{r['rows_per_s']:>11,.0f}"
              f"{r['rows_per_s'] / base:>8.2f}{r['peak_process_mib']:>17.0f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
