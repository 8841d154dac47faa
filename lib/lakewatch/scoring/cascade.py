"""The statistical first stage of a cascade: native Spark expressions that pick the rows worth a model's time.

Every row gets, from the package's own per-entity statistics (the normalisation's location and scale, the
time-of-day profile when the package has one), the robust z of each feature against its entity and against
its hour, and the range of each feature over its last `flat_points` points in units of its scale. A row is a
candidate when any feature is `gate_sigmas` away from either, or has stayed within `flat_range` (stuck);
the model then scores the candidates only, each with the rows before it that its window needs, and the
other rows are written unscored: `score`, `calibrated`, `uncertainty` and `warming_up` null, not anomalous.

Computed where the rows are (a broadcast join with the entity statistics and one window over each entity's
rows, sorted once): no row crosses to Python unless it is a candidate or in a candidate's window. The gate
can only lose recall, never add alarms; `evaluate` reports its pass rate and recall (`gate_*` metrics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakewatch.config import CascadeSettings
from lakewatch.packaging.package import ModelPackage

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

CANDIDATE = "_candidate"
NEEDED = "_needed"
_US_PER_DAY = 86_400_000_000


def _statistics(df: "DataFrame", package: ModelPackage) -> tuple["DataFrame | None", bool]:
    """(entity, _loc{j}, _scale{j}, _season{j} array of bin medians, _sscale{j}) of the package's entities, and
    whether it has a seasonal profile; None when the normalisation is global and there is no profile."""
    m = package.manifest["transforms"]
    per_entity = m["normalization"]["scope"] == "entity"
    seasonal = m.get("seasonal")
    if not per_entity and not seasonal:
        return None, False
    table = package.entity_table()
    cols = {"entity": table.column("entity").to_pylist()}
    for j, f in enumerate(package.features):
        if per_entity:
            cols[f"_loc{j}"] = table.column(f"loc:{f}").to_pylist()
            cols[f"_scale{j}"] = table.column(f"scale:{f}").to_pylist()
        if seasonal:
            bins = int(seasonal["bins"])
            medians = [table.column(f"season:{f}:{k}").to_pylist() for k in range(bins)]
            cols[f"_season{j}"] = [list(v) for v in zip(*medians)] if medians else []
            cols[f"_sscale{j}"] = table.column(f"season_scale:{f}").to_pylist()
    import pandas as pd

    return df.sparkSession.createDataFrame(pd.DataFrame(cols)), bool(seasonal)


def gate(df: "DataFrame", package: ModelPackage, cascade: CascadeSettings) -> "DataFrame":
    """df (entity, ts, ...features as double) with CANDIDATE (the row passes the gate) and NEEDED (a candidate,
    or a row some candidate's window reaches back to: within the model's context rows before it)."""
    features = package.features
    norm = package.manifest["transforms"]["normalization"]
    g_loc, g_scale = norm["global_loc"], norm["global_scale"]
    stats, seasonal = _statistics(df, package)
    rows = df if stats is None else df.join(F.broadcast(stats), "entity", "left")
    known = F.col("_scale0").isNotNull() if stats is not None and norm["scope"] == "entity" else F.lit(False)
    by_entity = Window.partitionBy("entity").orderBy("ts")
    recent = by_entity.rowsBetween(-(cascade.flat_points - 1), 0)
    full = F.count(F.lit(1)).over(recent) >= cascade.flat_points
    tests: list["Column"] = []
    for j, f in enumerate(features):
        x = F.col(f)
        loc = F.when(known, F.col(f"_loc{j}")).otherwise(F.lit(float(g_loc[j])))
        scale = F.when(known, F.col(f"_scale{j}")).otherwise(F.lit(float(g_scale[j])))
        tests.append(F.abs(x - loc) >= F.lit(cascade.gate_sigmas) * scale)
        if seasonal:
            bins = int(package.manifest["transforms"]["seasonal"]["bins"])
            b = (F.pmod(F.unix_micros("ts"), F.lit(_US_PER_DAY)) * bins / _US_PER_DAY).cast("int")
            median = F.element_at(F.col(f"_season{j}"), b + 1)
            far = F.abs(x - median) >= F.lit(cascade.gate_sigmas) * F.col(f"_sscale{j}")
            tests.append(F.coalesce(far, F.lit(False)))  # an entity without a profile: residuals of zero
        moved = F.max(x).over(recent) - F.min(x).over(recent)
        tests.append(full & (moved <= F.lit(cascade.flat_range) * scale))
    candidate = tests[0]
    for t in tests[1:]:
        candidate = candidate | t
    context = package.context
    marked = rows.withColumn(CANDIDATE, candidate)
    ahead = F.max(F.col(CANDIDATE).cast("int")).over(by_entity.rowsBetween(0, context - 1)) > 0
    return marked.withColumn(NEEDED, ahead if context > 1 else F.col(CANDIDATE)).select(
        *df.columns, CANDIDATE, NEEDED)
