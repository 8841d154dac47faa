from pathlib import Path

import pytest

from lakewatch.config import load_settings
from lakewatch.errors import ConfigError


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
    with pytest.raises(ConfigError, match="SPARK_MASTER_URL"):
        load_settings("cluster", env={"LAKEWATCH_S3_ROOT": "s3a://b/l"})


def test_unknown_key_in_profile_is_refused_with_file_line_and_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lakehouse: /x\nscoring:\n  batch_size: 64\n  batchsize: 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(str(bad), env={})
    assert str(bad) in str(err.value) and "scoring.batchsize (line 4): unknown key" in str(err.value)


def test_profile_that_is_not_yaml_names_the_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lakehouse: /x\nspark: {master: 'local[2]'\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+ is not valid YAML"):
        load_settings(str(bad), env={})


def test_home_holds_conf_jobs_and_jars_wherever_the_package_is(tmp_path: Path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "local.yaml").write_text("lakehouse: ./lh\n")
    settings = load_settings(env={"LAKEWATCH_HOME": str(tmp_path)})
    assert settings.home == str(tmp_path.resolve())
    assert settings.lakehouse == str(tmp_path.resolve() / "lh")
    assert settings.jars_path() == tmp_path.resolve() / ".cache" / "jars"
    assert settings.path(settings.jobs_dir) == tmp_path.resolve() / "jobs"
    assert settings.path(settings.datasets_dir) == tmp_path.resolve() / "conf" / "datasets"
