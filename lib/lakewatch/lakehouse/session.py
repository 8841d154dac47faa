"""The one Spark session factory: Delta, Arrow and a small-machine shuffle, from a profile."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lakewatch.config import Settings
from lakewatch.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
SUBMIT_MASTER = "spark-submit"


def delta_jars(settings: Settings) -> list[str]:
    """The Delta jars resolved at set-up; refuses to start without them rather than reach the network."""
    jars = sorted(str(p) for p in settings.jars_path().glob("*.jar"))
    if not jars:
        raise ConfigError(
            f"no Delta jars in {settings.jars_path()}: run `make setup` "
            "(or `lakewatch setup-jars`) once with access to Maven Central"
        )
    return jars


def ivy_cache() -> Path:
    """Where Ivy keeps what it downloaded, across clones ($LAKEWATCH_IVY_CACHE, else ~/.cache/lakewatch/ivy): a
    second set-up resolves from it instead of downloading the jars again."""
    return Path(os.environ.get("LAKEWATCH_IVY_CACHE") or Path.home() / ".cache" / "lakewatch" / "ivy")


def resolve_delta_jars(settings: Settings) -> list[Path]:
    """Resolve the Delta packages from Maven Central through Spark's own resolver into jars_dir.

    Ivy runs in a fresh directory, so that only this resolution's jars are retrieved, with its download cache
    linked to `ivy_cache()`."""
    from pyspark.sql import SparkSession

    target = settings.jars_path()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakewatch-ivy-") as ivy:
        cache = ivy_cache()
        cache.mkdir(parents=True, exist_ok=True)
        Path(ivy, "cache").symlink_to(cache, target_is_directory=True)
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("lakewatch-setup-jars")
            .config("spark.jars.packages", ",".join(settings.spark.delta_packages))
            .config("spark.jars.ivy", ivy)
            .getOrCreate()
        )
        spark.stop()
        resolved = [p for p in Path(ivy, "jars").glob("*.jar") if p.name.startswith(tuple(settings.spark.keep_jars))]
        if not resolved:
            raise RuntimeError(f"resolving {settings.spark.delta_packages} gave none of the jars {settings.spark.keep_jars}")
        for old in target.glob("*.jar"):
            old.unlink()
        for jar in resolved:
            shutil.copy2(jar, target / jar.name)
    return sorted(target.glob("*.jar"))


def launch_options(settings: Settings) -> dict[str, str]:
    """What a driver JVM must be started with (memory, JVM flags) and the profile's own options: spark-submit
    gets these as --conf, since a session built inside an already running driver cannot change them."""
    return {
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        **settings.spark.options,
    }


def session_options(settings: Settings) -> dict[str, str]:
    """Every option of a Lakewatch session but the jars: Delta, Arrow, UTC, a small-machine shuffle."""
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        **launch_options(settings),
    }


def build_session(settings: Settings, master: str | None = "", app_name: str | None = None) -> "SparkSession":
    """Build (or reuse) the session. master="" takes the profile's; None or "spark-submit" leaves it to
    spark-submit, which has already set it (the jobs in jobs/ run that way)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name or settings.spark.app_name)
    master = settings.spark.master if master == "" else master
    if master is not None and master != SUBMIT_MASTER:
        builder = builder.master(master)
    options = {"spark.jars": ",".join(delta_jars(settings)), **session_options(settings)}
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
