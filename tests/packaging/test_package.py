"""packaging.package: a package saved by older code loads as it was trained."""

from __future__ import annotations

import json

import numpy as np
from safetensors.torch import save as save_safetensors

from lakewatch.models.base import WindowSet
from lakewatch.models.tcn import TCNConfig, TCNDetector
from lakewatch.packaging.package import ModelPackage, member_file
from lakewatch.scoring.windows import window_index

W = 16


def saved_without(config: TCNConfig, field: str, fitted_state: str) -> tuple[TCNDetector, ModelPackage, np.ndarray]:
    """A trained `tcn` (3 features) and its package as code from before `field` saved it: the config lacks the key
    and the members lack the state `fitted_state` that today's default would fit; and rows to score."""
    trained = TCNDetector(3, config)
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((600, 3)).astype(np.float32)
    codes, ts = np.zeros(len(rows), dtype=np.int64), np.arange(len(rows), dtype=np.int64) * 300_000_000
    trained.fit(WindowSet(rows, window_index(codes, ts, W, None)), seed=1)
    saved = config.model_dump(mode="json")
    del saved[field]  # what the older code wrote
    states = trained.state()
    assert all(fitted_state not in s for s in states)
    manifest = {"features": [{"name": f"f{j}"} for j in range(3)],
                "model": {"type": "tcn", "config": saved, "members": [member_file(k) for k in range(len(states))]}}
    package = ModelPackage(json.dumps(manifest).encode(),
                           {member_file(k): save_safetensors(s) for k, s in enumerate(states)})
    return trained, package, rows[None, -W:]


def test_a_package_saved_before_a_config_field_existed_loads_with_the_value_it_was_trained_with():
    """A `tcn` package from before `forecast_errors`: its config lacks the key and its members lack the fitted
    `error_precision`; it loads as the `independent` detector it was, and scores as that detector did."""
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "level"], forecast_errors="independent")
    trained, package, windows = saved_without(config, "forecast_errors", "error_precision")
    loaded = package.detector()
    assert loaded.config.forecast_errors == "independent" and not loaded.correlated
    np.testing.assert_array_equal(loaded.score(windows).score, trained.score(windows).score)


def test_a_package_saved_before_relational_levels_loads_without_them():
    """A `tcn` package from before `relational_level` (relational evidence, correlated forecast errors): it loads
    without levels, as it was trained, and its relational evidence is what it was."""
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "relational"], relational_level=False)
    trained, package, windows = saved_without(config, "relational_level", "relate_level_weight")
    loaded = package.detector()
    assert not loaded.config.relational_level and not loaded.leveled and loaded.correlated
    np.testing.assert_array_equal(loaded.score(windows).signals, trained.score(windows).signals)
