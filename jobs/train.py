"""spark-submit entry point of the train job: the same code as `lakewatch train`, under spark-submit's master.

    spark-submit [--master URL] jobs/train.py --dataset NAME --date YYYY-MM-DD [...]
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("train")
