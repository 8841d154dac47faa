"""What the scoring pass summarises on its way, so that no later pass reads the interval again.

The scoring UDF already holds every scored row's features, score and flags as numpy arrays. It adds them to a
`PassSummary` (the drift partials of the features and of the score, and the rows, anomalies and warming-up
rows per hour) and its anomalous rows, which reach the driver through an accumulator: the drift step then
needs no pass over the input's features nor over the written scores (they cost as much as the scoring pass
itself: every row's 32 features through Arrow once more), the run's counts no pass over the scores, and its
events no job over them (they are grouped on the driver, `monitoring.events`). The anomalous rows are kept up
to `MAX_ANOMALIES`, each task its share of them: past that (a day the model flags wholesale) the summary says
so, and the events are grouped in Spark from the written scores instead.

Exactly once: Spark applies a result task's accumulator updates once per partition, and the scoring UDF runs
in the write job's result stage (row-wise: no shuffle; windows: after the shuffle). A retried commit runs
the job again, so the writer resets the accumulator before each attempt (`PassMonitor.reset`), and the job
checks the hourly total against the rows the commit wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from pyspark.accumulators import AccumulatorParam

from lakewatch.monitoring.drift import SCORE_FEATURE, Column_, Partials, sample_flag
from lakewatch.monitoring.events import anomaly_schema

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.accumulators import Accumulator
    from pyspark.sql import Column, DataFrame, SparkSession

    from lakewatch.monitoring.drift_stats import CurrentSummary

HOUR_US = 3_600_000_000
# anomalous rows a pass collects for its events (beyond, none: `overflow`): ~150 bytes each on the driver
MAX_ANOMALIES = 500_000
SAMPLE_COLUMN = "_q"  # whether a scored row's values go into the quantiles (drift.sample_flag)


@dataclass
class PassSummary:
    """The scored rows' drift partials (features in the package's order, and the score) and hourly tallies."""

    features: Partials
    score: Partials
    hours: dict[int, np.ndarray] = field(default_factory=dict)  # hour (epoch us) -> [rows, anomalous, warming]
    anomalies: list[pa.RecordBatch] = field(default_factory=list)  # monitoring.events.ANOMALY_COLUMNS
    overflow: bool = False  # more than `cap` anomalous rows: `anomalies` is empty
    n_anomalies: int = 0  # the rows in `anomalies`
    cap: int = MAX_ANOMALIES  # the most anomalous rows this summary keeps (the pass's, on the driver)
    task_cap: int = MAX_ANOMALIES  # the most one task's summary keeps (`_Merge.zero`: what workers start from)

    @staticmethod
    def of(cols: list[Column_], edges: list[list[float]], score_edges: list[float]) -> "PassSummary":
        return PassSummary(Partials.of(cols, edges), Partials.of([Column_(SCORE_FEATURE)], [score_edges]),
                           cap=MAX_ANOMALIES, task_cap=MAX_ANOMALIES)

    def empty(self) -> "PassSummary":
        return PassSummary(self.features.empty(), self.score.empty(), cap=self.cap, task_cap=self.task_cap)

    def add_batch(self, x: np.ndarray, q: np.ndarray, ts_us: np.ndarray, score: np.ndarray,
                  is_anomaly: np.ndarray, warming_up: np.ndarray, anomalies: pa.RecordBatch | None = None) -> None:
        """Add scored rows: x (n, d) raw features in the package's order, q the sampled rows, their
        timestamps (epoch us), scores and flags, and the anomalous ones among them (ANOMALY_COLUMNS)."""
        if len(q) == 0:
            return
        if anomalies is not None and anomalies.num_rows:
            self._keep([anomalies], False)
        self.features.add_values(list(x.T), q)
        self.score.add_values([score], q)
        hours, inverse = np.unique(np.asarray(ts_us, dtype=np.int64) // HOUR_US, return_inverse=True)
        tallies = np.stack([np.bincount(inverse, minlength=len(hours)),
                            np.bincount(inverse, weights=is_anomaly, minlength=len(hours)),
                            np.bincount(inverse, weights=warming_up, minlength=len(hours))], axis=1).astype(np.int64)
        for h, t in zip(hours.tolist(), tallies):
            self.hours[h] = self.hours[h] + t if h in self.hours else t

    def merge(self, other: "PassSummary") -> "PassSummary":
        self.features.merge(other.features)
        self.score.merge(other.score)
        for h, t in other.hours.items():
            self.hours[h] = self.hours[h] + t if h in self.hours else t.copy()
        self._keep(other.anomalies, other.overflow)
        return self

    def _keep(self, batches: list[pa.RecordBatch], overflow: bool) -> None:
        self.anomalies.extend(batches)
        self.n_anomalies += sum(b.num_rows for b in batches)
        if overflow or self.overflow or self.n_anomalies > self.cap:
            self.overflow, self.anomalies, self.n_anomalies = True, [], 0

    def anomalous_rows(self) -> pa.Table | None:
        """The pass's anomalous rows (ANOMALY_COLUMNS), or None past MAX_ANOMALIES."""
        if self.overflow:
            return None
        return pa.Table.from_batches(self.anomalies, schema=anomaly_schema())

    def hourly(self) -> "pd.DataFrame":
        """(hour, rows, anomalous, warming) in time order, hour as a UTC timestamp (the session's time zone)."""
        import pandas as pd

        hours = sorted(self.hours)
        counts = np.array([self.hours[h] for h in hours], dtype=np.int64).reshape(-1, 3)
        return pd.DataFrame({"hour": pd.to_datetime(np.array(hours, dtype=np.int64) * HOUR_US, unit="us"),
                             "rows": counts[:, 0], "anomalous": counts[:, 1], "warming": counts[:, 2]})


