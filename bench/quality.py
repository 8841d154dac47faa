"""`make bench-quality`: every registered model through `lakewatch backtest`, side by side, on data nobody here made
(the NAB subset) and on the generated operations data, printed as one table.

Protocols (the same code as `lakewatch backtest`; nothing is tuned on the scored part):
- NAB: `import-nab`, then NAB's own protocol: each series' probationary period (its first 15 %, at most 750
  rows) is all that is trained on, the rest is scored, alerts are scored by NAB's scorer (three profiles;
  `nab_*_optimized` is NAB's threshold optimisation, `nab_*` the model's production threshold).
- demo: `generate` 15 days x 8 hosts (seed 42, the data of `make demo`), walk-forward: train on week 1, score
  week 2 against the injected labels (event recall per kind, false alerts per entity-day, PR-AUC).
- relational: `generate` 15 days x 16 hosts with `decoupling` anomalies only (one metric follows its own daily
  cycle half a day out of phase: its usual values, no longer moving with the metrics it follows), the same
  walk-forward: enough relational events in week 2 (about 50) for their event recall to be a measurement.
- `--dev [N]`: the two generated datasets with other seeds (DEV_SEEDS, set N, default 1), where a change is measured
  before it is kept.
- cascade: the default model again with `scoring.cascade` on (`--cascade`, the model to run it with): the
  gate's pass rate and recall (points and labeled anomalies), and the speed-up of scoring against the same
  model without the gate in the same run (scoring only: validation, gate, model, cached result).

The profile is `conf/quality.yaml` (a lakehouse under bench-results/, NAB's event rule). Results: the table on
stdout, every metric in the lakehouse's `evaluation` table under the backtest ids, and bench-results/quality.json.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from lakewatch.config import Settings, load_settings
from lakewatch.data.spec import load_dataset_spec
from lakewatch.lakehouse.query import format_rows
from lakewatch.lakehouse.session import build_session
from lakewatch.models.registry import model_names
from lakewatch.pipeline.backtest import BacktestResult, run_backtest

DEMO = {"start": date(2026, 3, 2), "days": 15, "entities": 8, "seed": 42}
RELATIONAL = {"start": date(2026, 3, 2), "days": 15, "entities": 16, "seed": 7, "anomaly_rate": 0.5,
              "kinds": ("decoupling",)}
GENERATED = {"demo_metrics": DEMO, "relational_metrics": RELATIONAL}
# `--dev N`: the same generated datasets with the N-th set of other seeds, in a lakehouse of their own
# (`dev_lakehouse`): where a change to a model is measured before it is kept, so that the seeds above stay a test
# nothing was chosen on; two sets, because one development week decides by an event or two
DEV_SEEDS = ({"demo_metrics": 43, "relational_metrics": 8}, {"demo_metrics": 44, "relational_metrics": 9})
WALK_FORWARD = (date(2026, 3, 2), date(2026, 3, 16))  # of both generated datasets: week 1 trains, week 2 is scored
COLUMNS = ["nab_standard_optimized", "nab_standard", "nab_reward_low_FP_rate_optimized",
           "nab_reward_low_FN_rate_optimized", "pr_auc", "roc_auc", "f1", "event_recall", "event_recall:stuck",
           "event_recall:decoupling", "event_recall_at_far", "false_alerts_per_entity_day",
           "point_false_alarm_rate", "uncertainty_ratio", "gate_pass_rate", "gate_recall", "gate_event_recall",
           "score_seconds", "cascade_speed_up"]


def dev_suffix(dev: int) -> str:
    """What the N-th set of development seeds appends to the lakehouse and results names: -dev, then -dev2, -dev3...
    (nothing for 0, the test seeds)."""
    return "-dev" + (str(dev) if dev > 1 else "") if dev else ""


def dev_lakehouse(settings: Settings, dev: int) -> Settings:
    """The settings of the N-th development seeds' lakehouse (`dev_suffix`)."""
    if not 1 <= dev <= len(DEV_SEEDS):
        raise ValueError(f"there are {len(DEV_SEEDS)} sets of development seeds, got --dev {dev}")
    return settings.with_lakehouse(settings.lakehouse.rstrip("/") + dev_suffix(dev))


