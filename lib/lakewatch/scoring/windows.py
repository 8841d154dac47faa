"""Causal windows over rows sorted by (entity, ts): pure numpy, shared by training, scoring and tests.

The window of a row is the at most `context` most recent rows of the same entity whose timestamps lie in
(ts - horizon, ts], the row itself last. Bounding it in time as well as in count makes a score depend only
on the data of the horizon before it: a day scored alone gets exactly the windows it gets inside a longer
interval, whatever lies further back. A window with fewer rows than `context` (the entity's first rows, or
after a gap) is padded at its start with its earliest row and reported as warming up.

Windows are an index into the rows, (n, context) int32, so that a training set or a batch of many windows
costs 4 * context bytes per window until a mini-batch is materialised with `values[index]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_KEY_LIMIT = 2**62


def group_starts(codes: np.ndarray) -> np.ndarray:
    """For rows sorted by entity code: the position of the first row of each row's entity."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(codes[1:], codes[:-1], out=change[1:])
    firsts = np.flatnonzero(change)
    return firsts[np.cumsum(change) - 1]


def horizon_starts(codes: np.ndarray, ts: np.ndarray, horizon: "int | np.ndarray | None") -> np.ndarray:
    """The first row of each row's entity with a timestamp after ts - horizon (rows sorted by code, ts);
    horizon is one value or one per row (each entity its own, from its spacing)."""
    starts = group_starts(codes)
    if horizon is None or len(ts) == 0:
        return starts
    ts = ts.astype(np.int64, copy=False)
    h = np.broadcast_to(np.asarray(horizon, dtype=np.int64), ts.shape)
    rel = ts - ts.min()
    span = int(rel.max()) + int(h.max()) + 1
    dense = np.cumsum(np.concatenate([[0], codes[1:] != codes[:-1]])).astype(np.int64)
    if (int(dense[-1]) + 1) * span < _KEY_LIMIT:
        key = dense * span + rel  # sorted, since rows are sorted by (entity, ts)
        lows = np.searchsorted(key, key - h, side="right")
    else:  # too many entities over too long a span for one int64 key: one search per entity
        lows = np.empty(len(ts), dtype=np.int64)
        bounds = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1], [True]]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            lows[a:b] = a + np.searchsorted(ts[a:b], ts[a:b] - h[a:b], side="right")
    return np.maximum(starts, lows)


@dataclass(frozen=True)
class WindowIndex:
    """Windows of some rows: `index` (n, context) into the rows, and how many real rows each window has."""

    index: np.ndarray  # int32 (n, context), oldest first, the scored row last
    n_valid: np.ndarray  # int32 (n,): rows of the window that are real (the rest repeat the earliest)

    @property
    def warming_up(self) -> np.ndarray:
        return self.n_valid < self.index.shape[1]

    def __len__(self) -> int:
        return len(self.index)


def window_index(
    codes: np.ndarray, ts: np.ndarray, context: int, horizon: "int | np.ndarray | None",
    targets: np.ndarray | None = None,
) -> WindowIndex:
    """Windows ending at each target row (default: every row); rows sorted by (entity code, ts).

    codes: an integer (or any comparable) entity key per row; ts: int64 timestamps (any unit, the unit of
    horizon); horizon: one value, one per row, or None to bound windows by count only.
    """
    if context < 1:
        raise ValueError(f"context must be at least 1, got {context}")
    rows = np.arange(len(codes), dtype=np.int64) if targets is None else np.asarray(targets, dtype=np.int64)
    first = horizon_starts(codes, ts, horizon)[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    offsets = np.arange(context, dtype=np.int64) - (context - 1)
    index = np.maximum(rows[:, None] + offsets[None, :], first[:, None])
    n_valid = np.minimum(rows - first + 1, context)
    return WindowIndex(index.astype(np.int32), n_valid.astype(np.int32))


def gather(values: np.ndarray, windows: WindowIndex, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Materialise windows lo..hi as (m, context, d) float32."""
    return np.ascontiguousarray(values[windows.index[lo:hi]], dtype=np.float32)


def carry_rows(entity: pa.Array, context: int) -> tuple[int, int]:
    """(offset, length) of the rows of a sorted batch that the next batch may need as history: its last
    entity's last context - 1 rows (the next batch either goes on with that entity or starts another)."""
    n = len(entity)
    keep = min(n, context - 1)
    if keep <= 0:
        return n, 0
    tail = entity.slice(n - keep)
    n_same = int(pc.sum(pc.equal(tail, tail[keep - 1])).as_py() or 0)  # sorted: the last entity's rows are last
    return n - n_same, n_same
