"""The lakehouse without Spark (delta-rs): any storage, and an unreadable table is an error, never empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakewatch.config import load_settings
from lakewatch.errors import LakewatchError
from lakewatch.lakehouse import delta_rs
from lakewatch.orchestration.runs_view import read_runs


def test_an_s3a_lakehouse_is_read_as_s3_with_the_profiles_endpoint():
    env = {"LAKEWATCH_CONF": "cluster", "SPARK_MASTER_URL": "spark://m:7077", "LAKEWATCH_S3_ROOT": "s3a://bucket/lake",
           "S3_ENDPOINT": "http://127.0.0.1:9000"}
    settings = load_settings(env=env)
    assert delta_rs.table_uri(settings, "runs") == "s3://bucket/lake/runs"
    opts = delta_rs.storage_options(settings)
    assert opts["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000" and opts["AWS_ALLOW_HTTP"] == "true"
    assert opts["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"


def test_a_runs_table_that_cannot_be_read_fails_loudly(settings):
    log = Path(settings.lakehouse, "runs", "_delta_log")
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text("this is not a delta log\n")
    with pytest.raises(LakewatchError, match="cannot read the runs table"):
        read_runs(settings, ["x"])


def test_a_missing_runs_table_is_an_error_for_the_gate(settings):
    with pytest.raises(LakewatchError, match="the runs table does not exist"):
        read_runs(settings, ["x"])
