"""Drift at Spark scale: reference profiles at training time, interval summaries at scoring time.

Each feature's distribution is summarised in one pass (101 quantiles, counts in each reference bin, nulls,
out-of-range, mean, std) by drift_stats' own numpy definitions over Arrow batches; the statistics themselves
are in drift_stats. On a large interval the quantiles come from a deterministic sample of rows
(`quantile_sample`, `drift.quantile_sample_rows`), every count from every row.
A feature's distribution is its finite values; NULL, NaN and inf count as null; out-of-range values stay
in the distribution and are also counted (conventions of drift_stats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from lakewatch.config import DriftSettings
from lakewatch.data.sampling import hash_uniform
from lakewatch.monitoring.drift_stats import (
    CurrentSummary,
    FeatureProfile,
    anomaly_rate_test,
    bin_counts,
    feature_drift,
    quantiles_of,
    split_values,
    status_of,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from lakewatch.data.spec import DatasetSpec

SCORE_FEATURE = "__score__"
DECILE_INDEXES = [10 * k for k in range(1, 10)]


@dataclass(frozen=True)
class Column_:
    """A numeric column to summarise: its name and valid range."""

    name: str
    lo: float | None = None
    hi: float | None = None


def drift_columns(spec: "DatasetSpec") -> list[Column_]:
    return [Column_(f.name, f.min, f.max) for f in spec.features]


def quantile_sample(n_rows: int | None, max_rows: int) -> float:
    """The share of rows the quantiles are taken from: about max_rows of n_rows; 1.0 (every row) when n_rows is
    unknown or small enough, or max_rows is 0."""
    if not max_rows or n_rows is None or n_rows <= max_rows:
        return 1.0
    return max_rows / n_rows


@dataclass
class _Partial:
    """One column's summary over some rows: what partitions compute and the driver merges."""

    bins: np.ndarray  # counts in the bins of the column's edges (len(edges) + 1)
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean (merged as Chan et al.)
    oor: int = 0
    sample: list[np.ndarray] = field(default_factory=list)

    @staticmethod
    def of(edges: list[float]) -> "_Partial":
        return _Partial(np.zeros(len(edges) + 1, dtype=np.int64))

    def values(self) -> np.ndarray:
        """The sampled values added so far, as one array."""
        return np.concatenate(self.sample) if self.sample else np.zeros(0)

    def add(self, count: int, mean: float, m2: float, oor: int, bins: np.ndarray, sample: np.ndarray) -> None:
        if count:
            n = self.count + count
            delta = mean - self.mean
            self.mean += delta * count / n
            self.m2 += m2 + delta * delta * self.count * count / n
            self.count = n
        self.oor += oor
        self.bins = self.bins + bins
        self.sample.append(sample)


@dataclass
class Partials:
    """Every column's partial summary over some rows, and how many rows: what a pass over part of the rows
    computes (a partition, a scoring batch) and merges, in any order, into the summary of all of them."""

    cols: list[Column_]
    edges: list[list[float]]
    parts: list[_Partial]
    rows: int = 0

    @staticmethod
    def of(cols: list[Column_], edges: list[list[float]]) -> "Partials":
        return Partials(list(cols), [list(e) for e in edges], [_Partial.of(e) for e in edges])

    def empty(self) -> "Partials":
        return Partials.of(self.cols, self.edges)

    def add_values(self, columns: list[np.ndarray], q: np.ndarray) -> None:
        """Add rows given as one array per column (in `cols` order); q: the rows whose values the quantiles
        use (the sample)."""
        self.rows += len(q)
        for part, c, e, v in zip(self.parts, self.cols, self.edges, columns):
            v = np.asarray(v, dtype=np.float64)
            finite, _, oor = split_values(v, c.lo, c.hi)
            mean = float(finite.mean()) if len(finite) else 0.0
            m2 = float(((finite - mean) ** 2).sum()) if len(finite) else 0.0
            kept = v[q]
            part.add(len(finite), mean, m2, oor, bin_counts(e, finite), kept[np.isfinite(kept)])

    def pass_over(self, df: "DataFrame", sample: float = 1.0) -> "Partials":
        """These partials with every row of df (entity, ts and the columns) added: one pass (`partials_of`),
        counted in these columns' bins."""
        return self.merge(partials_of(df, self.cols, dict(zip([c.name for c in self.cols], self.edges)), sample))

    def merge(self, other: "Partials") -> "Partials":
        """Add another's rows (the same columns) to these; returns self."""
        if [c.name for c in other.cols] != [c.name for c in self.cols]:
            raise ValueError(f"cannot merge the partials of {[c.name for c in other.cols]} into "
                             f"{[c.name for c in self.cols]}")
        self.rows += other.rows
        for mine, theirs in zip(self.parts, other.parts):
            mine.add(theirs.count, theirs.mean, theirs.m2, theirs.oor, theirs.bins, theirs.values())
        return self

    def finished(self) -> dict[str, dict[str, Any]]:
        """Per column: count, mean, std, quantiles (of the sampled values), out-of-range count, bin counts."""
        out: dict[str, dict[str, Any]] = {}
        for c, p in zip(self.cols, self.parts):
            values = p.values()
            out[c.name] = {
                "count": p.count,
                "mean": p.mean if p.count else None,
                "std": float(np.sqrt(p.m2 / p.count)) if p.count else None,
                "quantiles": quantiles_of(values) if len(values) else None,
                "oor": p.oor,
                "bins": p.bins.tolist(),
            }
        return out

    def current(self) -> dict[str, CurrentSummary]:
        """Each column's summary against the reference bins its partials were counted in."""
        return {
            name: CurrentSummary(
                count=s["count"], n_rows=self.rows, null_count=self.rows - s["count"], out_of_range_count=s["oor"],
                bin_counts=s["bins"], quantiles=s["quantiles"],
                mean=float(s["mean"]) if s["count"] else float("nan"),
            )
            for name, s in self.finished().items()
        }


