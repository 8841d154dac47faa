"""Analyst labels on events: add, list, import, and the latest label of each event.

One `feedback` row per label, appended and never overwritten: the history of an event's labels is kept and
the newest one wins. A label names an event by its id (the UI, `feedback add`) or an entity and a time range
(`feedback import`, for incidents known from elsewhere). Read and written through delta-rs, without Spark:
the Airflow plugin and the CLI share this module. Everything a row says is checked before anything is written,
so a bad request or a bad line in a file writes nothing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakewatch.config import Settings
from lakewatch.errors import DataError, LakewatchError, NotFoundError
from lakewatch.lakehouse import delta_rs

if TYPE_CHECKING:
    import pandas as pd

LABELS = ("anomaly", "false_alarm")
SOURCES = ("ui", "cli", "import")
EVENT_ID = re.compile(r"^[0-9a-f]{20}$")
MAX_NOTE = 2000
EVENT_COLUMNS = ["event_id", "dataset", "entity", "start_ts", "end_ts"]


@dataclass(frozen=True)
class Label:
    """One feedback row as written: what is labeled, the label, who said so and when."""

    dataset: str
    event_id: str | None
    entity: str
    start_ts: datetime
    end_ts: datetime
    label: str
    author: str
    at: datetime
    note: str | None
    source: str


def check_label(label: str) -> str:
    if label not in LABELS:
        raise DataError(f"unknown label {label!r}: one of {', '.join(LABELS)}")
    return label


def check_event_id(event_id: str) -> str:
    if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
        raise DataError(f"{event_id!r} is not an event id (20 hexadecimal characters, as in the events table)")
    return event_id


def check_note(note: str | None) -> str | None:
    if note is None or not note.strip():
        return None
    if len(note) > MAX_NOTE:
        raise DataError(f"the note has {len(note)} characters; at most {MAX_NOTE}")
    return note.strip()


def check_author(author: str) -> str:
    if not author or not author.strip():
        raise DataError("a label needs an author")
    return author.strip()


def find_events(settings: Settings, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The events with these ids (the newest row of each, should a rerun have written one twice)."""
    if not event_ids:
        return {}
    pdf = delta_rs.read_pandas(settings, "events", filters=[("event_id", "in", sorted(set(event_ids)))],
                               columns=EVENT_COLUMNS, required=False)
    return {r["event_id"]: r for r in pdf.to_dict(orient="records")}


def find_event(settings: Settings, event_id: str) -> dict[str, Any]:
    """The event with this id; NotFoundError when the events table has none."""
    found = find_events(settings, [check_event_id(event_id)])
    if event_id not in found:
        raise NotFoundError(f"no event {event_id} in the events table")
    return found[event_id]


def label_event(event: dict[str, Any], label: str, author: str, note: str | None, source: str,
                at: datetime | None = None) -> Label:
    """A label on an event as read from the events table."""
    return Label(
        dataset=event["dataset"], event_id=event["event_id"], entity=event["entity"],
        start_ts=to_utc(event["start_ts"]), end_ts=to_utc(event["end_ts"]), label=check_label(label),
        author=check_author(author), at=at or datetime.now(timezone.utc), note=check_note(note), source=source,
    )


def append(settings: Settings, labels: list[Label]) -> None:
    """Write labels in one commit: the table is created on the first label (an older one gains the note and
    source columns)."""
    if not labels:
        return
    table = delta_rs.open_table(settings, "feedback")
    if table is None:
        from pyspark.sql.pandas.types import to_arrow_schema  # types only: no session, no JVM

        from lakewatch.lakehouse.tables import FEEDBACK

        schema = to_arrow_schema(FEEDBACK.schema, timezone="UTC")
        delta_rs.create_table(settings, FEEDBACK.name, schema, FEEDBACK.partition_by)
    else:
        _add_missing_columns(table, ("note", "source"))
    delta_rs.append_rows(settings, "feedback", [asdict(label) for label in labels])


def add(settings: Settings, event_id: str, label: str, author: str, note: str | None = None,
        source: str = "cli") -> Label:
    """Label one event by id: checked against the events table, then appended."""
    row = label_event(find_event(settings, event_id), label, author, note, source)
    append(settings, [row])
    return row


