"""The one scoring plan: transforms -> detector -> calibration -> flag + attributions.

Training calibration, the Spark jobs, `evaluate`, the backtests, the benchmarks and the tests all score
through this module; no other code computes a score, a calibrated value, an uncertainty or a flag.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakewatch.models.base import Detector, DetectorOutput
from lakewatch.scoring.calibration import Calibration, p_values
from lakewatch.scoring.windows import WindowIndex, gather, window_index
from lakewatch.transforms.calendar import calendar_features
from lakewatch.transforms.entities import EntityIndex, Located, Spacing
from lakewatch.transforms.normalization import Normalizer

CHUNK = 4096  # windows materialised at a time: bounded memory whatever the batch
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


@dataclass
class ScoringPlan:
    """Everything a worker needs to score rows, built from a package (or, at training, piece by piece)."""

    features: list[str]
    entities: EntityIndex
    normalizer: Normalizer
    spacing: Spacing
    detector: Detector
    calibration: Calibration | None
    windows: WindowRules
    member_calibrations: list[Calibration] | None = None
    flag: FlagRule = FlagRule()
    top_k: int = 3

    @property
    def context(self) -> int:
        return self.detector.context

    def with_calibration(self, calibration: Calibration, members: list[Calibration] | None = None) -> "ScoringPlan":
        return replace(self, calibration=calibration, member_calibrations=members)

    def locate(self, entity: "pa.Array | np.ndarray | None", n: int) -> Located:
        """Each row's entity in the index, when the transforms or the windows need it."""
        if self.normalizer.needs_entity or self.context > 1:
            return self.entities.locate(entity, n)
        return Located(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool))

    def model_inputs(self, z: np.ndarray, ts: np.ndarray | None) -> np.ndarray:
        """Normalised features, with the calendar channels appended when the detector wants them."""
        if not self.detector.calendar_channels:
            return z
        if ts is None:
            raise ValueError("a model with calendar inputs needs each row's timestamp")
        return np.concatenate([z, calendar_features(ts)], axis=1)

    def horizons(self, located: Located) -> np.ndarray:
        return self.spacing.horizons_us(located, self.context, self.windows.factor, self.windows.max_horizon_us)

    def detect(self, values: np.ndarray, windows: WindowIndex) -> DetectorOutput:
        """The detector over windows of model inputs, CHUNK windows at a time."""
        outs = [self.detector.score(gather(values, windows, lo, lo + CHUNK)) for lo in range(0, len(windows), CHUNK)]
        if not outs:
            d = len(self.features)
            return DetectorOutput(np.zeros(0), np.zeros((0, d)))
        cat = lambda name: None if getattr(outs[0], name) is None else np.concatenate([getattr(o, name) for o in outs])  # noqa: E731
        return DetectorOutput(cat("score"), cat("contributions"), cat("uncertainty"), cat("members"))

    def finish(self, out: DetectorOutput, warming_up: np.ndarray, unseen: np.ndarray) -> ScoredRows:
        """Calibration, uncertainty, flag and attributions of the detector's output."""
        if self.calibration is None:
            raise RuntimeError("the plan has no calibration yet")
        score = np.nan_to_num(out.score.astype(np.float64), nan=np.inf, posinf=np.inf)
        p = p_values(self.calibration, score)
        uncertainty = self.uncertainty(out)
        if self.flag.lower_bound_sigmas > 0 and uncertainty is not None:
            bound = surprise(p) - self.flag.lower_bound_sigmas * uncertainty
            flag = bound >= surprise(np.array([self.calibration.target_false_alarm_rate]))[0]
        else:
            flag = score >= self.calibration.threshold
        idx, share = top_shares(out.contributions[flag], self.top_k)
        return ScoredRows(score, 1.0 - p, uncertainty, flag, idx, share, warming_up, unseen)

    def uncertainty(self, out: DetectorOutput) -> np.ndarray | None:
        """The spread (standard deviation) of the ensemble members' surprise, -log10 p under each member's own
        calibration: how many orders of magnitude of tail probability the members disagree by. Large where
        the data is unlike training; the detector's own uncertainty when it has no member calibrations."""
        if out.members is not None and self.member_calibrations:
            s = np.column_stack([surprise(p_values(c, out.members[:, k].astype(np.float64)))
                                 for k, c in enumerate(self.member_calibrations)])
            return s.std(axis=1)
        return None if out.uncertainty is None else out.uncertainty.astype(np.float64)

    def score_rows(self, entity: "pa.Array | np.ndarray | None", ts: np.ndarray | None, x: np.ndarray,
                   targets: np.ndarray | None = None) -> ScoredRows:
        """Score raw rows sorted by (entity, ts); windows end at each target row (default: every row).

        entity: (N,) entity names (may be None for a row-wise model with global normalisation); ts: (N,)
        int64 microseconds (may be None for row-wise models without calendar inputs); x: (N, d) raw feature
        values. Rows that are not targets serve as history only.
        """
        located = self.locate(entity, len(x))
        values = self.model_inputs(self.normalizer.apply(x, located), ts)
        rows = np.arange(len(values)) if targets is None else np.asarray(targets, dtype=np.int64)
        if self.context == 1:
            windows = WindowIndex(rows.astype(np.int32)[:, None], np.ones(len(rows), dtype=np.int32))
        else:
            if entity is None or ts is None:
                raise ValueError("a model with context > 1 needs each row's entity and timestamp")
            windows = window_index(entity_codes(entity), ts, self.context, self.horizons(located), rows)
        unseen = located.unseen if (self.normalizer.needs_entity or self.context > 1) else np.zeros(len(x), dtype=bool)
        return self.finish(self.detect(values, windows), windows.warming_up, unseen[rows])

    def raw(self, values: np.ndarray, windows: WindowIndex) -> DetectorOutput:
        """The detector's output on windows of model inputs: what training calibrates."""
        return self.detect(values, windows)


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