def _partials(cols: list[Column_],
              edges: list[list[float]]) -> "Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]":
    """The per-partition pass: each column's finite count, mean and M2, out-of-range count and bin counts
    (drift_stats' definitions), and its values on the sampled rows (`_q`); one row per column (col -1: rows)."""

    def run(batches: "Iterator[pa.RecordBatch]") -> "Iterator[pa.RecordBatch]":
        import pyarrow as pa

        acc = Partials.of(cols, edges)
        for batch in batches:
            q = batch.column("_q").to_numpy(zero_copy_only=False).astype(bool)
            acc.add_values([batch.column(k).to_numpy(zero_copy_only=False) for k in range(len(cols))], q)
        samples = [p.values() for p in acc.parts]
        lengths = [0] + [len(x) for x in samples]
        yield pa.RecordBatch.from_arrays([
            pa.array([-1, *range(len(cols))], pa.int32()),
            pa.array([acc.rows, *[p.count for p in acc.parts]], pa.int64()),
            pa.array([0.0, *[p.mean for p in acc.parts]], pa.float64()),
            pa.array([0.0, *[p.m2 for p in acc.parts]], pa.float64()),
            pa.array([0, *[p.oor for p in acc.parts]], pa.int64()),
            pa.array([[], *[p.bins.tolist() for p in acc.parts]], pa.list_(pa.int64())),
            pa.ListArray.from_arrays(pa.array(np.cumsum([0, *lengths]), pa.int32()),
                                     pa.array(np.concatenate([np.zeros(0), *samples]), pa.float64())),
        ], schema=_arrow_schema())

    return run


def _arrow_schema() -> "pa.Schema":
    """The partials' schema (one row per column and partition), declared once: Spark's is derived from it."""
    import pyarrow as pa

    return pa.schema([("col", pa.int32()), ("n", pa.int64()), ("mean", pa.float64()), ("m2", pa.float64()),
                      ("oor", pa.int64()), ("bins", pa.list_(pa.int64())), ("sample", pa.list_(pa.float64()))])


def sample_flag(sample: float) -> Column:
    """Whether a row's values go into the quantiles: a hash of (entity, ts) below `sample` (every row at 1.0,
    none at 0.0): the same rows whatever the partitioning, and whichever pass sees them."""
    return hash_uniform(0, "entity", "ts") < F.lit(sample) if 0.0 < sample < 1.0 else F.lit(sample >= 1.0)


def partials_of(df: "DataFrame", cols: list[Column_], edges: dict[str, list[float]] | None = None,
                sample: float = 1.0) -> Partials:
    """The partials of every row of df (entity, ts and the columns): one pass, see `summarise`."""
    e = [list((edges or {}).get(c.name) or []) for c in cols]
    inputs = df.select(*[F.col(c.name).cast("double").alias(f"_{k}") for k, c in enumerate(cols)],
                       sample_flag(sample).alias("_q"))
    merged = Partials.of(cols, e)
    table = inputs.mapInArrow(_partials(cols, e), from_arrow_schema(_arrow_schema())).toArrow()
    col, n, mean, m2, oor = (table.column(name).to_numpy() for name in ("col", "n", "mean", "m2", "oor"))
    bins, sampled = table.column("bins").combine_chunks(), table.column("sample").combine_chunks()
    for i in range(table.num_rows):
        if col[i] < 0:
            merged.rows += int(n[i])
            continue
        merged.parts[col[i]].add(int(n[i]), float(mean[i]), float(m2[i]), int(oor[i]),
                                 bins[i].values.to_numpy().astype(np.int64), sampled[i].values.to_numpy())
    return merged


