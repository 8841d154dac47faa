"""Per-run HTML report: counts, scores over time, anomalies per hour, drift, top events, quarantine.

Built from plain pandas DataFrames (no Spark here). Plots are matplotlib figures rendered with the
Agg canvas and embedded as base64 PNG data URIs: one self-contained page, no external CSS/JS/network.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from lakewatch.config import DriftSettings

STATUS_COLORS = {"ok": "#2ca02c", "warn": "#ff7f0e", "alert": "#d62728", "unknown": "#9e9e9e"}
# (warn, alert) per drift metric: the configured defaults
DEFAULT_DRIFT_THRESHOLDS: dict[str, tuple[float, float]] = dict(DriftSettings().thresholds)
MAX_PANELS, TOP_EVENTS, MAX_DRIFT_BARS = 6, 10, 40
WIDTH_IN, DPI = 11.0, 100
_RC = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
       "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 13}
_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1140px;color:#222}h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;
border-bottom:1px solid #ddd;padding-bottom:4px}.meta{color:#555;font-size:14px}table{border-collapse:collapse;
font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}.empty{color:#666;font-style:italic}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:13px}"""


@dataclass
class ReportData:
    """Everything one run's report shows, as plain pandas frames (see the module docstring)."""

    run: dict[str, Any]
    series: pd.DataFrame | None = None  # entity, ts, score (surprise, -log10 p), is_anomaly (a few entities)
    threshold: float | None = None  # the alarm threshold on that scale
    events: pd.DataFrame | None = None
    anomalies_per_hour: pd.DataFrame | None = None  # hour, n
    drift: pd.DataFrame | None = None  # feature, metric, value, threshold, status
    quarantine_reasons: pd.DataFrame | None = None  # reason, n
    drift_thresholds: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS))


def figure_to_data_uri(fig: Figure) -> str:
    """PNG of the figure as a `data:image/png;base64,...` URI."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    buf = io.BytesIO()
    canvas.print_png(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(height: float) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _empty(df: pd.DataFrame | None) -> bool:
    return df is None or len(df) == 0


def _utc_naive(col: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (aware ones converted), so that every frame plots on one axis."""
    return pd.to_datetime(col, utc=True).dt.tz_localize(None)


def _date_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def scores_figure(series: pd.DataFrame | None, threshold: float | None,
                  events: pd.DataFrame | None = None) -> Figure | None:
    """Small multiples, one panel per entity: score line, threshold, anomalous points, event spans."""
    if _empty(series):
        return None
    s = series.assign(ts=_utc_naive(series["ts"]), is_anomaly=series["is_anomaly"].fillna(False).astype(bool))
    entities = list(s.groupby("entity")["score"].max().sort_values(ascending=False).index[:MAX_PANELS])
    ev = None if _empty(events) else events.assign(
        start_ts=_utc_naive(events["start_ts"]), end_ts=_utc_naive(events["end_ts"]))
    pos = s.loc[s["score"] > 0, "score"]
    log = len(pos) > 0 and pos.max() / pos.min() > 100
    fig = _figure(1.0 + 2.2 * len(entities))
    axes = fig.subplots(len(entities), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, entity in zip(axes, entities):
        g = s[s["entity"] == entity].sort_values("ts")
        step = g["ts"].diff().median() if len(g) > 1 else pd.Timedelta(minutes=5)
        step = step if pd.notna(step) else pd.Timedelta(minutes=5)
        pad = max(step / 2, (s["ts"].max() - s["ts"].min()) * 0.003)  # short events stay visible
        ax.plot(g["ts"], g["score"], lw=0.9, color="#1f77b4", label="score")
        if threshold is not None:
            ax.axhline(threshold, color="#d62728", ls="--", lw=1.4, label=f"threshold ({threshold:.3g})")
        a = g[g["is_anomaly"]]
        ax.scatter(a["ts"], a["score"], s=16, color="#d62728", edgecolor="white", lw=0.4, zorder=3,
                   label="anomalous point")
        if ev is not None:
            for e in ev[ev["entity"] == entity].itertuples():
                ax.axvspan(e.start_ts - pad, e.end_ts + pad, color="#ff7f0e", alpha=0.22,
                           lw=0, label="alert event")
        ax.set_title(f"{entity}  ({len(a)} anomalous of {len(g)} points)", loc="left")
        ax.set_ylabel("surprise (-log10 p)")
        ax.grid(alpha=0.3)
    if log:
        if (s["score"] > 0).all():
            axes[0].set_yscale("log")
        else:
            axes[0].set_yscale("symlog", linthresh=float(pos.min()))
    axes[-1].set_xlabel("time (UTC)")
    _date_axis(axes[-1])
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside upper right", ncols=len(handles), frameon=False)
    fig.suptitle("Scores over time" + (" (log scale)" if log else ""), x=0.01, ha="left")
    return fig


def anomalies_per_hour_figure(df: pd.DataFrame | None, interval: tuple[Any, Any] | None = None) -> Figure | None:
    """Bar per hour bucket: how many points were flagged anomalous in it."""
    if _empty(df) or df["n"].fillna(0).sum() == 0:
        return None
    hours = _utc_naive(df["hour"])
    fig = _figure(3.2)
    ax = fig.subplots()
    ax.bar(hours, df["n"], width=0.85 / 24, align="edge", color="#d62728", alpha=0.8)
    if interval and all(v is not None for v in interval):
        ax.set_xlim(pd.Timestamp(interval[0]), pd.Timestamp(interval[1]))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=f"Anomalies per hour ({int(df['n'].sum())} anomalous points)",
           xlabel="hour (UTC)", ylabel="anomalous points / hour")
    ax.grid(axis="y", alpha=0.3)
    _date_axis(ax)
    return fig


