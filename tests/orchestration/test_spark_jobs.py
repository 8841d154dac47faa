"""The spark-submit arguments of a DAG task: what the driver JVM must start with comes from the profile."""

from __future__ import annotations

from lakewatch.config import load_settings
from lakewatch.orchestration.spark_jobs import spark_submit_kwargs


def test_the_profiles_driver_memory_and_options_reach_spark_submit():
    settings = load_settings("local", env={})
    settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={
        "driver_memory": "3g", "options": {"spark.executor.memory": "5g"}})})
    conf = spark_submit_kwargs(settings, "score", ["--dataset", "d"])["conf"]
    assert conf["spark.driver.memory"] == "3g"
    assert conf["spark.executor.memory"] == "5g"
    assert "-Duser.timezone=UTC" in conf["spark.driver.extraJavaOptions"]
