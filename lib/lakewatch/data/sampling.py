"""The training sample: contiguous blocks of each entity's valid rows, some for training, some held out.

An entity's time line is cut into blocks (of `block_points` rows at its spacing); a block is drawn (with each
entity's share of `size`), and a drawn block is held out with probability `holdout_fraction`, both by hashes
of (seed, entity, block): deterministic for a seed, whatever the partitioning (and on the driver, `hold_out_one`
gives every entity of a few blocks at least one held out). The rows of a drawn block are
targets; the rows within the entity's window horizon before it come along as the history of its first
windows (targets of no split).
`sample_windows` then indexes every target row's window once and marks the splits that may use it: no training
window sees a held-out row and no held-out window sees a training row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

from lakewatch.scoring.windows import WindowIndex, window_index

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TWO_53 = float(2**53)
UNUSED, TRAIN, HOLDOUT = 0, 1, 2
MIN_BLOCKS_TO_HOLD = 2  # an entity with fewer drawn blocks is held out by hash alone


def hash_uniform(seed: int, *cols: str | Column) -> Column:
    """A deterministic uniform [0, 1) per row, the same whatever the partitioning."""
    parts = [F.col(c) if isinstance(c, str) else c for c in cols]
    return F.pmod(F.xxhash64(F.lit(seed), *parts), F.lit(2**53)).cast("double") / F.lit(TWO_53)


def block_sample(valid: "DataFrame", size: int, holdout_fraction: float, seed: int,
                 timing: "DataFrame") -> "DataFrame":
    """The sampled rows with their history: the input columns plus `split` (its block's: UNUSED, TRAIN or
    HOLDOUT) and `target` (whether its block was drawn).

    timing: (entity, block_s, horizon_s) of every entity: how long its blocks are and how far back its
    windows reach (each entity its own, from the spacing of its rows); a block is at least a horizon long.
    """
    epoch = F.unix_micros("ts").cast("double") / 1e6
    block = F.floor(epoch / F.col("_block_s"))
    next_block = F.floor((epoch + F.col("_horizon_s")) / F.col("_block_s"))
    counts = valid.groupBy("entity").agg(F.count(F.lit(1)).alias("_n"))
    n_entities = max(1, counts.count())
    per_entity = counts.join(timing, "entity").select(
        "entity", F.least(F.lit(1.0), F.lit(size / n_entities) / F.col("_n")).alias("_frac"),
        F.greatest(F.col("block_s"), F.col("horizon_s"), F.lit(1.0)).alias("_block_s"),
        F.col("horizon_s").alias("_horizon_s"))

    def drawn(b: Column) -> Column:
        return hash_uniform(seed, F.col("entity"), b) < F.col("_frac")

    def split(b: Column) -> Column:
        held = hash_uniform(seed + 1, F.col("entity"), b) < F.lit(holdout_fraction)
        return F.when(~drawn(b), F.lit(UNUSED)).when(held, F.lit(HOLDOUT)).otherwise(F.lit(TRAIN))

    rows = valid.join(F.broadcast(per_entity), "entity").select(
        "*", block.alias("_block"), next_block.alias("_next"))
    rows = rows.where(drawn(F.col("_block")) | ((F.col("_next") != F.col("_block")) & drawn(F.col("_next"))))
    return rows.select(*[c for c in valid.columns], split(F.col("_block")).alias("split"),
                       drawn(F.col("_block")).alias("target"), F.col("_block").cast("long").alias("block"))


def hold_out_one(codes: np.ndarray, block: np.ndarray, split: np.ndarray, target: np.ndarray,
                 min_blocks: int = MIN_BLOCKS_TO_HOLD) -> np.ndarray:
    """`split` (of rows sorted by entity, ts) with, for each entity that drew at least `min_blocks` blocks and
    held none out, its latest drawn block held out.

    Holding blocks out by hash leaves an entity of a few blocks with none held out now and then (five blocks at
    0.2: one entity in three); what it learned is then calibrated only by the global tail, not its own. The
    latest block is the one most like the data it will score, and windows look back: no training window
    sees it. Vectorised over entities (a sample may hold many thousands)."""
    out = split.copy()
    t = np.flatnonzero(target)
    if len(t) == 0:
        return out
    c, b = codes[t], block[t]
    new_entity = np.concatenate([[True], c[1:] != c[:-1]])
    starts = np.flatnonzero(new_entity)
    entity = np.cumsum(new_entity) - 1
    held = np.logical_or.reduceat(split[t] == HOLDOUT, starts)
    n_blocks = np.add.reduceat(new_entity | np.concatenate([[True], b[1:] != b[:-1]]), starts)
    latest = np.maximum.reduceat(b, starts)
    hold = (~held & (n_blocks >= min_blocks))[entity] & (b == latest[entity])
    out[t[hold]] = HOLDOUT
    return out


@dataclass(frozen=True)
class SampleWindows:
    """Every target row's window over the sampled rows (sorted by entity, ts), and which split may use it: a
    training window holds no held-out row and a held-out window no training row."""

    windows: WindowIndex
    rows: np.ndarray  # the target row of each window
    train: np.ndarray  # bool per window
    held: np.ndarray  # bool per window

    def where(self, mask: np.ndarray) -> WindowIndex:
        return WindowIndex(self.windows.index[mask], self.windows.n_valid[mask])


def sample_windows(codes: np.ndarray, ts: np.ndarray, split: np.ndarray, target: np.ndarray, context: int,
                   horizon: "int | np.ndarray | None") -> SampleWindows:
    """The window ending at each target row, indexed once, with the splits that may use it."""
    rows = np.flatnonzero(target)
    win = window_index(codes, ts, context, horizon, rows)
    at = split[rows]
    return SampleWindows(win, rows, (at == TRAIN) & within_split(split, win.index, TRAIN),
                         (at == HOLDOUT) & within_split(split, win.index, HOLDOUT))


def within_split(split: np.ndarray, index: np.ndarray, which: int) -> np.ndarray:
    """Whether each window (`index`, rows of the sample) holds no row of a split other than `which`."""
    inside = split[index]
    return np.all((inside == which) | (inside == UNUSED), axis=1)
