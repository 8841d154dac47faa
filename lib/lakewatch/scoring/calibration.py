"""Calibration: raw scores to tail p-values against held-out normal scores, and the alarm threshold.

Below the tail the p-value is the empirical survival function of the held-out scores; in the tail
(the top `tail_fraction`) it is fitted to the excesses, so that scores beyond anything seen in held-out data
still get distinct, ordered p-values instead of a floor of 1/(n+1).

The tail is an exponential whose rate is only known from the k excesses that estimated it: its posterior
predictive (rate ~ Gamma(k, k x mean excess)) is a Pareto II (Lomax) tail, P(excess > x) = (1 + x / (k beta))^-k.
It tends to the exponential exp(-x / beta) as k grows, and is heavier when few excesses set it: a tail estimated
from 5 held-out scores does not claim the 1e-12 p-values that one estimated from 500 may. Packages calibrated
before this rule (k = 0) keep their exponential tail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import get_args

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from lakewatch.config import Fusion, TailPooling
from lakewatch.errors import DataError

QUANTILE_POINTS = 512
TAIL_FRACTION = 0.05
FUSIONS = get_args(Fusion)
P_FLOOR = 1e-300  # a p-value is read at least this large when fused (1 / p must stay finite)


@dataclass(frozen=True)
class Calibration:
    """What a package keeps to turn raw scores into p-values, calibrated values and anomaly flags."""

    target_false_alarm_rate: float
    threshold: float
    quantiles: list[float]  # held-out scores at evenly spaced probabilities 0..1
    tail_start: float  # u: the score where the exponential tail begins
    tail_fraction: float  # P(score > u) under held-out data
    tail_scale: float  # beta: mean excess over u
    n_heldout: int
    tail_excesses: float = 0.0  # k: how many excesses set beta (0: the exponential tail of older packages)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        return cls(**data)


def calibrate(heldout_scores: np.ndarray, target_false_alarm_rate: float, tail_fraction: float = TAIL_FRACTION) -> Calibration:
    """Fit the calibration to held-out normal scores and set the threshold for the target false-alarm rate."""
    scores = np.sort(np.asarray(heldout_scores, dtype=np.float64))
    if len(scores) < 20:
        raise DataError(f"calibration needs at least 20 held-out scores, got {len(scores)}")
    if not 0 < target_false_alarm_rate < 1:
        raise ValueError(f"target false-alarm rate must be in (0, 1), got {target_false_alarm_rate}")
    probs = np.linspace(0.0, 1.0, QUANTILE_POINTS)
    quantiles = np.quantile(scores, probs)
    u = float(np.quantile(scores, 1.0 - tail_fraction))
    excess = scores[scores > u] - u
    beta = float(excess.mean()) if len(excess) else float(np.std(scores) or 1e-12)
    partial = Calibration(target_false_alarm_rate, 0.0, quantiles.tolist(), u, tail_fraction, max(beta, 1e-12),
                          len(scores), float(max(len(excess), 1)))
    return Calibration(**{**asdict(partial), "threshold": threshold_for(partial, target_false_alarm_rate)})


def threshold_for(cal: Calibration, rate: float) -> float:
    """The score whose p-value is `rate`: an empirical quantile, or a point of the exponential tail."""
    if rate >= cal.tail_fraction:
        probs = np.linspace(0.0, 1.0, len(cal.quantiles))
        return float(np.interp(1.0 - rate, probs, cal.quantiles))
    k, ratio = cal.tail_excesses, cal.tail_fraction / rate
    if k <= 0:
        return cal.tail_start + cal.tail_scale * float(np.log(ratio))
    return cal.tail_start + cal.tail_scale * k * float(np.expm1(np.log(ratio) / k))


def tail_probability(fraction: float, excess: np.ndarray, scale: np.ndarray, k: "np.ndarray | float") -> np.ndarray:
    """P(score > u + excess) = fraction x the tail's survival at `excess` >= 0: Lomax with k excesses behind it
    (the exponential where k is 0)."""
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), np.shape(excess))
    with np.errstate(divide="ignore", invalid="ignore"):
        lomax = np.exp(-k * np.log1p(excess / (np.maximum(k, 1e-300) * scale)))
    return fraction * np.where(k > 0, lomax, np.exp(-excess / scale))


def p_values(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    """P(score >= s) for normal data: 1 at the lowest scores, towards 0 for the most anomalous."""
    s = np.asarray(scores, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, len(cal.quantiles))
    q = np.asarray(cal.quantiles)
    body = 1.0 - np.interp(s, q, probs)
    beyond = np.maximum(s - cal.tail_start, 0.0)  # the tail is only read past its start: no overflow before it
    tail = tail_probability(cal.tail_fraction, beyond, cal.tail_scale, cal.tail_excesses)
    return np.where(s > cal.tail_start, tail, np.maximum(body, cal.tail_fraction))


def calibrated_values(cal: Calibration, scores: np.ndarray) -> np.ndarray:
    """1 - p-value: in [0, 1], higher is more anomalous, comparable across models."""
    return 1.0 - p_values(cal, scores)


@dataclass(frozen=True)
class EntityTails:
    """Each entity's own tail of one signal: where it starts and how fast it falls (a Lomax: k excesses set its
    scale), estimated from the entity's held-out scores, its start shrunk toward the global one and its scale
    pooled with the other entities' (`fit_entity_tails`).

    With one threshold for many different series (a hundred hosts, or NAB's eighteen unrelated files), what is
    rare for one entity is ordinary for another: a p-value from the entity's own tail makes `calibrated`
    mean "how unusual for this entity", and one alarm rate fit all of them.
    """

    start: np.ndarray  # (m,) u_e
    scale: np.ndarray  # (m,) beta_e
    excesses: np.ndarray | None = None  # (m,) k_e: the excesses behind beta_e, the prior's included (None: exponential)

    def p_values(self, cal: Calibration, scores: np.ndarray, pos: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """Tail p-values for the entity of each score; below an entity's tail start, the global body read at the
        same share of that start; unseen entities use the global calibration."""
        s = np.asarray(scores, dtype=np.float64)
        if len(self.start) == 0:
            return p_values(cal, s)
        u = np.where(unseen, cal.tail_start, self.start[pos])
        beta = np.where(unseen, cal.tail_scale, self.scale[pos])
        k = 0.0 if self.excesses is None else np.where(unseen, cal.tail_excesses, self.excesses[pos])
        tail = tail_probability(cal.tail_fraction, np.maximum(s - u, 0.0), beta, k)
        body = p_values(cal, s * (cal.tail_start / np.maximum(u, 1e-300)))
        return np.where(s > u, tail, np.maximum(body, cal.tail_fraction))


def fit_entity_tails(cal: Calibration, codes: np.ndarray, scores: np.ndarray, m: int, prior: float,
                     pooling: TailPooling = "empirical_bayes") -> EntityTails:
    """Per-entity tails from held-out scores of entities 0..m-1 (codes). An entity with fewer than 5 has the global
    tail. Each entity's tail starts at its (1 - tail_fraction) quantile u_e shrunk toward the global start as
    (n u_e + prior u) / (n + prior). How fast it falls is pooled across entities (`tail_rate_prior`): its own
    excesses over u_e with a Gamma prior on their rate, whose weight is either learned from how alike the
    entities' tails are (empirical_bayes) or fixed at prior x tail_fraction excesses of the global scale.
    Either way an entity whose scale rests on few excesses gets the heavier tail of a scale known from few."""
    start, scale = np.full(m, cal.tail_start), np.full(m, cal.tail_scale)
    excesses = np.full(m, cal.tail_excesses)
    order = np.argsort(codes, kind="stable")
    c, s = codes[order], np.asarray(scores, dtype=np.float64)[order]
    bounds = np.flatnonzero(np.concatenate([[True], c[1:] != c[:-1], [True]]))
    seen, counts, sums = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        x = s[a:b]
        x = x[np.isfinite(x)]
        if len(x) < 5:
            continue
        u = float(np.quantile(x, 1.0 - cal.tail_fraction))
        excess = x[x > u] - u
        n, k = len(x), int(c[a])
        start[k] = (n * u + prior * cal.tail_start) / (n + prior)
        seen.append(k)
        counts.append(len(excess))
        sums.append(float(excess.sum()))
    if not seen:
        return EntityTails(start, scale, excesses)
    shape, rate = tail_rate_prior(np.asarray(counts, dtype=np.float64), np.asarray(sums), cal, prior, pooling)
    k_e = shape + np.asarray(counts, dtype=np.float64)
    scale[seen] = np.maximum((rate + np.asarray(sums)) / k_e, 1e-12)
    excesses[seen] = k_e
    return EntityTails(start, scale, excesses)


def tail_rate_prior(counts: np.ndarray, sums: np.ndarray, cal: Calibration, prior: float,
                    pooling: TailPooling) -> tuple[float, float]:
    """The Gamma(shape, rate) prior on the entities' exponential tail rates, as pseudo-excesses: `shape` of them
    summing to `rate`. Each entity's posterior predictive tail is then a Lomax with shape + n_e excesses summing to
    rate + S_e (n_e excesses of entity e, summing to S_e).

    fixed: prior x tail_fraction excesses (1 by default) at the global tail's scale.
    empirical_bayes: (shape, rate) maximise the marginal likelihood of every entity's excesses (type-II maximum
    likelihood): entities whose tails fall alike (hosts of one fleet) pool toward one scale. The prior cannot weigh
    more than the excesses it was learned from (shape <= their total), so a pooled entity gets the tail of a scale
    known from those excesses, not an exponential known exactly. Where the likelihood's prior would weigh less than
    the fixed one (the entities look unlike), the fixed prior is kept whole, its global scale included: an entity's
    held-out excesses come in contiguous blocks and tell less than their count says, so a few tiny ones from one
    quiet block must not set a tail of their own. The switch at that floor is deliberate (NAB's series sit below
    it for every signal and keep the fixed rule's numbers). With fewer than two entities that have excesses, the
    fixed prior.
    """
    fixed = (prior * cal.tail_fraction, prior * cal.tail_fraction * cal.tail_scale)
    if pooling == "fixed" or (counts > 0).sum() < 2:
        return fixed
    total = float(counts.sum())
    unit = float(sums.sum()) / total  # excesses in units of their pooled mean: the search is scale-free
    if not (np.isfinite(unit) and unit > 0):
        return fixed
    x = sums / unit

    def negative_log_likelihood(t: np.ndarray) -> float:  # t = (log shape, log mean excess of the prior)
        shape = np.exp(t[0])
        rate = shape * np.exp(t[1])
        return -float(np.sum(shape * np.log(rate) + gammaln(shape + counts) - gammaln(shape)
                             - (shape + counts) * np.log(rate + x)))

    bounds = [(np.log(1e-3), np.log(total)), (np.log(1e-6), np.log(1e6))]
    with np.errstate(all="ignore"):
        fit = minimize(negative_log_likelihood, np.array([0.0, 0.0]), method="L-BFGS-B", bounds=bounds)
    shape, mean = float(np.exp(fit.x[0])), float(np.exp(fit.x[1])) * unit
    if not (fit.success and np.isfinite(shape) and np.isfinite(mean)) or shape < fixed[0]:
        return fixed
    return shape, shape * mean


def fuse(p: np.ndarray, method: Fusion = "bonferroni") -> np.ndarray:
    """One p-value per row from each signal's (n, S): how unusual the row is, whichever signal says so.

    bonferroni: the smallest times S (S chances to look unusual; valid under any dependence).
    harmonic: the harmonic mean p-value, S / sum_i 1 / p_i (Wilson, PNAS 2019), capped at 1. With one signal far
    smaller than the others it equals Bonferroni; where several signals are moderately unusual together (a
    metric off its hour's profile *and* off what the others predict) their evidence adds up, which the smallest
    alone ignores. It stays approximately valid under the dependence these signals have (they read the same
    points), which Fisher's product would not.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), P_FLOOR, 1.0)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"fuse needs (rows, signals) p-values, got shape {p.shape}")
    s = p.shape[1]
    if method == "bonferroni":
        return np.minimum(1.0, s * p.min(axis=1))
    if method == "harmonic":
        return np.minimum(1.0, s / (1.0 / p).sum(axis=1))
    raise ValueError(f"unknown fusion {method!r} (known: {', '.join(FUSIONS)})")