def history(settings: Settings, event_id: str | None = None, dataset: str | None = None) -> "pd.DataFrame":
    """Feedback rows, newest first, for one event or dataset or all of them."""
    filters = [("event_id", "=", event_id)] if event_id else []
    if dataset:
        filters.append(("dataset", "=", dataset))
    pdf = delta_rs.read_pandas(settings, "feedback", filters=filters or None, required=False)
    if pdf.empty:
        return pdf
    return pdf.sort_values("at", ascending=False, kind="stable").reset_index(drop=True)


def latest(settings: Settings, dataset: str | None = None) -> "pd.DataFrame":
    """The label in force for each labeled event or range: the newest row of each."""
    pdf = history(settings, dataset=dataset)
    if pdf.empty:
        return pdf
    key = pdf["event_id"].fillna("") + "|" + pdf["entity"].astype(str) + "|" + pdf["start_ts"].astype(str) + "|" \
        + pdf["end_ts"].astype(str)
    return pdf.loc[~key.duplicated()].reset_index(drop=True)


def import_csv(settings: Settings, path: str | Path, author: str) -> list[Label]:
    """Labels from a CSV file with a `label` column and either `event_id` or `dataset, entity, start, end`
    (ISO times, UTC when no zone is given), optionally `note`. Every line is checked before any is written;
    the error names each bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file {path}")
    with path.open(newline="") as f:
        lines = list(csv.DictReader(f))
    if not lines:
        raise DataError(f"{path} has no rows (a header line, then one label per line)")
    columns = set(lines[0])
    if "label" not in columns or not ({"event_id"} <= columns or {"dataset", "entity", "start", "end"} <= columns):
        raise DataError(f"{path}: columns {sorted(columns)}; need 'label' and 'event_id', or 'label' and "
                        "'dataset', 'entity', 'start', 'end'")
    events = find_events(settings, [r["event_id"] for r in lines if (r.get("event_id") or "").strip()
                                    and EVENT_ID.match(r["event_id"].strip())])
    now = datetime.now(timezone.utc)
    labels, errors = [], []
    for n, row in enumerate(lines, start=2):
        try:
            labels.append(_from_line(row, events, author, now))
        except LakewatchError as exc:  # a bad value or an unknown event: listed, nothing written
            errors.append(f"line {n}: {exc}")
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise DataError(f"{path}: nothing imported, {len(errors)} bad lines: " + "; ".join(errors[:10]) + more)
    append(settings, labels)
    return labels


def _from_line(row: dict[str, str], events: dict[str, dict[str, Any]], author: str, now: datetime) -> Label:
    label, note = (row.get("label") or "").strip(), row.get("note")
    event_id = (row.get("event_id") or "").strip()
    if event_id:
        check_event_id(event_id)
        if event_id not in events:
            raise NotFoundError(f"no event {event_id} in the events table")
        return label_event(events[event_id], label, author, note, "import", at=now)
    start, end = _parse_time(row.get("start"), "start"), _parse_time(row.get("end"), "end")
    if end <= start:
        raise DataError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    dataset, entity = (row.get("dataset") or "").strip(), (row.get("entity") or "").strip()
    if not dataset or not entity:
        raise DataError("a range label needs a dataset and an entity")
    return Label(dataset=dataset, event_id=None, entity=entity, start_ts=start, end_ts=end,
                 label=check_label(label), author=check_author(author), at=now, note=check_note(note),
                 source="import")


def _parse_time(text: str | None, what: str) -> datetime:
    try:
        return to_utc(datetime.fromisoformat((text or "").strip()))
    except ValueError:
        raise DataError(f"{what} {text!r} is not an ISO date-time (e.g. 2026-03-10T04:00)") from None


def to_utc(value: Any) -> datetime:
    """A timestamp as an aware UTC datetime (the lakehouse's timestamps are UTC)."""
    import pandas as pd

    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _add_missing_columns(table: Any, names: tuple[str, ...]) -> None:
    from deltalake import Field

    present = {f.name for f in table.schema().fields}
    missing = [Field(n, "string", nullable=True) for n in names if n not in present]
    if missing:
        table.alter.add_columns(missing)
