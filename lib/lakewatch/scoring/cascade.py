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

from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from lakewatch.config import CascadeSettings
from lakewatch.packaging.package import ModelPackage
from lakewatch.transforms.fitting import time_of_day_bin
from lakewatch.transforms.normalization import Normalizer
from lakewatch.transforms.seasonal import SeasonalProfile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

CANDIDATE = "_candidate"
NEEDED = "_needed"


def _statistics(df: "DataFrame", package: ModelPackage) -> tuple["DataFrame | None", int]:
    """(entity, _loc{j}, _scale{j}, _season{j} array of bin medians, _sscale{j}) of the package's entities, read
    through the transforms the plan applies (`Normalizer`, `SeasonalProfile`), and the profile's bins (0: none);
    None when the normalisation is global and there is no profile."""
    m = package.manifest["transforms"]
    table = package.entity_table()
    norm = Normalizer.from_manifest(m["normalization"], table)
    profile = (SeasonalProfile.from_table(package.features, int(m["seasonal"]["bins"]), table)
               if m.get("seasonal") else None)
    if not norm.needs_entity and profile is None:
        return None, 0
    cols: dict[str, list] = {"entity": table.column("entity").to_pylist()}
    for j in range(len(package.features)):
        if norm.needs_entity:
            cols[f"_loc{j}"], cols[f"_scale{j}"] = norm.loc[:, j].tolist(), norm.scale[:, j].tolist()
        if profile is not None:
            cols[f"_season{j}"], cols[f"_sscale{j}"] = profile.median[:, :, j].tolist(), profile.scale[:, j].tolist()
    import pandas as pd

    return df.sparkSession.createDataFrame(pd.DataFrame(cols)), profile.bins if profile is not None else 0


def gate(df: "DataFrame", package: ModelPackage, cascade: CascadeSettings) -> "DataFrame":
    """df (entity, ts, ...features as double) with CANDIDATE (the row passes the gate) and NEEDED (a candidate,
    or a row some candidate's window reaches back to: within the model's context rows before it)."""
    norm = package.manifest["transforms"]["normalization"]
    g_loc, g_scale = norm["global_loc"], norm["global_scale"]
    stats, bins = _statistics(df, package)
    rows = df if stats is None else df.join(F.broadcast(stats), "entity", "left")
    # an entity training did not see has no statistics of its own: the global ones, as in the plan
    known = F.col("_scale0").isNotNull() if stats is not None and norm["scope"] == "entity" else F.lit(False)
    by_entity = Window.partitionBy("entity").orderBy("ts")
    recent = by_entity.rowsBetween(-(cascade.flat_points - 1), 0)
    full = F.count(F.lit(1)).over(recent) >= cascade.flat_points
    slot = time_of_day_bin(F.col("ts"), bins) + 1 if bins else None
    far = F.lit(cascade.gate_sigmas)
    tests: list["Column"] = []
    for j, f in enumerate(package.features):
        x = F.col(f)
        loc = F.when(known, F.col(f"_loc{j}")).otherwise(F.lit(float(g_loc[j])))
        scale = F.when(known, F.col(f"_scale{j}")).otherwise(F.lit(float(g_scale[j])))
        tests.append(F.abs(x - loc) >= far * scale)
        if slot is not None:
            off_hour = F.abs(x - F.element_at(F.col(f"_season{j}"), slot)) >= far * F.col(f"_sscale{j}")
            tests.append(F.coalesce(off_hour, F.lit(False)))  # an entity without a profile: residuals of zero
        moved = F.max(x).over(recent) - F.min(x).over(recent)
        tests.append(full & (moved <= F.lit(cascade.flat_range) * scale))
    candidate = reduce(lambda a, b: a | b, tests)
    marked = rows.withColumn(CANDIDATE, candidate)
    context = package.context
    ahead = F.max(F.col(CANDIDATE).cast("int")).over(by_entity.rowsBetween(0, context - 1)) > 0
    return marked.withColumn(NEEDED, ahead if context > 1 else F.col(CANDIDATE)).select(
        *df.columns, CANDIDATE, NEEDED)