class _Merge(AccumulatorParam):
    """Accumulates PassSummary values: each task starts from an empty copy of the driver's initial value."""

    def zero(self, value: PassSummary) -> PassSummary:
        """What each task starts from (Spark ships the accumulator to workers as its zero): a task keeps at most
        `task_cap` anomalous rows, so that the tasks' results together stay near the pass's cap."""
        task = value.empty()
        task.cap = value.task_cap
        return task

    def addInPlace(self, a: PassSummary, b: PassSummary) -> PassSummary:
        return a.merge(b)


@dataclass(frozen=True)
class PassMonitor:
    """The scoring pass's summary: the accumulator the UDF adds to, and which rows the quantiles sample."""

    accumulator: "Accumulator"
    initial: PassSummary
    sample: float

    @staticmethod
    def start(spark: "SparkSession", cols: list[Column_], edges: list[list[float]], score_edges: list[float],
              sample: float, tasks: int = 1) -> "PassMonitor":
        """cols, edges: the package's features (in its order) with their ranges and reference bins; tasks: how
        many tasks the pass runs (each keeps its share of MAX_ANOMALIES anomalous rows)."""
        initial = PassSummary.of(cols, edges, score_edges)
        initial.task_cap = max(1, MAX_ANOMALIES // max(1, tasks))
        return PassMonitor(spark.sparkContext.accumulator(initial.empty(), _Merge()), initial, sample)

    def sample_column(self) -> "Column":
        return sample_flag(self.sample).alias(SAMPLE_COLUMN)

    def add(self, x: np.ndarray, q: np.ndarray, ts_us: np.ndarray, score: np.ndarray, is_anomaly: np.ndarray,
            warming_up: np.ndarray, anomalies: pa.RecordBatch | None = None) -> None:
        """On a worker: add a batch of scored rows (see PassSummary.add_batch)."""
        batch = self.initial.empty()
        batch.add_batch(x, q, ts_us, score, is_anomaly, warming_up, anomalies)
        self.accumulator.add(batch)

    def reset(self) -> None:
        """Before each attempt of the write: a retried job adds every row again."""
        self.accumulator.value = self.initial.empty()

    @property
    def value(self) -> PassSummary:
        return self.accumulator.value

    def summaries(self, unseen: "DataFrame | None" = None) -> tuple[dict[str, CurrentSummary], CurrentSummary]:
        """After the pass: (each feature's summary, the score's), the features' with the rows of `unseen` (the
        interval's rows the pass did not score, e.g. the quarantined ones: one pass over them) added."""
        features = self.value.features
        if unseen is not None:
            features.pass_over(unseen, self.sample)
        return features.current(), self.value.score.current()[SCORE_FEATURE]