def _drift_metric(drift: pd.DataFrame) -> str:
    metrics = list(drift["metric"].dropna().unique())
    return "psi" if "psi" in metrics else str(metrics[0])


def drift_figure(drift: pd.DataFrame | None, thresholds: dict[str, tuple[float, float]] | None = None) -> Figure | None:
    """One horizontal bar per feature of its PSI (or the metric present), coloured by status."""
    if _empty(drift) or drift["metric"].dropna().empty:
        return None
    metric = _drift_metric(drift)
    d = drift[drift["metric"] == metric].dropna(subset=["value"]).sort_values("value").tail(MAX_DRIFT_BARS)
    if d.empty:
        return None
    warn, alert = (thresholds or DEFAULT_DRIFT_THRESHOLDS).get(metric, (None, d["threshold"].max()))
    fig = _figure(1.5 + 0.34 * len(d))
    ax = fig.subplots()
    colors = [STATUS_COLORS.get(str(st), STATUS_COLORS["unknown"]) for st in d["status"]]
    bars = ax.barh(d["feature"].astype(str), d["value"], color=colors, height=0.65)
    ax.bar_label(bars, fmt="%.3g", padding=3, fontsize=9)
    legend = [Patch(color=STATUS_COLORS[k], label=k) for k in ("ok", "warn", "alert")]
    for val, name, color in ((warn, "warn", STATUS_COLORS["warn"]), (alert, "alert", STATUS_COLORS["alert"])):
        if val is not None and pd.notna(val):
            ax.axvline(val, color=color, ls="--", lw=1.3)
            legend.append(Line2D([], [], color=color, ls="--", label=f"{name} threshold ({val:g})"))
    ax.set_xlim(0, max(float(d["value"].max()), float(alert or 0)) * 1.15 or 1)
    ax.set(title=f"Drift per feature: {metric.upper()} against the model's reference profile",
           xlabel=f"{metric} (dimensionless)", ylabel="feature")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=legend, loc="lower right", framealpha=0.9)
    return fig


