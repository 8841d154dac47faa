"""The one scoring plan: transforms -> detector -> calibration -> flag + attributions.

Training calibration, the Spark jobs, `evaluate`, the backtests, the benchmarks and the tests all score
through this module; no other code computes a score, a calibrated value, an uncertainty or a flag.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakewatch.config import Fusion
from lakewatch.models.base import Detector, DetectorOutput
from lakewatch.scoring.calibration import Calibration, EntityTails, fuse, p_values
from lakewatch.scoring.windows import WindowIndex, gather, window_index
from lakewatch.transforms.calendar import calendar_features
from lakewatch.transforms.entities import EntityIndex, Located, Spacing
from lakewatch.transforms.normalization import Normalizer
from lakewatch.transforms.seasonal import SeasonalProfile

CHUNK = 4096  # windows materialised at a time: bounded memory whatever the batch
SEQUENCE = 1024  # targets per sequence on the detector's sequence path
SURPRISE_FLOOR = 1e-300


@dataclass(frozen=True)
class WindowRules:
    """How far back a window reaches: context x the entity's spacing x factor, at most max_horizon_us."""

    factor: float = 2.0
    max_horizon_us: int | None = None


@dataclass(frozen=True)
class FlagRule:
    """When a row is an anomaly: its score at or above the threshold, or (lower_bound_sigmas > 0) the lower
    confidence bound of its surprise, -log10 p - sigmas x uncertainty, at or above the threshold's."""

    lower_bound_sigmas: float = 0.0


@dataclass
class ScoredRows:
    """The plan's result for n rows, in row order."""

    score: np.ndarray  # (n,) raw
    calibrated: np.ndarray  # (n,) 1 - p-value
    uncertainty: np.ndarray | None  # (n,) spread of the members' -log10 p-values
    is_anomaly: np.ndarray  # (n,) bool
    top_idx: np.ndarray  # (n_anomalies, k) feature indices of the anomalous rows, in row order
    top_share: np.ndarray  # (n_anomalies, k)
    warming_up: np.ndarray  # (n,) bool
    unseen: np.ndarray  # (n,) bool: the entity had no statistics of its own at training


@dataclass(frozen=True)
class Calibrations:
    """How the plan turns a detector's output into p-values: a calibration per signal (the detector's score
    when it has one signal), each entity's own tails when the package was calibrated per entity, and the
    members' calibrations for the uncertainty of an ensemble."""

    signals: dict[str, Calibration]
    entity_tails: dict[str, EntityTails] | None = None
    members: list[Calibration] | None = None
    fusion: Fusion = "bonferroni"  # how the signals' p-values make one (calibration.fuse)

    @property
    def target_false_alarm_rate(self) -> float:
        return next(iter(self.signals.values())).target_false_alarm_rate


