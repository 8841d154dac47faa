"""The benchmark's contenders besides the package's own scoring path, and the worker memory sampler.

They live in an importable module (not in `python -m bench.scoring`'s __main__) so that cloudpickle
ships the top-level helpers by reference: the per-worker model caches below are then the real module
globals of each Python worker, kept across tasks, as the package's own cache in lakewatch.scoring is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import pyarrow as pa

from lakewatch.lakehouse.tables import FEATURE_SHARES
from lakewatch.packaging.package import ModelPackage, parse_package
from lakewatch.scoring.plan import ScoringPlan
from lakewatch.scoring.spark import resolve_device

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame

_ROW_PLANS: dict[str, ScoringPlan] = {}  # per Python worker: manifest checksum -> plan, for the row-at-a-time UDF


def score_only(plan: ScoringPlan, x: np.ndarray) -> np.ndarray:
    """The raw score of rows (n, d) through the package's plan (a row-wise model, global normalisation)."""
    return plan.score_rows(None, None, x).score


def broadcast_package(df: "DataFrame", package: ModelPackage) -> "Broadcast":
    """The package as plain bytes, broadcast once, as lakewatch.scoring.spark does."""
    return df.sparkSession.sparkContext.broadcast((package.manifest_json, package.files, package.checksum))


def native_frame(df: "DataFrame", package: ModelPackage) -> "DataFrame":
    """(b) Passthrough: the score as a Spark expression (mean squared normalised feature), no Python at all.

    Same output columns as score_frame; calibrated is a cheap monotone stand-in and top_features is null,
    so this is a lower bound on what any scoring of these rows can cost in this Spark.
    """
    from pyspark.sql import functions as F

    norm = package.manifest["transforms"]["normalization"]
    mean, std = norm["global_loc"], norm["global_scale"]
    sq = [((F.col(f) - float(m)) / float(s)) ** 2 for f, m, s in zip(package.features, mean, std)]
    score = sum(sq[1:], sq[0]) / float(len(sq))
    threshold = package.calibrations().signals[package.manifest["model"]["signals"][0]].threshold
    return df.select("entity", "ts", "logical_date", score.alias("score")).select(
        "entity", "ts", "logical_date", "score",
        (1.0 - F.exp(-F.col("score"))).alias("calibrated"),
        (F.col("score") >= threshold).alias("is_anomaly"),
        F.lit(None).cast(FEATURE_SHARES).alias("top_features"),
    )


