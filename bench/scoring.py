"""`make bench`: the scoring path against Spark baselines, as ratios, in one process on the same data and cores.

1. Generate a 32-feature table (8 metrics + 24 aux) of about --rows rows over DAYS days in a temporary
   lakehouse, train a dense_ae model on its first day (a short run), so that the registry has a production model.
2. Stage the interval's valid rows (lakewatch.data.quality) as a Delta table; every contender reads it, selects
   the standard columns (entity, ts, logical_date, features as double) and writes Delta (overwrite, a fresh
   scratch path), timed with perf_counter around that one action, after one warm-up on a small slice:
   (a) lakewatch.scoring.score_frame (and again with the summary run_score gathers on the way for drift and
   counts), (b) a native Spark expression, (c) predict_batch_udf, (d) a row UDF
   on a sample (rows/s extrapolated). The full run_score job (with dense_ae and with the default temporal
   model, each broken down by stage) against a passthrough job (the same raw rows read, the native expression,
   a Delta write of the same width), and compute_drift alone, are timed too.
3. The Python workers' peak RSS during (a) at N/4 and N rows (a psutil sampler thread in the driver).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bench.baselines import (MemoryPeak, WorkerMemorySampler, native_frame, noop_udf_frame, predict_batch_frame,
                             row_udf_frame)
from lakewatch.config import Settings, load_settings
from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec, FeatureSpec, LabelsSpec, read_source
from lakewatch.lakehouse.tables import SCORES, interval_predicate, join
from lakewatch.lakehouse.writes import last_commit_metrics

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakewatch.packaging.package import ModelPackage

START = date(2026, 1, 5)
DAYS = 8  # scored: all of them; trained on: the first
EXTRA_FEATURES = 24
NAME = "bench"
TARGETS = {"a/b": 0.9, "a/c": 1.3, "a/d": 50.0, "a0/b": None}  # a0/b: no target, the ceiling of a/b here
JOB_TARGETS = {"job/passthrough": 0.7, "job_tcn/passthrough": 0.5}  # whole-job throughput against the plain job
DRIFT_TARGET = 0.25  # drift step <= this share of the scoring job
GROWTH_TOLERANCE = 1.25  # peak worker RSS at N within this factor of N/4: "does not grow"


@dataclass
class Measure:
    """One timed action: rows through it, wall seconds, and the workers' peak memory while it ran."""

    name: str
    rows: int
    seconds: float
    memory: MemoryPeak = field(default_factory=MemoryPeak)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "seconds": self.seconds, "rows_per_s": self.rows_per_s,
                "worker_memory": self.memory.as_dict()}


def bench_settings(workdir: Path) -> Settings:
    """The local profile with the lakehouse under workdir, local[2], 4 shuffle partitions and a short training."""
    base = load_settings("local").with_lakehouse(str(workdir / "lakehouse"))
    return base.model_copy(update={
        "spark": base.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 4}),
        "training": base.training.model_copy(update={"sample_size": 20_000}),
    }).with_model_overrides("dense_ae", {"epochs": 4, "warmup_epochs": 2})


def dataset(settings: Settings, name: str, params: Any) -> DatasetSpec:
    """A spec for a generated table, built in code: all 32 features, the 8 metrics' ranges."""
    raw = join(settings.lakehouse, "raw", name)
    return DatasetSpec(
        name=name, table=raw, entity="host", timestamp="ts", partition_column="date",
        features=[FeatureSpec.model_validate(f) for f in params.feature_specs()],
        labels=LabelsSpec(table=raw + "_labels"),
    )


def generate(spark: "SparkSession", settings: Settings, name: str, entities: int, days: int,
             cadence_minutes: int | None = None) -> tuple[DatasetSpec, Interval, int]:
    """Write a generated table and its labels (a row per entity every cadence_minutes, the generator's
    default when None); (spec, the table's whole interval, rows)."""
    from lakewatch.demo.generate import GeneratorParams, write_generated

    cadence = {} if cadence_minutes is None else {"cadence_minutes": cadence_minutes}
    params = GeneratorParams(start=START, days=days, entities=entities, seed=42, extra_features=EXTRA_FEATURES,
                             **cadence)
    spec = dataset(settings, name, params)
    rows, _ = write_generated(spark, params, spec.table_path(settings), spec.labels_path(settings) or "")
    return spec, Interval(START, START + timedelta(days=days)), rows


