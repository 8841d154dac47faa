"""spark-submit entry point of the drift job: the same code as `lakewatch drift`, under spark-submit's master.

    spark-submit [--master URL] jobs/drift.py --dataset NAME --date YYYY-MM-DD [...]
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("drift")
