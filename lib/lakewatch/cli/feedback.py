"""`lakewatch feedback add | list | import`: analyst labels on events, without Spark (lakewatch.feedback.store)."""

from __future__ import annotations

import argparse
import getpass

from lakewatch.cli.common import print_table
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


def _missing(value: object) -> bool:
    try:
        return value is None or value != value
    except (TypeError, ValueError):
        return False
