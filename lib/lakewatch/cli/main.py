"""The `lakewatch` command: parse arguments, load the profile, hand over to one subcommand.

A user error (lakewatch.errors.LakewatchError: bad input, configuration or state) is printed as one line
and exits with 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lakewatch import errors
from lakewatch.cli import data, feedback, modeling, monitoring, sql
from lakewatch.config import load_settings
from lakewatch.errors import LakewatchError
from lakewatch.pipeline.tracking import worker_cause

USER_ERRORS = {name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, LakewatchError)}

SUBCOMMANDS = [
    data.SetupJars, data.Generate, data.ImportNab, data.Validate,
    modeling.Train, modeling.Score, modeling.Evaluate, modeling.Backtest, modeling.Models,
    monitoring.Drift, monitoring.Report, feedback.Feedback, feedback.AlertBudget,
    sql.Sql, sql.Summary,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakewatch", description="Anomaly detection for the lakehouse.")
    parser.add_argument("--conf", help="profile name in conf/ or a YAML path (default: $LAKEWATCH_CONF or local)")
    parser.add_argument("--lakehouse", help="override the lakehouse root of the profile")
    parser.add_argument("--master", help="override the Spark master of the profile ('spark-submit': take the "
                        "master spark-submit was given, as the jobs in jobs/ do)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_arguments(sub.add_parser(module.NAME, help=module.HELP, description=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler = {m.NAME: m for m in SUBCOMMANDS}[args.command]
    try:
        settings = load_settings(args.conf)
        if args.lakehouse:
            settings = settings.with_lakehouse(args.lakehouse)
        if args.master:
            settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"master": args.master})})
        return handler.run(args, settings)
    except LakewatchError as exc:
        print(f"lakewatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        cause = worker_cause(str(exc)) if type(exc).__name__ == "PythonException" else None
        if cause and cause.split(":")[0] in USER_ERRORS:  # a user error raised on a Spark worker
            print(f"lakewatch {args.command}: error: a Spark Python worker failed: {cause}", file=sys.stderr)
            return 2
        if cause:  # a bug on a worker: the traceback follows, its cause first
            print(f"lakewatch {args.command}: a Spark Python worker failed: {cause}", file=sys.stderr)
        raise


def run_job(name: str) -> None:
    """The body of a jobs/ script: run one subcommand under spark-submit, with the master it was given."""
    sys.exit(main(["--master", "spark-submit", name, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
