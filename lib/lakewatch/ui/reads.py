"""What the Lakewatch view shows, read from the lakehouse's Delta tables through delta-rs (any storage, no Spark).

Each function returns plain Python values (dicts, lists) for lakewatch.ui.pages to render; every read is narrowed
by partition or id filters so that a page stays fast as the tables grow.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from lakewatch.config import Settings
from lakewatch.errors import DataError, NotFoundError
from lakewatch.feedback import store
from lakewatch.lakehouse import delta_rs

RUN_ID = re.compile(r"^[A-Za-z0-9_.:+\-]{1,250}$")
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
CONTEXT = timedelta(hours=6)
MAX_EVENTS = 200


def _records(pdf) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing values and Python datetimes."""
    out = []
    for row in pdf.to_dict(orient="records"):
        out.append({k: _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    """A pandas cell as a plain Python value: None, datetime, list (from Arrow lists), or itself."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)) and getattr(value, "ndim", 0) == 1:
        return list(value.tolist())
    if _is_missing(value):
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _is_missing(value: Any) -> bool:
    if value is None or isinstance(value, (list, dict)):
        return value is None
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType",)


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id or ""):
        raise DataError(f"{run_id!r} is not a run id")
    return run_id


def overview(settings: Settings) -> dict[str, Any]:
    """Per dataset: its last runs, daily counts of the score runs, the drift status of the last one, and the
    production models with their age."""
    runs = _records(delta_rs.read_pandas(settings, "runs", required=False))
    runs.sort(key=lambda r: r.get("started_at") or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    datasets: dict[str, dict[str, Any]] = {}
    for r in runs:
        d = datasets.setdefault(r.get("dataset") or "?", {"runs": [], "days": {}, "last_score": None})
        if len(d["runs"]) < 10:
            d["runs"].append(r)
        if r.get("job") == "score" and r.get("status") == "success" and r.get("logical_date") is not None:
            day = str(r["logical_date"])[:10]
            d["days"].setdefault(day, r)  # newest run of the day
            d["last_score"] = d["last_score"] or r
    for d in datasets.values():
        d["days"] = [d["days"][k] for k in sorted(d["days"])][-30:]
        last = d["last_score"]
        d["drift"] = drift_status(settings, last["run_id"], str(last["logical_date"])[:10]) if last else {}
    models = _records(delta_rs.read_pandas(settings, "models", required=False))
    production = [m for m in models if m.get("stage") == "production"]
    return {"datasets": datasets, "production": production, "now": datetime.now(timezone.utc)}


def drift_status(settings: Settings, run_id: str, logical_date: str) -> dict[str, Any]:
    """The drift rows of one run: counts per status and the features in alert."""
    pdf = delta_rs.read_pandas(
        settings, "drift", required=False,
        filters=[("logical_date", "=", date.fromisoformat(logical_date)), ("run_id", "=", run_id)],
    )
    rows = _records(pdf)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    alerts = sorted({r["feature"] for r in rows if r["status"] == "alert"})
    return {"counts": counts, "alerts": alerts}


def run(settings: Settings, run_id: str) -> dict[str, Any]:
    """One run: its runs row, its events by severity, and each event's scores around it."""
    check_run_id(run_id)
    rows = _records(delta_rs.read_pandas(settings, "runs", filters=[("run_id", "=", run_id)], required=False))
    if not rows:
        raise NotFoundError(f"no run {run_id} in the runs table")
    row = max(rows, key=lambda r: r.get("started_at") or datetime.min.replace(tzinfo=timezone.utc))
    events: list[dict[str, Any]] = []
    if row.get("job") == "score" and row.get("logical_date") is not None:
        day = str(row["logical_date"])[:10]
        events = _records(delta_rs.read_pandas(
            settings, "events", required=False,
            filters=[("dataset", "=", row["dataset"]), ("logical_date", "=", date.fromisoformat(day)),
                     ("run_id", "=", run_id)],
        ))
        events.sort(key=lambda e: (SEVERITY_ORDER.get(e.get("severity") or "", 9), -(e.get("peak_score") or 0)))
        events = events[:MAX_EVENTS]
        series = _scores(settings, row["dataset"], [day], run_id=run_id, entities={e["entity"] for e in events})
        for e in events:
            e["series"] = _around(series.get(e["entity"], []), e["start_ts"], e["end_ts"])
    drift = drift_status(settings, run_id, str(row["logical_date"])[:10]) if row.get("logical_date") else {}
    return {"run": row, "events": events, "drift": drift,
            "details": json.loads(row["details"]) if row.get("details") else {}}


def event(settings: Settings, event_id: str) -> dict[str, Any]:
    """One event: its row, the entity's scores around it, and the feedback given on it, newest first."""
    store.check_event_id(event_id)
    rows = _records(delta_rs.read_pandas(settings, "events", filters=[("event_id", "=", event_id)], required=False))
    if not rows:
        raise NotFoundError(f"no event {event_id} in the events table")
    e = max(rows, key=lambda r: str(r.get("run_id")))
    days = sorted({str(d)[:10] for d in (e["logical_date"], (e["start_ts"] - CONTEXT).date(),
                                         (e["end_ts"] + CONTEXT).date())})
    series = _scores(settings, e["dataset"], days, entities={e["entity"]})
    e["series"] = _around(series.get(e["entity"], []), e["start_ts"], e["end_ts"])
    feedback = _records(store.history(settings, event_id=event_id))
    return {"event": e, "feedback": feedback}


def models(settings: Settings) -> list[dict[str, Any]]:
    """Every model version, newest first within a name, with its metrics decoded."""
    rows = _records(delta_rs.read_pandas(settings, "models", required=False))
    for r in rows:
        try:
            r["metrics"] = json.loads(r.get("metrics") or "{}")
        except ValueError:
            r["metrics"] = {}
    return sorted(rows, key=lambda r: (r.get("name") or "", -(r.get("version") or 0)))


def report_path(settings: Settings, run_id: str) -> str:
    """Where a run's HTML report is in the lakehouse."""
    check_run_id(run_id)
    rows = _records(delta_rs.read_pandas(settings, "runs", filters=[("run_id", "=", run_id)],
                                         columns=["run_id", "report_path"], required=False))
    paths = [r["report_path"] for r in rows if r.get("report_path")]
    if not paths:
        raise NotFoundError(f"run {run_id} has no report")
    return paths[-1]


def read_report(settings: Settings, path: str) -> bytes:
    """A report's bytes from any storage pyarrow can open (local folders, s3a:// as s3://)."""
    from pyarrow import fs

    uri = "s3://" + path[len("s3a://"):] if path.startswith("s3a://") else path
    try:
        if "://" in uri and not uri.startswith("file://"):
            opts = delta_rs.storage_options(settings)
            filesystem = fs.S3FileSystem(
                endpoint_override=opts.get("AWS_ENDPOINT_URL"), region=opts.get("AWS_REGION"),
                access_key=opts.get("AWS_ACCESS_KEY_ID"), secret_key=opts.get("AWS_SECRET_ACCESS_KEY"),
                session_token=opts.get("AWS_SESSION_TOKEN"),
                scheme="http" if opts.get("AWS_ALLOW_HTTP") else "https",
                force_virtual_addressing=opts.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true") != "false",
            )
            target = uri.split("://", 1)[1]
        else:
            filesystem, target = fs.LocalFileSystem(), uri.removeprefix("file://")
        with filesystem.open_input_stream(target) as f:
            return f.read()
    except FileNotFoundError:
        raise NotFoundError(f"the report {path} is not in the lakehouse any more") from None


def _scores(settings: Settings, dataset: str, days: list[str], entities: set[str], run_id: str | None = None
            ) -> dict[str, list[tuple[datetime, float, bool]]]:
    """(ts, score, is_anomaly) per entity from the scores of these days (the newest run's when rerun)."""
    if not entities:
        return {}
    filters: list[tuple[str, str, Any]] = [("dataset", "=", dataset),
                                           ("logical_date", "in", [date.fromisoformat(d) for d in days]),
                                           ("entity", "in", sorted(entities))]
    if run_id:
        filters.append(("run_id", "=", run_id))
    pdf = delta_rs.read_pandas(settings, "scores", filters=filters, required=False,
                               columns=["entity", "ts", "score", "is_anomaly", "run_id"])
    if pdf.empty:
        return {}
    pdf = pdf.sort_values(["entity", "ts", "run_id"]).drop_duplicates(["entity", "ts"], keep="last")
    out: dict[str, list[tuple[datetime, float, bool]]] = {}
    for entity, part in pdf.groupby("entity"):
        out[str(entity)] = [(t.to_pydatetime(), float(s), bool(a)) for t, s, a
                            in zip(part["ts"], part["score"], part["is_anomaly"]) if s == s]
    return out


def _around(points: list[tuple[datetime, float, bool]], start: datetime, end: datetime
            ) -> list[tuple[datetime, float, bool]]:
    lo, hi = start - CONTEXT, end + CONTEXT
    return [p for p in points if lo <= p[0] <= hi]
