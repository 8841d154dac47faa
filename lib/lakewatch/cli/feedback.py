"""`lakewatch feedback add | list | import`: analyst labels on events, without Spark (lakewatch.feedback.store)."""

from __future__ import annotations

import argparse
import getpass

from lakewatch.cli.common import add_dataset_arg, add_interval_args, interval_of, print_table, session
from lakewatch.config import Settings
from lakewatch.feedback import store

LIST_COLUMNS = ["at", "label", "author", "event_id", "dataset", "entity", "start_ts", "end_ts", "source", "note"]


class Feedback:
    NAME, HELP = "feedback", "label events as anomaly or false_alarm (add | list | import)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = sub.add_parser("add", help="label one event by its id (from the events table or the Lakewatch view)")
        add.add_argument("--event-id", required=True)
        add.add_argument("--label", required=True, choices=store.LABELS)
        add.add_argument("--note", help="why (optional)")
        ls = sub.add_parser("list", help="labels, newest first (the first row of an event is the one in force)")
        ls.add_argument("--event-id")
        ls.add_argument("--dataset")
        ls.add_argument("--latest", action="store_true", help="only the label in force for each event or range")
        ls.add_argument("--format", choices=["table", "csv", "json"], default="table")
        ls.add_argument("--limit", type=int, default=100, help="rows to print at most; 0 for all")
        imp = sub.add_parser("import", help="labels from a CSV: label + event_id, or label + dataset, entity, "
                             "start, end (ISO times); optional note")
        imp.add_argument("file")
        for q in (add, imp):
            q.add_argument("--author", default=None, help="who labels (default: the logged-in OS user)")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        if args.action == "add":
            row = store.add(settings, args.event_id, args.label, args.author or getpass.getuser(), args.note)
            print(f"labeled event {row.event_id} ({row.dataset}, {row.entity}, {row.start_ts:%Y-%m-%d %H:%M} - "
                  f"{row.end_ts:%Y-%m-%d %H:%M}) as {row.label} by {row.author}")
        elif args.action == "import":
            rows = store.import_csv(settings, args.file, args.author or getpass.getuser())
            counts = {lab: sum(r.label == lab for r in rows) for lab in store.LABELS}
            print(f"imported {len(rows)} labels from {args.file}: "
                  + ", ".join(f"{n} {lab}" for lab, n in counts.items()))
        else:
            pdf = store.latest(settings, args.dataset) if args.latest else store.history(
                settings, event_id=args.event_id, dataset=args.dataset)
            if args.latest and args.event_id and not pdf.empty:
                pdf = pdf[pdf["event_id"] == args.event_id]
            if args.limit:
                pdf = pdf.head(args.limit)
            columns = [c for c in LIST_COLUMNS if c in pdf.columns] if not pdf.empty else LIST_COLUMNS
            rows = [[None if _missing(v) else v for v in r] for r in pdf[columns].itertuples(index=False)] \
                if not pdf.empty else []
            print_table(columns, rows, args.format)
        return 0


class AlertBudget:
    NAME = "alert-budget"
    HELP = ("tune the production model's event threshold to alerting.max_alerts_per_entity_day from its "
            "calibration and the analysts' false alarms over scored days, and record it in the registry")

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        add_dataset_arg(p)
        add_interval_args(p)
        p.add_argument("--model", help="model name (default: the dataset's)")
        p.add_argument("--budget", type=float, help="alerts per entity-day (default: the profile's)")
        p.add_argument("--dry-run", action="store_true", help="print the choice, record nothing")

    @staticmethod
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from lakewatch.data.spec import load_dataset_spec
        from lakewatch.pipeline.alert_budget import tune_alert_budget

        spec = load_dataset_spec(args.dataset, settings)
        ref, c = tune_alert_budget(session(settings, "alert-budget"), settings, spec, interval_of(args), args.model,
                                   args.budget, record=not args.dry_run)
        pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        print_table(["", "value"], [
            ["model", str(ref)], ["budget (alerts per entity-day)", c.budget],
            ["event threshold (peak calibrated)", f"{c.threshold:.8f}"],
            ["model's own alarm level", f"{c.base_threshold:.8f}"],
            ["expected false alerts per entity-day", f"{c.expected_false_alerts:.4g}"
             + ("" if c.within_budget else "  (over budget: no threshold meets it)")],
            ["  bound from the calibration", f"{c.normal_false_alerts:.4g}"],
            ["  analysts' false alarms still raised", f"{c.observed_false_alerts:.4g} ({c.false_alarms} marked)"],
            ["recall of confirmed anomalies", f"{pct(c.recall)} (at the model's level {pct(c.recall_at_base)}, "
             f"{c.confirmed} events)"],
            ["recorded", "no (dry run)" if args.dry_run else "yes: the next score runs raise only these events"],
        ])
        return 0


def _missing(value: object) -> bool:
    try:
        return value is None or value != value
    except (TypeError, ValueError):
        return False
