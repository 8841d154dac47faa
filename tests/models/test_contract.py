"""The contract every registered detector must pass (fit, score, contributions, determinism, weights, causality)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lakewatch.models.base import WindowSet
from lakewatch.models.registry import detector_class, model_names
from lakewatch.scoring.calibration import calibrate
from lakewatch.scoring.plan import Calibrations, ScoringPlan, WindowRules, entity_codes
from lakewatch.scoring.windows import window_index
from lakewatch.transforms.entities import EntityIndex, Spacing
from lakewatch.transforms.normalization import Normalizer
from lakewatch.transforms.seasonal import SeasonalProfile

N_ENTITIES, N_POINTS = 3, 240
FAST = {"epochs": 2, "members": 2, "min_steps": 20}  # applied where a model's config has the field


def series(d: int, seed: int = 0) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Sorted (entity, ts) rows of smooth daily-like cycles with noise; ts in microseconds, 5 minutes apart."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_POINTS)
    x = np.concatenate([
        np.column_stack([np.sin(2 * np.pi * t / 48 + e + j) + 0.1 * rng.standard_normal(N_POINTS) for j in range(d)])
        for e in range(N_ENTITIES)
    ])
    entity = pa.array(np.repeat([f"e{e}" for e in range(N_ENTITIES)], N_POINTS).tolist())
    ts = np.tile(t * 300_000_000, N_ENTITIES).astype(np.int64)
    return entity, ts, x


def make(name: str, d: int):
    cls = detector_class(name)
    fields = cls.config_class.model_fields
    return cls(d, cls.config_class.model_validate({k: v for k, v in FAST.items() if k in fields}))


def fitted(name: str, d: int, seed: int = 3):
    """A detector fitted on series(d) through the plan's own inputs (calendar channels included)."""
    entity, ts, x = series(d)
    det = make(name, d)
    plan = identity_plan(det, d)
    values = plan.model_inputs(x.astype(np.float32), ts, plan.locate(entity, len(x)))
    w = window_index(entity_codes(entity), ts, det.context, det.context * 300_000_000 * 2)
    metrics = det.fit(WindowSet(values, w), seed)
    return det, metrics, (entity, ts, values, w, None)


def identity_plan(det, d: int) -> ScoringPlan:
    """A plan that leaves values as they are, with every entity 5 minutes apart (as series() makes them)."""
    names = [f"f{j}" for j in range(d)]
    norm = Normalizer(names, "global", np.zeros(d), np.ones(d))
    seasonal = (SeasonalProfile(names, det.seasonal_bins, np.zeros((0, det.seasonal_bins, d)), np.ones((0, d)))
                if det.seasonal_bins else None)  # no entity has a profile: residuals are zero
    return ScoringPlan(names, EntityIndex(pa.array([], pa.string())), norm, Spacing(np.zeros(0), 300.0), det, None,
                       WindowRules(2.0, None), seasonal)


@pytest.fixture(params=model_names())
def name(request) -> str:
    return request.param


@pytest.mark.parametrize("d", [1, 3])
def test_scores_and_contributions_have_the_contract_shapes(name, d):
    det, metrics, (_, _, x, w, _) = fitted(name, d)
    assert all(np.isfinite(v) for v in metrics.values())
    assert det.context >= 1
    assert all(1 <= det.signal_points(s) <= det.context for s in det.signal_names)
    assert set(det.learned_signals) <= set(det.signal_names)
    out = det.score(x.astype(np.float32)[w.index[:100]])
    assert out.score.shape == (100,) and np.isfinite(out.score).all() and (out.score >= 0).all()
    assert out.contributions.shape == (100, d)
    assert (out.contributions >= 0).all()
    positive = out.score > 0
    assert np.allclose(out.contributions[positive].sum(axis=1), 1.0)
    if out.uncertainty is not None:
        assert out.uncertainty.shape == (100,) and (out.uncertainty >= 0).all()
    if out.signals is not None:
        assert out.signals.shape == (100, len(det.signal_names)) and np.isfinite(out.signals).all()


def test_same_seed_same_weights_and_a_round_trip_through_safetensors(name):
    a, _, (_, _, x, w, _) = fitted(name, 3)
    b, _, _ = fitted(name, 3)
    saved = [save_safetensors(t) for t in a.state()]
    assert saved == [save_safetensors(t) for t in b.state()]
    c = make(name, 3)
    c.load_state([load_safetensors(s) for s in saved])
    windows = x.astype(np.float32)[w.index[:64]]
    assert np.array_equal(c.score(windows).score, a.score(windows).score)
    if a.score(windows).signals is not None:  # every fitted state (a relation, a level) survives the round trip
        assert np.array_equal(c.score(windows).signals, a.score(windows).signals)


