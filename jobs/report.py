"""spark-submit entry point of the report job: the same code as `lakewatch report`, under spark-submit's master.

    spark-submit [--master URL] jobs/report.py --run-id RUN_ID
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("report")
