"""models.relations: each feature predicted from the others at the same moment; expected values come from the
generating process, not from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from lakewatch.models.relations import fit_precision, fit_relations

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


def test_the_precision_is_the_inverse_covariance_of_the_rows_and_ignores_a_few_far_off_ones():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, -0.3], [0.8, 1.0, -0.2], [-0.3, -0.2, 0.5]])  # the generating covariance
    rows = rng.multivariate_normal(np.zeros(3), cov, size=20000)
    np.testing.assert_allclose(fit_precision(rows, ridge=0.0), np.linalg.inv(cov), rtol=0.1, atol=0.1)
    dirty = rows.copy()
    dirty[::100, 0] += 40.0  # 1 % of rows with one far-off value
    np.testing.assert_allclose(fit_precision(dirty, ridge=0.0), np.linalg.inv(cov), rtol=0.15, atol=0.15)
    with pytest.raises(ValueError, match="more rows than features"):
        fit_precision(rows[:3])
