"""Model subcommands: train, score, evaluate, and the registry (models list | show | promote | rollback | compare)."""

from __future__ import annotations

import argparse
import json

from pyspark.sql import functions as F

from lakewatch.cli.common import add_interval_args, add_job_args, interval_of, print_table, session
from lakewatch.config import Settings
from lakewatch.data.spec import load_dataset_spec
from lakewatch.errors import LakewatchError


def optional_int(text: str) -> int | None:
    """An int, or None for an empty value (what a template renders for an unset Param)."""
    return int(text) if text.strip() not in ("", "None") else None


def _fmt_features(top: list | None) -> str:
    return ", ".join(f"{t['feature']} {t['share']:.0%}" for t in (top or []))


class Train:
    NAME, HELP = "train", "train a model on the valid, unlabeled rows of an interval and register it"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_job_args(p)
        p.add_argument("--model", help="the model type (default: the profile's training.default_model)")
        p.add_argument("--name", help="registry name (default: the dataset's name)")
        p.add_argument("--challenge", action=argparse.BooleanOptionalAction, default=None,
                       help="compare a candidate with production and promote it if not worse (default: the "
                       "profile's promotion.auto)")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.train import run_train

        spec = load_dataset_spec(args.dataset, settings)
        challenge = settings.promotion.auto if args.challenge is None else args.challenge
        result = run_train(session(settings, "train"), settings, spec, interval_of(args), args.model, args.name,
                           args.run_id, challenge=challenge)
        print(f"trained {result.ref} ({result.record.details['model_type']}) -> stage {result.stage}")
        if "challenge" in result.record.details:
            print_comparison(result.record.details["challenge"])
        print_table(["metric", "value"], sorted(result.metrics.items()))
        print(f"model version: {result.ref.version}")
        return 0


class Score:
    NAME, HELP = "score", "validate and score an interval with the production model (or --model-version)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_job_args(p)
        p.add_argument("--model-name", help="registry name (default: the dataset's name)")
        p.add_argument("--model-version", type=optional_int, help="score with this version instead of production")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.score import run_score

        spark = session(settings, "score")
        spec = load_dataset_spec(args.dataset, settings)
        interval = interval_of(args)
        r = run_score(spark, settings, spec, interval, args.model_name, args.model_version, args.run_id)
        print(f"scored {spec.name} {interval} with {r.model_name} v{r.model_version} (run {r.run_id})")
        if r.details.get("note"):
            print(r.details["note"])
        print_table(
            ["rows_in", "scored", "quarantined", "anomalous", "events", "seconds"],
            [(r.rows_in, r.rows_scored, r.rows_quarantined, r.rows_anomalous, r.n_events, r.details["duration_s"])],
        )
        print_top_events(spark, settings, r.run_id)
        from lakewatch.cli.monitoring import print_drift

        print()
        print_drift(spark, settings, r.run_id)
        print(f"\nreport: {r.report_path}")
        return 0


def print_top_events(spark, settings: Settings, run_id: str, limit: int = 8) -> None:
    from lakewatch.lakehouse.tables import EVENTS
    from lakewatch.lakehouse.writes import read_table

    top = read_table(spark, settings, EVENTS).where(F.col("run_id") == run_id).orderBy(F.col("peak_score").desc()).limit(limit)
    rows = [
        (e["entity"], str(e["start_ts"]), str(e["end_ts"]), e["n_points"], e["severity"], round(e["peak_score"], 3),
         _fmt_features([f.asDict() for f in e["top_features"] or []]))
        for e in top.collect()
    ]
    print("\ntop events (why: the features with the largest share of the reconstruction error):")
    print_table(["entity", "start", "end", "points", "severity", "peak", "top features"], rows)


class Evaluate:
    NAME, HELP = "evaluate", "compare an interval's scores with the dataset's labels; write `evaluation`"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_job_args(p)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.pipeline.evaluate import run_evaluate

        spec = load_dataset_spec(args.dataset, settings)
        interval = interval_of(args)
        metrics, record = run_evaluate(session(settings, "evaluate"), settings, spec, interval, args.run_id)
        print(f"evaluation of {spec.name} {interval}, {record.model_name} v{record.model_version}:")
        print_table(["metric", "value"], sorted(metrics.items()))
        return 0