def stage_valid(spark: "SparkSession", settings: Settings, spec: DatasetSpec, interval: Interval, path: str, files: int) -> int:
    """Write the interval's valid rows (the scoring job's standard columns), partitioned by logical_date."""
    from lakewatch.data.quality import flag_rows, select_interval, valid_rows

    table, _ = read_source(spark, settings, spec)
    flagged, cached = flag_rows(select_interval(table, spec, interval), spec)
    valid = valid_rows(flagged, spec)
    valid.repartition(files).write.format("delta").mode("overwrite").partitionBy("logical_date").save(path)
    cached.unpersist()
    return spark.read.format("delta").load(path).count()


def passthrough_frame(table: "DataFrame", spec: DatasetSpec, interval: Interval,
                      package: "ModelPackage") -> "DataFrame":
    """What a data team's own job would write: the raw table's rows of the interval, the model as a native
    expression (native_frame), every column of `scores`, partitioned as `scores` is."""
    from pyspark.sql import functions as F

    from lakewatch.data.quality import select_interval

    rows = select_interval(table, spec, interval).select(
        F.col(spec.entity).cast("string").alias("entity"), F.col(spec.timestamp).alias("ts"),
        F.to_date(spec.timestamp).alias("logical_date"), *[F.col(f).cast("double").alias(f) for f in package.features])
    return native_frame(rows, package).select(
        F.lit(spec.name).alias("dataset"), "entity", "ts", "score", "calibrated",
        F.lit(None).cast("double").alias("uncertainty"), "is_anomaly", "top_features",
        F.lit(False).alias("warming_up"), F.lit(package.manifest["name"]).alias("model_name"),
        F.lit(int(package.manifest["version"])).alias("model_version"), F.lit("passthrough").alias("run_id"),
        "logical_date")


def standard(spark: "SparkSession", path: str, features: list[str], before: date | None = None) -> "DataFrame":
    """Read a staged table as the scoring job sees it: entity, ts, logical_date, features as double."""
    from pyspark.sql import functions as F

    df = spark.read.format("delta").load(path)
    if before is not None:
        df = df.where(F.col("logical_date") < F.lit(before))  # partition pruning: a smaller read, not a filter
    return df.select("entity", "ts", "logical_date", *[F.col(f).cast("double").alias(f) for f in features])


class Bench:
    """One session, one lakehouse, one model: every contender measured the same way."""

    def __init__(self, spark: "SparkSession", settings: Settings, scratch: Path) -> None:
        self.spark, self.settings, self.scratch = spark, settings, scratch
        self.n_writes = 0

    def write(self, df: "DataFrame", rows: int, name: str, sample: bool = True,
              partition_by: tuple[str, ...] = ()) -> Measure:
        """Time one Delta write of df (overwrite, a fresh path), with the worker sampler on."""
        self.n_writes += 1
        path = str(self.scratch / f"{self.n_writes:02d}-{name.split()[0].strip('()')}")
        sampler = WorkerMemorySampler() if sample else None
        with sampler or contextlib.nullcontext():
            t0 = time.perf_counter()
            df.write.format("delta").mode("overwrite").partitionBy(*partition_by).save(path)
            seconds = time.perf_counter() - t0
        written = int(last_commit_metrics(self.spark, path).get("numOutputRows", rows))
        if written != rows:
            raise RuntimeError(f"{name}: wrote {written} rows, expected {rows}")
        log(f"{name}: {rows:,} rows in {seconds:.2f}s")
        return Measure(name, rows, seconds, sampler.peak if sampler else MemoryPeak())

    def contender(self, name: str, build: Callable[["DataFrame"], "DataFrame"], warm: tuple["DataFrame", int],
                  data: tuple["DataFrame", int]) -> Measure:
        """Warm up on the slice, then the timed run."""
        self.write(build(warm[0]), warm[1], name + " warm-up", sample=False)
        return self.write(build(data[0]), data[1], name)

    def timed(self, name: str, rows: int, action: Callable[[], object]) -> Measure:
        t0 = time.perf_counter()
        action()
        log(f"{name}: {rows:,} rows", t0)
        return Measure(name, rows, time.perf_counter() - t0)


