"""The scoring pass's summary: hand-counted drift partials and hourly tallies, merged in any order."""

from __future__ import annotations

import numpy as np

from lakewatch.monitoring.drift import SCORE_FEATURE, Column_
from lakewatch.monitoring.drift_stats import quantiles_of
from lakewatch.monitoring.pass_summary import HOUR_US, PassSummary

COLS = [Column_("cpu", 0.0, 11.0), Column_("mem")]
EDGES = [[2.0, 10.0], [0.5]]
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z in microseconds


def batch_a(s: PassSummary) -> None:
    x = np.array([[1.0, 0.0], [5.0, 1.0], [np.nan, 1.0]])
    s.add_batch(x, np.array([True, False, True]), np.array([T0, T0 + 60_000_000, T0 + HOUR_US]),
                np.array([0.1, 0.9, 0.2]), np.array([False, True, False]), np.array([True, False, False]))


def batch_b(s: PassSummary) -> None:
    x = np.array([[12.0, np.inf]])
    s.add_batch(x, np.array([True]), np.array([T0 + HOUR_US + 5]), np.array([0.3]), np.array([True]),
                np.array([False]))


def test_counts_bins_and_hours_are_those_counted_by_hand():
    s = PassSummary.of(COLS, EDGES, [0.5])
    batch_a(s)
    batch_b(s)
    cur = s.features.current()
    cpu, mem = cur["cpu"], cur["mem"]
    # cpu: 1, 5, NaN, 12 against bins (-inf, 2], (2, 10], (10, inf); 12 is above the range's 11
    assert (cpu.n_rows, cpu.count, cpu.null_count, cpu.out_of_range_count) == (4, 3, 1, 1)
    assert cpu.bin_counts == [1, 1, 1] and cpu.mean == 6.0
    # mem: 0, 1, 1, inf (a null) against (-inf, 0.5], (0.5, inf)
    assert (mem.count, mem.null_count, mem.bin_counts) == (3, 1, [1, 2])
    # quantiles from the sampled rows only (rows 1, 3 and 4): cpu 1 and 12 (the NaN is not a value)
    assert cpu.quantiles == quantiles_of(np.array([1.0, 12.0]))
    score = s.score.current()[SCORE_FEATURE]
    assert (score.n_rows, score.count, score.bin_counts) == (4, 4, [3, 1])
    hourly = s.hourly()
    assert hourly["rows"].tolist() == [2, 2]
    assert hourly["anomalous"].tolist() == [1, 1] and hourly["warming"].tolist() == [1, 0]
    assert str(hourly["hour"].iloc[1]) == "2026-01-01 01:00:00"


def test_batches_merge_in_any_order_to_the_same_summary():
    one, two = PassSummary.of(COLS, EDGES, [0.5]), PassSummary.of(COLS, EDGES, [0.5])
    batch_a(one)
    batch_b(one)
    later, first = two.empty(), two.empty()
    batch_b(first)
    batch_a(later)
    two.merge(first).merge(later)
    assert one.features.current() == two.features.current()
    assert one.score.current() == two.score.current()
    assert one.hourly().equals(two.hourly())


def test_an_empty_batch_adds_nothing():
    s = PassSummary.of(COLS, EDGES, [0.5])
    s.add_batch(np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool),
                np.zeros(0, bool))
    assert s.features.rows == 0 and s.hourly().empty


def anomalies(n: int) -> "pa.RecordBatch":
    import pyarrow as pa

    from lakewatch.monitoring.events import anomaly_schema

    ts = pa.array(np.full(n, T0), pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.RecordBatch.from_arrays([pa.array(["e"] * n), ts, pa.array(np.ones(n)), pa.array(np.ones(n)),
                                       pa.array([[]] * n, anomaly_schema().field("top_features").type)],
                                      schema=anomaly_schema())


def test_anomalous_rows_are_kept_up_to_the_cap_and_then_none(monkeypatch):
    import lakewatch.monitoring.pass_summary as ps

    monkeypatch.setattr(ps, "MAX_ANOMALIES", 5)
    a, b = PassSummary.of(COLS, EDGES, [0.5]), PassSummary.of(COLS, EDGES, [0.5])
    a.add_batch(np.ones((3, 2)), np.ones(3, bool), np.full(3, T0), np.ones(3), np.ones(3, bool), np.zeros(3, bool),
                anomalies(3))
    assert a.anomalous_rows().num_rows == 3
    b.add_batch(np.ones((3, 2)), np.ones(3, bool), np.full(3, T0), np.ones(3), np.ones(3, bool), np.zeros(3, bool),
                anomalies(3))
    merged = a.merge(b)
    assert merged.overflow and merged.anomalous_rows() is None
    assert merged.merge(PassSummary.of(COLS, EDGES, [0.5])).anomalous_rows() is None  # overflow stays


def test_each_task_keeps_its_share_of_the_anomalous_rows():
    """Workers start from the accumulator's zero: with 2 tasks, each keeps at most half of MAX_ANOMALIES rows, so
    that the tasks' results stay near it whatever the partitions; the driver's summary keeps them all."""
    from lakewatch.monitoring.pass_summary import MAX_ANOMALIES, _Merge

    driver = PassSummary.of(COLS, EDGES, [0.5])
    driver.task_cap = MAX_ANOMALIES // 2
    task = _Merge().zero(driver)
    assert (task.cap, driver.cap) == (MAX_ANOMALIES // 2, MAX_ANOMALIES)
    half = anomalies(MAX_ANOMALIES // 2)
    task.merge(PassSummary(task.features.empty(), task.score.empty(), anomalies=[half]))
    assert not task.overflow and driver.merge(task).n_anomalies == MAX_ANOMALIES // 2
    task.merge(PassSummary(task.features.empty(), task.score.empty(), anomalies=[anomalies(1)]))
    assert task.overflow  # one more than its share
