"""A temporal convolutional forecaster (TCN), as a deep ensemble: the default temporal model.

The pure module (`EnsembleTCN`, K members run as one grouped network, in models/tcn_module.py) is apart
from the Detector here that trains and applies it. Each member forecasts the last point of a window from the
points before it: a mean and a scale per feature (Gaussian likelihood), so that the error is measured in
units of what the member expected there; noisy hours of a daily cycle raise the scale instead of alarms.

Score: with the members' means mu_k and scales s_k, the ensemble's predictive distribution has mean
mu = mean_k mu_k and variance s^2 = mean_k s_k^2 + var_k mu_k; r_j = (x_j - mu_j) / s_j per feature, and the
score is r P r / d, the errors' Mahalanobis distance under their correlation in training (P its inverse):
features driven by one load share the shocks no forecaster can predict, and r P r expects them together instead of
counting each (`forecast_errors: independent` reads P = I, the mean of r_j^2). The positive part of feature j's
term r_j (P r)_j is its contribution. Each member's own score (its r^2 mean) goes to the plan, which calibrates the
members to give the uncertainty: their spread in -log10 p-value, large where the members disagree, i.e. where the
data is unlike what they were trained on.

Why this shape (research and measurements in the closing note of "Detection quality"): small, dilated, causal
convolutions over a window of W points (receptive field = W - 1) are what wins among deep models on TSB-AD's
multivariate and event-level univariate rankings (its CNN forecaster), are cheap on CPUs, and need little
data; the window sees the entity's recent history, and calendar inputs (time of day and week) let a model
with a window shorter than a day learn daily and weekly cycles.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from lakewatch.errors import ConfigError
from lakewatch.models.base import Detector, DetectorOutput, ModelConfig, WindowSet, shares
from lakewatch.models.flatness import flatline_evidence, pinned_levels, sliding_ranges, usual_range
from lakewatch.models.registry import register
from lakewatch.models.relations import Relations, correlation_precision, fit_levels, fit_relations
from lakewatch.models.tcn_module import EnsembleTCN, predictive, receptive_field, split_window, standardized_errors
from lakewatch.models.training import LoopConfig, fit_module, window_losses
from lakewatch.transforms.calendar import CHANNELS


PRECISION_WINDOWS = 8192  # training windows sampled for a fit: the forecast errors' correlation, the relational levels
Evidence = Literal["forecast", "level", "seasonal", "flatline", "relational"]


class TCNConfig(ModelConfig, LoopConfig):
    """Architecture, ensemble and training of the TCN forecaster, and the evidence it reports (its signals)."""

    saved_before: ClassVar[dict[str, Any]] = {"forecast_errors": "independent", "relational_level": False}

    evidence: list[Evidence] = Field(
        default_factory=lambda: ["forecast", "level", "seasonal", "flatline", "relational"])
    bins: int = 24  # time-of-day bins of the seasonal profile ("seasonal" evidence; its residuals are inputs too)
    # "flatline": the last this many points of a feature; a stuck metric shows from its flat_points-th point on, so
    # each point more is a point of every stuck event missed (6 -> 3: README, Detection quality)
    flat_points: int = 3
    # "exact": they hold exactly one value (a collector repeating a stale reading), not at a level the feature
    # sits at in training; "range": their range against its usual size, graded (frozen with a little jitter too,
    # at the cost of alarms wherever a slow metric is quieter than in training)
    flat_mode: Literal["exact", "range"] = "exact"
    # what the forecast predicts: the normalised values, or (with "seasonal" evidence) their residuals from the
    # time-of-day profile, so that what happens every day at that hour (a scheduled jump) is no surprise
    forecast: Literal["value", "residual"] = "residual"
    relational_ridge: float = 0.01  # "relational": ridge of each feature's regression on the others (models.relations)
    # how the features' forecast errors make one surprise: "independent", the mean of their squares; "correlated",
    # their Mahalanobis distance under the errors' correlation in training (over the features): a shock that every
    # load-driven metric shares is expected together, and one metric off the shared pattern counts for more
    forecast_errors: Literal["independent", "correlated"] = "correlated"
    # "relational": each feature's signed residual averaged over the last this many points, in standard errors
    # (x sqrt(points)): a decoupling that lasts keeps its sign and stands out of the noise by sqrt(points); the
    # cost is points - 1 diluted points at an event's start and as many carrying it after its end
    relational_points: int = 2
    # "relational": each feature's level, the mean of its residual over the window's first half, takes out the slow
    # movement a feature has on its own (models.relations.fit_levels); those points end half a window before the
    # scored one, so a decoupling enters its own level only after it has been scored for that long
    relational_level: bool = True
    seasonal_points: int = 1  # "seasonal": the same average of each feature's residual from the time-of-day profile

    window: int = 64
    channels: int = 32
    kernel: int = 3
    dilations: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])  # receptive field 61: within the window
    dropout: float = 0.1
    members: int = 3
    calendar: Literal["none", "day", "week"] = "day"  # "week" when training spans weeks
    min_scale: float = 0.05  # the smallest scale a member may predict, in normalised units
    warm: int = 8  # positions of a window predicted from fewer points than this do not count in training
    epochs: int = 20
    batch_size: int = 128
    weight_decay: float = 1e-4
    robust_drop_fraction: float = 0.0
    epoch_fraction: float = 0.02  # each window trains every point in it: ~1 / window of them sees each point once
    min_steps: int = 800


def _averaged(z: np.ndarray) -> np.ndarray:
    """(n, m, d) signed standardised values of the last m points -> |their mean| x sqrt(m) (n, d): a standard
    error, so that m = 1 is |z| itself and noise keeps its size whatever m."""
    return np.abs(z.mean(axis=1)) * np.sqrt(z.shape[1])


@register
class TCNDetector(Detector):
    """Forecasts each point from the window before it; scores the surprise of what came, next to robust evidence
    that a forecaster misses by design.

    A forecaster adapts: a level shift surprises it at its first point only, a stuck sensor not at all (the
    next value is the last one). So the detector reports, as separate signals that the plan calibrates per
    entity and combines (the smallest p-value, Bonferroni-corrected), besides the forecast surprise:
    level (the largest |normalised value|: a value the entity never takes), seasonal (the largest residual from
    the entity's time-of-day profile: ordinary for the day, not for the hour) and flatline (the last
    `flat_points` points hold exactly one value that is not a level the metric sits at in training: a stuck
    metric; or, with `flat_mode: range`, how much smaller than usual their range is: frozen with jitter too)
    and, with several features, relational (how far each feature is from what the others at the same moment
    predict, less its share of its own level over the window's first half: a metric decoupled from the ones it
    follows, models.relations). `evidence` picks them.
    """

    name = "tcn"
    config_class = TCNConfig

    def __init__(self, n_features: int, config: TCNConfig) -> None:
        super().__init__(n_features, config)
        field = receptive_field(config.kernel, list(config.dilations))
        if field > config.window - 1:
            raise ConfigError(f"tcn: the receptive field ({field} points, from kernel {config.kernel} and dilations "
                              f"{list(config.dilations)}) must fit in the window's {config.window - 1} past points")
        if "forecast" not in config.evidence or len(set(config.evidence)) != len(config.evidence):
            raise ConfigError(f"tcn: evidence must name 'forecast' and each kind once, got {list(config.evidence)}")
        if not 2 <= config.flat_points <= config.window:
            raise ConfigError(f"tcn: flat_points must be in 2..window ({config.window}), got {config.flat_points}")
        for name in ("relational_points", "seasonal_points"):
            if not 1 <= getattr(config, name) <= config.window:
                raise ConfigError(f"tcn: {name} must be in 1..window ({config.window}), got {getattr(config, name)}")
        if self.leveled and config.relational_points > self.context - self.level_points:
            raise ConfigError(f"tcn: with relational_level, relational_points ({config.relational_points}) must not "
                              f"reach into the window's first half, the points of the levels ({self.level_points})")
        inputs = n_features * (2 if self.seasonal_bins else 1) + self.calendar_channels
        self.module = EnsembleTCN(inputs, n_features, config.members, config.channels, config.kernel,
                                  list(config.dilations), config.dropout, float(np.log(config.min_scale)),
                                  relational="relational" in self.signal_names, correlated=self.correlated,
                                  leveled=self.leveled)
        self.module.eval()

    @property
    def signal_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """The configured evidence; relational only with several features (one feature relates to nothing)."""
        return tuple(k for k in self.config.evidence if k != "relational" or self.n_features > 1)

    @property
    def leveled(self) -> bool:
        """Whether the relational evidence takes out each feature's level (`relational_level`)."""
        return "relational" in self.signal_names and self.config.relational_level

    @property
    def level_points(self) -> int:
        """The window's first points, its first half, that each feature's relational level reads (a warming-up
        window's are its earliest row repeated and its first real ones: such a row's level is that recent)."""
        return self.context // 2

    @property
    def correlated(self) -> bool:
        """Whether the forecast's surprise reads its errors' correlation (several features only)."""
        return self.config.forecast_errors == "correlated" and self.n_features > 1

    @property
    def learned_signals(self) -> tuple[str, ...]:
        """The forecast and the relations are fitted to the training windows (flatline's usual range is a median
        of training windows, not a fit): the others calibrate on every window."""
        return tuple(k for k in self.signal_names if k in ("forecast", "relational"))

    def signal_points(self, name: str) -> int:
        """level reads the scored point only, seasonal and relational its last `seasonal_points` and
        `relational_points`, flatline its last `flat_points`, forecast the window."""
        points = {"level": 1, "seasonal": int(self.config.seasonal_points),
                  "relational": int(self.config.relational_points), "flatline": int(self.config.flat_points)}
        return points.get(name, self.context)

    @property
    def context(self) -> int:
        return int(self.config.window)

    @property
    def calendar_channels(self) -> int:
        return CHANNELS[self.config.calendar]

    @property
    def averaged_points(self) -> int:
        """The most recent points any averaged evidence reads (`_evidence` gets that many per scored point)."""
        return max(int(self.config.relational_points), int(self.config.seasonal_points))

    @property
    def target_offset(self) -> int:
        """The first input channel the forecast predicts: the features, or their seasonal residuals."""
        return self.n_features if self.config.forecast == "residual" and self.seasonal_bins else 0

    @property
    def seasonal_bins(self) -> int:
        return int(self.config.bins) if "seasonal" in self.config.evidence else 0

    def _nll(self, module: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood of every point forecast from at least `warm` points, averaged over
        positions and features, summed over members: per window."""
        inputs, targets = split_window(windows, self.n_features, self.target_offset)
        mean, log_scale = module(inputs)
        z = (targets[:, None] - mean) * torch.exp(-log_scale)
        nll = 0.5 * z.pow(2) + log_scale  # (n, members, T, features)
        start = min(self.config.warm, nll.shape[2] - 1)
        return nll[:, :, start:].mean(dim=(2, 3)).sum(dim=1)

    def fit(self, train: WindowSet, seed: int) -> dict[str, float]:
        self._fit_flatness(train)
        if "relational" in self.signal_names:
            self._fit_relations(train, seed)
        metrics = fit_module(self.module, train, self._nll, self.config, seed)
        if self.correlated:
            self._fit_error_precision(train, seed)
        return metrics

    def _last_errors(self, module: nn.Module, windows: torch.Tensor) -> torch.Tensor:
        """Each window's standardised forecast error r at its last point (m, d), what `score` reads."""
        inputs, targets = split_window(windows.to(self.device), self.n_features, self.target_offset)
        mean, log_scale = module(inputs)
        return standardized_errors(mean[:, :, -1], log_scale[:, :, -1], targets[:, -1]).cpu()

    def _fit_error_precision(self, train: WindowSet, seed: int) -> None:
        """The inverse correlation of the ensemble's standardised forecast errors over the features, from a sample of
        the training windows' last points (what `score` reads; in-sample errors, like the relations' residuals:
        what is shared between features is the load's, which the fit does not learn away), robustly
        (models.relations.correlation_precision)."""
        rows = np.sort(np.random.default_rng(seed).permutation(len(train))[:PRECISION_WINDOWS])
        errors = window_losses(self.module, train, rows, self._last_errors, 1024).double().numpy()
        if len(errors) <= self.n_features:  # too few windows to estimate a correlation: the errors as independent
            return
        precision = correlation_precision(errors)
        self.module.error_precision.copy_(torch.from_numpy(np.tile(precision, (self.config.members, 1, 1))))

    def _related(self, rows: np.ndarray) -> np.ndarray:
        """What the relations relate, of model input rows: the seasonal residuals when the inputs have them (the
        daily cycle taken out, what is left is close to linear in a shared load), else the normalised values."""
        d = self.n_features
        return rows[:, d:2 * d] if self.seasonal_bins else rows[:, :d]

    def _fit_relations(self, train: WindowSet, seed: int) -> None:
        """Each feature's regression on the others, on the training windows' scored rows; then, with levels, each
        feature's coefficient on its level, on a sample of the windows."""
        rel = fit_relations(self._related(train.values[train.windows.index[:, -1]]), self.config.relational_ridge)
        fitted = {"relate_weights": rel.weights, "relate_bias": rel.bias, "relate_scale": rel.scale}
        if self.leveled:  # on whole windows: a warming-up one's first half is mostly its earliest row
            whole = np.flatnonzero(train.windows.n_valid >= self.context)
            whole = whole if len(whole) else np.arange(len(train))
            index = train.windows.index[np.random.default_rng(seed).permutation(whole)[:PRECISION_WINDOWS]]
            z = rel.standardized(self._related(train.values[index[:, -1]]))
            rel = fit_levels(rel, z, self._levels(rel, train.values[index[:, :self.level_points]]))
            fitted |= {"relate_level_weight": rel.level_weight, "relate_level_scale": rel.level_scale}
        members = self.config.members
        for name, value in fitted.items():
            getattr(self.module, name).copy_(torch.from_numpy(np.tile(value, (members,) + (1,) * value.ndim)))

    def _levels(self, rel: Relations, earlier: np.ndarray) -> np.ndarray:
        """Each feature's level (n, d) from the model inputs (n, L, channels) of the points it reads."""
        n, points, channels = earlier.shape
        return rel.level(self._related(earlier.reshape(-1, channels)).reshape(n, points, self.n_features))

    def _relations(self) -> Relations | None:
        """The fitted relations, read out of the module's buffers (None without relational evidence)."""
        if "relational" not in self.signal_names:
            return None
        m = self.module
        levels = ((m.relate_level_weight[0].cpu().numpy(), m.relate_level_scale[0].cpu().numpy()) if self.leveled
                  else (None, None))
        return Relations(m.relate_weights[0].cpu().numpy(), m.relate_bias[0].cpu().numpy(),
                         m.relate_scale[0].cpu().numpy(), *levels)

    def _fit_flatness(self, train: WindowSet) -> None:
        """What "flat" means per feature: the median range over `flat_points` points of the training windows, and
        the levels a feature is pinned at (exact values it takes again and again in the sampled rows, most
        frequent first: a floor, a cap, an idle value): a metric at its floor every quiet night is not stuck."""
        k = self.config.flat_points
        last_k = train.windows.index[train.windows.n_valid >= k, -k:]  # (m, k) rows: only what a range needs
        ref = usual_range(train.values[last_k, :self.n_features])
        table = pinned_levels(train.values[:, :self.n_features])
        members = self.config.members
        self.module.flat_ref.copy_(torch.from_numpy(np.tile(ref, (members, 1))).float())
        self.module.flat_levels.copy_(torch.from_numpy(np.tile(table, (members, 1, 1))))

    @torch.inference_mode()
    def score_sequences(self, sequences: np.ndarray) -> DetectorOutput:
        """Every point of each sequence with a whole window before it, in one pass: the receptive field fits in
        the window, so each forecast sees exactly what it would see in its own window."""
        seqs = np.ascontiguousarray(sequences, dtype=np.float32)
        w = torch.from_numpy(seqs).to(self.device)
        inputs, targets = split_window(w, self.n_features, self.target_offset)
        mean, log_scale = self.module(inputs)  # (n, K, L - 1, d)
        first = self.context - 2  # the forecast of position context - 1
        k, m, d = self.config.flat_points, self.averaged_points, self.n_features
        last = lambda points, channels: np.lib.stride_tricks.sliding_window_view(  # noqa: E731
            seqs[:, :, :channels], points, axis=1)[:, self.context - points:].reshape(-1, channels, points)
        rel = self._relations()
        levels = self._sequence_levels(rel, seqs) if self.leveled else None
        return self._evidence(self._surprise(mean[:, :, first:], log_scale[:, :, first:], targets[:, first:]),
                              last(m, seqs.shape[2]).transpose(0, 2, 1),
                              sliding_ranges(seqs[:, :, :d], k, self.context), rel, levels)

    def _sequence_levels(self, rel: Relations, seqs: np.ndarray) -> np.ndarray:
        """Each scored point's feature levels (n T, d), of sequences (n, L, channels): every point's clipped residual
        once, then their mean over each window's first `level_points` (as `Relations.level`)."""
        n, length, channels = seqs.shape
        points, scored = self.level_points, length - self.context + 1
        z = rel.clipped(self._related(seqs.reshape(-1, channels))).reshape(n, length, -1)
        earlier = np.lib.stride_tricks.sliding_window_view(z, points, axis=1)[:, :scored]  # (n, T, d, points)
        return earlier.mean(axis=-1).reshape(n * scored, -1)

    def _surprise(self, mean: torch.Tensor, log_scale: torch.Tensor,
                  targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(n, K, T, d) forecasts of (n, T, d) targets -> for the n x T points, point by point: each feature's term
        of the forecast's surprise (n T, d), r_j^2 under the ensemble's predictive distribution or, with correlated
        errors, r_j (P r)_j, and each member's mean r^2 (n T, K)."""
        members = ((targets[:, None] - mean).pow(2) / torch.exp(2 * log_scale)).mean(dim=3).transpose(1, 2)
        if self.correlated:
            r = standardized_errors(mean, log_scale, targets).flatten(0, 1).double().cpu().numpy()
            terms = r * (r @ self.module.error_precision[0].cpu().numpy())
        else:  # in float32, as `independent` errors were always scored
            mu, total_var = predictive(mean, log_scale)
            terms = ((targets - mu).pow(2) / total_var).flatten(0, 1).double().cpu().numpy()
        return terms, members.flatten(0, 1).double().cpu().numpy()

    def _evidence(self, surprise: tuple[np.ndarray, np.ndarray], recent: np.ndarray, recent_range: np.ndarray,
                  rel: Relations | None, levels: np.ndarray | None) -> DetectorOutput:
        """The forecast's surprise (`_surprise`) with the other evidence of the same points: recent (n,
        averaged_points, channels) are the inputs of each scored point and the points before it (the scored
        one last), recent_range (n, d) each feature's range over the last `flat_points` points, rel the relations
        (`_relations`) and levels (n, d) each feature's relational level (None without).
        Score: the mean of the forecast's terms (r^2, or r P r / d); contributions: each feature's share of its
        largest evidence."""
        d = self.n_features
        rows = recent[:, -1]
        terms, members = surprise
        score = terms.mean(axis=1)
        per_feature, signals = [np.maximum(terms, 0.0)], []
        for kind in self.signal_names:
            if kind == "forecast":
                signals.append(score)
                continue
            if kind == "relational":
                m = self.config.relational_points
                z = rel.standardized(self._related(recent[:, -m:].reshape(-1, recent.shape[2])))
                e = _averaged(rel.leveled(z.reshape(len(recent), m, d), levels))
            elif kind == "level":
                e = np.abs(rows[:, :d].astype(np.float64))
            elif kind == "seasonal":
                e = _averaged(recent[:, -self.config.seasonal_points:, d:2 * d].astype(np.float64))
            else:
                e = flatline_evidence(recent_range, rows[:, :d], self.module.flat_ref[0].double().cpu().numpy(),
                                      self.module.flat_levels[0].cpu().numpy(), self.config.flat_mode)
            signals.append(e.max(axis=1))
            per_feature.append(np.maximum(e, 0.0) ** 2)
        return DetectorOutput(score, shares(np.maximum.reduce(per_feature)), members=members,
                              signals=np.column_stack(signals))

    @torch.inference_mode()
    def score(self, windows: np.ndarray) -> DetectorOutput:
        win = np.ascontiguousarray(windows, dtype=np.float32)
        w = torch.from_numpy(win).to(self.device)
        inputs, targets = split_window(w, self.n_features, self.target_offset)
        mean, log_scale = self.module(inputs)  # (n, K, T, d)
        k, m, d = self.config.flat_points, self.averaged_points, self.n_features
        rel = self._relations()
        levels = self._levels(rel, win[:, :self.level_points]) if self.leveled else None
        return self._evidence(self._surprise(mean[:, :, -1:], log_scale[:, :, -1:], targets[:, -1:]),
                              win[:, -m:], np.ptp(win[:, -k:, :d], axis=1), rel, levels)

    def state(self) -> list[dict[str, torch.Tensor]]:
        """One dict per member, cut out of the grouped network (so that each member is its own file)."""
        full = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        k_members = self.config.members
        return [{name: t.chunk(k_members, dim=0)[k].contiguous() for name, t in full.items()} for k in range(k_members)]

    def load_state(self, members: list[dict[str, torch.Tensor]]) -> None:
        if len(members) != self.config.members:
            raise ValueError(f"tcn has {self.config.members} members, got {len(members)}")
        merged = {name: torch.cat([m[name] for m in members], dim=0) for name in members[0]}
        self.module.load_state_dict(merged, strict=True)
        self.module.eval()

    def to(self, device: torch.device) -> "TCNDetector":
        super().to(device)
        self.module.to(device)
        return self
