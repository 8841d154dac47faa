"""Normalisation as a fitted transform: robust location and scale per entity, floors, unseen entities, the
entity file; and each entity's spacing, which bounds its windows."""

import numpy as np
import pyarrow as pa
import pytest

from lakewatch.transforms.entities import EntityIndex, Spacing, read_arrow_bytes, to_arrow_bytes
from lakewatch.transforms.normalization import CLIP, FeatureStats, NormalizationConfig, Normalizer


def stats(median, iqr, mean, std, count):
    a = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    return FeatureStats(np.asarray(count), a(median), a(iqr), a(mean), a(std))


INDEX = EntityIndex(pa.array(["hot", "cold"]))
PER_ENTITY = stats([[90.0, 5.0], [10.0, 5.0]], [[2.698, 0.0], [1.349, 0.0]], [[90.0, 5.0], [10.0, 5.0]],
                   [[2.0, 0.0], [1.0, 0.0]], [100, 100])
OVERALL = stats([[50.0, 5.0]], [[80.0, 0.0]], [[50.0, 5.0]], [[40.0, 0.0]], [200])


def normalize(n: Normalizer, x, entities):
    located = INDEX.locate(pa.array(entities), len(entities))
    return n.apply(np.asarray(x, dtype=np.float64), located), located.unseen


def test_each_entity_gets_its_own_median_and_iqr_scale():
    n = Normalizer.fit(["cpu", "flat"], PER_ENTITY, OVERALL, NormalizationConfig())
    z, unseen = normalize(n, [[92.0, 5.0], [12.0, 5.0]], ["hot", "cold"])
    # 92 against hot's median 90 and scale 2.698/1.349 = 2; 12 against cold's 10 and scale 1
    assert z[:, 0].tolist() == pytest.approx([1.0, 2.0])
    assert not unseen.any()


def test_a_flat_feature_is_floored_not_divided_by_zero():
    n = Normalizer.fit(["cpu", "flat"], PER_ENTITY, OVERALL, NormalizationConfig(floor_rel=0.01))
    # flat: IQR 0, std 0, global scale: IQR 0 and std 0 -> 1; floored to 0.01 x 1
    z, _ = normalize(n, [[90.0, 5.5]], ["hot"])
    assert z[0, 1] == pytest.approx(50.0)
    assert np.isfinite(z).all()


def test_an_unseen_entity_falls_back_to_the_global_statistics():
    n = Normalizer.fit(["cpu", "flat"], PER_ENTITY, OVERALL, NormalizationConfig())
    z, unseen = normalize(n, [[50.0 + 80.0 / 1.349, 5.0]], ["new"])
    assert unseen.tolist() == [True]
    assert z[0, 0] == pytest.approx(1.0)


def test_global_scope_and_moments():
    n = Normalizer.fit(["cpu", "flat"], PER_ENTITY, OVERALL, NormalizationConfig(scope="global", statistic="moments"))
    z = n.apply(np.array([[90.0, 5.0]]))
    assert z[0].tolist() == pytest.approx([1.0, 0.0])  # (90 - 50) / 40; flat: std 0 -> 1
    assert not n.needs_entity and n.columns() == {}


def test_extreme_values_are_clipped_finite():
    flat = stats([[0, 0], [0, 0]], [[1e-9, 0], [1e-9, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]], [10, 10])
    n = Normalizer.fit(["cpu", "flat"], flat, OVERALL, NormalizationConfig(floor_std=0, floor_rel=0))
    z, _ = normalize(n, [[3e38, -3e38]], ["hot"])
    assert z[0].tolist() == [CLIP, -CLIP]


def test_the_entity_file_round_trips():
    n = Normalizer.fit(["cpu", "flat"], PER_ENTITY, OVERALL, NormalizationConfig())
    table = read_arrow_bytes(to_arrow_bytes(INDEX, {"spacing_s": np.array([300.0, 3600.0]), **n.columns()}))
    back = Normalizer.from_manifest(n.manifest_entry(), table)
    x, ent = [[91.0, 5.2], [11.0, 4.0], [3.0, 3.0]], ["hot", "cold", "zz"]
    assert np.array_equal(normalize(back, x, ent)[0], normalize(n, x, ent)[0])
    assert table.column("entity").to_pylist() == ["hot", "cold"]


def test_each_entity_has_its_own_spacing_and_window_horizon():
    spacing = Spacing(np.array([300.0, 3600.0]), 300.0)
    located = INDEX.locate(pa.array(["hot", "cold", "new"]), 3)
    assert spacing.per_row(located).tolist() == [300.0, 3600.0, 300.0]
    # 10 points, factor 2: 100 minutes for hot, 20 hours for cold (capped at 10 hours), the global for new
    cap = 10 * 3600 * 10**6
    assert spacing.horizons_us(located, 10, 2.0, cap).tolist() == [6_000 * 10**6, cap, 6_000 * 10**6]
