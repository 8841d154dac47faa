"""lakewatch_score through `airflow dags test` (what `make demo` runs): a configuration error fails at once.

The full DAG run, with every output it writes, is tested through the scheduler in test_rest_api.
"""

from __future__ import annotations

import json
import subprocess


def test_a_missing_spark_connection_fails_at_once_without_retries(trained_lake, airflow_env):
    env = {k: v for k, v in airflow_env.items() if k != "AIRFLOW_CONN_SPARK_LOCAL"}
    conf = {"dataset": "demo_metrics", "start": "2026-03-04", "end": "2026-03-05"}
    out = subprocess.run(
        ["airflow", "dags", "test", "lakewatch_score", "2026-03-07", "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    log = out.stdout + out.stderr
    assert out.returncode != 0
    message = "the Spark connection 'spark_local' is not defined: set AIRFLOW_CONN_SPARK_LOCAL"
    assert log.count(message) >= 1 and "Not retried" in log
    assert "--master yarn" not in log and "up_for_retry" not in log.lower().replace(" ", "_")
