"""NAB scores of alerts: equal to NAB's own when every flagged point is an alert, fewer false positives when
bursts are one alert, and series cut to an interval with their probationary period kept."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lakewatch.monitoring.events import EventRules
from lakewatch.monitoring.nab_eval import NabSeries, corpus_score, cut_series, nab_scores
from lakewatch.monitoring.nab_scoring import CostProfile, load_profiles, probationary_length, window_positions
from tests.monitoring.test_nab_scoring import NAB, PUBLISHED, REF

EVERY_POINT = EventRules(merge_points=0.0)  # consecutive flagged points are separate alerts: NAB's own detections


@pytest.fixture(scope="module")
def numenta_corpus() -> list[NabSeries]:
    """The Numenta HTM detector's scores on the 18 series, in file order (as NAB reads them)."""
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    corpus = []
    for rel, wins in sorted(windows.items()):
        category, name = rel.split("/")
        df = pd.read_csv(REF / category / f"numenta_{name}")
        ts = pd.to_datetime(df["timestamp"]).astype("int64").to_numpy() // 1000
        corpus.append(NabSeries(rel, ts, df["anomaly_score"].to_numpy(np.float64),
                                window_positions(df["timestamp"], wins), probationary_length(len(df)), 300.0))
    return corpus


def test_every_point_as_an_alert_is_nabs_own_score(numenta_corpus):
    profiles = load_profiles(NAB / "reference" / "profiles.json")
    thresholds = json.loads((REF / "thresholds.json").read_text())["numenta"]
    for name, published in PUBLISHED.items():
        got = corpus_score(numenta_corpus, profiles[name], thresholds[name]["threshold"], EVERY_POINT)
        assert got == pytest.approx(published, abs=0.05), name


def test_the_optimised_threshold_is_at_least_as_good_as_nabs(numenta_corpus):
    profiles = load_profiles(NAB / "reference" / "profiles.json")
    thresholds = json.loads((REF / "thresholds.json").read_text())["numenta"]
    got = nab_scores(numenta_corpus, {"standard": profiles["standard"]}, thresholds["standard"]["threshold"],
                     EVERY_POINT)
    assert got["nab_standard"] == pytest.approx(58.13, abs=0.01)
    # NAB's own optimiser finds 61.30 on this subset (its exact sweep); the candidate grid gets close to it
    assert 60.5 <= got["nab_standard_optimized"] <= 61.31


def test_a_burst_is_one_alert():
    profile = CostProfile("standard", tp=1.0, fp=0.11, fn=1.0)
    ts = np.arange(1000, dtype=np.int64) * 300_000_000
    score = np.zeros(1000)
    score[500:505] = 1.0  # a burst of five flagged points, far from the only window
    series = NabSeries("s", ts, score, [(900, 950)], 0, 300.0)
    burst_as_one = corpus_score([series], profile, 0.5, EventRules(merge_points=2.0))
    every_point = corpus_score([series], profile, 0.5, EVERY_POINT)
    # null = -1 (the missed window), perfect = 1; a false positive far from windows costs 0.11 each
    assert burst_as_one == pytest.approx(100 * (-1 - 0.11 + 1) / 2)
    assert every_point == pytest.approx(100 * (-1 - 5 * 0.11 + 1) / 2)


def test_cutting_a_series_keeps_its_probation_and_clips_windows():
    ts = np.arange(2000, dtype=np.int64) * 60_000_000  # probation of the whole series: 0.15 x 2000 = 300 rows
    score = np.arange(2000, dtype=np.float64)
    cut = cut_series("s", ts, score, [(int(ts[250]), int(ts[400])), (int(ts[1900]), int(ts[1990]))],
                     int(ts[200]), int(ts[1950]), 60.0)
    assert len(cut.ts_us) == 1750 and cut.score[0] == 200
    assert cut.probation == 100  # rows 200..299 of the whole series
    assert cut.windows == [(50, 200), (1700, 1749)]
