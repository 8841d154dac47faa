"""Subcommands of `lakewatch`: one module each, with NAME, HELP, add_arguments(parser) and run(args, settings).

Adding a command is adding a module here and listing it below.
"""

from lakewatch.commands import data, modeling, monitoring, sql

SUBCOMMANDS = [
    data.SetupJars, data.Generate, data.ImportNab, data.Validate,
    modeling.Train, modeling.Score, modeling.Evaluate, modeling.Models,
    monitoring.Drift, monitoring.Report,
    sql.Sql, sql.Summary,
]
