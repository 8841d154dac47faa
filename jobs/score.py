"""spark-submit entry point of the score job: the same code as `lakewatch score`, under spark-submit's master.

    spark-submit [--master URL] jobs/score.py --dataset NAME --date YYYY-MM-DD [...]
"""

from lakewatch.cli import run_job

if __name__ == "__main__":
    run_job("score")
