"""models.relations: each feature predicted from the others at the same moment; expected values come from the
generating process, not from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from lakewatch.models.relations import LEVEL_CLIP, Relations, correlation_precision, fit_levels, fit_relations

NOISE = 0.2


def coupled(n: int, seed: int) -> np.ndarray:
    """Four features that follow one load with their own noise (sd NOISE)."""
    rng = np.random.default_rng(seed)
    load = rng.standard_normal(n)
    return np.column_stack([a * load + rng.normal(scale=NOISE, size=n) for a in (1.0, 0.8, -1.2, 0.5)])


def test_a_feature_off_its_relation_stands_out_though_its_value_is_ordinary():
    rel = fit_relations(coupled(4000, 0))
    normal = rel.residuals(coupled(2000, 1))
    assert np.median(normal) < 1.0 and np.quantile(normal, 0.999) < 4.5  # residuals in their usual units

    x = coupled(200, 2)
    decoupled = x.copy()
    decoupled[:, 1] = -x[:, 1]  # same marginal distribution, opposite relation to the load
    loud = np.abs(x[:, 1]) > 1.0
    e = rel.residuals(decoupled[loud])
    assert (e.argmax(axis=1) == 1).all()  # the decoupled feature carries the largest residual
    assert np.median(e[:, 1]) > 5.0


def test_the_fit_ignores_anomalies_in_the_training_rows_and_clips_extreme_inputs():
    clean = fit_relations(coupled(4000, 0))
    dirty_rows = coupled(4000, 0)
    dirty_rows[::50, 2] += 30.0  # 2 % of rows with a far-off value in one feature
    dirty = fit_relations(dirty_rows)
    np.testing.assert_allclose(dirty.weights, clean.weights, atol=0.05)
    np.testing.assert_allclose(dirty.scale, clean.scale, rtol=0.15)
    x = coupled(1, 3)
    x[0, 0] = 1e6  # a spike in one feature moves the others' predictions by a bounded amount
    assert np.isfinite(dirty.residuals(x)).all() and dirty.residuals(x)[0, 1:].max() < 60


def test_one_feature_or_too_few_rows_is_an_error():
    with pytest.raises(ValueError, match="at least 2 features"):
        fit_relations(np.zeros((100, 1)))
    with pytest.raises(ValueError, match="more rows than features"):
        fit_relations(coupled(3, 0))


def test_the_precision_is_the_inverse_correlation_of_the_rows_and_ignores_a_few_far_off_ones():
    rng = np.random.default_rng(0)
    sd = np.array([1.0, 2.0, 0.5])
    corr = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, -0.2], [-0.3, -0.2, 1.0]])  # the generating correlation
    rows = rng.multivariate_normal(np.zeros(3), corr * np.outer(sd, sd), size=20000)
    expected = np.linalg.inv(corr)
    np.testing.assert_allclose(correlation_precision(rows, ridge=0.0), expected, rtol=0.1, atol=0.1)
    dirty = rows.copy()
    dirty[::100, 0] += 40.0  # 1 % of rows with one far-off value
    np.testing.assert_allclose(correlation_precision(dirty, ridge=0.0), expected, rtol=0.1, atol=0.1)
    with pytest.raises(ValueError, match="more rows than features"):
        correlation_precision(rows[:3])


def test_a_feature_whose_errors_never_move_is_read_as_uncorrelated_not_as_infinitely_precise():
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.standard_normal(5000), np.zeros(5000)])
    idle = correlation_precision(rows, ridge=0.0)
    np.testing.assert_allclose(idle, np.eye(2), atol=0.05)
    # an idle metric: still most of the time, now and then a usual move with the first feature's sign
    rows[::7, 1] = 0.4 * np.sign(rows[::7, 0])
    expected = np.linalg.inv(np.corrcoef(rows, rowvar=False))
    assert expected[0, 1] < -0.2
    moving = correlation_precision(rows, ridge=0.0)
    np.testing.assert_allclose(moving, expected, atol=0.03)  # its moves are its scale, not outliers trimmed away


def with_levels(n: int, wave: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised residuals at a scored point (n, 2) and of its 32 earlier points (n, 32, 2), each of sd 1: the
    first feature's are a level of its own (sd `wave`, the same at the earlier points) and noise, the second's only
    noise."""
    rng = np.random.default_rng(seed)
    noise = np.array([np.sqrt(1.0 - wave**2), 1.0])
    level = np.column_stack([wave * rng.standard_normal(n), np.zeros(n)])
    return level + noise * rng.standard_normal((n, 2)), level[:, None] + noise * rng.standard_normal((n, 32, 2))


def test_levels_take_out_a_features_own_slow_movement_and_leave_a_feature_without_one_alone():
    base = Relations(np.zeros((2, 2)), np.zeros(2), np.ones(2))
    z, earlier = with_levels(20000, 0.8, 0)
    rel = fit_levels(base, z, base.level(earlier))
    assert rel.level_weight[0] > 0.5 and rel.level_weight[1] < 0.15  # 0 up to the noise of a fit (sd ~0.05)
    # what is left of the first is about its noise, sd 0.6 of 1 (and the level's error); the second keeps its scale
    assert rel.level_scale[0] < 0.75
    assert rel.level_scale[1] == pytest.approx(1.0, rel=0.05)
    z2, earlier2 = with_levels(5000, 0.8, 1)
    decoupled = z2 + 2.0  # each scored point 2 of its former scales off what the others predict
    left = rel.leveled(decoupled, rel.level(earlier2))
    assert np.median(np.abs(left[:, 0])) > 1.25 * np.median(np.abs(decoupled[:, 0]))
    assert np.median(np.abs(left[:, 1])) == pytest.approx(np.median(np.abs(decoupled[:, 1])), rel=0.1)

    # an anomaly over all the earlier points (each 50 scales off) moves the level by 2 LEVEL_CLIP at most
    far = earlier2.copy()
    far[:, :, 0] += 50.0
    shift = rel.level(far)[:, 0] - rel.level(earlier2)[:, 0]
    assert shift.max() <= 2 * LEVEL_CLIP


def test_levels_of_training_anomalies_do_not_set_the_coefficient():
    base = Relations(np.zeros((2, 2)), np.zeros(2), np.ones(2))
    z, earlier = with_levels(20000, 0.0, 0)  # no level of their own: the coefficient is about 0
    z[::50, 1] += 30.0  # 2 % of scored points far off, with levels that happen to be high
    earlier[::50, :, 1] += 1.0
    rel = fit_levels(base, z, base.level(earlier))
    assert rel.level_weight.max() < 0.15  # without the trimming: 1


def test_the_coefficient_on_a_level_is_the_least_squares_one_of_the_rows_kept():
    base = Relations(np.zeros((2, 2)), np.zeros(2), np.ones(2))
    z, earlier = with_levels(20000, 0.3, 2)
    z[:, 0] *= 0.5  # half the level its earlier points have: a least-squares coefficient inside (0, 1)
    level = base.level(earlier)
    z[:100, 0] += 40.0  # far-off points, trimmed
    rel = fit_levels(base, z, level)
    kept = np.abs(z[:, 0]) < 10.0
    expected = np.linalg.lstsq(level[kept, :1], z[kept, 0], rcond=None)[0][0]
    assert 0.0 < expected < 1.0
    assert rel.level_weight[0] == pytest.approx(expected, rel=1e-9)