@dataclass
class ScoringPlan:
    """Everything a worker needs to score rows, built from a package (or, at training, piece by piece)."""

    features: list[str]
    entities: EntityIndex
    normalizer: Normalizer
    spacing: Spacing
    detector: Detector
    calibrations: Calibrations | None
    windows: WindowRules
    seasonal: SeasonalProfile | None = None
    flag: FlagRule = FlagRule()
    top_k: int = 3

    @property
    def context(self) -> int:
        return self.detector.context

    def with_calibrations(self, calibrations: Calibrations) -> "ScoringPlan":
        return replace(self, calibrations=calibrations)

    @property
    def needs_entity(self) -> bool:
        """Whether scoring needs each row's entity: per-entity statistics or calibration, or windows."""
        tails = self.calibrations is not None and self.calibrations.entity_tails is not None
        return self.normalizer.needs_entity or self.context > 1 or self.seasonal is not None or tails

    def locate(self, entity: "pa.Array | np.ndarray | None", n: int) -> Located:
        """Each row's entity in the index, when anything per entity is needed."""
        if self.needs_entity:
            return self.entities.locate(entity, n)
        return Located(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))

    def model_inputs(self, x: np.ndarray, ts: np.ndarray | None, located: Located) -> np.ndarray:
        """The detector's input rows: normalised features, then their seasonal residuals and the calendar
        channels when the detector wants them."""
        parts = [self.normalizer.apply(x, located)]
        if self.detector.seasonal_bins:
            if ts is None or self.seasonal is None:
                raise ValueError("a model with seasonal inputs needs each row's timestamp and a seasonal profile")
            parts.append(self.seasonal.residuals(x, ts, located))
        if self.detector.calendar_channels:
            if ts is None:
                raise ValueError("a model with calendar inputs needs each row's timestamp")
            parts.append(calendar_features(ts, self.detector.calendar_channels))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def horizons(self, located: Located) -> np.ndarray:
        return self.spacing.horizons_us(located, self.context, self.windows.factor, self.windows.max_horizon_us)

    def detect(self, values: np.ndarray, windows: WindowIndex) -> DetectorOutput:
        """The detector over windows of model inputs, CHUNK windows at a time."""
        outs = [self.detector.score(gather(values, windows, lo, lo + CHUNK)) for lo in range(0, len(windows), CHUNK)]
        if not outs:
            d = len(self.features)
            return DetectorOutput(np.zeros(0), np.zeros((0, d)))
        return DetectorOutput.concat(outs)

    def finish(self, out: DetectorOutput, warming_up: np.ndarray, located: Located) -> ScoredRows:
        """Calibration, uncertainty, flag and attributions of the detector's output (rows located)."""
        if self.calibrations is None:
            raise RuntimeError("the plan has no calibration yet")
        score = np.nan_to_num(out.score.astype(np.float64), nan=np.inf, posinf=np.inf)
        p = self.p_values(out, located)
        uncertainty = self.uncertainty(out)
        target = self.calibrations.target_false_alarm_rate
        if self.flag.lower_bound_sigmas > 0 and uncertainty is not None:
            flag = surprise(p) - self.flag.lower_bound_sigmas * uncertainty >= surprise(np.array([target]))[0]
        else:
            flag = p <= target
        idx, share = top_shares(out.contributions[flag], self.top_k)
        return ScoredRows(score, 1.0 - p, uncertainty, flag, idx, share, warming_up, located.unseen)

    def signal_matrix(self, out: DetectorOutput) -> np.ndarray:
        raw = out.score[:, None] if out.signals is None else out.signals
        return np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=np.inf, posinf=np.inf)

    def signal_p_values(self, out: DetectorOutput, located: Located) -> np.ndarray:
        """(n, S): each signal's p-value, from the entity's own tail when calibrated per entity."""
        cals = self.calibrations
        signals = self.signal_matrix(out)
        ps = []
        for k, name in enumerate(self.detector.signal_names):
            tails = cals.entity_tails.get(name) if cals.entity_tails else None
            if tails is None:
                ps.append(p_values(cals.signals[name], signals[:, k]))
            else:
                ps.append(tails.p_values(cals.signals[name], signals[:, k], located.pos, located.unseen))
        return np.column_stack(ps)

    def p_values(self, out: DetectorOutput, located: Located) -> np.ndarray:
        """The signals' p-values fused into one by the package's rule (`calibration.fuse`: Bonferroni or the
        harmonic mean p-value)."""
        return fuse(self.signal_p_values(out, located), self.calibrations.fusion)

    def uncertainty(self, out: DetectorOutput) -> np.ndarray | None:
        """The spread (standard deviation) of the ensemble members' surprise, -log10 p under each member's own
        calibration: how many orders of magnitude of tail probability the members disagree by. Large where
        the data is unlike training; the detector's own uncertainty when it has no member calibrations."""
        members = self.calibrations.members if self.calibrations else None
        if out.members is not None and members:
            s = np.column_stack([surprise(p_values(c, out.members[:, k].astype(np.float64)))
                                 for k, c in enumerate(members)])
            return s.std(axis=1)
        return None if out.uncertainty is None else out.uncertainty.astype(np.float64)

    def score_rows(self, entity: "pa.Array | np.ndarray | None", ts: np.ndarray | None, x: np.ndarray,
                   targets: np.ndarray | None = None) -> ScoredRows:
        """Score raw rows sorted by (entity, ts); windows end at each target row (default: every row).

        entity: (N,) entity names (may be None for a row-wise model with global normalisation); ts: (N,)
        int64 microseconds (may be None for row-wise models without calendar inputs); x: (N, d) raw feature
        values. Rows that are not targets serve as history only.
        """
        return self.finish(*self.detect_raw(entity, ts, x, targets))

    def detect_raw(self, entity: "pa.Array | np.ndarray | None", ts: np.ndarray | None, x: np.ndarray,
                   targets: np.ndarray | None = None) -> tuple[DetectorOutput, np.ndarray, Located]:
        """`score_rows` up to the detector: its output for the target rows, which of them are warming up, and
        where their entities are (what `finish` and `signal_p_values` need)."""
        located = self.locate(entity, len(x))
        values = self.model_inputs(x, ts, located)
        rows = np.arange(len(values)) if targets is None else np.asarray(targets, dtype=np.int64)
        at = Located(located.pos[rows], located.unseen[rows])
        if self.context == 1:
            windows = WindowIndex(rows.astype(np.int32)[:, None], np.ones(len(rows), dtype=np.int32))
            return self.detect(values, windows), windows.warming_up, at
        if entity is None or ts is None:
            raise ValueError("a model with context > 1 needs each row's entity and timestamp")
        codes = entity_codes(entity)
        windows = window_index(codes, ts, self.context, self.horizons(located), rows)
        return self.detect_rows(values, codes, windows, rows), windows.warming_up, at

    def detect_rows(self, values: np.ndarray, codes: np.ndarray, windows: WindowIndex, rows: np.ndarray) -> DetectorOutput:
        """The detector's output for the windows ending at `rows`: runs of consecutive rows go through the
        detector's sequence path when it has one (each point computed once, not once per window it is in), the
        rest window by window. The same numbers either way.

        A run of whole windows is the rows before it and the run. A warming-up window (fewer than `context` real
        rows within its horizon: an entity's first rows, those after a gap, or where many points are missing)
        repeats its earliest row (`windows.gather`); so the warming-up windows that share their earliest row f
        are the windows of one sequence too: f repeated context - 1 times, then the rows from f on. `rows` are
        ascending (rows sorted by entity and time, as `window_index` takes them).
        """
        w = self.context
        if w == 1 or len(rows) < 2 * w or type(self.detector).score_sequences is Detector.score_sequences:
            return self.detect(values, windows)
        full = windows.n_valid == w
        idx = np.flatnonzero(full)
        r = rows[idx]
        breaks = np.flatnonzero((np.diff(r) != 1) | (codes[r[1:]] != codes[r[:-1]])) + 1
        starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(r)]])
        # (where each sequence's rows come from, which of its outputs are wanted, which of `idx` they are)
        whole = [(np.arange(r[a] - w + 1, r[e - 1] + 1), np.arange(e - a), idx[a:e])
                 for s0, b in zip(starts, ends) for a, e in ((a, min(a + SEQUENCE, b)) for a in range(s0, b, SEQUENCE))]
        warm = np.flatnonzero(~full)
        earliest = rows[warm] - windows.n_valid[warm] + 1
        cuts = np.flatnonzero(np.diff(earliest)) + 1
        warming = [(np.concatenate([np.full(w - 1, f), np.arange(f, rows[g].max() + 1)]), rows[g] - f, g)
                   for g, f in zip(np.split(warm, cuts), earliest[np.concatenate([[0], cuts])].tolist())
                   ] if len(warm) else []
        parts = [self._sequences(values, specs) for specs in (whole, warming) if specs]
        at = np.concatenate([places for places, _ in parts])  # every row once: back in their order
        return DetectorOutput.concat([out for _, out in parts]).take(np.argsort(at, kind="stable"))

    def _sequences(self, values: np.ndarray, specs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, DetectorOutput]:
        """The detector's sequence path over sequences given as (source rows, wanted outputs, their places):
        padded to one length, CHUNK points at a time; returns (places, the outputs there)."""
        w = self.context
        length = max(len(src) for src, _, _ in specs)
        seqs = np.zeros((len(specs), length, values.shape[1]), dtype=np.float32)
        for k, (src, _, _) in enumerate(specs):
            seqs[k, :len(src)] = values[src]
        step = max(1, CHUNK // length)
        outs = [self.detector.score_sequences(seqs[k:k + step]) for k in range(0, len(specs), step)]
        per_seq = length - w + 1
        take = np.concatenate([k * per_seq + wanted for k, (_, wanted, _) in enumerate(specs)])
        return np.concatenate([places for _, _, places in specs]), DetectorOutput.concat(outs).take(take)


def surprise(p: np.ndarray) -> np.ndarray:
    """-log10 of tail p-values."""
    return -np.log10(np.maximum(p, SURPRISE_FLOOR))


def entity_codes(entity: "pa.Array | np.ndarray") -> np.ndarray:
    """Consecutive integer codes for rows sorted by entity: a new code where the entity changes."""
    n = len(entity)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    arr = entity if isinstance(entity, (pa.Array, pa.ChunkedArray)) else pa.array(list(entity), pa.string())
    change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.cumsum(change)]).astype(np.int64)


def top_shares(contributions: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top_k features of each row by contribution, with their shares (contributions sum to 1)."""
    k = min(top_k, contributions.shape[1]) if contributions.ndim == 2 else 0
    idx = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(contributions, idx, axis=1)
