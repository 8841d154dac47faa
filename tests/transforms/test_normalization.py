"""Normalisation as a fitted transform: robust location and scale per entity, floors, unseen entities, the sidecar."""

import numpy as np
import pyarrow as pa
import pytest
from lakewatch.transforms.normalization import CLIP, FeatureStats, NormalizationConfig, Normalizer


def stats(median, iqr, mean, std, count):
    a = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    return FeatureStats(np.asarray(count), a(median), a(iqr), a(mean), a(std))


PER_ENTITY = stats([[90.0, 5.0], [10.0, 5.0]], [[2.698, 0.0], [1.349, 0.0]], [[90.0, 5.0], [10.0, 5.0]],
                   [[2.0, 0.0], [1.0, 0.0]], [100, 100])
OVERALL = stats([[50.0, 5.0]], [[80.0, 0.0]], [[50.0, 5.0]], [[40.0, 0.0]], [200])


def test_each_entity_gets_its_own_median_and_iqr_scale():
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot", "cold"], dtype=object), PER_ENTITY, OVERALL,
                       NormalizationConfig())
    z, unseen = n.apply(np.array([[92.0, 5.0], [12.0, 5.0]]), pa.array(["hot", "cold"]))
    # 92 against hot's median 90 and scale 2.698/1.349 = 2; 12 against cold's 10 and scale 1
    assert z[:, 0].tolist() == pytest.approx([1.0, 2.0])
    assert not unseen.any()


def test_a_flat_feature_is_floored_not_divided_by_zero():
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot", "cold"], dtype=object), PER_ENTITY, OVERALL,
                       NormalizationConfig(floor_rel=0.01))
    # flat: IQR 0, std 0, global scale: IQR 0 and std 0 -> 1; floored to 0.01 x 1
    z, _ = n.apply(np.array([[90.0, 5.5]]), pa.array(["hot"]))
    assert z[0, 1] == pytest.approx(50.0)
    assert np.isfinite(z).all()


def test_an_unseen_entity_falls_back_to_the_global_statistics():
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot", "cold"], dtype=object), PER_ENTITY, OVERALL,
                       NormalizationConfig())
    z, unseen = n.apply(np.array([[50.0 + 80.0 / 1.349, 5.0]]), pa.array(["new"]))
    assert unseen.tolist() == [True]
    assert z[0, 0] == pytest.approx(1.0)


def test_global_scope_and_moments():
    cfg = NormalizationConfig(scope="global", statistic="moments")
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot", "cold"], dtype=object), PER_ENTITY, OVERALL, cfg)
    z, unseen = n.apply(np.array([[90.0, 5.0]]))
    assert z[0].tolist() == pytest.approx([1.0, 0.0])  # (90 - 50) / 40; flat: std 0 -> 1
    assert not unseen.any() and not n.needs_entity


def test_extreme_values_are_clipped_finite():
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot"], dtype=object), stats([[0, 0]], [[1e-9, 0]], [[0, 0]],
                       [[0, 0]], [10]), OVERALL, NormalizationConfig(floor_std=0, floor_rel=0))
    z, _ = n.apply(np.array([[3e38, -3e38]]), pa.array(["hot"]))
    assert z[0].tolist() == [CLIP, -CLIP]


def test_the_arrow_sidecar_round_trips():
    n = Normalizer.fit(["cpu", "flat"], np.array(["hot", "cold"], dtype=object), PER_ENTITY, OVERALL,
                       NormalizationConfig())
    back = Normalizer.from_manifest(n.manifest_entry("normalization.arrow"), n.to_arrow_bytes())
    x, ent = np.array([[91.0, 5.2], [11.0, 4.0], [3.0, 3.0]]), pa.array(["hot", "cold", "zz"])
    assert np.array_equal(back.apply(x, ent)[0], n.apply(x, ent)[0])
    assert back.entities.to_pylist() == ["hot", "cold"]
