"""spark-submit entry point of the evaluate job: the same code as `lakewatch evaluate`, under spark-submit's master.

    spark-submit [--master URL] jobs/evaluate.py --dataset NAME --date YYYY-MM-DD [...]
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("evaluate")