def summarise(df: "DataFrame", cols: list[Column_], edges: dict[str, list[float]] | None = None,
              sample: float = 1.0) -> tuple[int, dict[str, dict[str, Any]]]:
    """(rows, per column: count, mean, std, quantiles, out-of-range count, bin counts): one pass over df.

    Every count is over every row; the quantiles are the exact ones (drift_stats.quantiles_of) of the rows a
    hash of (entity, ts) puts in a `sample` share of them (every row at 1.0; `quantile_sample`; none at 0.0,
    when only counts are wanted): the same rows whatever the partitioning. Each partition summarises its rows
    with numpy through Arrow (a Spark aggregation of 100 quantiles and ~10 bin counts per column costs 5-10x
    more); the driver merges one small row per column and partition, and the sampled values.
    """
    merged = partials_of(df, cols, edges, sample)
    return merged.rows, merged.finished()


def reference_profiles(df: "DataFrame", cols: list[Column_], sample: float = 1.0) -> list[FeatureProfile]:
    """Reference profiles of every column over all of df: decile bins from the quantiles (of a `sample` share
    of the rows, as `summarise`), then bin shares (a second pass that counts only)."""
    rows, first = summarise(df, cols, sample=sample)
    edges = {
        c.name: sorted(set(first[c.name]["quantiles"][k] for k in DECILE_INDEXES)) if first[c.name]["count"] else []
        for c in cols
    }
    _, second = summarise(df, cols, edges, sample=0.0)
    profiles = []
    for c in cols:
        s = second[c.name]
        n = s["count"]
        profiles.append(FeatureProfile(
            name=c.name, edges=edges[c.name],
            shares=[b / n for b in s["bins"]] if n else [1.0],
            quantiles=first[c.name]["quantiles"] or [], mean=float(s["mean"]) if n else float("nan"),
            std=float(s["std"]) if n else float("nan"), count=n,
            null_rate=(rows - n) / rows if rows else float("nan"),
            out_of_range_rate=s["oor"] / rows if rows else float("nan"),
        ))
    return profiles


def current_summaries(df: "DataFrame", cols: list[Column_], profiles: dict[str, FeatureProfile],
                      sample: float = 1.0) -> dict[str, CurrentSummary]:
    """The interval's summary of every column against its reference bins: one pass over df (quantiles over
    `sample`'s rows, see `quantile_sample`)."""
    return partials_of(df, cols, {c.name: profiles[c.name].edges for c in cols}, sample).current()


def drift_records(
    profiles: dict[str, FeatureProfile], summaries: dict[str, CurrentSummary], cfg: DriftSettings
) -> list[tuple[str, str, float, float | None, str]]:
    """(feature, metric, value, alert threshold, status) for every feature and metric.

    KS is judged on its statistic only when the difference is also significant (p < cfg.ks_significance):
    with millions of rows a negligible difference is always significant, with a few rows a large one may not be.
    """
    out = []
    for name, summary in summaries.items():
        metrics = feature_drift(profiles[name], summary)
        significant = metrics["ks_pvalue"] < cfg.ks_significance
        for metric, value in metrics.items():
            if metric == "ks_pvalue":
                continue
            warn, alert = cfg.thresholds[metric]
            status = status_of(value, warn, alert)
            if metric == "ks" and status in ("warn", "alert") and not significant:
                status = "ok"
            out.append((name, metric, value, alert, status))
        ks_status = next(r[4] for r in out if r[0] == name and r[1] == "ks")
        out.append((name, "ks_pvalue", metrics["ks_pvalue"], cfg.ks_significance, ks_status))
    return out


def anomaly_rate_records(expected: float, n_anomalous: int, n: int, cfg: DriftSettings) -> list[tuple[str, str, float, float | None, str]]:
    """Observed anomaly rate against the calibrated false-alarm rate, with a one-sided binomial test."""
    observed, p = anomaly_rate_test(expected, n_anomalous, n)
    warn_p, alert_p = cfg.anomaly_rate_pvalue
    status = "alert" if p < alert_p else "warn" if p < warn_p else "ok"
    return [
        (SCORE_FEATURE, "anomaly_rate", observed, expected, status),
        (SCORE_FEATURE, "anomaly_rate_pvalue", p, alert_p, status),
    ]
