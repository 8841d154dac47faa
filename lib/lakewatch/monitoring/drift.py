"""Drift at Spark scale: reference profiles at training time, interval summaries at scoring time.

Each feature's distribution is summarised by one aggregation (101 approximate quantiles, counts above
each reference bin edge, nulls, out-of-range, mean); the statistics themselves are in drift_stats.
A feature's distribution is its finite values; NULL, NaN and inf count as null; out-of-range values stay
in the distribution and are also counted (conventions of drift_stats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakewatch.config import DriftSettings
from lakewatch.monitoring.drift_stats import (
    QUANTILE_PROBS,
    CurrentSummary,
    FeatureProfile,
    anomaly_rate_test,
    feature_drift,
    status_of,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakewatch.data.spec import DatasetSpec

SCORE_FEATURE = "__score__"
PERCENTILE_ACCURACY = 1_000  # rank error about 1/1000 of the rows: well inside the stated tolerances
DECILE_INDEXES = [10 * k for k in range(1, 10)]


@dataclass(frozen=True)
class Column_:
    """A numeric column to summarise: its name and valid range."""

    name: str
    lo: float | None = None
    hi: float | None = None


def drift_columns(spec: "DatasetSpec") -> list[Column_]:
    return [Column_(f.name, f.min, f.max) for f in spec.features]


def _finite(col: str) -> Column:
    c = F.col(col).cast("double")
    return F.when(~F.isnan(c) & (F.abs(c) != float("inf")), c)


def _aggs(col: Column_, edges: list[float] | None, i: int) -> list[Column]:
    v = _finite(col.name)
    out = [
        F.count(v).alias(f"n{i}"),
        F.avg(v).alias(f"mean{i}"),
        F.stddev_pop(v).alias(f"std{i}"),
        F.percentile_approx(v, list(QUANTILE_PROBS), PERCENTILE_ACCURACY).alias(f"q{i}"),
    ]
    oor = F.lit(False)
    if col.lo is not None:
        oor = oor | (v < col.lo)
    if col.hi is not None:
        oor = oor | (v > col.hi)
    out.append(F.count(F.when(oor, 1)).alias(f"oor{i}"))
    for j, e in enumerate(edges or []):
        out.append(F.count(F.when(v > F.lit(e), 1)).alias(f"gt{i}_{j}"))
    return out


def summarise(df: "DataFrame", cols: list[Column_], edges: dict[str, list[float]] | None = None) -> tuple[int, dict[str, dict[str, Any]]]:
    """(rows, per column: count, mean, std, quantiles, out-of-range count, bin counts): one pass over df."""
    aggs: list[Column] = [F.count(F.lit(1)).alias("rows")]
    for i, c in enumerate(cols):
        aggs += _aggs(c, (edges or {}).get(c.name), i)
    row = df.agg(*aggs).first()
    rows = int(row["rows"])
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(cols):
        n = int(row[f"n{i}"])
        e = (edges or {}).get(c.name) or []
        above = [n] + [int(row[f"gt{i}_{j}"]) for j in range(len(e))] + [0]
        out[c.name] = {
            "count": n,
            "mean": row[f"mean{i}"],
            "std": row[f"std{i}"],
            "quantiles": [float(q) for q in row[f"q{i}"]] if n else None,
            "oor": int(row[f"oor{i}"]),
            "bins": [above[k] - above[k + 1] for k in range(len(e) + 1)],
        }
    return rows, out


def reference_profiles(df: "DataFrame", cols: list[Column_]) -> list[FeatureProfile]:
    """Reference profiles of every column over all of df: decile bins from the quantiles, then bin shares."""
    rows, first = summarise(df, cols)
    edges = {
        c.name: sorted(set(first[c.name]["quantiles"][k] for k in DECILE_INDEXES)) if first[c.name]["count"] else []
        for c in cols
    }
    _, second = summarise(df, cols, edges)
    profiles = []
    for c in cols:
        s = second[c.name]
        n = s["count"]
        profiles.append(FeatureProfile(
            name=c.name, edges=edges[c.name],
            shares=[b / n for b in s["bins"]] if n else [1.0],
            quantiles=s["quantiles"] or [], mean=float(s["mean"]) if n else float("nan"),
            std=float(s["std"]) if n else float("nan"), count=n,
            null_rate=(rows - n) / rows if rows else float("nan"),
            out_of_range_rate=s["oor"] / rows if rows else float("nan"),
        ))
    return profiles


def current_summaries(df: "DataFrame", cols: list[Column_], profiles: dict[str, FeatureProfile]) -> dict[str, CurrentSummary]:
    """The interval's summary of every column against its reference bins: one pass over df."""
    rows, s = summarise(df, cols, {c.name: profiles[c.name].edges for c in cols})
    return {
        c.name: CurrentSummary(
            count=s[c.name]["count"], n_rows=rows, null_count=rows - s[c.name]["count"],
            out_of_range_count=s[c.name]["oor"], bin_counts=s[c.name]["bins"], quantiles=s[c.name]["quantiles"],
            mean=float(s[c.name]["mean"]) if s[c.name]["count"] else float("nan"),
        )
        for c in cols
    }


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
