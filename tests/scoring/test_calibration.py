"""Calibration maths on numpy: p-values, threshold at the target false-alarm rate, fusion of signals."""

from math import erfc, lgamma, log, sqrt

import numpy as np
import pytest

from lakewatch.errors import DataError
from lakewatch.scoring.calibration import (
    Calibration,
    calibrate,
    calibrated_values,
    fit_entity_tails,
    fuse,
    p_values,
    tail_rate_prior,
    threshold_for,
)


def test_threshold_meets_the_target_rate_on_fresh_normal_data():
    rng = np.random.default_rng(0)
    held = rng.gamma(2.0, 1.0, 20_000)
    cal = calibrate(held, 0.01)
    fresh = rng.gamma(2.0, 1.0, 200_000)
    rate = float((fresh >= cal.threshold).mean())
    assert 0.007 < rate < 0.013
    # the p-value at the threshold is the target rate
    assert p_values(cal, np.array([cal.threshold]))[0] == pytest.approx(0.01, rel=1e-6)


def test_p_values_are_monotone_and_calibrated_in_unit_interval():
    rng = np.random.default_rng(1)
    cal = calibrate(rng.exponential(1.0, 5000), 0.001)
    s = np.linspace(-1, 40, 2000)
    p = p_values(cal, s)
    assert np.all(np.diff(p) <= 1e-12)
    c = calibrated_values(cal, s)
    assert c.min() >= 0 and c.max() <= 1
    # beyond every held-out score the tail still orders scores
    assert p_values(cal, np.array([20.0]))[0] > p_values(cal, np.array([30.0]))[0] > 0


def test_small_rate_threshold_comes_from_the_tail():
    rng = np.random.default_rng(2)
    held = rng.exponential(2.0, 50_000)
    cal = calibrate(held, 1e-4)
    # for an exponential the tail fit is exact in expectation: threshold = 2 * ln(1e4)
    assert cal.threshold == pytest.approx(2.0 * np.log(1e4), rel=0.05)


def test_too_few_heldout_rows_is_an_error():
    with pytest.raises(DataError, match="at least 20"):
        calibrate(np.ones(5), 0.01)


def test_the_tail_is_lomax_with_the_excesses_behind_it_and_tends_to_the_exponential():
    # 1..100: u = the 0.95 quantile = 95.05; the 5 excesses 0.95 .. 4.95 have mean beta = 2.95
    cal = calibrate(np.arange(1.0, 101.0), 0.01)
    assert (cal.tail_start, cal.tail_excesses) == (pytest.approx(95.05), 5)
    assert cal.tail_scale == pytest.approx(2.95)
    # at an excess of k x beta = 14.75: 0.05 x (1 + 1)^-5, where the exponential would claim 0.05 x e^-5
    p = p_values(cal, np.array([95.05 + 14.75]))[0]
    assert p == pytest.approx(0.05 / 32, rel=1e-9)
    assert threshold_for(cal, 0.05 / 32) == pytest.approx(95.05 + 14.75, rel=1e-9)
    # with many excesses the tail is the exponential's: 0.05 e^-4 at 4 mean excesses
    many = calibrate(np.random.default_rng(3).exponential(1.0, 200_000), 1e-4)
    x = many.tail_start + 4 * many.tail_scale
    assert p_values(many, np.array([x]))[0] == pytest.approx(0.05 * np.exp(-4.0), rel=1e-3)


def test_a_package_calibrated_before_the_lomax_tail_keeps_its_exponential():
    old = {k: v for k, v in calibrate(np.arange(1.0, 101.0), 0.01).to_dict().items() if k != "tail_excesses"}
    cal = Calibration.from_dict(old)
    assert cal.tail_excesses == 0
    assert p_values(cal, np.array([95.05 + 2 * 2.95]))[0] == pytest.approx(0.05 * np.exp(-2.0), rel=1e-9)
    assert threshold_for(cal, 0.05 * np.exp(-2.0)) == pytest.approx(95.05 + 2 * 2.95, rel=1e-9)


