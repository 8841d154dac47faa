"""The `lakewatch` command: one module per group of subcommands (data, modeling, monitoring, sql)."""

from lakewatch.cli.main import main, run_job

__all__ = ["main", "run_job"]
