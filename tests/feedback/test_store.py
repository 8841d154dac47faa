"""Analyst labels through delta-rs: one row per label, checked before anything is written, the newest one wins;
and `lakewatch feedback add | list | import` on the same store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema

from lakewatch.cli.main import main
from lakewatch.config import Settings
from lakewatch.errors import DataError, NotFoundError
from lakewatch.feedback import store
from lakewatch.lakehouse.tables import FEEDBACK
from tests.feedback.conftest import E1, E2, UTC


def _feedback(settings: Settings) -> list[dict]:
    return DeltaTable(f"{settings.lakehouse}/feedback").to_pyarrow_table().to_pylist()


def test_the_first_label_creates_the_table_with_its_declared_schema_and_takes_the_event_from_events(lake):
    row = store.add(lake, E1, "false_alarm", "ana", "  planned failover  ")
    written = _feedback(lake)
    assert DeltaTable(f"{lake.lakehouse}/feedback").schema().to_arrow().names == FEEDBACK.columns
    assert len(written) == 1
    got = written[0]
    assert (got["event_id"], got["dataset"], got["entity"], got["label"], got["author"], got["note"], got["source"]) \
        == (E1, "demo_metrics", "host-0001", "false_alarm", "ana", "planned failover", "cli")
    assert got["start_ts"] == datetime(2026, 3, 10, 4, tzinfo=UTC)
    assert got["end_ts"] == datetime(2026, 3, 10, 5, tzinfo=UTC)
    assert row.at.tzinfo is not None and got["at"] == row.at


@pytest.mark.parametrize("event_id, label, author, error, message", [
    ("xyz", "anomaly", "ana", DataError, "not an event id"),
    ("0123456789abcdef012X", "anomaly", "ana", DataError, "not an event id"),
    ("aaaaaaaaaaaaaaaaaaaa", "anomaly", "ana", NotFoundError, "no event aaaaaaaaaaaaaaaaaaaa"),
    (E1, "maybe", "ana", DataError, "unknown label 'maybe'"),
    (E1, "anomaly", "  ", DataError, "needs an author"),
])
def test_a_bad_label_writes_nothing_and_says_why(lake, event_id, label, author, error, message):
    with pytest.raises(error, match=message):
        store.add(lake, event_id, label, author)
    assert not (Path(lake.lakehouse) / "feedback").exists()


def test_labels_are_never_overwritten_and_the_newest_is_in_force(lake):
    store.add(lake, E1, "anomaly", "ana")
    store.add(lake, E2, "anomaly", "bo")
    store.add(lake, E1, "false_alarm", "bo", "it was a deploy")
    history = store.history(lake, event_id=E1)
    assert list(history["label"]) == ["false_alarm", "anomaly"] and list(history["author"]) == ["bo", "ana"]
    latest = store.latest(lake).set_index("event_id")["label"].to_dict()
    assert latest == {E1: "false_alarm", E2: "anomaly"}
    assert len(_feedback(lake)) == 3


def test_an_older_feedback_table_gains_the_note_and_source_columns(lake):
    old = pa.schema([f for f in to_arrow_schema(FEEDBACK.schema, timezone="UTC") if f.name not in ("note", "source")])
    write_deltalake(f"{lake.lakehouse}/feedback", old.empty_table(), partition_by=None)
    store.add(lake, E2, "anomaly", "ana", "real")
    assert [(r["label"], r["note"], r["source"]) for r in _feedback(lake)] == [("anomaly", "real", "cli")]


def test_import_takes_event_ids_and_ranges_and_all_or_nothing(lake, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,event_id,dataset,entity,start,end,note\n"
                   f"anomaly,{E1},,,,,seen\n"
                   "false_alarm,,demo_metrics,host-0003,2026-03-12T10:00,2026-03-12T09:00,\n"
                   "maybe,,demo_metrics,host-0003,2026-03-12T10:00,2026-03-12T11:00,\n"
                   "anomaly,bbbbbbbbbbbbbbbbbbbb,,,,,\n")
    with pytest.raises(DataError) as err:
        store.import_csv(lake, bad, "ana")
    assert "nothing imported, 3 bad lines" in str(err.value)
    for part in ("line 3: end", "line 4: unknown label 'maybe'", "line 5: no event bbbbbbbbbbbbbbbbbbbb"):
        assert part in str(err.value)
    assert not (Path(lake.lakehouse) / "feedback").exists()

    good = tmp_path / "good.csv"
    good.write_text("label,event_id,dataset,entity,start,end,note\n"
                    f"anomaly,{E1},,,,,seen\n"
                    "false_alarm,,demo_metrics,host-0003,2026-03-12T10:00,2026-03-12T11:30+01:00,\n")
    labels = store.import_csv(lake, good, "ana")
    assert [(lab.event_id, lab.label, lab.source) for lab in labels] == [(E1, "anomaly", "import"),
                                                                         (None, "false_alarm", "import")]
    rows = sorted(_feedback(lake), key=lambda r: r["label"])
    assert rows[1]["entity"] == "host-0003" and rows[1]["event_id"] is None
    assert rows[1]["start_ts"] == datetime(2026, 3, 12, 10, tzinfo=UTC)
    assert rows[1]["end_ts"] == datetime(2026, 3, 12, 10, 30, tzinfo=UTC)


def test_the_feedback_command(lake, tmp_path, capsys):
    args = ["--lakehouse", lake.lakehouse, "feedback"]
    assert main([*args, "add", "--event-id", E1, "--label", "anomaly", "--author", "ana", "--note", "disk full"]) == 0
    assert "labeled event 0123456789abcdef0123 (demo_metrics, host-0001" in capsys.readouterr().out
    assert main([*args, "add", "--event-id", "aaaaaaaaaaaaaaaaaaaa", "--label", "anomaly"]) == 2
    assert "no event aaaaaaaaaaaaaaaaaaaa in the events table" in capsys.readouterr().err
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(f"event_id,label\n{E1},false_alarm\n{E2},anomaly\n")
    assert main([*args, "import", str(csv_file), "--author", "bo"]) == 0
    assert "imported 2 labels" in capsys.readouterr().out
    assert main([*args, "list", "--latest", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("at,label,author,event_id") and len(lines) == 3
    assert {(line.split(",")[1], line.split(",")[3]) for line in lines[1:]} == {("false_alarm", E1), ("anomaly", E2)}
