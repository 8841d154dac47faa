"""tcn's evidence beyond the forecast: a stuck metric shows in `flatline`, a level the metric is pinned at in
training (a floor) does not; `level` is the largest |value|; the forecast of seasonal residuals is not surprised
by what the time-of-day profile expects."""

from __future__ import annotations

import numpy as np
import pytest

from lakewatch.models.base import WindowSet
from lakewatch.models.flatness import sliding_ranges
from lakewatch.models.tcn import TCNConfig, TCNDetector
from lakewatch.scoring.windows import window_index

W, K = 16, 6


def detector(flat_mode: str = "exact") -> TCNDetector:
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "level", "flatline"], flat_points=K, flat_mode=flat_mode)
    return TCNDetector(2, config)


def noisy(n: int, seed: int) -> np.ndarray:
    """Two noisy features; the second sits exactly at its floor (-1) for 12 points in every 48."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32) * 0.5
    floor = (np.arange(n) % 48) < 12
    x[floor, 1] = -1.0
    return x


@pytest.mark.parametrize("flat_mode", ["exact", "range"])
def test_flatline_fires_on_a_stuck_metric_but_not_at_a_floor_it_sits_on(flat_mode):
    det = detector(flat_mode)
    train = noisy(960, 0)
    codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train, window_index(codes, ts, W, None)), seed=1)
    flatline = det.signal_names.index("flatline")

    test = noisy(3 * W, 5)
    stuck, at_floor, normal = test.copy(), test.copy(), test.copy()
    stuck[-K:, 0] = 0.3217  # metric 0 frozen at a value it never held still at
    at_floor[-K:, 1] = -1.0  # metric 1 at its usual floor
    at_floor[-K:, 0] = normal[-K:, 0]
    out = det.score(np.stack([w[-W:] for w in (stuck, at_floor, normal)]))
    s = out.signals[:, flatline]
    assert s[0] == pytest.approx(np.log(1000.0))  # log(usual range / 1e-3 of it): as flat as it gets
    assert s[1] < 2.0 and s[2] < 2.0
    assert np.argmax(out.contributions[0]) == 0  # the stuck metric carries the score


def test_a_quiet_stretch_is_graded_by_range_and_no_flatline_when_exact():
    quiet = noisy(3 * W, 5)
    quiet[-K:, 0] = 0.3217 + np.linspace(0.0, 0.002, K)  # 1/1000 of a noisy range, not one value
    signals = {}
    for mode in ("exact", "range"):
        det = detector(mode)
        train = noisy(960, 0)
        codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
        det.fit(WindowSet(train, window_index(codes, ts, W, None)), seed=1)
        signals[mode] = det.score(quiet[None, -W:]).signals[0, det.signal_names.index("flatline")]
    assert signals["exact"] == 0.0
    assert signals["range"] > 5.0

def test_level_is_the_largest_absolute_value_and_signals_follow_the_evidence_order():
    det = detector()
    train = noisy(960, 0)
    codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train, window_index(codes, ts, W, None)), seed=1)
    assert det.signal_names == ("forecast", "level", "flatline")
    window = noisy(W, 9)
    window[-1] = [0.2, -7.5]
    out = det.score(window[None])
    assert out.signals.shape == (1, 3)
    assert abs(out.signals[0, 1] - 7.5) < 1e-5
    assert abs(out.signals[0, 0] - out.score[0]) < 1e-12


def test_relational_evidence_needs_several_features_and_finds_a_decoupled_one():
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "level", "relational"], relational_points=1)
    assert TCNDetector(1, config).signal_names == ("forecast", "level")  # one feature relates to nothing
    det = TCNDetector(3, config)
    assert det.signal_names == ("forecast", "level", "relational")
    assert det.learned_signals == ("forecast", "relational") and det.signal_points("relational") == 1
    rng = np.random.default_rng(0)
    load = np.sin(np.arange(1200) / 20.0)
    train = np.column_stack([load, 0.8 * load, -load]) + rng.normal(scale=0.1, size=(1200, 3))
    codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train.astype(np.float32), window_index(codes, ts, W, None)), seed=1)
    window = train[-W:].copy()
    window[-1] = [0.9, 0.72, -0.9]
    decoupled = window.copy()
    decoupled[-1, 1] = -0.72  # an ordinary value of feature 1, with the wrong sign for the others
    out = det.score(np.stack([window, decoupled]).astype(np.float32))
    relational = out.signals[:, 2]
    assert relational[0] < 3.0 and relational[1] > 8.0
    assert np.argmax(out.contributions[1]) == 1


def test_the_residual_forecast_predicts_the_seasonal_residual_channels_not_the_values():
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "level", "seasonal"], forecast="residual")
    det = TCNDetector(2, config)
    assert det.target_offset == 2
    assert TCNDetector(2, config.model_copy(update={"forecast": "value"})).target_offset == 0
    assert TCNDetector(2, config.model_copy(update={"evidence": ["forecast", "level"]})).target_offset == 0
    rng = np.random.default_rng(0)
    train = rng.standard_normal((960, 4)).astype(np.float32) * 0.5  # 2 values, then their 2 residual channels
    codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train, window_index(codes, ts, W, None)), seed=1)
    window = train[-W:].copy()
    jumped = window.copy()
    jumped[-1, :2] += 6.0  # the values jump, as the profile expects at this hour: the residuals do not
    surprised = window.copy()
    surprised[-1, 2:] += 6.0
    out = det.score(np.stack([window, jumped, surprised]))
    forecast = out.signals[:, 0]
    assert forecast[1] == pytest.approx(forecast[0], rel=1e-5)
    assert forecast[2] > 10 * forecast[0]


def test_relational_evidence_averages_each_features_signed_residual_over_its_last_points():
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "relational"], relational_points=2, relational_level=False)
    det = TCNDetector(3, config)
    assert det.signal_points("relational") == 2
    rng = np.random.default_rng(0)
    load = np.sin(np.arange(1200) / 20.0)
    train = np.column_stack([load, 0.8 * load, -load]) + rng.normal(scale=0.1, size=(1200, 3))
    codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train.astype(np.float32), window_index(codes, ts, W, None)), seed=1)
    z = det._relations().standardized
    lasting, flipping = train[-W:].copy(), train[-W:].copy()
    lasting[-2:, 1] += 1.0  # off the others' prediction by the same amount, twice
    flipping[-2, 1] += 1.0
    flipping[-1, 1] -= 1.0  # off by as much, but with the sign changing: noise-like
    out = det.score(np.stack([lasting, flipping]).astype(np.float32))
    for k, w in enumerate((lasting, flipping)):
        expected = np.abs(z(w[-2:].astype(np.float32)).mean(axis=0)).max() * np.sqrt(2)
        assert out.signals[k, 1] == pytest.approx(expected, rel=1e-9)
    assert out.signals[0, 1] > 3 * out.signals[1, 1]


def test_relational_levels_take_out_a_slow_movement_of_one_feature_read_from_the_windows_first_half():
    config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=1, min_steps=5, calendar="none",
                       evidence=["forecast", "relational"], relational_points=1)
    det = TCNDetector(3, config)
    assert det.leveled and det.level_points == W // 2
    rng = np.random.default_rng(0)
    n = 6000
    load = rng.standard_normal(n)
    wave = 1.5 * np.sin(np.arange(n) * 2 * np.pi / 600)  # the third feature's own slow movement: period 600 points
    train = np.column_stack([load, 0.8 * load, -load + wave]) + rng.normal(scale=0.1, size=(n, 3))
    codes, ts = np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64) * 300_000_000
    det.fit(WindowSet(train.astype(np.float32), window_index(codes, ts, W, None)), seed=1)
    rel = det._relations()
    # the wave was most of the third feature's residual (1.5 / sqrt(2) against 0.1 of noise; what is left is mostly
    # its move over the half window the level lags by)
    assert rel.level_weight[2] > 0.5 and rel.level_scale[2] < 0.75
    assert rel.level_scale[2] < rel.level_scale[:2].min()

    z = rel.standardized(train[:, :3].astype(np.float32))
    window = train[-W:].astype(np.float32)
    raised_first, raised_second = window.copy(), window.copy()
    raised_first[:W // 2, 2] += 1.0  # the level the third feature had half a window ago
    raised_second[W // 2:-1, 2] += 1.0  # points after the level's: not read by relational evidence at all
    out = det.score(np.stack([window, raised_first, raised_second]))
    level = np.clip(z[-W:-W // 2], -1.0, 1.0).mean(axis=0)
    expected = np.abs((z[-1] - rel.level_weight * level) / rel.level_scale).max()
    assert out.signals[0, 1] == pytest.approx(expected, rel=1e-6)
    assert out.signals[2, 1] == pytest.approx(out.signals[0, 1], rel=1e-9)
    assert out.signals[1, 1] != pytest.approx(out.signals[0, 1], rel=1e-3)
    # the same points through the sequence path
    seq = det.score_sequences(np.stack([train[-W - 5:]]).astype(np.float32))
    assert seq.signals[-1, 1] == pytest.approx(out.signals[0, 1], rel=1e-6)


def test_ranges_over_the_last_points_of_each_position():
    x = np.array([[[0.0, 5.0], [2.0, 5.0], [1.0, 5.0], [7.0, 5.0], [3.0, 4.0]]])  # (1 sequence, 5 points, 2 features)
    # positions 2, 3, 4 (context 3), each over its last 3 points: [0, 2, 1], [2, 1, 7], [1, 7, 3]; the second
    # feature is flat until its last point
    assert sliding_ranges(x, 3, 3).tolist() == [[2.0, 0.0], [6.0, 0.0], [6.0, 1.0]]
    assert sliding_ranges(x, 2, 4).tolist() == [[6.0, 0.0], [4.0, 1.0]]  # positions 3, 4 over 2 points


def test_ranges_are_the_sliding_windows_ptp():
    x = np.random.default_rng(1).standard_normal((3, 40, 4)).astype(np.float32)
    for k, context in ((6, 8), (8, 8), (1, 5)):
        ptp = np.ptp(np.lib.stride_tricks.sliding_window_view(x, k, axis=1)[:, context - k:], axis=-1)
        assert np.array_equal(sliding_ranges(x, k, context), ptp.reshape(-1, 4))


def shared_load(n: int, seed: int) -> np.ndarray:
    """Three features that share most of their noise (a load every metric follows) and keep a little of their own."""
    rng = np.random.default_rng(seed)
    return (0.9 * rng.standard_normal((n, 1)) + 0.3 * rng.standard_normal((n, 3))).astype(np.float32)


def test_correlated_forecast_errors_expect_a_shared_shock_and_stress_one_feature_off_it():
    """Noise shared by every feature is a common shock a forecaster cannot predict: with `forecast_errors:
    correlated` the forecast's surprise is the errors' Mahalanobis distance, so a shift of every feature together
    is ordinary and the same shift of one feature alone is not; `independent` ranks them the other way round."""
    scores = {}
    for mode in ("independent", "correlated"):
        config = TCNConfig(window=W, dilations=[1, 2], channels=8, members=2, epochs=2, min_steps=60,
                           calendar="none", evidence=["forecast", "level"], forecast_errors=mode)
        det = TCNDetector(3, config)
        assert det.correlated == (mode == "correlated")
        train = shared_load(3000, 0)
        codes, ts = np.zeros(len(train), dtype=np.int64), np.arange(len(train), dtype=np.int64) * 300_000_000
        det.fit(WindowSet(train, window_index(codes, ts, W, None)), seed=1)
        window = np.zeros((W, 3), dtype=np.float32)  # the usual level: every forecast error near 0
        common, single = window.copy(), window.copy()
        common[-1] += 3.0
        single[-1, 0] += 3.0
        out = det.score(np.stack([window, common, single]))
        assert np.argmax(out.contributions[2]) == 0
        scores[mode] = out.score
    independent, correlated = scores["independent"], scores["correlated"]
    assert independent[1] > 2 * independent[2]  # the mean of squares: three errors beat one
    assert correlated[2] > 3 * correlated[1]  # one feature off the shared shock is the rarer error
    assert correlated[0] < 1.0 and independent[0] < 1.0
    # one feature has no correlation to read: the two modes are the same detector
    assert not TCNDetector(1, TCNConfig(window=W, dilations=[1, 2], forecast_errors="correlated")).correlated


def test_a_package_saved_before_forecast_errors_existed_loads_as_it_was_trained():
    assert TCNConfig().forecast_errors == "correlated"
    assert TCNConfig.from_package({"window": W, "dilations": [1, 2]}).forecast_errors == "independent"
    assert TCNConfig.from_package({"forecast_errors": "correlated"}).forecast_errors == "correlated"
