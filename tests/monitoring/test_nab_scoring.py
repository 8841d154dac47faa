"""NAB scoring checked against NAB's own published outputs for the Numenta HTM detector,
and on small hand-made cases whose expected values are worked out here by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lakewatch.monitoring.nab_scoring import (
    CostProfile,
    baseline_scores,
    load_profiles,
    normalized_score,
    optimize_threshold,
    point_weights,
    probationary_length,
    score_corpus,
    score_series,
    sweep_thresholds,
    window_positions,
)

NAB = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nab"
REF = NAB / "reference" / "numenta"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# README: Numenta HTM on this 18-series subset, at the thresholds NAB optimised on the full corpus
PUBLISHED = {"standard": 58.1, "reward_low_FP_rate": 53.0, "reward_low_FN_rate": 64.1}

@pytest.fixture(scope="module")
def profiles():
    return load_profiles(NAB / "reference" / "profiles.json")


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[pd.DataFrame, list]]:
    """{relative csv: (Numenta's per-point results, windows as timestamps)} for the 18 files."""
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    out = {}
    for rel, wins in windows.items():
        category, name = rel.split("/")
        out[rel] = (pd.read_csv(REF / category / f"numenta_{name}"), wins)
    return out


@pytest.fixture(scope="module")
def nab_thresholds() -> dict[str, float]:
    raw = json.loads((REF / "thresholds.json").read_text())["numenta"]
    return {p: v["threshold"] for p, v in raw.items()}


def _files(corpus):
    return {rel: (df["timestamp"], df["anomaly_score"].to_numpy(), w) for rel, (df, w) in corpus.items()}


# --- against NAB's outputs ---------------------------------------------------------------


def test_profiles_load(profiles):
    assert set(profiles) == set(PROFILES)
    assert profiles["standard"] == CostProfile("standard", tp=1.0, fp=0.11, fn=1.0, tn=1.0)
    assert profiles["reward_low_FN_rate"].fn == 2.0 and profiles["reward_low_FP_rate"].fp == 0.22


@pytest.mark.parametrize("profile_name", PROFILES)
def test_per_file_scores_match_nab(profile_name, profiles, corpus):
    ref = pd.read_csv(REF / f"numenta_{profile_name}_scores.csv")
    assert len(ref) == len(corpus) == 18
    for row in ref.itertuples(index=False):
        df, wins = corpus[row.File]
        res = score_series(df["anomaly_score"].to_numpy() >= row.Threshold, wins, profiles[profile_name],
                           timestamps=df["timestamp"])
        assert res.score == pytest.approx(row.Score, abs=1e-6), row.File
        assert (res.tp, res.tn, res.fp, res.fn, res.total) == (row.TP, row.TN, row.FP, row.FN, row.Total_Count)


@pytest.mark.parametrize("profile_name", PROFILES)
def test_per_point_weights_match_nab(profile_name, profiles, corpus):
    for rel, (df, wins) in corpus.items():
        weights, _ = point_weights(len(df), window_positions(df["timestamp"], wins), profiles[profile_name])
        np.testing.assert_allclose(weights, df[f"S(t)_{profile_name}"].to_numpy(), rtol=0, atol=1e-9, err_msg=rel)


def test_normalised_totals_match_published(profiles, corpus, nab_thresholds):
    results = score_corpus(_files(corpus), profiles, nab_thresholds)
    n_windows = sum(len(w) for _, w in corpus.values())
    assert n_windows == 25
    for name, expected in PUBLISHED.items():
        res = results[name]
        ref = pd.read_csv(REF / f"numenta_{name}_scores.csv")
        assert res.raw == pytest.approx(ref["Score"].sum(), abs=1e-6)
        # null detector: every window missed; perfect: every window caught at its first row
        assert res.null == -profiles[name].fn * n_windows and res.perfect == n_windows
        assert res.normalized == pytest.approx(expected, abs=0.05)
        assert round(res.normalized, 1) == expected


# --- hand-made cases (window rows 40..49, width 10; 100 rows) -------------------------------

P = CostProfile("hand", tp=1.0, fp=0.11, fn=1.0)
WIN = [(40, 49)]


def _tanh_ratio(x: float) -> float:
    """2*sigmoid(2x)-1 == tanh(x); divided by the weight of a window's first row, tanh(2.5)."""
    return math.tanh(x) / math.tanh(2.5)


def _det(n: int, *rows: int) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


def test_detection_at_window_start_scores_full_tp():
    res = score_series(_det(100, 40), WIN, P, probation=0)
    assert res.score == pytest.approx(1.0, abs=1e-12)
    assert (res.tp, res.fn, res.fp, res.tn, res.total) == (1, 9, 0, 90, 100)


def test_detection_at_window_end():
    # position -(49-49+1)/10 = -0.1 -> 2*sigmoid(0.5)-1 = tanh(0.25)
    res = score_series(_det(100, 49), WIN, P, probation=0)
    assert res.score == pytest.approx(_tanh_ratio(0.25), abs=1e-12)
    assert 0.24 < res.score < 0.25


def test_only_earliest_detection_in_window_counts():
    # rows 41 and 45: row 41 sits at -(49-41+1)/10 = -0.9 -> tanh(2.25); row 45 adds nothing
    res = score_series(_det(100, 45, 41), WIN, P, probation=0)
    assert res.score == pytest.approx(_tanh_ratio(2.25), abs=1e-12)
    assert (res.tp, res.fn) == (2, 8)


def test_fp_long_after_window_costs_full_fp_weight():
    # row 90: (90-49)/(10-1) = 4.6 > 3 -> -1 * fp, and the window is missed: -fn
    res = score_series(_det(100, 90), WIN, P, probation=0)
    assert res.score == pytest.approx(-0.11 - 1.0, abs=1e-12)
    assert (res.tp, res.fn, res.fp, res.tn) == (0, 10, 1, 89)


def test_fp_shortly_after_window_costs_less():
    # row 52: (52-49)/9 = 1/3 -> 2*sigmoid(-5/3)-1 = -tanh(5/6)
    res = score_series(_det(100, 40, 52), WIN, P, probation=0)
    assert res.score == pytest.approx(1.0 - 0.11 * math.tanh(5 / 6), abs=1e-12)


def test_fp_before_first_window():
    res = score_series(_det(100, 10), WIN, P, probation=0)
    assert res.score == pytest.approx(-0.11 - 1.0, abs=1e-12)


def test_probationary_rows_ignored():
    assert probationary_length(100) == 15
    # row 5 is in probation: no FP, not counted; the window is still missed
    res = score_series(_det(100, 5), WIN, P)
    assert res.score == pytest.approx(-1.0, abs=1e-12)
    assert (res.tp, res.fn, res.fp, res.tn, res.total) == (0, 10, 0, 75, 85)
    # a window cut by probation keeps its full width: row 16 of rows 10..19 is at -0.4 -> tanh(1)
    res = score_series(_det(100, 12, 16), [(10, 19)], P)
    assert res.score == pytest.approx(_tanh_ratio(1.0), abs=1e-12)
    assert (res.tp, res.fn, res.fp, res.tn) == (1, 4, 0, 80)  # rows 15..19 scorable
    # a window entirely inside probation is neither a hit nor a miss, but still counts as "perfect"
    res = score_series(_det(100), [(2, 8)], P)
    assert res.score == 0.0 and (res.tp, res.fn, res.tn) == (0, 0, 85)
    assert baseline_scores(100, [(2, 8)], P) == (0.0, 1.0)
    assert baseline_scores(100, WIN, CostProfile("fn2", 1.0, 0.11, 2.0)) == (-2.0, 1.0)


def test_file_without_windows():
    res = score_series(_det(100, 3, 50, 60), [], P)
    assert res.score == pytest.approx(-0.22, abs=1e-12)
    assert (res.tp, res.fn, res.fp, res.tn, res.total) == (0, 0, 2, 83, 85)
    assert baseline_scores(100, [], P) == (0.0, 0.0)


def test_probationary_length_cap():
    assert probationary_length(4032) == 604  # floor(604.8)
    assert probationary_length(10320) == 750  # 15% of 5000 caps it
    assert probationary_length(0) == 0


def test_window_positions_by_timestamp():
    ts = ["2014-01-01 00:00:00", "2014-01-01 01:00:00", "2014-01-01 01:00:00", "2014-01-01 02:00:00"]
    assert window_positions(ts, [("2014-01-01 01:00:00.000000", "2014-01-01 02:00:00.000000")]) == [(1, 3)]
    with pytest.raises(ValueError):
        window_positions(ts, [("2014-01-01 00:30:00", "2014-01-01 02:00:00")])


def test_normalized_score_ends():
    assert normalized_score(-25.0, -25.0, 25.0) == 0.0
    assert normalized_score(25.0, -25.0, 25.0) == 100.0


def test_threshold_is_inclusive():
    scores = np.zeros(100)
    scores[40] = 0.7
    res = score_corpus({"f": (None, scores, WIN)}, {"hand": P}, threshold=0.7)["hand"]
    assert res.per_file.loc[0, "tp"] == 1 and res.raw == pytest.approx(1.0)


# --- threshold optimisation ---------------------------------------------------------------


def test_optimised_threshold_beats_nab_threshold(profiles, corpus, nab_thresholds):
    files = _files(corpus)
    fixed = score_corpus(files, profiles, nab_thresholds)
    best = score_corpus(files, profiles)
    for name in PROFILES:
        assert best[name].raw >= fixed[name].raw - 1e-9
        series = [(v, window_positions(t, w)) for t, v, w in files.values()]
        thr, total = optimize_threshold(series, profiles[name])
        assert thr == best[name].threshold
        assert total == pytest.approx(best[name].raw, abs=1e-6)


def _brute_force(series, profile):
    values = np.unique(np.concatenate([v for v, _ in series]))[::-1]
    totals = [sum(score_series(v >= t, w, profile).score for v, w in series) for t in values]
    return values, np.array(totals)


def test_sweep_agrees_with_brute_force(profiles, corpus):
    # three real files with scores rounded to 2 decimals (<= 101 distinct values)
    picks = ["realKnownCause/nyc_taxi.csv", "realKnownCause/ec2_request_latency_system_failure.csv",
             "artificialNoAnomaly/art_daily_small_noise.csv"]
    series = [(np.round(corpus[r][0]["anomaly_score"].to_numpy(), 2),
               window_positions(corpus[r][0]["timestamp"], corpus[r][1])) for r in picks]
    rng = np.random.default_rng(7)
    # and a synthetic corpus with many hits per window and many FPs
    synthetic = [(np.round(rng.random(300), 1), [(60, 79), (150, 159)]), (np.round(rng.random(200), 1), [])]
    for corp in (series, synthetic):
        for profile in profiles.values():
            thresholds, totals = sweep_thresholds(corp, profile)
            values, expected = _brute_force(corp, profile)
            assert thresholds[0] == 1.1 and set(thresholds[1:]) <= set(values)
            assert totals[0] == pytest.approx(sum(baseline_scores(len(v), w, profile)[0] for v, w in corp))
            # "detect >= v" is the sweep's smallest candidate >= v (values seen only in probation add nothing)
            at = np.array([np.sum(thresholds >= v) - 1 for v in values])
            np.testing.assert_allclose(totals[at], expected, rtol=0, atol=1e-9)
            thr, total = optimize_threshold(corp, profile)
            assert total == pytest.approx(max(totals[0], expected.max()), abs=1e-9)
            assert sum(score_series(v >= thr, w, profile).score for v, w in corp) == pytest.approx(total, abs=1e-9)


def test_optimiser_detects_nothing_when_every_detection_is_false():
    thr, total = optimize_threshold([(np.linspace(0, 1, 100), [])], P)
    assert thr == 1.1 and total == 0.0