def test_a_score_depends_on_its_own_window_only(name):
    det, _, (entity, ts, values, w, _) = fitted(name, 2)
    x = series(2)[2]
    windows = values[w.index]
    whole = det.score(windows).score
    assert np.allclose(det.score(windows[:7]).score, whole[:7], rtol=1e-5, atol=1e-7)  # whatever else is in the batch
    held = det.score(windows)
    signals = held.score[:, None] if held.signals is None else held.signals
    plan = identity_plan(det, 2).with_calibrations(Calibrations(
        {name: calibrate(signals[:, k], 0.01) for k, name in enumerate(det.signal_names)}))
    t = N_POINTS + 100  # a row of the second entity
    before = plan.score_rows(entity, ts, x).score
    changed = x.copy()
    changed[t + 1:] += 50.0  # everything after t
    after = plan.score_rows(entity, ts, changed).score
    assert np.allclose(after[: t + 1], before[: t + 1], rtol=1e-5, atol=1e-7)
    assert not np.allclose(after[t + 1:], before[t + 1:])


def test_the_sequence_path_gives_the_windows_scores(name):
    det, _, (_, _, values, w, _) = fitted(name, 2)
    full = np.flatnonzero(w.n_valid == det.context)[: 2 * det.context]  # consecutive rows of one entity
    seq = values[full[0] - det.context + 1: full[-1] + 1][None]
    got = det.score_sequences(seq)
    if got is None:
        return  # the model has no sequence path: windows are its only path
    want = det.score(values[w.index[full]])
    assert np.allclose(got.score, want.score, rtol=1e-4, atol=1e-6)
    assert np.allclose(got.contributions, want.contributions, rtol=1e-4, atol=1e-6)
    if want.signals is not None:  # every signal, not only the score, is the same on both paths
        assert np.allclose(got.signals, want.signals, rtol=1e-4, atol=1e-6)


def test_the_plans_sequences_give_every_windows_scores_warming_up_included(name):
    """Every row of the series through the plan's sequence path (whole windows, and warming-up ones: each
    entity's first rows and the rows after a gap longer than the horizon) equals scoring each window."""
    det, _, (entity, ts, values, _, _) = fitted(name, 2)
    ts = ts.copy()
    ts[N_POINTS + 100:2 * N_POINTS] += 10 * det.context * 300_000_000  # a gap in the second entity
    codes = entity_codes(entity)
    plan = identity_plan(det, 2)
    windows = window_index(codes, ts, det.context, det.context * 300_000_000 * 2)
    rows = np.arange(len(values))
    assert (windows.n_valid < det.context).sum() >= 3 * (det.context - 1) or det.context == 1
    want = plan.detect(values, windows)
    for subset in (rows, rows[::3]):  # every row, and some rows as targets (the others history)
        at = np.searchsorted(rows, subset)
        got = plan.detect_rows(values, codes, type(windows)(windows.index[at], windows.n_valid[at]), subset)
        assert np.allclose(got.score, want.score[at], rtol=1e-4, atol=1e-6)
        assert np.allclose(got.contributions, want.contributions[at], rtol=1e-4, atol=1e-6)
        for part in ("signals", "members", "uncertainty"):
            if getattr(want, part) is not None:
                assert np.allclose(getattr(got, part), getattr(want, part)[at], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fusion", ["bonferroni", "harmonic"])
def test_the_plan_fuses_a_rows_signals_by_the_packages_rule(fusion):
    det, _, (entity, ts, values, w, _) = fitted("baseline", 2)  # two signals: level and seasonal
    x = series(2)[2]
    signals = det.score(values[w.index]).signals
    cals = {name: calibrate(signals[:, k], 0.01) for k, name in enumerate(det.signal_names)}
    plan = identity_plan(det, 2).with_calibrations(Calibrations(cals, fusion=fusion))
    out, _, at = plan.detect_raw(entity, ts, x)
    p = plan.signal_p_values(out, at)
    assert p.shape == (len(x), 2) and ((p > 0) & (p <= 1)).all()
    want = (np.minimum(1.0, 2 * np.minimum(p[:, 0], p[:, 1])) if fusion == "bonferroni"
            else np.minimum(1.0, 2 / (1 / p[:, 0] + 1 / p[:, 1])))
    assert np.allclose(plan.p_values(out, at), want, rtol=1e-12)
    assert np.allclose(plan.score_rows(entity, ts, x).calibrated, 1.0 - want, rtol=1e-12)
