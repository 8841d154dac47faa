"""Causal windows on sorted rows: count and time bounds, padding, targets, and what a batch carries over."""

import numpy as np
import pyarrow as pa

from lakewatch.scoring.windows import carry_rows, group_starts, horizon_starts, window_index

# two entities; entity 0 has a gap of 100 between its 3rd and 4th rows
CODES = np.array([0, 0, 0, 0, 0, 1, 1, 1])
TS = np.array([0, 10, 20, 120, 130, 0, 10, 20])


def test_group_starts():
    assert group_starts(CODES).tolist() == [0, 0, 0, 0, 0, 5, 5, 5]


def test_count_bounded_windows_are_padded_with_the_earliest_row():
    w = window_index(CODES, TS, 3, None)
    assert w.index.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [5, 5, 5], [5, 5, 6], [5, 6, 7]]
    assert w.n_valid.tolist() == [1, 2, 3, 3, 3, 1, 2, 3]
    assert w.warming_up.tolist() == [True, True, False, False, False, True, True, False]


def test_the_horizon_cuts_windows_at_a_gap():
    # horizon 50: row 3 (ts 120) sees only rows with ts in (70, 120]: itself; row 4 sees rows 3 and 4
    assert horizon_starts(CODES, TS, 50).tolist() == [0, 0, 0, 3, 3, 5, 5, 5]
    w = window_index(CODES, TS, 3, 50)
    assert w.index[3].tolist() == [3, 3, 3] and w.n_valid[3] == 1
    assert w.index[4].tolist() == [3, 3, 4] and w.n_valid[4] == 2


def test_many_entities_over_a_long_span_take_the_slow_path_with_the_same_result():
    rng = np.random.default_rng(1)
    codes = np.repeat(np.arange(50), 20)
    ts = np.concatenate([np.sort(rng.integers(0, 10**17, 20)) for _ in range(50)])
    fast = horizon_starts(codes, ts, 10**15)
    expected = [max(np.searchsorted(ts[c * 20:(c + 1) * 20], t - 10**15, side="right") + c * 20, c * 20)
                for c, t in zip(codes, ts)]
    assert fast.tolist() == expected


def test_targets_choose_the_rows_windows_end_at():
    w = window_index(CODES, TS, 2, None, targets=np.array([4, 7]))
    assert w.index.tolist() == [[3, 4], [6, 7]]


def test_carry_keeps_the_last_entity_rows_a_window_may_need():
    entity = pa.array(["a", "a", "a", "b", "b", "b", "b"])
    assert carry_rows(entity, 3) == (5, 2)
    assert carry_rows(entity, 10) == (3, 4)  # only b's rows: a is over
    assert carry_rows(entity, 1) == (7, 0)
    assert carry_rows(pa.array(["a", "b"]), 5) == (1, 1)
