"""The NAB import: every series, every row, and the labels inside NAB's windows."""

import json

from lakewatch.demo.nab import import_nab
from lakewatch.lakehouse.tables import raw_table_path


def test_import_nab(spark, settings):
    nab_dir = settings.path(settings.shared_dir) / "datasets" / "nab"
    counts = import_nab(spark, nab_dir, *(raw_table_path(settings, n) for n in ("nab", "nab_labels", "nab_windows")))
    csvs = sorted((nab_dir / "data").glob("*/*.csv"))
    expected_rows = sum(len(p.read_text().strip().splitlines()) - 1 for p in csvs)
    windows = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    assert counts.series == len(csvs) == 18
    assert counts.rows == expected_rows
    assert counts.windows == sum(len(w) for w in windows.values())
    labels = spark.read.format("delta").load(raw_table_path(settings, "nab_labels"))
    # NAB's windows cover about 10% of the files that have anomalies
    assert 0.05 * expected_rows < counts.labeled_rows < 0.2 * expected_rows
    taxi = labels.where("series = 'realKnownCause/nyc_taxi'").select("anomaly_id").distinct().count()
    assert taxi == len(windows["realKnownCause/nyc_taxi.csv"])
    assert labels.where("kind = 'labeled_point'").count() == sum(
        len(v) for v in json.loads((nab_dir / "labels" / "combined_labels.json").read_text()).values()
    )
