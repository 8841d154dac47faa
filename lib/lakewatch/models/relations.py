"""How each feature follows the others at the same moment: the evidence of a relational anomaly.

A metric that decouples from the metrics it usually moves with (a cache that stops following the load, one
replica out of step) keeps its usual marginal distribution: no single value is rare, and its own forecast
adapts. What is rare is the value *given the others at the same time*. With the features' covariance C fitted
on training rows, ridge-regularised (C + lambda I), and P its inverse, the linear prediction of feature j from
all the others is x_j ~ b_j - sum_{k != j} P_jk / P_jj x_k (the Gaussian conditional mean: one inverse gives
every feature's regression at once). A row's evidence per feature is |x_j - prediction| over the size of that
residual in training, read at its 99th percentile and expressed in standard-normal units (the 99th percentile of
|N(0, 1)| is 2.576): the evidence is the largest over features, so each feature's tail, not its body, is what
has to be comparable (a feature whose residuals are heavy-tailed would otherwise own the maximum's false alarms).

Fitting is robust to the anomalies an unlabeled training set holds: after a first fit, rows with a residual
beyond `TRIM` robust scales are left out and the fit is repeated once. Inputs are clipped to +-INPUT_CLIP
normalised units, so that one extreme feature (a spike, caught as a level anyway) moves the others' predictions
by a bounded amount.

A feature can also have a slow movement of its own that the others do not share (a memory metric's weekly wave, a
disk filling): it is not in their prediction, so it widens that feature's residuals and hides its decouplings. Its
*level*, the mean of its standardised residual over earlier points (clipped to +-LEVEL_CLIP each, so that an
anomaly among them moves it by a bounded amount), predicts that part: `fit_levels` fits each feature's coefficient
on it (least squares, in [0, 1]; about 0 for a feature without such a movement) and the scale of what is left.
The earlier points end well before the scored one (the detector reads the first half of its window), so that a
decoupling's own points enter its level only after it has been scored for that long.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lakewatch.transforms.normalization import MAD_TO_STD

INPUT_CLIP = 8.0  # normalised units: beyond any usual value of a robustly normalised feature
TRIM = 5.0  # residuals beyond this many robust scales are left out of the second fit
TAIL_QUANTILE = 0.99  # where a feature's residuals are measured: the same share of each beyond the same evidence
NORMAL_TAIL = 2.5758  # the TAIL_QUANTILE of |N(0, 1)|
MIN_SCALE = 1e-3
# residual scales each earlier point is clipped to before a level averages them: one point among L moves a level by
# 2 LEVEL_CLIP / L at most, an anomaly over all of them by 2 LEVEL_CLIP
LEVEL_CLIP = 1.0


@dataclass(frozen=True)
class Relations:
    """x (n, d) -> predicted x: x @ weights.T + bias (weights has a zero diagonal); scale (d,) each feature's
    residual at its training 99th percentile, over that percentile of |N(0, 1)|."""

    weights: np.ndarray  # (d, d)
    bias: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    level_weight: np.ndarray | None = None  # (d,) each feature's coefficient on its level (`fit_levels`)
    level_scale: np.ndarray | None = None  # (d,) the scale of the residual less that, in units of `scale`

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """|x - prediction| / scale per feature (n, d), in units of the training residuals' usual size."""
        return np.abs(self.standardized(x))

    def standardized(self, x: np.ndarray) -> np.ndarray:
        """(x - prediction) / scale per feature (n, d): signed, so that residuals of consecutive points can be
        averaged (a lasting decoupling keeps its sign, noise does not)."""
        xc = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0), -INPUT_CLIP, INPUT_CLIP)
        return _residual(xc, self.weights, self.bias) / self.scale

    def clipped(self, x: np.ndarray) -> np.ndarray:
        """`standardized`, each clipped to +-LEVEL_CLIP: what a feature's level is the mean of."""
        return np.clip(self.standardized(x), -LEVEL_CLIP, LEVEL_CLIP)

    def level(self, earlier: np.ndarray) -> np.ndarray:
        """(n, L, d) rows of earlier points -> each feature's level (n, d): the mean of their `clipped` residuals."""
        n, points, d = earlier.shape
        return self.clipped(earlier.reshape(-1, d)).reshape(n, points, d).mean(axis=1)

    def leveled(self, z: np.ndarray, level: np.ndarray | None) -> np.ndarray:
        """Standardised residuals z (n, ..., d) less each feature's share of its level (n, d), rescaled: z itself
        without fitted levels."""
        if self.level_weight is None or level is None:
            return z
        shape = (len(z),) + (1,) * (z.ndim - 2) + (z.shape[-1],)
        return (z - (self.level_weight * level).reshape(shape)) / self.level_scale