class Backtest:
    NAME, HELP = "backtest", "train and score over labeled history as production would; every model vs the baseline"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", required=True, help="a name in conf/datasets/ or a path to a spec YAML")
        p.add_argument("--start", help="first day (default: the dataset's first)")
        p.add_argument("--end", help="the day after the last (default: the day after the dataset's last)")
        p.add_argument("--models", help="comma-separated model types (default: the profile's training.default_model)")
        p.add_argument("--protocol", choices=["walk-forward", "nab"], default="walk-forward")
        p.add_argument("--train-days", type=int, default=7, help="walk-forward: days of training before each cut")
        p.add_argument("--every-days", type=int, default=7, help="walk-forward: days scored after each cut")
        p.add_argument("--backtest-id", help="default: a new id; 'backtest-' is prefixed when missing (results replace those of the same id)")
        p.add_argument("--cascade", action="store_true",
                       help="score with the statistical cascade on (scoring.cascade); adds the gate's pass rate and recall")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.data.intervals import parse_date
        from lakewatch.pipeline.backtest import GATE, HEADLINE, run_backtest

        settings = settings.with_cascade() if args.cascade else settings
        spec = load_dataset_spec(args.dataset, settings)
        models = [m.strip() for m in (args.models or settings.training.default_model).split(",") if m.strip()]
        result = run_backtest(
            session(settings, "backtest"), settings, spec, models, args.protocol,
            parse_date(args.start) if args.start else None, parse_date(args.end) if args.end else None,
            args.train_days, args.every_days, args.backtest_id,
        )
        print(f"backtest {result.backtest_id} of {spec.name} ({result.protocol}, {len(result.folds)} fold(s)); "
              f"every metric per fold: lakewatch sql \"SELECT * FROM evaluation WHERE run_id = '{result.backtest_id}'\"")
        columns = HEADLINE + (GATE if settings.scoring.cascade.enabled else [])
        rows = [(model, *[_fmt(values.get(k)) for k in columns])
                for (model, fold), values in result.metrics.items() if fold is None]
        print_table(["model", *columns], rows)
        return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4g}"


def print_comparison(entry: dict) -> None:
    """A champion/challenger comparison (pipeline.challenge's record) as a table and its decision."""
    versions = list(entry["metrics"])
    keys = sorted({k for m in entry["metrics"].values() for k in m})
    print(f"compared on {entry['interval']} ({entry['basis']}):")
    print_table(["metric", *[f"v{v}" for v in versions]], [[k, *[_fmt(entry["metrics"][v].get(k)) for v in versions]]
                                                          for k in keys])
    print(f"decision: {entry['decision']}: " + "; ".join(entry["reasons"]))


class Models:
    NAME = "models"
    HELP = ("the model registry: list | show NAME VERSION | promote NAME VERSION | rollback NAME | "
            "compare NAME CHAMPION CHALLENGER --dataset D [--start S --end E]")

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("action", choices=["list", "show", "promote", "rollback", "compare"])
        p.add_argument("name", nargs="?")
        p.add_argument("version", nargs="?", type=int)
        p.add_argument("other", nargs="?", type=int, help="compare: the challenger version")
        p.add_argument("--dataset", help="compare: the dataset to score (default: the model's name)")
        add_interval_args(p)

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch import registry

        spark = session(settings, "models")
        if args.action == "list":
            df = registry.versions(spark, settings, args.name).orderBy("name", "version")
            cols = ["name", "version", "stage", "model_type", "dataset", "training_start", "training_end", "created_at"]
            print_table(cols, [tuple(str(r[c]) for c in cols) for r in df.collect()])
            return 0
        if not args.name:
            raise LakewatchError(f"models {args.action} needs a model name")
        if args.action == "rollback":
            old, new = registry.rollback(spark, settings, args.name)
            print(f"rolled back {args.name}: v{old.version} archived, v{new.version} is production again")
            return 0
        if args.version is None:
            raise LakewatchError(f"models {args.action} needs NAME VERSION")
        ref = registry.ModelRef(args.name, args.version)
        if args.action == "compare":
            from lakewatch.pipeline.challenge import compare, recent_interval

            if args.other is None:
                raise LakewatchError("models compare needs NAME CHAMPION CHALLENGER (two versions)")
            spec = load_dataset_spec(args.dataset or args.name, settings)
            interval = (interval_of(args) if (args.date or args.start) else
                        recent_interval(spark, settings, registry.ModelRef(args.name, args.other)))
            print_comparison(compare(spark, settings, spec, args.name, args.version, args.other, interval).to_dict())
            return 0
        if args.action == "show":
            print(json.dumps(registry.load_package(spark, settings, ref).manifest, indent=2, default=str))
            return 0
        replaced = registry.promote(spark, settings, ref)
        print(f"promoted {ref} to production" + (f" (v{replaced.version} archived)" if replaced else ""))
        return 0
