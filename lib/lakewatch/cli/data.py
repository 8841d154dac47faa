"""Data subcommands: set up the jars, generate demo data, import NAB, validate an interval."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from lakewatch.cli.common import add_job_args, interval_of, print_table, session
from lakewatch.config import Settings
from lakewatch.data.intervals import parse_date
from lakewatch.data.spec import load_dataset_spec
from lakewatch.errors import LakewatchError


class SetupJars:
    NAME, HELP = "setup-jars", "resolve the Delta jars from Maven Central into the local jar cache (once, at set-up)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        pass

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.lakehouse.session import resolve_delta_jars

        for jar in resolve_delta_jars(settings):
            print(jar)
        return 0


class Generate:
    NAME, HELP = "generate", "generate the demo operations dataset (metrics + labels) into the lakehouse"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", default="demo_metrics", help="the spec whose table and labels to write")
        p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
        p.add_argument("--days", type=int, default=7)
        p.add_argument("--entities", type=int, default=8)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--cadence-minutes", type=int, default=5)
        p.add_argument("--extra-features", type=int, default=0, help="aux_XX features beyond the 8 metrics")
        p.add_argument("--drift-date", help="a day on which mem_pct shifts for every host")
        p.add_argument("--kinds", help="comma-separated kinds of anomaly to inject (default: every kind)")
        p.add_argument("--anomaly-rate", type=float,
                       help="chance of an anomaly per host and day (default: the generator's)")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.demo.generate import GeneratorParams, write_generated

        spec = load_dataset_spec(args.dataset, settings)
        if spec.labels is None:
            raise LakewatchError(f"dataset {spec.name} has no labels table to write the ground truth to")
        optional = {}  # left out: the generator's own default
        if args.anomaly_rate is not None:
            optional["anomaly_rate"] = args.anomaly_rate
        if args.kinds:
            optional["kinds"] = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        params = GeneratorParams(
            start=parse_date(args.start), days=args.days, entities=args.entities, seed=args.seed,
            cadence_minutes=args.cadence_minutes, extra_features=args.extra_features,
            drift_date=parse_date(args.drift_date) if args.drift_date else None, **optional,
        )
        spark = session(settings, "generate")
        n_rows, n_labels = write_generated(spark, params, spec.table_path(settings), spec.labels_path(settings))
        end = params.start + timedelta(days=params.days)
        print(f"generated {spec.name}: {n_rows} rows ({params.entities} hosts, {params.start} to {end}), "
              f"{n_labels} labeled anomalous points")
        print(f"  table:  {spec.table_path(settings)}\n  labels: {spec.labels_path(settings)}")
        return 0


class ImportNab:
    NAME, HELP = "import-nab", "load the NAB subset (shared/datasets/nab) into the lakehouse"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--nab-dir", help="default: <shared_dir>/datasets/nab from the profile")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.demo.nab import import_nab
        from lakewatch.lakehouse.tables import raw_table_path

        nab_dir = Path(args.nab_dir) if args.nab_dir else settings.path(settings.shared_dir) / "datasets" / "nab"
        spec = load_dataset_spec("nab", settings)
        spark = session(settings, "import-nab")
        counts = import_nab(
            spark, nab_dir, spec.table_path(settings), spec.labels_path(settings), raw_table_path(settings, "nab_windows")
        )
        print(f"imported NAB from {nab_dir}: {counts.series} series, {counts.rows} rows, "
              f"{counts.windows} anomaly windows covering {counts.labeled_rows} rows")
        return 0


class Validate:
    NAME, HELP = "validate", "quarantine an interval's rows that break the dataset spec; count the valid ones"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_job_args(p)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.validate import run_validate

        spec = load_dataset_spec(args.dataset, settings)
        interval = interval_of(args)
        record = run_validate(session(settings, "validate"), settings, spec, interval, args.run_id)
        print(f"validated {spec.name} {interval} (run {record.run_id}, input version {record.input_version})")
        print_table(
            ["dataset", "rows_in", "valid", "quarantined"],
            [(spec.name, record.rows_in, record.rows_valid, record.rows_quarantined)],
        )
        return 0
