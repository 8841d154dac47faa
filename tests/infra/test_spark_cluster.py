"""The scoring job through spark-submit on a real standalone cluster (master + 2 workers on 127.0.0.1):
the same output as local mode, also when a worker is killed while the job runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakewatch.data.intervals import Interval
from lakewatch.lakehouse.session import delta_jars
from lakewatch.lakehouse.tables import QUARANTINE, RUNS, SCORES
from lakewatch.pipeline.score import run_score
from tests.conftest import subprocess_env
from tests.services import CLUSTER_SCRIPT

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
DAY = Interval(date(2026, 3, 6), date(2026, 3, 7))


@pytest.fixture(scope="module")
def cluster(spark, trained_lake, services):
    """The standalone cluster, started in the background shortly before this module (tests/conftest.py,
    `Services`), and the same day scored locally (the reference)."""
    started = services["cluster"]
    settings, spec, _ = trained_lake
    record = run_score(spark, settings, spec, DAY, run_id="local-baseline")
    local = scores_of_day(spark, settings), record
    started.proc.wait(timeout=180)
    assert started.proc.returncode == 0, started.log.read_text()[-4000:]
    url = subprocess.run([CLUSTER_SCRIPT, "url"], env=started.env, capture_output=True, text=True).stdout.strip()
    yield url, CLUSTER_SCRIPT, started.env, local


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory) -> str:
    """The lakewatch package as executors get it: a zip shipped with --py-files."""
    base = tmp_path_factory.mktemp("dist") / "lakewatch"
    return shutil.make_archive(str(base), "zip", root_dir=REPO / "lib", base_dir="lakewatch")


def scores_of_day(spark, settings) -> pd.DataFrame:
    df = spark.read.format("delta").load(SCORES.path(settings)).where(F.col("logical_date") == F.lit(DAY.start))
    pdf = df.select("entity", "ts", "score", "calibrated", "is_anomaly", "model_version").toPandas()
    return pdf.sort_values(["entity", "ts"]).reset_index(drop=True)


def submit(url: str, settings, profile: Path, zip_path: str, run_id: str) -> subprocess.Popen:
    cmd = [
        "spark-submit", "--master", url, "--py-files", zip_path, "--jars", ",".join(delta_jars(settings)),
        "--conf", f"spark.pyspark.python={sys.executable}", "--conf", "spark.executor.memory=768m",
        "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.task.maxFailures=4",
        "--conf", "spark.databricks.delta.snapshotPartitions=1",
        "--conf", "spark.driver.extraJavaOptions=-Duser.timezone=UTC -XX:TieredStopAtLevel=1",
        "--conf", "spark.executor.extraJavaOptions=-Duser.timezone=UTC -XX:TieredStopAtLevel=1",
        str(REPO / "jobs" / "score.py"), "--dataset", "demo_metrics", "--start", str(DAY.start), "--end", str(DAY.end),
        "--run-id", run_id,
    ]
    return subprocess.Popen(cmd, env=subprocess_env(profile), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def assert_same_scores(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows, same keys and flags; scores equal up to float32 summation order (batches differ)."""
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got[["entity", "ts", "is_anomaly", "model_version"]],
                                  want[["entity", "ts", "is_anomaly", "model_version"]])
    pd.testing.assert_series_equal(got["score"], want["score"], rtol=1e-5)
    pd.testing.assert_series_equal(got["calibrated"], want["calibrated"], rtol=1e-5)


def test_cluster_output_equals_local_output_with_a_worker_killed_mid_job(spark, trained_lake, cluster, package_zip):
    """One job on the cluster, a worker SIGKILLed while it runs: the job finishes on the other worker, exactly
    once (no duplicate rows), with the same scores, quarantine and run counts as the same day scored locally."""
    settings, _, profile = trained_lake
    url, script, env, local_scores = cluster
    proc = submit(url, settings, profile, package_zip, "cluster-killed")
    state = Path(env["LAKEWATCH_CLUSTER_DIR"])
    deadline = time.monotonic() + 180
    # wait until both workers run an executor of the job, then kill the first worker
    while time.monotonic() < deadline and len(list(state.glob("worker-*/work/app-*/*"))) < 2:
        time.sleep(1)
    time.sleep(4)
    assert proc.poll() is None, "the job ended before the worker could be killed"
    killed = subprocess.run([script, "kill-worker", "1"], env=env, capture_output=True, text=True)
    assert killed.returncode == 0, killed.stderr
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    got = scores_of_day(spark, settings)
    assert not got.duplicated(["entity", "ts"]).any()
    assert_same_scores(got, local_scores[0])
    q = spark.read.format("delta").load(QUARANTINE.path(settings)).where(F.col("logical_date") == F.lit(DAY.start))
    assert q.count() == local_scores[1].rows_quarantined
    run = spark.read.format("delta").load(RUNS.path(settings)).where(F.col("run_id") == "cluster-killed").first()
    assert run["status"] == "success" and run["rows_scored"] == local_scores[1].rows_scored
    status = subprocess.run([script, "status"], env=env, capture_output=True, text=True)
    assert "worker-1" in status.stdout and status.returncode == 1  # the killed worker is down
