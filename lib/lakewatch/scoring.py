"""Scoring: the maths on numpy batches (score_batch), and the thin Arrow UDF that applies it in Spark.

The package is broadcast once per job; each Python worker builds the scorer once and keeps it,
keyed by the weights' checksum, for every later batch and task.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pyarrow as pa

from lakewatch.calibration import Calibration, p_values
from lakewatch.models.base import Detector, top_shares
from lakewatch.package import ModelPackage, manifest_bytes, parse_package
from lakewatch.tables import FEATURE_SHARES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_SCORERS: dict[str, "Scorer"] = {}  # per Python worker: a job's broadcast key -> scorer


@dataclass
class Scorer:
    """Everything a worker needs to score rows: normalisation, detector, calibration."""

    features: list[str]
    mean: np.ndarray
    std: np.ndarray
    detector: Detector
    calibration: Calibration
    top_k: int

    @classmethod
    def from_package(cls, package: ModelPackage, device: str = "cpu", top_k: int = 3) -> "Scorer":
        import torch

        mean, std = package.normalization()
        detector = package.detector().to(torch.device(device))
        return cls(package.features, mean, std, detector, package.calibration, top_k)


@dataclass
class ScoredBatch:
    score: np.ndarray
    calibrated: np.ndarray
    is_anomaly: np.ndarray
    top_idx: np.ndarray  # (n_anomalies, k) for the anomalous rows, in row order
    top_share: np.ndarray


def score_batch(scorer: Scorer, x: np.ndarray) -> ScoredBatch:
    """Score raw feature rows (n, d): raw score, calibrated value, flag, and attributions of the anomalies."""
    z = (x.astype(np.float32, copy=False) - scorer.mean) / scorer.std
    errors = scorer.detector.feature_errors(z)
    score = errors.mean(axis=1).astype(np.float64)
    p = p_values(scorer.calibration, score)
    flag = score >= scorer.calibration.threshold
    idx, share = top_shares(errors[flag], scorer.top_k)
    return ScoredBatch(score, 1.0 - p, flag, idx, share)


def resolve_device(wanted: str) -> str:
    """`auto` is CUDA when this worker has it, else the CPU."""
    import torch

    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("scoring.device is cuda but this worker has no CUDA device")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def cached_scorer(key: str, package: ModelPackage, device: str, threads: int, top_k: int) -> Scorer:
    """Build and keep the worker's scorer for one broadcast package: one model load per Python worker."""
    import torch

    torch.set_num_threads(max(1, threads))
    scorer = Scorer.from_package(package, resolve_device(device), top_k)
    _SCORERS.clear()
    _SCORERS[key] = scorer
    return scorer


def _top_features_array(batch: ScoredBatch, names: list[str]) -> pa.Array:
    """list<struct<feature, share>> per row: the anomalies' top features, null for the other rows."""
    n = len(batch.score)
    k = batch.top_idx.shape[1] if batch.top_idx.ndim == 2 else 0
    counts = np.where(batch.is_anomaly, k, 0)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.StructArray.from_arrays(
        [pa.array(np.asarray(names, dtype=object)[batch.top_idx.ravel()] if k else [], pa.string()),
         pa.array(batch.top_share.ravel(), pa.float64())],
        names=["feature", "share"],
    )
    mask = pa.array(~batch.is_anomaly) if n else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def score_frame(df: "DataFrame", package: ModelPackage, device: str, threads: int, top_k: int) -> "DataFrame":
    """Add score, calibrated, is_anomaly and top_features to (entity, ts, logical_date, features...).

    A scalar Arrow UDF over the features only: the keys stay in the JVM, the features cross as float32
    Arrow batches, and the result comes back as one struct column. One broadcast per job.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    features = package.features
    # plain bytes travel, not Python objects: each worker parses the JSON and verifies the checksum itself
    bc = df.sparkSession.sparkContext.broadcast((manifest_bytes(package), package.weights))
    key = f"{package.checksum}:{uuid.uuid4().hex}"  # this job's broadcast, in the workers' cache
    result = T.StructType(
        [
            T.StructField("score", T.DoubleType()),
            T.StructField("calibrated", T.DoubleType()),
            T.StructField("is_anomaly", T.BooleanType()),
            T.StructField("top_features", FEATURE_SHARES),
        ]
    )

    @F.arrow_udf(result)
    def apply(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = cached_scorer(key, parse_package(*bc.value), device, threads, top_k)
        for cols in batches:
            x = np.column_stack([c.to_numpy(zero_copy_only=False) for c in cols])
            out = score_batch(scorer, x)
            yield pa.StructArray.from_arrays(
                [pa.array(out.score), pa.array(out.calibrated), pa.array(out.is_anomaly),
                 _top_features_array(out, features)],
                names=["score", "calibrated", "is_anomaly", "top_features"],
            )

    scored = apply(*[F.col(f).cast("float") for f in features]).alias("_scored")
    return df.select("entity", "ts", "logical_date", scored).select("entity", "ts", "logical_date", "_scored.*")
