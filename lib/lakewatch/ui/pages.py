"""The Lakewatch view's HTML: server-rendered pages with inline SVG plots, no script but the feedback form's.

Every value from the lakehouse is escaped; links are relative to the view's prefix, so the pages work behind
the Airflow API server's base URL and inside its iframe.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from lakewatch.feedback.store import LABELS

STYLE = """
body{font:14px system-ui,sans-serif;margin:16px 24px;color:#1a202c}
h1{font-size:20px}h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:left}
th{background:#f7fafc}.num{text-align:right}.muted{color:#718096}
.sev-critical,.sev-high{color:#c53030;font-weight:600}.sev-medium{color:#c05621}.ok{color:#2f855a}.alert{color:#c53030}
nav a{margin-right:16px}.label-anomaly{color:#c53030}.label-false_alarm{color:#2b6cb0}
iframe{width:100%;height:640px;border:1px solid #e2e8f0}
"""


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else _e(value)


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else _e(value)


def page(title: str, body: str, user: str, root: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)} · Lakewatch</title>"
        f"<style>{STYLE}</style></head><body><nav><a href='{root}/'>Datasets</a><a href='{root}/models'>Models</a>"
        f"<span class='muted'>signed in as {_e(user)}</span></nav><h1>{_e(title)}</h1>{body}</body></html>"
    )



def table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    """Cells are already-rendered HTML (escaped by the caller)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bars(values: list[tuple[str, float]], width: int = 520, height: int = 90, label: str = "") -> str:
    """A small bar chart (one bar per day), each bar titled with its day and value."""
    if not values:
        return "<p class='muted'>no runs yet</p>"
    top = max(v for _, v in values) or 1.0
    w = width / len(values)
    rects = "".join(
        f"<rect x='{i * w + 1:.1f}' y='{height - v / top * (height - 12):.1f}' width='{max(w - 2, 1):.1f}' "
        f"height='{v / top * (height - 12):.1f}' fill='#4299e1'><title>{_e(day)}: {_num(v)}</title></rect>"
        for i, (day, v) in enumerate(values)
    )
    return (f"<svg role='img' aria-label='{_e(label)}' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>{rects}<text x='2' y='10' font-size='10'>{_e(label)} "
            f"(max {_num(top)})</text></svg>")


def score_plot(series: list[tuple[datetime, float, bool]], start: datetime, end: datetime,
               width: int = 640, height: int = 160) -> str:
    """The entity's scores around an event: a line, the event's span shaded, anomalous points in red."""
    if len(series) < 2:
        return "<p class='muted'>no scores around this event</p>"
    t0, t1 = series[0][0].timestamp(), series[-1][0].timestamp()
    lo, hi = min(s for _, s, _ in series), max(s for _, s, _ in series)
    span, rng = (t1 - t0) or 1.0, (hi - lo) or 1.0
    x = lambda t: 4 + (t.timestamp() - t0) / span * (width - 8)  # noqa: E731
    y = lambda s: height - 4 - (s - lo) / rng * (height - 16)  # noqa: E731
    line = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s, _ in series)
    dots = "".join(f"<circle cx='{x(t):.1f}' cy='{y(s):.1f}' r='2' fill='#e53e3e'/>" for t, s, a in series if a)
    x0, x1 = max(x(start), 0), min(x(end), width)
    return (
        f"<svg class='scores' role='img' aria-label='scores around the event' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'><rect x='{x0:.1f}' y='0' width='{max(x1 - x0, 2):.1f}' height='{height}' "
        f"fill='#fed7d7'/><polyline fill='none' stroke='#2d3748' stroke-width='1' points='{line}'/>{dots}"
        f"<text x='4' y='10' font-size='10'>score {lo:.3g} to {hi:.3g}, {_ts(series[0][0])} to {_ts(series[-1][0])}"
        f"</text></svg>"
    )


def features(top: Any) -> str:
    if top is None or len(top) == 0:
        return ""
    return ", ".join(f"{_e(t['feature'])} {t['share'] * 100:.0f}%" for t in top if t.get("share") is not None)


def overview(data: dict[str, Any], user: str, root: str) -> str:
    parts = []
    now = data["now"]
    prod = [[_e(m["name"]), _e(m["version"]), _e(m.get("model_type")), _ts(m.get("promoted_at")),
             f"{(now - m['promoted_at']).days} days" if m.get("promoted_at") else ""] for m in data["production"]]
    parts.append("<h2>Production models</h2>" + (table(["model", "version", "type", "promoted", "age"], prod)
                                                 if prod else "<p class='muted'>none</p>"))
    for name, d in sorted(data["datasets"].items()):
        drift = d.get("drift") or {}
        counts = drift.get("counts", {})
        status = ("<span class='alert'>alert: " + _e(", ".join(drift["alerts"])) + "</span>") if drift.get("alerts") \
            else ("<span class='ok'>ok</span>" if counts else "<span class='muted'>no drift check yet</span>")
        days = d["days"]
        charts = "".join(bars([(str(r["logical_date"])[:10], float(r.get(k) or 0)) for r in days], label=k)
                         for k in ("rows_scored", "rows_anomalous", "n_events"))
        runs = [[f"<a href='{root}/runs/{quote(r['run_id'])}'>{_e(r['run_id'])}</a>", _e(r.get("job")),
                 _e(str(r.get("logical_date") or "")[:10]), _e(r.get("status")), _num(r.get("rows_in")),
                 _num(r.get("rows_quarantined")), _num(r.get("rows_scored")), _num(r.get("rows_anomalous")),
                 _num(r.get("n_events"))] for r in d["runs"]]
        parts.append(
            f"<h2>{_e(name)}</h2><p>drift of the last scored day: {status}</p><div>{charts}</div>"
            + table(["run", "job", "day", "status", "rows in", "quarantined", "scored", "anomalous", "events"], runs)
        )
    return page("Datasets", "".join(parts), user, root)


def run(data: dict[str, Any], user: str, root: str) -> str:
    r = data["run"]
    rid = quote(r["run_id"])
    facts = table(["", ""], [[_e(k), _e(v)] for k, v in [
        ("dataset", r.get("dataset")), ("job", r.get("job")), ("status", r.get("status")),
        ("interval", f"{r.get('interval_start')} to {r.get('interval_end')}"),
        ("model", f"{r.get('model_name')} v{r.get('model_version')}" if r.get("model_name") else None),
        ("rows in / quarantined / scored",
         f"{r.get('rows_in')} / {r.get('rows_quarantined')} / {r.get('rows_scored')}"),
        ("anomalous rows / events", f"{r.get('rows_anomalous')} / {r.get('n_events')}"),
        ("drift alerts", ", ".join(data["drift"].get("alerts", [])) or "none"), ("error", r.get("error")),
    ] if v is not None])
    events = [[f"<a href='{root}/events/{_e(e['event_id'])}'>{_e(e['event_id'])}</a>",
               f"<span class='sev-{_e(e.get('severity'))}'>{_e(e.get('severity'))}</span>", _e(e.get("entity")),
               _ts(e.get("start_ts")), _ts(e.get("end_ts")), _num(e.get("n_points")), _num(e.get("peak_score")),
               features(e.get("top_features")), score_plot(e["series"], e["start_ts"], e["end_ts"], 220, 48)]
              for e in data["events"]]
    report = "" if not r.get("report_path") else (
        f"<h2>Report</h2><p><a href='{root}/runs/{rid}/report'>open the report</a></p>"
        f"<iframe sandbox title='report' src='{root}/runs/{rid}/report'></iframe>")
    body = facts + "<h2>Events by severity</h2>" + (
        table(["event", "severity", "entity", "start", "end", "points", "peak", "top features", "scores"], events,
              "events") if events else "<p class='muted'>no events</p>") + report
    return page(f"Run {r['run_id']}", body, user, root)


def event(data: dict[str, Any], user: str, root: str) -> str:
    e, fb = data["event"], data["feedback"]
    current = fb[0]["label"] if fb else None
    facts = table(["", ""], [[_e(k), v] for k, v in [
        ("dataset / entity", f"{_e(e['dataset'])} / {_e(e['entity'])}"),
        ("time", f"{_ts(e['start_ts'])} to {_ts(e['end_ts'])} ({_num(e.get('n_points'))} points)"),
        ("severity", f"<span class='sev-{_e(e.get('severity'))}'>{_e(e.get('severity'))}</span>"),
        ("peak", f"{_num(e.get('peak_score'))} at {_ts(e.get('peak_ts'))} "
                 f"(calibrated {_num(e.get('peak_calibrated'))})"),
        ("model", f"{_e(e.get('model_name'))} v{_e(e.get('model_version'))}"),
        ("run", f"<a href='{root}/runs/{quote(str(e['run_id']))}'>{_e(e['run_id'])}</a>"),
        ("label in force", f"<span id='current-label' class='label-{_e(current)}'>{_e(current or 'none')}</span>"),
    ]])
    shares = [[_e(t["feature"]), f"{t['share'] * 100:.0f}%"] for t in (e.get("top_features") or [])]
    history = [[_ts(f["at"]), f"<span class='label-{_e(f['label'])}'>{_e(f['label'])}</span>", _e(f["author"]),
                _e(f.get("source")), _e(f.get("note"))] for f in fb]
    buttons = "".join(f"<button type='submit' name='label' value='{lab}'>{lab.replace('_', ' ')}</button> "
                      for lab in LABELS)
    form = (
        f"<form id='feedback' data-event='{_e(e['event_id'])}'><label>note <input name='note' maxlength='2000' "
        f"size='60'></label> {buttons}<span id='feedback-status' role='status'></span></form>"
        "<script>document.getElementById('feedback').addEventListener('submit', async (ev) => {"
        "ev.preventDefault(); const f = ev.target; const st = document.getElementById('feedback-status');"
        f"const r = await fetch('{root}/api/events/' + f.dataset.event + '/feedback', {{method: 'POST',"
        "headers: {'Content-Type': 'application/json'}, credentials: 'same-origin',"
        "body: JSON.stringify({label: ev.submitter.value, note: f.note.value || null})});"
        "if (r.ok) { location.reload(); } else { st.textContent = 'not saved: ' + (await r.text()); }});</script>"
    )
    body = (facts + "<h2>Scores around the event</h2>" + score_plot(e["series"], e["start_ts"], e["end_ts"])
            + "<h2>Why: the features that contributed most</h2>"
            + (table(["feature", "share of the score"], shares) if shares else "<p class='muted'>none</p>")
            + "<h2>Mark this event</h2>" + form + "<h2>Feedback history</h2>"
            + (table(["at", "label", "author", "source", "note"], history, "history") if history
               else "<p class='muted'>no feedback yet</p>"))
    return page(f"Event {e['event_id']}", body, user, root)


def _challenge(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    head = (f"<b>{_e(entry.get('decision'))}</b> vs v{_e(entry.get('vs'))} "
            f"({_e(entry.get('basis'))}, {_e(entry.get('interval'))})")
    return head + "<br><span class='muted'>" + _e("; ".join(entry.get("reasons") or [])) + "</span>"


def _budget(entry: Any) -> str:
    if not isinstance(entry, dict) or entry.get("threshold") is None:
        return ""
    recall = entry.get("recall")
    return (f"event threshold {entry['threshold']:.6g}: {_num(entry.get('expected_false_alerts'))} false alerts "
            f"per entity-day for a budget of {_num(entry.get('budget'))}"
            + (f", recall {recall:.0%}" if isinstance(recall, float) else ""))


def models(rows: list[dict[str, Any]], user: str, root: str) -> str:
    keys = ("threshold", "labeled_anomaly_recall", "heldout_mean_score", "train_loss")
    names = {m["name"] for m in rows if m.get("stage") == "production"}
    table_rows = [[
        _e(m["name"]), _e(m["version"]),
        f"<b>{_e(m['stage'])}</b>" if m.get("stage") == "production" else _e(m.get("stage")),
        _e(m.get("model_type")), _ts(m.get("created_at")), _ts(m.get("promoted_at")),
        "; ".join(f"{k} {_num(m['metrics'][k])}" for k in keys if k in m["metrics"]),
        _challenge(m["metrics"].get("challenge")), _budget(m["metrics"].get("alert_budget")),
        "" if m.get("stage") == "production" else
        f"<button class='promote' data-name='{_e(m['name'])}' data-version='{_e(m['version'])}'>promote</button>",
    ] for m in rows]
    body = (table(["model", "version", "stage", "type", "created", "promoted", "training metrics",
                   "last challenge", "alert budget", ""], table_rows, "models")
            if rows else "<p class='muted'>no models yet</p>")
    body += "".join(f"<p><button class='rollback' data-name='{_e(n)}'>roll back {_e(n)}</button> to the version "
                    "promoted before its production one</p>" for n in sorted(names))
    body += (
        "<p id='models-status' role='status'></p><p class='muted'>The same from the command line: "
        "<code>lakewatch models promote NAME VERSION</code>, <code>lakewatch models rollback NAME</code>, "
        "<code>lakewatch models compare NAME V1 V2</code>.</p>"
        "<script>for (const b of document.querySelectorAll('button.promote, button.rollback')) {"
        "b.addEventListener('click', async () => { const promote = b.classList.contains('promote');"
        f"const url = '{root}/api/models/' + encodeURIComponent(b.dataset.name) + (promote ? '/promote' : '/rollback');"
        "const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},"
        "credentials: 'same-origin', body: JSON.stringify(promote ? {version: Number(b.dataset.version)} : {})});"
        "if (r.ok) { location.reload(); } else { document.getElementById('models-status').textContent ="
        " 'not done: ' + (await r.text()); }});}</script>"
    )
    return page("Models", body, user, root)
