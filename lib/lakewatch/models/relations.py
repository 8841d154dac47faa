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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakewatch.transforms.normalization import MAD_TO_STD

INPUT_CLIP = 8.0  # normalised units: beyond any usual value of a robustly normalised feature
TRIM = 5.0  # residuals beyond this many robust scales are left out of the second fit
TAIL_QUANTILE = 0.99  # where a feature's residuals are measured: the same share of each beyond the same evidence
NORMAL_TAIL = 2.5758  # the TAIL_QUANTILE of |N(0, 1)|
MIN_SCALE = 1e-3


@dataclass(frozen=True)
class Relations:
    """x (n, d) -> predicted x: x @ weights.T + bias (weights has a zero diagonal); scale (d,) each feature's
    residual at its training 99th percentile, over that percentile of |N(0, 1)|."""

    weights: np.ndarray  # (d, d)
    bias: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """|x - prediction| / scale per feature (n, d), in units of the training residuals' usual size."""
        return np.abs(self.standardized(x))

    def standardized(self, x: np.ndarray) -> np.ndarray:
        """(x - prediction) / scale per feature (n, d): signed, so that residuals of consecutive points can be
        averaged (a lasting decoupling keeps its sign, noise does not)."""
        xc = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0), -INPUT_CLIP, INPUT_CLIP)
        return _residual(xc, self.weights, self.bias) / self.scale


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
    tail = np.quantile(np.abs(r), TAIL_QUANTILE, axis=0) / NORMAL_TAIL
    return Relations(weights, bias, np.maximum(tail, MIN_SCALE))


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
    keep = (np.abs(r - np.median(r, axis=0)) <= TRIM * np.maximum(_robust_scale(r), 1.0)).all(axis=1)
    cov = np.cov(r[keep] if keep.sum() > d else r, rowvar=False).reshape(d, d)
    sd = np.sqrt(np.diag(cov))
    moves = sd > MIN_SCALE
    corr = np.where(np.outer(moves, moves), cov / np.outer(np.where(moves, sd, 1.0), np.where(moves, sd, 1.0)), 0.0)
    np.fill_diagonal(corr, 1.0)
    return np.linalg.inv(corr + ridge * np.eye(d))