def prepare(spark, settings: Settings, datasets: list[str], dev: int = 0) -> None:
    """NAB imported and the generated datasets written into the bench lakehouse, once (they are snapshots of fixed
    inputs); with dev (1, 2...), the generated ones with that set of development seeds."""
    from lakewatch.lakehouse.tables import raw_table_path
    from lakewatch.lakehouse.writes import is_delta

    if "nab" in datasets:
        spec = load_dataset_spec("nab", settings)
        if not is_delta(spark, spec.table_path(settings)):
            from lakewatch.demo.nab import import_nab

            nab_dir = settings.path(settings.shared_dir) / "datasets" / "nab"
            import_nab(spark, nab_dir, spec.table_path(settings), spec.labels_path(settings),
                       raw_table_path(settings, "nab_windows"))
    for name in [d for d in datasets if d in GENERATED]:
        spec = load_dataset_spec(name, settings)
        if not is_delta(spark, spec.table_path(settings)):
            from lakewatch.demo.generate import GeneratorParams, write_generated

            params = {**GENERATED[name], **({"seed": DEV_SEEDS[dev - 1][name]} if dev else {})}
            write_generated(spark, GeneratorParams(**params), spec.table_path(settings),
                            spec.labels_path(settings))


def backtest(spark, settings: Settings, dataset: str, models: list[str], suffix: str = "",
             with_baseline: bool = True) -> BacktestResult:
    spec = load_dataset_spec(dataset, settings)
    if dataset == "nab":
        return run_backtest(spark, settings, spec, models, "nab", backtest_id=f"bench-quality-nab{suffix}",
                            with_baseline=with_baseline)
    return run_backtest(spark, settings, spec, models, "walk-forward", *WALK_FORWARD, train_days=7, every_days=7,
                        backtest_id=f"bench-quality-{dataset}{suffix}", with_baseline=with_baseline)


def table(rows: list[dict]) -> str:
    """The rows as the CLI prints tables (NaN and missing as "-")."""
    cols = ["dataset", "model", *[c for c in COLUMNS if any(r.get(c) is not None for r in rows)], "seconds"]
    cell = lambda v: "-" if v is None or v != v else v  # noqa: E731
    return format_rows(cols, [[cell(r.get(c)) for c in cols] for r in rows], "table")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conf", default="quality", help="profile (default conf/quality.yaml)")
    p.add_argument("--models", default=",".join(model_names()), help="comma-separated (default: every registered)")
    p.add_argument("--datasets", default="nab,demo_metrics,relational_metrics")
    p.add_argument("--cascade", default=None,
                   help="the model rerun with scoring.cascade on (default: the profile's default model; '' for none)")
    p.add_argument("--dev", type=int, nargs="?", const=1, default=0, metavar="N",
                   help="the generated datasets with the N-th set of development seeds (DEV_SEEDS; default 1), in "
                        "<lakehouse>-dev (-devN)")
    p.add_argument("--out", default=None,
                   help="default bench-results/quality.json (quality-dev.json, quality-dev2.json... with --dev)")
    args = p.parse_args(argv)
    settings = load_settings(args.conf)
    models = [m for m in args.models.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = sorted(set(models + ([args.cascade] if args.cascade else [])) - set(model_names()))
    if unknown:  # before any Spark work: a typo would otherwise fail after the first dataset's backtest
        p.error(f"unknown model(s) {', '.join(unknown)}: registered are {', '.join(model_names())}")
    if args.dev:
        if "nab" in datasets:
            p.error("--dev runs the generated datasets only: NAB has no development copy (--datasets)")
        try:
            settings = dev_lakehouse(settings, args.dev)
        except ValueError as exc:
            p.error(str(exc))
    out = Path(args.out or f"bench-results/quality{dev_suffix(args.dev)}.json")
    spark = build_session(settings, app_name="lakewatch-bench-quality")
    prepare(spark, settings, datasets, args.dev)
    rows = []
    cascade = settings.training.default_model if args.cascade is None else args.cascade
    for dataset in datasets:
        result = backtest(spark, settings, dataset, models)
        rows += [{"dataset": dataset, "model": model, **result.overall(model), "seconds": result.seconds[model],
                  "score_seconds": round(result.score_seconds[model], 1)} for model in result.seconds]
        if cascade:
            gated = backtest(spark, settings.with_cascade(), dataset, [cascade], "-cascade", with_baseline=False)
            plain = result.score_seconds.get(cascade)
            took = gated.score_seconds[cascade]
            rows.append({"dataset": dataset, "model": f"{cascade}+cascade", **gated.overall(cascade),
                         "seconds": gated.seconds[cascade], "score_seconds": round(took, 1),
                         "cascade_speed_up": round(plain / took, 2) if plain else None})
        print(table([r for r in rows if r["dataset"] == dataset]), flush=True)
    print("\n" + table(rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": settings.source, "rows": rows}, indent=1, default=str))
    print(f"\nwritten: {out}; every metric: lakewatch --conf {args.conf} --lakehouse {settings.lakehouse} sql "
          "\"SELECT * FROM evaluation WHERE run_id LIKE 'backtest-bench-quality-%'\"")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