def test_an_entity_with_few_held_out_scores_gets_a_heavier_tail():
    # global tail: u = 95.05, beta = 2.95 from 5 excesses (scores 1..100)
    cal = calibrate(np.arange(1.0, 101.0), 0.01)
    rich = np.arange(1.0, 401.0) / 4.0  # 400 scores 0.25 .. 100: u = 95.0125, 20 excesses of mean 2.6125
    poor = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    codes = np.concatenate([np.zeros(len(rich), dtype=np.int64), np.ones(len(poor), dtype=np.int64), [2, 2]])
    scores = np.concatenate([rich, poor, [50.0, 60.0]])
    tails = fit_entity_tails(cal, codes, scores, 3, prior=20.0, pooling="fixed")
    # own excesses plus the prior's share, prior x tail_fraction = 1; entity 2 (2 scores) keeps the global tail
    assert tails.excesses.tolist() == [21.0, 2.0, 5.0]
    assert tails.start[2] == cal.tail_start and tails.scale[2] == cal.tail_scale
    # rich: beta shrunk as (20 x 2.6125 + 1 x 2.95) / 21; p at 10 excess units = 0.05 (1 + 10 / (21 beta))^-21
    beta = (20 * 2.6125 + 2.95) / 21
    u = (400 * 95.0125 + 20 * 95.05) / 420
    got = tails.p_values(cal, np.array([u + 10.0]), np.array([0]), np.array([False]))[0]
    assert got == pytest.approx(0.05 * (1 + 10.0 / (21 * beta)) ** -21, rel=1e-9)
    # an unseen entity reads the global tail, whatever its position
    unseen = tails.p_values(cal, np.array([cal.tail_start + 5.0]), np.array([1]), np.array([True]))[0]
    assert unseen == pytest.approx(p_values(cal, np.array([cal.tail_start + 5.0]))[0], rel=1e-12)