def noop_udf_frame(df: "DataFrame", package: ModelPackage) -> "DataFrame":
    """(a0) The ceiling of any model in an Arrow UDF on this Spark: score_frame's row-wise UDF with the same
    inputs (the features as float64, the entity where the package needs it) and the same output struct, and
    nothing computed in between (the last feature as the score, no top features)."""
    from pyspark.sql import functions as F

    from lakewatch.monitoring.events import anomaly_schema
    from lakewatch.scoring.spark import OUTPUT_COLUMNS, result_type

    top_type = anomaly_schema().field("top_features").type

    @F.arrow_udf(result_type())
    def apply(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        for cols in batches:
            score = (cols[-1] if isinstance(cols, tuple) else cols).cast(pa.float64())
            n = len(score)
            no = pa.array(np.zeros(n, dtype=bool))
            yield pa.StructArray.from_arrays([score, score, pa.nulls(n, pa.float64()), no, pa.nulls(n, top_type), no],
                                             names=OUTPUT_COLUMNS)

    inputs = ([F.col("entity")] if package.needs_entity else []) + [F.col(f).cast("double") for f in package.features]
    return df.select("entity", "ts", "logical_date", apply(*inputs).alias("_s")).select(
        "entity", "ts", "logical_date", "_s.*")


def predict_batch_frame(df: "DataFrame", package: ModelPackage, batch_size: int, device: str, threads: int,
                        packing: str = "struct") -> Callable[["DataFrame"], "DataFrame"]:
    """(c) Spark's predict_batch_udf with the same torch module; returns a function applying one UDF instance.

    packing: how the features reach predict as one (batch, n_features) array: "struct" (a struct column,
    which arrives as a pandas DataFrame: one to_numpy), or "array" with input_tensor_shapes, the documented
    form (an array column: a vstack of per-row arrays).

    The same UDF object must serve the warm-up and the timed run: predict_batch_udf keys its per-worker
    model cache by a UUID drawn when the UDF is made.
    """
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    bc = broadcast_package(df, package)
    features = package.features

    def make_predict_fn() -> Callable[[np.ndarray], np.ndarray]:
        import torch

        torch.set_num_threads(max(1, threads))
        plan = parse_package(*bc.value).plan(resolve_device(device))

        def predict(inputs: np.ndarray) -> np.ndarray:  # (batch, n_features)
            return score_only(plan, inputs)

        return predict

    shapes = [[len(features)]] if packing == "array" else None
    udf = predict_batch_udf(make_predict_fn, return_type=T.DoubleType(), batch_size=batch_size, input_tensor_shapes=shapes)
    pack = F.array if packing == "array" else F.struct

    def apply(frame: "DataFrame") -> "DataFrame":
        return frame.select("entity", "ts", "logical_date", udf(pack(*[F.col(f) for f in features])).alias("score"))

    return apply


def row_plan(manifest_json: bytes, files: dict[str, bytes], checksum: str) -> ScoringPlan:
    """The worker's plan for the row UDF, built once per Python worker (a module global, see above)."""
    plan = _ROW_PLANS.get(checksum)
    if plan is None:
        import torch

        torch.set_num_threads(1)
        plan = parse_package(manifest_json, files, checksum).plan()
        _ROW_PLANS.clear()
        _ROW_PLANS[checksum] = plan
    return plan


def row_udf_frame(df: "DataFrame", package: ModelPackage) -> Callable[["DataFrame"], "DataFrame"]:
    """(d) A row-at-a-time Python UDF (@udf returning a double) over the feature columns, model cached per worker."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    bc = broadcast_package(df, package)
    features = package.features

    @F.udf(returnType=T.DoubleType())
    def score_row(*values: float) -> float:
        plan = row_plan(*bc.value)
        return float(score_only(plan, np.asarray(values, dtype=np.float64).reshape(1, -1))[0])

    def apply(frame: "DataFrame") -> "DataFrame":
        return frame.select("entity", "ts", "logical_date", score_row(*[F.col(f) for f in features]).alias("score"))

    return apply


@dataclass
class MemoryPeak:
    """The peak resident memory of the Python workers seen during one action."""

    total_bytes: int = 0  # max over samples of the sum of their RSS (forked pages shared with the daemon count twice)
    process_bytes: int = 0  # max RSS of any one of them
    processes: int = 0  # max number of them at once
    samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"peak_total_mib": self.total_bytes / 2**20, "peak_process_mib": self.process_bytes / 2**20,
                "max_processes": self.processes, "samples": self.samples}


class WorkerMemorySampler:
    """Polls psutil every `interval` s over this driver's descendants that are PySpark Python workers.

    The JVM is a child of the driver; `python -m pyspark.daemon` is a child of the JVM, and the workers are
    forked from the daemon (so they carry its command line). Use as a context manager around an action.
    """

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self.interval = interval
        self.peak = MemoryPeak()
        self._root = psutil.Process()
        self._is_worker: dict[int, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-memory-sampler", daemon=True)

    def _worker(self, proc: Any) -> bool:
        known = self._is_worker.get(proc.pid)
        if known is None:
            try:
                cmd = " ".join(proc.cmdline())
            except Exception:  # the process ended
                return False
            known = self._is_worker[proc.pid] = "pyspark.daemon" in cmd or "pyspark.worker" in cmd
        return known

    def sample(self) -> None:
        total, biggest, count = 0, 0, 0
        for proc in self._root.children(recursive=True):
            if not self._worker(proc):
                continue
            try:
                rss = proc.memory_info().rss
            except Exception:  # the process ended between listing and reading
                continue
            total, biggest, count = total + rss, max(biggest, rss), count + 1
        p = self.peak
        p.total_bytes, p.process_bytes = max(p.total_bytes, total), max(p.process_bytes, biggest)
        p.processes, p.samples = max(p.processes, count), p.samples + 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "WorkerMemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
