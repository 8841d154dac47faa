"""Monitoring subcommands: drift of a scored interval, and a scoring run's HTML report."""

from __future__ import annotations

import argparse

from pyspark.sql import functions as F

from lakewatch.cli.common import add_job_args, interval_of, print_table, session
from lakewatch.config import Settings
from lakewatch.data.spec import load_dataset_spec


class Drift:
    NAME, HELP = "drift", "drift of a scored interval against its model's reference profile; writes `drift`"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_job_args(p)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.drift import run_drift
        spark = session(settings, "drift")
        spec = load_dataset_spec(args.dataset, settings)
        outcome, record = run_drift(spark, settings, spec, interval_of(args), args.run_id)
        print_drift(spark, settings, record.run_id)
        print(f"\nalert: {', '.join(outcome.alert) or 'none'}; warn: {', '.join(outcome.warn) or 'none'}")
        return 0


def print_drift(spark, settings: Settings, run_id: str) -> None:
    """Features in warn or alert, one row per feature and metric."""
    from lakewatch.lakehouse.tables import DRIFT
    from lakewatch.lakehouse.writes import read_table

    rows = (
        read_table(spark, settings, DRIFT).where((F.col("run_id") == run_id) & F.col("status").isin("warn", "alert"))
        .orderBy("feature", "metric").select("feature", "metric", "value", "threshold", "status").collect()
    )
    print("drift (features in warn or alert):" if rows else "drift: every feature within its thresholds")
    if rows:
        print_table(["feature", "metric", "value", "alert at", "status"], [tuple(r) for r in rows])


class Report:
    NAME, HELP = "report", "regenerate the HTML report of a scoring run"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-id", required=True)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.report import regenerate

        print(regenerate(session(settings, "report"), settings, args.run_id))
        return 0