def log(message: str, since: float = 0.0) -> None:
    """Progress on stderr, so that stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}" + (f" ({time.perf_counter() - since:.1f}s)" if since else ""),
          file=sys.stderr, flush=True)


def entities_for(rows: int) -> int:
    from lakewatch.demo.generate import GeneratorParams

    return max(2, math.ceil(rows / (DAYS * GeneratorParams(start=START).steps_per_day)))


def cadence_for(rows: int, entities: int) -> int:
    """Minutes between an entity's rows so that `entities` make about `rows` rows over DAYS days."""
    steps = max(1, round(rows / (entities * DAYS)))
    return max(1, 24 * 60 // steps)


def run(rows: int, workdir: Path, skip_rowudf: bool, rowudf_sample: int = 20_000,
        entities: int | None = None, skip_temporal: bool = False) -> dict[str, Any]:
    """The whole benchmark; returns the results (see print_results)."""
    from lakewatch.data.quality import flag_faults, select_interval
    from lakewatch.lakehouse.runs import new_run_id
    from lakewatch.lakehouse.session import build_session
    from lakewatch.packaging.registry import load_package, resolve
    from lakewatch.pipeline.drift import compute_drift
    from lakewatch.pipeline.score import pass_monitor, run_score
    from lakewatch.pipeline.train import run_train
    from lakewatch.scoring.spark import score_frame

    settings = bench_settings(workdir)
    spark = build_session(settings, app_name="lakewatch-bench")
    sc = settings.scoring
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(sc.batch_size))
    t_setup = time.perf_counter()
    cadence = None if entities is None else cadence_for(rows, entities)
    entities = entities or entities_for(rows)
    spec, interval, n_table = generate(spark, settings, NAME, entities, DAYS, cadence)
    warm_spec, warm_interval, n_warm_table = generate(spark, settings, NAME + "_warm", max(8, entities // 8), 1,
                                                      cadence)
    every = f", a row every {cadence} minutes" if cadence else ""
    log(f"generated {n_table:,} rows ({entities} entities x {DAYS} days{every}) and the warm-up table", t_setup)
    t0 = time.perf_counter()
    first_day = Interval(START, START + timedelta(days=1))
    trained = run_train(spark, settings, spec, first_day, "dense_ae")
    train_s = time.perf_counter() - t0
    log(f"trained {NAME} v{trained.ref.version} ({trained.stage})", t0)
    t0 = time.perf_counter()
    if not skip_temporal:
        temporal = run_train(spark, settings, spec, first_day, settings.training.default_model, name=NAME + "_temporal")
        log(f"trained {NAME}_temporal v{temporal.ref.version} ({settings.training.default_model})", t0)
    package: ModelPackage = load_package(spark, settings, resolve(spark, settings, NAME, None))
    features = package.features
    stage = str(workdir / "stage")
    n_valid = stage_valid(spark, settings, spec, interval, stage + "/valid", 4)
    n_warm = stage_valid(spark, settings, warm_spec, warm_interval, stage + "/warm", 2)
    quarter_end = START + timedelta(days=DAYS // 4)
    full, warm = standard(spark, stage + "/valid", features), standard(spark, stage + "/warm", features)
    n_quarter = full.where(f"logical_date < DATE'{quarter_end}'").count()
    sample = full.sample(fraction=min(1.0, rowudf_sample / max(1, n_valid)), seed=7)
    sample.repartition(2).write.format("delta").mode("overwrite").partitionBy("logical_date").save(stage + "/sample")
    n_sample = spark.read.format("delta").load(stage + "/sample").count()
    setup_s = time.perf_counter() - t_setup
    log(f"staged {n_valid:,} valid rows, {n_quarter:,} at N/4, a {n_sample:,}-row sample", t_setup)

    bench = Bench(spark, settings, workdir / "scratch")
    score = lambda df, monitor=None: score_frame(df, package, sc, 0, settings.spark.shuffle_partitions,  # noqa: E731
                                                 monitor=monitor)
    results: dict[str, Measure] = {}
    # (a) first, so that its two memory runs see workers that only ran warm-ups: N/4, then N (the timed one)
    bench.write(score(warm), n_warm, "(a) warm-up", sample=False)
    quarter = bench.write(score(standard(spark, stage + "/valid", features, quarter_end)), n_quarter, "(a) at N/4")
    results["a"] = bench.write(score(full), n_valid, "(a) score_frame (Arrow UDF)")
    # the same pass summarising for drift and counts on its way, as run_score runs it
    results["a_summary"] = bench.write(score(full, pass_monitor(spark, settings, spec, package, n_valid)), n_valid,
                                       "(a) with the pass summary")
    results["a0"] = bench.contender("(a0) Arrow UDF computing nothing", lambda df: noop_udf_frame(df, package),
                                    (warm, n_warm), (full, n_valid))
    results["b"] = bench.contender("(b) native Spark expression", lambda df: native_frame(df, package), (warm, n_warm), (full, n_valid))
    predict = predict_batch_frame(full, package, sc.batch_size, sc.device, sc.threads_per_task)
    results["c"] = bench.contender("(c) predict_batch_udf", predict, (warm, n_warm), (full, n_valid))
    if not skip_rowudf:
        rowwise = row_udf_frame(full, package)
        arrow = spark.conf.get("spark.sql.execution.pythonUDF.arrow.enabled", "false")
        warm_d = warm.sample(fraction=min(1.0, 2000 / max(1, n_warm)), seed=7)  # a row UDF warms up on a few rows
        results["d"] = bench.contender(f"(d) row @udf, sample (arrow={arrow})", rowwise, (warm_d, warm_d.count()),
                                       (standard(spark, stage + "/sample", features), n_sample))

    # the whole job, warmed up on the small table (same model by name), against a plain job over the same raw
    # rows: the same read, a native expression for the model, a Delta write of the same width
    table, _ = read_source(spark, settings, spec)
    warm_table, _ = read_source(spark, settings, warm_spec)
    bench.write(passthrough_frame(warm_table, warm_spec, warm_interval, package), n_warm_table,
                "passthrough warm-up", sample=False, partition_by=SCORES.partition_by)
    results["passthrough"] = bench.write(passthrough_frame(table, spec, interval, package), n_table,
                                         "passthrough job (read, native, Delta)", sample=False,
                                         partition_by=SCORES.partition_by)
    stages: dict[str, dict[str, float]] = {}
    grouped_in: dict[str, str | None] = {}  # where each job grouped its events: driver or spark
    default_model = settings.training.default_model
    jobs = [("job", NAME, "dense_ae")] + ([] if skip_temporal else [("job_tcn", NAME + "_temporal", default_model)])
    for key, model, label in jobs:
        run_score(spark, settings, warm_spec, warm_interval, model_name=model)
        records: list[Any] = []
        results[key] = bench.timed(f"run_score job, {label}", n_table, lambda m=model: records.append(
            run_score(spark, settings, spec, interval, model_name=m)))
        stages[key] = dict(records[0].details.get("stages_s", {}))
        grouped_in[key] = records[0].details.get("events_grouped_in")
    scores = spark.read.format("delta").load(SCORES.path(settings)).where(interval_predicate(spec.name, interval.start, interval.end))
    results["drift"] = bench.timed("compute_drift alone", n_table, lambda: compute_drift(
        spark, settings, spec, interval, package, flag_faults(select_interval(table, spec, interval), spec), scores,
        new_run_id("bench"), n_rows=n_table))

    spark.stop()
    a = results["a"].rows_per_s
    ratios = {k: (results[k.split("/")[0]].rows_per_s / results[k[-1]].rows_per_s if k[-1] in results else None, t)
              for k, t in TARGETS.items()}
    ratios.update({k: (results[k.split("/")[0]].rows_per_s / results["passthrough"].rows_per_s
                       if k.split("/")[0] in results else None, t) for k, t in JOB_TARGETS.items()})
    mem_q, mem_n = quarter.memory, results["a"].memory
    # drift's cost in the job: what summarising adds to the scoring pass, and the job's own drift stage (the
    # quarantined rows' summary, the verdicts and their commit)
    in_pass = max(0.0, results["a_summary"].seconds - results["a"].seconds)
    drift_stage = stages["job"].get("events_and_drift/drift", 0.0)
    drift_in_job = in_pass + drift_stage
    growth = mem_n.process_bytes / mem_q.process_bytes if mem_q.process_bytes else float("nan")
    return {
        "rows_requested": rows, "table_rows": n_table, "valid_rows": n_valid, "quarter_rows": n_quarter,
        "rowudf_sample_rows": n_sample, "entities": entities, "cadence_minutes": cadence, "days": DAYS, "features": len(features),
        "master": settings.spark.master, "batch_size": sc.batch_size, "setup_s": setup_s, "train_s": train_s,
        "model_version": trained.ref.version,
        "measures": {k: m.as_dict() for k, m in results.items()}, "job_stages_s": stages, "events_grouped_in": grouped_in,
        "ratios": {k: {"value": v, "target": t, "met": None if v is None or t is None else v >= t}
                   for k, (v, t) in ratios.items()},
        "drift_share": {"value": drift_in_job / results["job"].seconds, "target": DRIFT_TARGET,
                        "met": drift_in_job <= DRIFT_TARGET * results["job"].seconds,
                        "in_pass_s": in_pass, "stage_s": drift_stage},
        "memory": {"quarter": {"rows": n_quarter, **mem_q.as_dict()}, "full": {"rows": n_valid, **mem_n.as_dict()},
                   "per_process_growth": growth, "grows": bool(growth > GROWTH_TOLERANCE)},
    }


def _status(met: bool | None) -> str:
    return "skipped" if met is None else "met" if met else "MISSED"


def print_results(r: dict[str, Any]) -> None:
    """The plain table: throughput per contender, the ratios against their targets, worker memory."""
    print(f"\nLakewatch scoring benchmark: {r['table_rows']:,} rows ({r['valid_rows']:,} valid), {r['features']} features, "
          f"{r['master']}, batch {r['batch_size']} (setup {r['setup_s']:.0f}s, training {r['train_s']:.0f}s)\n")
    print(f"{'measure':<44}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'worker peak MiB (sum/max)':>28}")
    for m in r["measures"].values():
        w = m["worker_memory"]
        mem = f"{w['peak_total_mib']:.0f}/{w['peak_process_mib']:.0f}" if w["samples"] else "-"
        print(f"{m['name']:<44}{m['rows']:>12,}{m['seconds']:>10.2f}{m['rows_per_s']:>12,.0f}{mem:>28}")
    print(f"\n{'ratio':<20}{'value':>10}{'target':>10}  status")
    for k, v in r["ratios"].items():
        value = "-" if v["value"] is None else f"{v['value']:.2f}"
        if v["target"] is None:
            print(f"{k + ' (rows/s)':<20}{value:>10}{'-':>10}  no target: the most any Arrow UDF reaches of (b) here")
            continue
        print(f"{k + ' (rows/s)':<20}{value:>10}{'>= ' + str(v['target']):>10}  {_status(v['met'])}")
    print("\nwhere the full job's time goes (seconds per stage):")
    for key, stages in r["job_stages_s"].items():
        total = r["measures"][key]["seconds"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        top = sum(v for k, v in stages.items() if "/" not in k)  # sub-stages ("a/b") overlap their stage
        where = r.get("events_grouped_in", {}).get(key)
        print(f"  {r['measures'][key]['name']}: {parts}; the rest {total - top:.1f} (of {total:.1f})"
              + (f"; events grouped in {where}" if where else ""))
    d = r["drift_share"]
    print(f"{'drift / score job':<20}{d['value']:>10.2f}{'<= ' + str(d['target']):>10}  {_status(d['met'])}"
          f"  (in the scoring pass {d['in_pass_s']:.1f}s + the drift stage {d['stage_s']:.1f}s)")
    m = r["memory"]
    print("\nPython worker peak RSS during (a):")
    for k in ("quarter", "full"):
        print(f"  {m[k]['rows']:>12,} rows: sum {m[k]['peak_total_mib']:.0f} MiB, largest process {m[k]['peak_process_mib']:.0f} MiB, "
              f"{m[k]['max_processes']} processes")
    print(f"  per-process peak N vs N/4: x{m['per_process_growth']:.2f}: "
          f"{'GROWS with the table' if m['grows'] else 'does not grow with the table'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the generated table (about)")
    p.add_argument("--workdir", help="where the temporary lakehouse goes (default: a new folder under /tmp, removed after)")
    p.add_argument("--out", default="bench-results/bench.json", help="the JSON results file")
    p.add_argument("--skip-rowudf", action="store_true", help="leave out (d), the row-at-a-time UDF")
    p.add_argument("--skip-temporal", action="store_true", help="leave out the default temporal model's job "
                   "(a few rows per entity, as with --entities 100000, are too short a history to train it on)")
    p.add_argument("--entities", type=int, help="this many entities, their rows' cadence set to make --rows "
                   "(default: the generator's 5-minute cadence, the entities from --rows)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lakewatch-bench-")).resolve()
    try:
        results = run(args.rows, workdir, args.skip_rowudf, entities=args.entities, skip_temporal=args.skip_temporal)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print_results(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