def _residual(x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x minus every feature's prediction from the others."""
    return x - (x @ weights.T + bias)


def _regressions(x: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights, bias) of every feature's ridge regression on the others, from one regularised inverse."""
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    lam = ridge * max(float(np.mean(np.diag(cov))), MIN_SCALE)
    precision = np.linalg.inv(cov + lam * np.eye(len(cov)))
    weights = -precision / np.diag(precision)[:, None]
    np.fill_diagonal(weights, 0.0)
    return weights, mean - weights @ mean


def _finite_clipped(x: np.ndarray) -> np.ndarray:
    """The rows of x (n, d) that are finite, as float64 clipped to +-INPUT_CLIP: what a robust fit reads."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(x[np.isfinite(x).all(axis=1)], -INPUT_CLIP, INPUT_CLIP)


def _robust_scale(r: np.ndarray) -> np.ndarray:
    mad = np.median(np.abs(r - np.median(r, axis=0)), axis=0)
    return np.maximum(MAD_TO_STD * mad, MIN_SCALE)


def fit_relations(x: np.ndarray, ridge: float = 0.01) -> Relations:
    """Fit on normalised training rows x (n, d), d >= 2, n > d; non-finite rows are left out."""
    x = _finite_clipped(x)
    d = x.shape[1]
    if d < 2 or len(x) <= d:
        raise ValueError(f"relations need at least 2 features and more rows than features, got {x.shape}")
    weights, bias = _regressions(x, ridge)
    r = _residual(x, weights, bias)
    keep = (np.abs(r) <= TRIM * _robust_scale(r)).all(axis=1)
    if keep.sum() > d:
        weights, bias = _regressions(x[keep], ridge)
        r = _residual(x[keep], weights, bias)
    return Relations(weights, bias, _tail_scale(np.abs(r)))


def _tail_scale(a: np.ndarray) -> np.ndarray:
    """Absolute residuals (n, d) -> each feature's scale: its TAIL_QUANTILE over NORMAL_TAIL (NaN: left out)."""
    return np.maximum(np.nanquantile(a, TAIL_QUANTILE, axis=0) / NORMAL_TAIL, MIN_SCALE)


def _within_trim(r: np.ndarray) -> np.ndarray:
    """(n, d): whether each value is within TRIM robust scales of its feature's median, that scale at least one
    unit (so that a feature that barely moves, an idle metric, does not have its every move trimmed)."""
    return np.abs(r - np.median(r, axis=0)) <= TRIM * np.maximum(_robust_scale(r), 1.0)


def fit_levels(rel: Relations, z: np.ndarray, level: np.ndarray) -> Relations:
    """`rel` with each feature's coefficient on its level and the scale of what is left, from training points'
    standardised residuals z (n, d) and their levels (n, d), both finite (`standardized` reads NaN as 0 and clips
    its inputs). Least squares on the points whose residual is
    `_within_trim` (an anomaly in training does not set it), the coefficient kept in [0, 1]: a level that predicts
    nothing gets about 0 (the noise of the fit) and leaves the feature's evidence about as it was."""
    keep = _within_trim(z)
    num = np.sum(np.where(keep, z * level, 0.0), axis=0)
    den = np.sum(np.where(keep, level * level, 0.0), axis=0)
    weight = np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 0), 0.0, 1.0)
    left = np.where(keep, np.abs(z - weight * level), np.nan)
    return replace(rel, level_weight=weight, level_scale=_tail_scale(left))  # each median is kept: no all-NaN


def correlation_precision(r: np.ndarray, ridge: float = 0.01) -> np.ndarray:
    """The inverse of the correlation of standardised errors r (n, d) over features, ridge-regularised (R + ridge
    I), for a Mahalanobis distance r P r that keeps each error in the units its model expected it in and only
    takes out what the features' errors share. Robust as `fit_relations`: inputs clipped to +-INPUT_CLIP, and rows
    with an error beyond TRIM of its robust scale (at least one expected unit, so that a feature whose errors
    barely move, an idle metric, does not have every move trimmed) left out, and rows with a non-finite error.
    A feature whose errors never move in the rows kept is uncorrelated with the others (its row of P is the
    identity's over 1 + ridge)."""
    r = _finite_clipped(r)
    d = r.shape[1]
    if len(r) <= d:
        raise ValueError(f"a precision needs more rows than features, got {r.shape}")
    keep = _within_trim(r).all(axis=1)
    cov = np.cov(r[keep] if keep.sum() > d else r, rowvar=False).reshape(d, d)
    sd = np.sqrt(np.diag(cov))
    moves = sd > MIN_SCALE
    corr = np.where(np.outer(moves, moves), cov / np.outer(np.where(moves, sd, 1.0), np.where(moves, sd, 1.0)), 0.0)
    np.fill_diagonal(corr, 1.0)
    return np.linalg.inv(corr + ridge * np.eye(d))
