"""What training learned about each entity, kept in the package as one Arrow file: who they are, and how far
apart their rows are.

`EntityIndex` finds each row's entity among those seen at training (one hash lookup per batch, in Arrow);
`Spacing` is each entity's typical time between rows, which bounds how far back its causal windows reach:
a series measured hourly and one measured every five minutes both get windows of `context` rows. An entity
unseen at training gets the global values (and is counted). The per-entity normalisation statistics live in
the same file (transforms.normalization).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ENTITIES_FILE = "entities.arrow"


@dataclass(frozen=True)
class Located:
    """The position of each row's entity in the index (0 where unseen) and whether it was unseen."""

    pos: np.ndarray
    unseen: np.ndarray


@dataclass(frozen=True)
class EntityIndex:
    """The entities seen at training, in the order of every per-entity array of the package."""

    names: pa.Array

    def __len__(self) -> int:
        return len(self.names)

    def locate(self, entity: "pa.Array | np.ndarray | None", n: int) -> Located:
        if entity is None or len(self.names) == 0:
            return Located(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
        keys = entity if isinstance(entity, (pa.Array, pa.ChunkedArray)) else pa.array(list(entity), pa.string())
        found = pc.index_in(keys.cast(pa.string()), value_set=self.names)
        unseen = found.is_null().to_numpy(zero_copy_only=False)
        pos = found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return Located(pos, unseen)


@dataclass(frozen=True)
class Spacing:
    """Each entity's typical spacing of rows in seconds, and the global one (the median over entities)."""

    seconds: np.ndarray  # (m,)
    global_seconds: float

    def per_row(self, located: Located) -> np.ndarray:
        if len(self.seconds) == 0:
            return np.full(len(located.pos), self.global_seconds)
        return np.where(located.unseen, self.global_seconds, self.seconds[located.pos])

    def horizons_us(self, located: Located, context: int, factor: float, cap_us: int | None) -> np.ndarray:
        """How far back each row's window reaches: context x spacing x factor, at most cap_us."""
        h = np.rint(self.per_row(located) * context * factor * 1e6).astype(np.int64)
        return h if cap_us is None else np.minimum(h, cap_us)


def to_arrow_bytes(index: EntityIndex, columns: dict[str, np.ndarray]) -> bytes:
    """The entity file: entity names and one float64 column per per-entity statistic."""
    table = pa.Table.from_arrays([index.names, *[pa.array(v, pa.float64()) for v in columns.values()]],
                                 names=["entity", *columns])
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def read_arrow_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_file(io.BytesIO(data)).read_all()
