"""AUCs from score histograms, checked against a direct computation on the raw scores."""

import numpy as np
import pytest

from lakewatch.monitoring.evaluate import auc_from_histogram, operating_bin, point_metrics


def exact_auc(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """ROC-AUC as the Mann-Whitney probability (ties count half); AP over distinct score thresholds."""
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    roc = greater / (len(pos) * len(neg))
    ap = 0.0
    for t in np.unique(scores)[::-1]:
        at = scores == t
        flagged = scores >= t
        ap += labels[at].sum() / labels.sum() * labels[flagged].sum() / flagged.sum()
    return float(roc), float(ap)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_from_histogram_matches_direct_computation(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(600) < 0.1
    scores = np.round(rng.normal(0, 1, 600) + 1.5 * labels, 1)  # rounded: ties, as in bins
    bins = np.unique(scores)[::-1]
    pos = np.array([(labels & (scores == b)).sum() for b in bins])
    neg = np.array([(~labels & (scores == b)).sum() for b in bins])
    roc, ap = auc_from_histogram(pos, neg)
    exact_roc, exact_ap = exact_auc(scores, labels)
    assert roc == pytest.approx(exact_roc, abs=1e-12)
    assert ap == pytest.approx(exact_ap, abs=1e-12)


def test_one_class_gives_nan_and_point_metrics():
    roc, ap = auc_from_histogram([0, 0], [3, 4])
    assert np.isnan(roc) and np.isnan(ap)
    assert point_metrics(8, 2, 8) == {"precision": 0.8, "recall": 0.5, "f1": pytest.approx(2 * 0.8 * 0.5 / 1.3)}


def test_the_operating_bin_keeps_at_most_the_false_alarm_rate_of_normal_points_above_it():
    keys = np.array([900, 500, 300, 200, 100])  # surprise bins, highest first
    neg = np.array([1, 2, 3, 94, 900])  # 1000 normal points
    assert operating_bin(neg, keys, 0.003) == 500  # 3 of 1000 at or above bin 500; bin 300 would make it 6
    assert operating_bin(neg, keys, 0.006) == 300
    assert operating_bin(neg, keys, 1.0) == 100
    assert operating_bin(np.array([5, 995]), np.array([700, 0]), 0.001) == float("inf")  # even the top bin is too loud
    # 1000 more normal points a cascade's gate left unscored: never flagged, so the budget doubles
    assert operating_bin(neg, keys, 0.003, normal=2000) == 300
