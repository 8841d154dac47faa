"""spark-submit entry point of the validate job: the same code as `lakewatch validate`, under spark-submit's master.

    spark-submit [--master URL] jobs/validate.py --dataset NAME --date YYYY-MM-DD [...]
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("validate")
