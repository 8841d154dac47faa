"""Query subcommands: SQL over the lakehouse tables, and a summary of the latest runs."""

from __future__ import annotations

import argparse

from lakewatch.cli.common import print_table, session
from lakewatch.config import Settings
from lakewatch.lakehouse.query import run_sql


class Sql:
    NAME, HELP = "sql", "run SQL over the lakehouse tables by name (scores, events, quarantine, runs, ...)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("statement", help='e.g. "SELECT reason, count(*) FROM quarantine GROUP BY reason"')
        p.add_argument("--format", choices=["table", "csv", "json"], default="table")
        p.add_argument("--limit", type=int, default=1000, help="rows to print at most; 0 for all")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        columns, rows = run_sql(session(settings, "sql"), settings, args.statement, args.limit or None)
        print_table(columns, rows, args.format)
        return 0


SUMMARY_SQL = """
SELECT dataset, job, CAST(interval_start AS STRING) AS start, CAST(interval_end AS STRING) AS `end`,
       rows_in, rows_valid AS valid, rows_quarantined AS quarantined, rows_scored AS scored,
       rows_anomalous AS anomalous, status, round(duration_s, 1) AS seconds,
       CASE WHEN status = 'running' THEN 'incomplete: not finished (still running, or killed: rerun the interval)'
            ELSE coalesce(get_json_object(details, '$.note'), '') END AS note,
       run_id
FROM runs ORDER BY started_at DESC
"""


class Summary:
    NAME, HELP = "summary", "the latest runs: rows in / valid / quarantined / scored per dataset"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--limit", type=int, default=20)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        columns, rows = run_sql(session(settings, "summary"), settings, SUMMARY_SQL, args.limit)
        print_table(columns, rows)
        return 0
