"""`make bench-signals`: what each of a model's signals does on the walk-forward test week, apart from the others.

A multi-signal detector (`tcn`: forecast, level, seasonal, flatline, relational) fuses its signals' p-values into
one. The fused score can only rank as well as its signals' calibrations transfer to new data: a signal whose
p-values are too small on the test week fills the top of the ranking with its own false alarms, and the fused
score lags its best signal. This bench trains the model on week 1 of a generated dataset (the protocol and data of
`make bench-quality`), scores week 2 through the package's plan in this process, and prints per signal:
- how often normal points reach p <= 1e-3 and 1e-4, against that nominal rate (1.0: the calibration transfers);
- PR-AUC and event recall at 0.5 % point false alarms, of the signal alone and of the fusion (`monitoring.evaluate`'s
  definitions, on the same 0.01 surprise bins);
- which signal owns the fused score's false alarms at that operating point.

Run `make bench-quality` first (it writes the datasets), then `make bench-signals` (BENCH_SIGNALS_ARGS="--dataset
demo_metrics" for the other one).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from bench.quality import GENERATED, WALK_FORWARD, dev_lakehouse, prepare
from lakewatch.config import load_settings
from lakewatch.data.intervals import Interval
from lakewatch.data.labels import label_points
from lakewatch.data.quality import validate_interval
from lakewatch.data.spec import load_dataset_spec
from lakewatch.lakehouse.query import format_rows
from lakewatch.lakehouse.session import build_session
from lakewatch.monitoring.evaluate import BINS_PER_UNIT, OPERATING_FAR, SURPRISE_CAP, auc_from_histogram, operating_bin
from lakewatch.pipeline.train import collect_rows, fit_package
from lakewatch.scoring.calibration import fuse
from lakewatch.scoring.plan import surprise

NOMINAL = (1e-3, 1e-4)


def surprise_bins(p: np.ndarray) -> np.ndarray:
    """p-values as `monitoring.evaluate` bins them: -log10 p, capped, in steps of 1 / BINS_PER_UNIT."""
    return np.floor(np.minimum(surprise(p), SURPRISE_CAP) * BINS_PER_UNIT)


def ranking(key: np.ndarray, anomaly: np.ndarray) -> dict[str, float]:
    """PR-AUC and event recall at OPERATING_FAR of binned surprises (n,) (`surprise_bins`), against each point's
    anomaly id (None: normal)."""
    label = pd.notna(anomaly)
    keys, at_key = np.unique(-key, return_inverse=True)  # from the highest surprise down
    pos = np.bincount(at_key, weights=label, minlength=len(keys))
    neg = np.bincount(at_key, weights=~label, minlength=len(keys))
    _, pr_auc = auc_from_histogram(pos, neg)
    at = operating_bin(neg, -keys, OPERATING_FAR)
    peaks = pd.Series(key[label]).groupby(np.asarray(anomaly)[label]).max()
    return {"pr_auc": pr_auc, "event_recall_at_far": float((peaks >= at).mean()) if len(peaks) else float("nan"),
            "operating_bin": at}


def signal_table(names: list[str], p: np.ndarray, fusion: str, anomaly: np.ndarray) -> list[list[object]]:
    """One row per signal and one for the fusion: the calibration's transfer and the ranking's quality."""
    normal = pd.isna(anomaly)
    fused = fuse(p, fusion)
    fused_key = surprise_bins(fused)
    owner = np.asarray(names)[np.argmin(p, axis=1)]
    alarms = normal & (fused_key >= ranking(fused_key, anomaly)["operating_bin"])
    rows = []
    for name, col in [*zip(names, p.T), (f"fused ({fusion})", fused)]:
        r = ranking(surprise_bins(col), anomaly)
        ratios = [float(np.mean(col[normal] <= q)) / q for q in NOMINAL]
        owned = int(np.sum(alarms & (owner == name))) if name in names else int(alarms.sum())
        rows.append([name, *[round(x, 2) for x in ratios], round(r["pr_auc"], 4), round(r["event_recall_at_far"], 4),
                     owned])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conf", default="quality", help="profile (default conf/quality.yaml)")
    p.add_argument("--dataset", default="relational_metrics", choices=sorted(GENERATED))
    p.add_argument("--model", default=None, help="default: the profile's default model")
    p.add_argument("--dev", type=int, nargs="?", const=1, default=0, metavar="N",
                   help="the dataset with the N-th set of development seeds (bench.quality's DEV_SEEDS; default 1)")
    p.add_argument("--save", default=None, metavar="NPZ",
                   help="also write each point's signal p-values, anomaly id ('' for normal points), entity and "
                        "timestamp there (numpy .npz)")
    args = p.parse_args(argv)
    settings = load_settings(args.conf)
    if args.dev:
        try:
            settings = dev_lakehouse(settings, args.dev)
        except ValueError as exc:
            p.error(str(exc))
    model = args.model or settings.training.default_model
    spark = build_session(settings, app_name="lakewatch-bench-signals")
    prepare(spark, settings, [args.dataset], args.dev)
    spec = load_dataset_spec(args.dataset, settings)
    cut = WALK_FORWARD[0] + timedelta(days=7)
    train, test = Interval(WALK_FORWARD[0], cut), Interval(cut, WALK_FORWARD[1])
    package = fit_package(spark, settings, spec, train, model, model, 1, "bench-signals").package
    validated = validate_interval(spark, settings, spec, test, "bench-signals", package.max_horizon_us / 1e6,
                                  quarantine=False)
    rows = collect_rows(validated.valid, spec.feature_names, ("_in",))
    validated.release()
    plan = package.plan()
    targets = np.flatnonzero(rows.extra["_in"].astype(bool))
    out, _, located = plan.detect_raw(rows.entity, rows.ts, rows.x, targets)
    p_signals = plan.signal_p_values(out, located)
    labels = label_points(spark, settings, spec, test.start_ts, test.end_ts)
    labeled = labels.select("entity", F.unix_micros("ts").alias("ts_us"), "anomaly_id").toPandas()
    points = pd.DataFrame({"entity": np.asarray(rows.entity.to_pylist(), dtype=object)[targets],
                           "ts_us": rows.ts[targets]})
    anomaly = points.merge(labeled, on=["entity", "ts_us"], how="left")["anomaly_id"].to_numpy(dtype=object)
    names = list(plan.detector.signal_names)
    print(f"{model} on {args.dataset}: trained on {train}, scored {test} ({len(targets)} points, "
          f"{int(pd.notna(anomaly).sum())} labeled)")
    cols = ["signal", "normal p<=1e-3 / nominal", "p<=1e-4 / nominal", "pr_auc alone", "event_recall_at_far alone",
            "false alarms owned at 0.5 % FAR"]
    print(format_rows(cols, signal_table(names, p_signals, plan.calibrations.fusion, anomaly), "table"))
    if args.save:
        path = args.save if args.save.endswith(".npz") else args.save + ".npz"
        labeled = pd.notna(anomaly)
        np.savez_compressed(path, names=np.asarray(names), p=p_signals, labeled=labeled,
                            anomaly=np.where(labeled, anomaly, "").astype(str),
                            entity=points["entity"].to_numpy(dtype=str), ts_us=points["ts_us"].to_numpy())
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
