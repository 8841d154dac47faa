"""The DAGs' Spark operator: spark-submit, but a missing Spark connection fails at once, without retries.

The provider's hook falls back to `--master yarn` when the connection is not defined, and each of the
task's retries then fails after minutes; a configuration error is not something a retry fixes.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from lakewatch.orchestration.spark_jobs import connection_env_var


class LakewatchSparkSubmitOperator(SparkSubmitOperator):
    """SparkSubmitOperator that checks its connection first."""

    def execute(self, context: Any) -> None:
        conn_id = self._conn_id
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise AirflowFailException(
                f"the Spark connection {conn_id!r} is not defined: set {connection_env_var(conn_id)} "
                "(for example '{\"conn_type\": \"spark\", \"host\": \"local[2]\"}') or add it under Admin > "
                "Connections. Not retried: this is a configuration error."
            ) from None
        return super().execute(context)
