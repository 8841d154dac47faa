"""A one-feature dataset (two real NAB series) trains and scores end to end, row-wise (the scalar Arrow UDF, where
the one-column batch once crashed) and with windows; the temporal model is fitted on cross-fitted seasonal
residuals and calibrated on the profile scoring reads."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.data.spec import DatasetSpec
from lakewatch.lakehouse.tables import SCORES, raw_table_path
from lakewatch.models.tcn import TCNDetector
from lakewatch.packaging.registry import load_package
from lakewatch.pipeline.score import run_score
from lakewatch.pipeline.train import run_train
from lakewatch.scoring.plan import ScoringPlan

SERIES = ["artificialWithAnomaly/art_daily_jumpsup", "artificialWithAnomaly/art_daily_flatmiddle"]
TRAIN = Interval(date(2014, 4, 1), date(2014, 4, 4))
ANOMALY_DAY = Interval(date(2014, 4, 11), date(2014, 4, 12))  # inside both series' NAB windows


@pytest.fixture(scope="module")
def lake(spark, base_settings, tmp_path_factory):
    settings = base_settings.with_lakehouse(str(tmp_path_factory.mktemp("univariate") / "lakehouse"))
    nab = settings.path(settings.shared_dir) / "datasets" / "nab" / "data"
    frames = []
    for name in SERIES:
        pdf = pd.read_csv(nab / f"{name}.csv")
        frames.append(pd.DataFrame({"series": name, "ts": pd.to_datetime(pdf["timestamp"]), "value": pdf["value"]}))
    spark.createDataFrame(pd.concat(frames)).write.format("delta").save(raw_table_path(settings, "uni"))
    spec = DatasetSpec(name="uni", table="uni", entity="series", timestamp="ts", features=[{"name": "value"}])
    return settings, spec


@pytest.mark.parametrize("model", ["baseline", "tcn"])
def test_one_feature_trains_and_scores(spark, lake, model):
    settings, spec = lake
    trained = run_train(spark, settings, spec, TRAIN, model, name=f"uni_{model}")
    assert trained.metrics["rows_normal"] == 2 * 3 * 288
    record = run_score(spark, settings, spec, ANOMALY_DAY, model_name=f"uni_{model}")
    assert record.status == "success"
    assert record.rows_scored == record.rows_in == 2 * 288
    scores = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("run_id") == record.run_id)
    assert scores.where("isnan(score) OR score IS NULL OR calibrated IS NULL").count() == 0
    assert scores.where("is_anomaly AND top_features[0].feature = 'value' AND top_features[0].share = 1.0").count() \
        == record.rows_anomalous


def test_the_model_is_fitted_on_cross_fitted_residuals_and_packaged_with_the_full_profile(spark, lake, monkeypatch):
    settings, spec = lake
    in_sample = settings.model_copy(update={"training": settings.training.model_copy(update={"seasonal_folds": 1})})
    assert settings.training.seasonal_folds > 1  # cross-fitted by default
    seen: dict[str, list[np.ndarray]] = {"fit": [], "calibrate": []}
    fit, detect_rows = TCNDetector.fit, ScoringPlan.detect_rows

    def recording_fit(self, train, seed):
        seen["fit"].append(np.array(train.values))
        return fit(self, train, seed)

    def recording_detect_rows(self, values, *args, **kwargs):
        if len(seen["calibrate"]) < len(seen["fit"]):  # the first pass after the fit: the calibration's
            seen["calibrate"].append(np.array(values))
        return detect_rows(self, values, *args, **kwargs)

    monkeypatch.setattr(TCNDetector, "fit", recording_fit)
    monkeypatch.setattr(ScoringPlan, "detect_rows", recording_detect_rows)
    files, profiles = {}, {}
    for name, s in (("uni_folds", settings), ("uni_in_sample", in_sample)):
        package = load_package(spark, s, run_train(spark, s, spec, TRAIN, "tcn", name=name).ref)
        files[name] = {f: v["sha256"] for f, v in package.manifest["files"].items()}
        assert package.manifest["training"]["seasonal_folds"] == s.training.seasonal_folds  # its lineage says which
        profiles[name] = package.plan().seasonal
    # inputs: the normalised value (channel 0), its seasonal residual (1), the calendar. In-sample, the fit and the
    # calibration read the same rows the same way; cross-fitted, the same values and calendar, other residuals
    (fit_cf, fit_in), (cal_cf, cal_in) = seen["fit"], seen["calibrate"]
    np.testing.assert_array_equal(fit_in, cal_in)
    np.testing.assert_array_equal(np.delete(fit_cf, 1, axis=1), np.delete(cal_cf, 1, axis=1))
    assert (fit_cf[:, 1] != cal_cf[:, 1]).mean() > 0.5
    # the same profile goes into both packages (scoring reads the full one, and so does calibration: both runs
    # calibrated on the same residuals); the networks were fitted on different residuals, so their weights differ
    np.testing.assert_array_equal(cal_cf[:, 1], cal_in[:, 1])
    for field in ("median", "scale"):
        assert (getattr(profiles["uni_folds"], field) == getattr(profiles["uni_in_sample"], field)).all()
    members = [f for f in files["uni_folds"] if f.startswith("member-")]
    assert members and all(files["uni_folds"][f] != files["uni_in_sample"][f] for f in members)