def _entity_scores(rng: np.random.Generator, rates: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """n exponential scores per entity, entity e's at rate rates[e]: its tail's mean excess is 1 / rate."""
    codes = np.repeat(np.arange(len(rates)), n)
    return codes, np.concatenate([rng.exponential(1.0 / r, n) for r in rates])


def test_entities_alike_pool_their_tail_scales_and_unlike_ones_keep_their_own():
    rng = np.random.default_rng(11)
    # thirty hosts of one fleet: the same tail (mean excess 1), 100 held-out scores each (5 excesses)
    codes, scores = _entity_scores(rng, [1.0] * 30, 100)
    cal = calibrate(scores, 0.001)
    fixed = fit_entity_tails(cal, codes, scores, 30, prior=20.0, pooling="fixed")
    pooled = fit_entity_tails(cal, codes, scores, 30, prior=20.0)
    # fixed: each scale rests on its own 5 excesses (the prior weighs 1), so they scatter as a 5-sample mean does;
    # pooled: the fleet's 150 excesses say the hosts are alike, and every scale is close to the true 1
    assert np.std(np.log(fixed.scale)) > 0.25
    assert np.std(np.log(pooled.scale)) < 0.4 * np.std(np.log(fixed.scale))
    assert np.all(np.abs(pooled.scale - 1.0) < 0.3)
    # the prior weighs at most the 150 excesses it was learned from: a Lomax tail, not an exponential known exactly
    assert np.all(pooled.excesses <= 150 + 5 + 1e-9)
    assert np.all(pooled.excesses > fixed.excesses)
    # twelve unrelated series: mean excesses from 0.2 to 5, 400 scores each (20 excesses)
    rates = list(np.geomspace(0.2, 5.0, 12))
    codes, scores = _entity_scores(rng, rates, 400)
    cal = calibrate(scores, 0.001)
    own = fit_entity_tails(cal, codes, scores, 12, prior=20.0)
    # each keeps its own scale (within what 20 excesses tell), not the pooled one
    ratio = own.scale * np.asarray(rates)
    assert np.all((ratio > 0.5) & (ratio < 2.0))
    assert own.scale.max() / own.scale.min() > 8.0


def test_the_pooling_prior_maximises_the_entities_marginal_likelihood():
    counts = np.array([5.0, 5.0, 6.0, 4.0, 5.0, 7.0])
    sums = np.array([3.0, 9.0, 5.0, 2.0, 6.0, 4.0])
    cal = calibrate(np.arange(1.0, 101.0), 0.01)
    shape, rate = tail_rate_prior(counts, sums, cal, prior=20.0, pooling="empirical_bayes")

    def log_marginal(a: float, b: float) -> float:  # Gamma(a, b) prior on each entity's exponential rate
        return sum(a * log(b) + lgamma(a + n) - lgamma(a) - (a + n) * log(b + s) for n, s in zip(counts, sums))

    best = log_marginal(shape, rate)
    for a in np.geomspace(0.1, 32.0, 60):  # the shape is at most the 32 excesses
        for b in np.geomspace(0.01, 100.0, 120):
            assert log_marginal(a, b) <= best + 1e-6
    # entities whose excesses agree exactly: the likelihood grows with the prior's weight, which stops at the 24
    # excesses it was learned from, at their mean excess
    same = tail_rate_prior(np.full(4, 6.0), np.full(4, 3.0), cal, prior=20.0, pooling="empirical_bayes")
    assert same[0] == pytest.approx(24.0, rel=1e-6) and same[1] / same[0] == pytest.approx(0.5, rel=1e-3)
    fixed = (20.0 * cal.tail_fraction, 20.0 * cal.tail_fraction * cal.tail_scale)
    # fewer than two entities with excesses: the fixed prior, prior x tail_fraction excesses of the global scale
    alone = tail_rate_prior(np.array([5.0, 0.0]), np.array([4.0, 0.0]), cal, prior=20.0, pooling="empirical_bayes")
    assert alone == pytest.approx(fixed)
    # unrelated series whose mean excesses span six orders of magnitude (NAB's forecast tails): the likelihood's
    # prior would weigh less than one excess, so the fixed prior's weight is the floor
    unlike = tail_rate_prior(np.array([10.0, 3.0, 4.0, 16.0]), np.array([0.01, 3.0, 12000.0, 1.6]), cal, prior=20.0,
                             pooling="empirical_bayes")
    assert unlike == pytest.approx(fixed)


def test_an_entity_tail_is_the_posterior_predictive_of_its_rate():
    # an entity's excesses x ~ Exp(rate), rate ~ Gamma(shape a + n, rate b + S) after n excesses summing to S:
    # P(excess > x) is the Gamma's mean of exp(-rate x), integrated here, against the Lomax the package stores
    from scipy.integrate import quad
    from scipy.stats import gamma

    from lakewatch.scoring.calibration import tail_probability

    a, b, n, total = 3.0, 1.5, 4.0, 2.0
    for x in (0.1, 1.0, 5.0, 40.0):
        integrated, _ = quad(lambda r: np.exp(-r * x) * gamma.pdf(r, a + n, scale=1.0 / (b + total)), 0, np.inf)
        lomax = tail_probability(1.0, np.array([x]), np.array([(b + total) / (a + n)]), np.array([a + n]))[0]
        assert lomax == pytest.approx(integrated, rel=1e-7)


def test_bonferroni_fusion_is_the_smallest_p_value_times_the_signals():
    p = np.array([[0.01, 0.5, 0.9], [0.2, 0.3, 0.4], [1.0, 1.0, 1.0]])
    assert fuse(p, "bonferroni") == pytest.approx([0.03, 0.6, 1.0])


def test_harmonic_fusion_adds_up_signals_that_agree_and_equals_bonferroni_for_one():
    # worked by hand: 3 / (1/0.01 + 1/0.01 + 1/0.01) = 0.01; 3 / (100 + 2 + 1) = 0.029126...
    p = np.array([[0.01, 0.01, 0.01], [0.01, 0.5, 1.0], [1e-6, 1.0, 1.0], [0.5, 0.5, 0.5]])
    assert fuse(p, "harmonic") == pytest.approx([0.01, 3 / 103, 3 / (1e6 + 2), 0.5])
    # three signals at 0.01 together are 3x stronger evidence than Bonferroni's smallest x 3 says
    assert fuse(p, "harmonic")[0] < fuse(p, "bonferroni")[0]
    # one signal far below the others: the two rules agree to within a ratio of (S - 1) p / 1
    assert fuse(p, "harmonic")[2] == pytest.approx(fuse(p, "bonferroni")[2], rel=1e-5)


def test_harmonic_fusion_is_close_to_its_nominal_rate_on_dependent_signals():
    # three correlated z-scores of one normal point (as level / seasonal / forecast read the same values)
    rng = np.random.default_rng(3)
    common = rng.standard_normal(400_000)
    z = np.column_stack([0.7 * common + np.sqrt(1 - 0.49) * rng.standard_normal(len(common)) for _ in range(3)])
    p = np.vectorize(lambda v: erfc(abs(v) / sqrt(2)))(z)
    for rate in (0.01, 0.001):
        got = float((fuse(p, "harmonic") <= rate).mean())
        assert 0.5 * rate < got < 1.6 * rate  # Wilson's HMP is slightly anti-conservative, never by 2x here
        assert float((fuse(p, "bonferroni") <= rate).mean()) <= rate  # Bonferroni is conservative


def test_fusion_floors_zero_p_values_and_rejects_an_unknown_rule():
    assert np.isfinite(fuse(np.array([[0.0, 1.0]]), "harmonic")).all()
    assert fuse(np.array([[0.0, 1.0]]), "harmonic")[0] > 0
    with pytest.raises(ValueError, match="unknown fusion 'fisher'"):
        fuse(np.array([[0.1]]), "fisher")
