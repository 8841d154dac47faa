"""One SparkSession for the whole test session, over a temporary lakehouse."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from lakewatch.config import Settings, load_settings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    lakehouse = tmp_path_factory.mktemp("lakehouse")
    settings = load_settings("local", env={}).with_lakehouse(str(lakehouse))
    spark = settings.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 2})
    training = settings.training.model_copy(update={"epochs": 12, "sample_size": 20_000})
    return settings.model_copy(update={"spark": spark, "training": training})


@pytest.fixture(scope="session")
def spark(base_settings: Settings):
    from lakewatch.session import build_session

    session = build_session(base_settings, app_name="lakewatch-tests")
    yield session
    session.stop()


@pytest.fixture()
def settings(base_settings: Settings, tmp_path: Path) -> Settings:
    """A lakehouse of the test's own, so that tests do not see each other's tables."""
    return base_settings.with_lakehouse(str(tmp_path / "lakehouse"))


DEMO_START = date(2026, 3, 2)
