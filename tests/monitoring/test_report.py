"""The HTML run report, from synthetic pandas inputs (no Spark)."""

from __future__ import annotations

import base64
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from lakewatch.monitoring.report import ReportData, figure_to_data_uri, render_report, scores_figure

URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
THRESHOLD = 3.0


def synthetic_report_data(seed: int = 7) -> ReportData:
    """3 entities x 2 days at 5 minutes: a daily cycle, a few spikes, a level shift; 8 features of drift."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-03-02", "2026-03-04", freq="5min", inclusive="left")
    day = np.sin(2 * np.pi * np.asarray(ts.hour * 60 + ts.minute) / 1440)
    frames = []
    for i, entity in enumerate(["web-01", "web-02", "db-01"]):
        score = np.abs(0.6 + 0.3 * day + rng.normal(0, 0.15, len(ts))) + 0.05
        if i == 0:
            for k in (100, 101, 102, 350):
                score[k] *= rng.uniform(30, 200)
        if i == 1:
            score[420:460] += 4.0  # level shift
        if i == 2:
            score[200] = 8.0
        frames.append(pd.DataFrame({"entity": entity, "ts": ts, "score": score, "is_anomaly": score > THRESHOLD}))
    series = pd.concat(frames, ignore_index=True)
    events = []
    for entity, g in series[series["is_anomaly"]].groupby("entity"):
        run_id = (g.index.to_series().diff() != 1).cumsum()
        for _, e in g.groupby(run_id):
            shares = rng.dirichlet([3, 2, 1])
            events.append({"entity": entity, "start_ts": e["ts"].min(), "end_ts": e["ts"].max(),
                           "n_points": len(e), "peak_score": e["score"].max(), "peak_calibrated": 0.999,
                           "severity": "high" if e["score"].max() > 20 else "medium",
                           "top_features": [{"feature": f, "share": float(s)}
                                            for f, s in zip(["cpu", "latency_ms", "error_rate"], shares)]})
    events_df = pd.DataFrame(events)
    events_df.insert(0, "event_id", [f"ev-{i:03d}" for i in range(len(events_df))])
    an = series[series["is_anomaly"]]
    per_hour = an.groupby(an["ts"].dt.floor("h")).size().rename("n").rename_axis("hour").reset_index()
    features = ["cpu", "latency_ms", "error_rate", "mem", "disk_io", "net_in", "net_out", "queue_len"]
    psi = dict(zip(features, [0.02, 0.41, 0.15, 0.01, 0.05, 0.03, 0.07, 0.04]))
    rows = []
    for f, v in psi.items():
        st = "alert" if v >= 0.25 else "warn" if v >= 0.1 else "ok"
        rows.append({"feature": f, "metric": "psi", "value": v, "threshold": 0.25, "status": st})
        rows.append({"feature": f, "metric": "ks", "value": v / 2, "threshold": 0.2,
                     "status": "warn" if v / 2 >= 0.1 else "ok"})
    run = {"run_id": "score-20260302T010000-abcd1234", "dataset": "web_metrics",
           "interval_start": date(2026, 3, 2), "interval_end": date(2026, 3, 4), "model_name": "web_ae",
           "model_version": 3, "rows_in": 1750, "rows_valid": 1728, "rows_quarantined": 22, "rows_scored": 1728,
           "rows_anomalous": int(series["is_anomaly"].sum()), "n_events": len(events_df), "duration_s": 83.4,
           "status": "success", "input_table": "/data/lake/raw/web_metrics", "input_version": 12}
    quarantine = pd.DataFrame({"reason": ["null:cpu", "out_of_range:cpu", "duplicate_key"], "n": [12, 7, 3]})
    return ReportData(run=run, series=series, threshold=THRESHOLD, events=events_df,
                      anomalies_per_hour=per_hour, drift=pd.DataFrame(rows), quarantine_reasons=quarantine)


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in URI.findall(page)]


def test_full_report_has_header_plots_and_tables() -> None:
    data = synthetic_report_data()
    page = render_report(data)
    assert data.run["run_id"] in page and "web_metrics" in page and "web_ae v3" in page
    assert page.count("<img ") == 3
    pngs = _pngs(page)
    assert len(pngs) == 3 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert "latency_ms" in page  # the feature in alert, in the drift table
    assert "error_rate" in page  # the feature in warn
    assert "No alert events" not in page and "ev-000" in page
    assert re.search(r"cpu \d+%", page)  # top features as percentages
    assert "null:cpu" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_top_events_are_capped_at_ten() -> None:
    data = synthetic_report_data()
    many = pd.concat([data.events] * 5, ignore_index=True)
    page = render_report(ReportData(run=data.run, series=data.series, threshold=THRESHOLD, events=many))
    assert f"Top 10 of {len(many)} events" in page


def test_empty_inputs_render_sentences() -> None:
    empty = lambda *cols: pd.DataFrame({c: [] for c in cols})  # noqa: E731
    data = ReportData(
        run={"run_id": "r-empty", "dataset": "d", "status": "success"},
        series=empty("entity", "ts", "score", "is_anomaly"), threshold=1.0,
        events=empty("event_id", "entity", "start_ts", "end_ts", "n_points", "peak_score", "peak_calibrated",
                     "severity", "top_features"),
        anomalies_per_hour=empty("hour", "n"), drift=empty("feature", "metric", "value", "threshold", "status"),
        quarantine_reasons=empty("reason", "n"))
    page = render_report(data)
    assert "r-empty" in page and "<img" not in page
    for sentence in ("No scores to plot", "No anomalies in this interval", "Drift was not computed",
                     "No alert events", "No rows quarantined"):
        assert sentence in page
    assert "<img" not in render_report(ReportData(run={"run_id": "r-none"}))


def test_scores_without_anomalies_and_drift_all_ok() -> None:
    data = synthetic_report_data()
    calm = data.series.assign(is_anomaly=False)
    drift = data.drift.assign(status="ok")
    page = render_report(ReportData(run=data.run, series=calm, threshold=100.0, drift=drift,
                                    anomalies_per_hour=data.anomalies_per_hour.assign(n=0)))
    assert page.count("<img ") == 2 and "No anomalies in this interval" in page
    assert "within its drift thresholds" in page


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_figure_data_uri_is_png(tz: str | None) -> None:
    data = synthetic_report_data()
    series = data.series.assign(ts=data.series["ts"].dt.tz_localize(tz)) if tz else data.series
    uri = figure_to_data_uri(scores_figure(series, THRESHOLD, data.events))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG")
