from pathlib import Path

import pytest

from lakewatch.config import load_settings


def test_local_profile_is_the_default():
    settings = load_settings(env={})
    assert settings.profile == "local"
    assert settings.lakehouse == str(Path("./lakehouse").resolve())
    assert settings.spark.master == "local[*]"


def test_profile_from_env_and_lakehouse_override():
    env = {"LAKEWATCH_CONF": "cluster", "SPARK_MASTER_URL": "spark://10.0.0.1:7077",
           "LAKEWATCH_S3_ROOT": "s3a://bucket/lake", "LAKEWATCH_LAKEHOUSE": "s3a://other/lake"}
    settings = load_settings(env=env)
    assert settings.profile == "cluster"
    assert settings.spark.master == "spark://10.0.0.1:7077"
    assert settings.lakehouse == "s3a://other/lake"


def test_cluster_profile_names_the_missing_variable():
    with pytest.raises(ValueError, match="SPARK_MASTER_URL"):
        load_settings("cluster", env={"LAKEWATCH_S3_ROOT": "s3a://b/l"})


def test_unknown_key_in_profile_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lakehouse: /x\nscoring: {batchsize: 3}\n")
    with pytest.raises(ValueError, match="batchsize"):
        load_settings(str(bad), env={})