def _esc(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else html.escape(str(v))


def _num(v: Any, fmt: str = "{:,}") -> str:
    try:
        return fmt.format(v) if v is not None and not pd.isna(v) else "–"
    except (TypeError, ValueError):
        return _esc(v)


def _pct(part: Any, whole: Any) -> str:
    try:
        return f" ({100.0 * part / whole:.2f}%)" if whole else ""
    except TypeError:
        return ""


def _duration(s: Any) -> str:
    if s is None or pd.isna(s):
        return "–"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min" if s >= 3600 else f"{int(s // 60)} min {int(s % 60):02d} s"


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(fig: Figure | None, alt: str, empty: str) -> str:
    if fig is None:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return f'<figure><img alt="{html.escape(alt)}" src="{figure_to_data_uri(fig)}"></figure>'


def _top_features(tf: Any) -> str:
    """'cpu 62%, latency 30%' from a list of {feature, share} dicts (or Spark Rows / pairs)."""
    if tf is None or (isinstance(tf, float) and pd.isna(tf)):
        return ""
    parts = []
    for item in tf:
        item = item.asDict() if hasattr(item, "asDict") else item
        name, share = (item.get("feature"), item.get("share")) if isinstance(item, dict) else tuple(item)[:2]
        parts.append(f"{name} {100 * share:.0f}%" if share is not None and pd.notna(share) else str(name))
    return html.escape(", ".join(parts))


def _ts(v: Any) -> str:
    return "" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


def _events_section(events: pd.DataFrame | None) -> str:
    if _empty(events):
        return '<p class="empty">No alert events in this run.</p>'
    top = events.sort_values("peak_score", ascending=False).head(TOP_EVENTS)
    rows = [[_esc(e.get("event_id")), _esc(e.get("entity")), _ts(e.get("start_ts")), _ts(e.get("end_ts")),
             _num(e.get("n_points")), _num(e.get("peak_score"), "{:.4g}"), _num(e.get("peak_calibrated"), "{:.4f}"),
             _esc(e.get("severity")), _top_features(e.get("top_features"))] for _, e in top.iterrows()]
    note = f"<p>Top {len(top)} of {len(events)} events by peak score.</p>"
    return note + _table(["event", "entity", "start (UTC)", "end (UTC)", "points", "peak score",
                          "peak calibrated", "severity", "top features (share)"], rows, {4, 5, 6})


def _drift_table(drift: pd.DataFrame | None, thresholds: dict[str, tuple[float, float]]) -> str:
    if _empty(drift):
        return ""
    flagged = drift.loc[drift["status"].isin(["warn", "alert"]), "feature"].unique()
    if len(flagged) == 0:
        return '<p class="empty">Every feature is within its drift thresholds.</p>'
    d = drift[drift["feature"].isin(flagged)]
    metrics = sorted(d["metric"].unique(), key=lambda m: (m != "psi", m))
    rank = {"alert": 0, "warn": 1}
    worst = d.assign(r=d["status"].map(rank).fillna(9)).groupby("feature")["r"].min().sort_values()
    rows = []
    for feat, r in worst.items():
        cells = []
        for m in metrics:
            hit = d[(d["feature"] == feat) & (d["metric"] == m)]
            if hit.empty:
                cells.append("–")
                continue
            x = hit.iloc[0]
            color = STATUS_COLORS.get(str(x["status"]), "#222")
            limits = "{:.3g} / {:.3g}".format(*thresholds[m]) if m in thresholds else _num(x["threshold"], "{:.3g}")
            cells.append(f'<span style="color:{color}">{_num(x["value"], "{:.3g}")}</span> <small>({limits})</small>')
        status = "alert" if r == 0 else "warn"
        rows.append([_esc(feat), f'<span class="badge" style="background:{STATUS_COLORS[status]}">{status}</span>']
                    + cells)
    return ("<p>Features in warn or alert, with every drift metric (thresholds, warn / alert, in brackets):</p>"
            + _table(["feature", "status"] + [_esc(m) for m in metrics], rows, set(range(2, 2 + len(metrics)))))


def _quarantine_section(q: pd.DataFrame | None, rows_in: Any) -> str:
    if _empty(q) or q["n"].fillna(0).sum() == 0:
        return '<p class="empty">No rows quarantined.</p>'
    rows = [[_esc(r["reason"]), _num(r["n"]) + _pct(r["n"], rows_in)]
            for _, r in q.sort_values("n", ascending=False).iterrows()]
    return _table(["reason", "rows (share of rows in)"], rows, {1})


def render_report(data: ReportData) -> str:
    """The whole report as one self-contained HTML page."""
    r = data.run
    status = str(r.get("status", "unknown"))
    badge = {"success": "#2ca02c", "succeeded": "#2ca02c", "failed": "#d62728"}.get(status, "#777")
    model = f"{r.get('model_name') or '–'} v{r.get('model_version') or '–'}"
    interval = f"{_esc(r.get('interval_start'))} → {_esc(r.get('interval_end'))}"
    lineage = f"{_esc(r.get('input_table'))}@{_esc(r.get('input_version'))}" if r.get("input_table") else "–"
    counts = [["rows in", _num(r.get("rows_in"))],
              ["rows valid", _num(r.get("rows_valid")) + _pct(r.get("rows_valid"), r.get("rows_in"))],
              ["rows quarantined", _num(r.get("rows_quarantined")) + _pct(r.get("rows_quarantined"), r.get("rows_in"))],
              ["rows scored", _num(r.get("rows_scored"))],
              ["rows anomalous", _num(r.get("rows_anomalous")) + _pct(r.get("rows_anomalous"), r.get("rows_scored"))],
              ["alert events", _num(r.get("n_events"))],
              ["duration", _duration(r.get("duration_s"))]]
    with matplotlib.rc_context(_RC):
        scores = _img(scores_figure(data.series, data.threshold, data.events), "scores over time",
                      "No scores to plot for this run.")
        hourly = _img(anomalies_per_hour_figure(data.anomalies_per_hour, (r.get("interval_start"), r.get("interval_end"))),
                      "anomalies per hour", "No anomalies in this interval.")
        drift = _img(drift_figure(data.drift, data.drift_thresholds), "drift per feature",
                     "Drift was not computed for this run.")
    title = f"Lakewatch run report: {_esc(r.get('dataset'))} {interval}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head><body>
<h1>{_esc(r.get('dataset'))} <span class="meta">{interval} (UTC)</span></h1>
<p class="meta">run <code>{_esc(r.get('run_id'))}</code> · model <b>{_esc(model)}</b> · input {lineage} ·
<span class="badge" style="background:{badge}">{_esc(status)}</span></p>
<h2>Counts</h2>{_table(["", "value"], counts, {1})}
<h2>Scores over time</h2>{scores}
<h2>Anomalies per hour</h2>{hourly}
<h2>Drift</h2>{drift}{_drift_table(data.drift, data.drift_thresholds)}
<h2>Top events</h2>{_events_section(data.events)}
<h2>Quarantine reasons</h2>{_quarantine_section(data.quarantine_reasons, r.get("rows_in"))}
</body></html>
"""
