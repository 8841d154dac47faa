"""What the subcommands share: interval arguments, the session, and printing."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Sequence

from lakewatch.config import Settings
from lakewatch.data.intervals import Interval, interval_from_args
from lakewatch.lakehouse.query import format_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def add_interval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", help="one UTC day, YYYY-MM-DD")
    p.add_argument("--start", help="first day of the interval, YYYY-MM-DD")
    p.add_argument("--end", help="the day after the last one (exclusive), YYYY-MM-DD")


def add_dataset_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="a name in conf/datasets/ or a path to a spec YAML")


def add_job_args(p: argparse.ArgumentParser) -> None:
    """What every job over an interval takes: --dataset, the interval, and --run-id."""
    add_dataset_arg(p)
    add_interval_args(p)
    p.add_argument("--run-id", help="default: a new id")


def interval_of(args: argparse.Namespace) -> Interval:
    return interval_from_args(args.date, args.start, args.end)


def session(settings: Settings, app: str) -> "SparkSession":
    from lakewatch.lakehouse.session import build_session

    return build_session(settings, app_name=f"lakewatch-{app}")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> None:
    print(format_rows(columns, rows, fmt))
