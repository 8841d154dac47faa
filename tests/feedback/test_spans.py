"""The spans analysts confirmed as anomalies are left out of training data; false alarms and spans whose label
was changed to false_alarm are not."""

from __future__ import annotations

from datetime import datetime

from lakewatch.feedback import store
from lakewatch.feedback.spans import drop_confirmed, feedback_labels
from tests.feedback.conftest import E1, E2, UTC


def test_rows_inside_a_confirmed_anomaly_leave_the_training_data(spark, lake, tmp_path):
    store.add(lake, E1, "anomaly", "ana")                      # host-0001, 03-10 04:00 to 05:00
    store.add(lake, E2, "anomaly", "ana")                      # host-0002, 03-11 08:00 to 08:30 ...
    store.add(lake, E2, "false_alarm", "bo")                   # ... then said to be a false alarm
    labels = tmp_path / "labels.csv"
    labels.write_text("label,dataset,entity,start,end\n"
                      "anomaly,demo_metrics,host-0003,2026-03-12T10:00,2026-03-12T11:00\n"
                      "anomaly,other_dataset,host-0001,2026-03-10T00:00,2026-03-11T00:00\n"
                      "anomaly,demo_metrics,host-0001,2026-04-01T00:00,2026-04-02T00:00\n")
    store.import_csv(lake, labels, "ana")

    def t(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 3, day, hour, minute, tzinfo=UTC)

    points = [("host-0001", t(10, 3, 55)), ("host-0001", t(10, 4)), ("host-0001", t(10, 4, 30)),
              ("host-0001", t(10, 5)), ("host-0001", t(10, 5, 5)), ("host-0002", t(11, 8, 10)),
              ("host-0003", t(12, 10, 30)), ("host-0001", t(12, 10, 30)), ("host-0003", t(12, 11, 5))]
    rows = spark.createDataFrame([(e, ts, float(i)) for i, (e, ts) in enumerate(points)],
                                 "entity STRING, ts TIMESTAMP, cpu DOUBLE")
    kept, spans = drop_confirmed(spark, lake, "demo_metrics", rows, t(9, 0), t(16, 0))
    assert spans == 2  # E1 and host-0003's range: not the false alarm, another dataset's, or April's
    assert sorted(r["cpu"] for r in kept.collect()) == [0.0, 4.0, 5.0, 7.0, 8.0]
    assert kept.columns == rows.columns

    labels = feedback_labels(spark, lake, "demo_metrics", rows, t(9, 0), t(16, 0))
    got = sorted((r["entity"], r["ts"], r["anomaly_id"], r["kind"]) for r in labels.collect())
    expected = [("host-0001", t(10, 4)), ("host-0001", t(10, 4, 30)), ("host-0001", t(10, 5)),
                ("host-0003", t(12, 10, 30))]
    assert [(e, ts.timestamp(), k) for e, ts, _, k in got] == [(e, ts.timestamp(), "confirmed") for e, ts in expected]
    assert {i for _, _, i, _ in got} == {E1, "host-0003@2026-03-12T10:00:00+00:00"}
    assert feedback_labels(spark, lake, "demo_metrics", rows, t(13, 0), t(14, 0)) is None
