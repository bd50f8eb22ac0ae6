import numpy as np
import pytest

from hiermodels.numerics.pooling import (
    no_pooling_fit,
    no_pooling_glm,
    pooling_factor,
    shrinkage_ratio,
)


def test_no_pooling_intercepts_are_group_means():
    y = np.array([1.0, 3.0, 10.0, 14.0, 15.0])
    g = np.array([0, 0, 1, 1, 1])
    est, se = no_pooling_fit(y, np.empty((5, 0)), np.ones((5, 1)), g, 2)
    np.testing.assert_allclose(est[:, 0], [2.0, 13.0])
    # pooled residual variance: (1 + 1 + 9 + 1 + 4) / (5 - 2) = 16/3
    np.testing.assert_allclose(se[:, 0], np.sqrt(16 / 3 / np.array([2, 3])))


def test_no_pooling_varying_slopes_match_per_group_ols():
    rng = np.random.default_rng(1)
    g = np.repeat([0, 1, 2], 6)
    x = rng.normal(size=18)
    y = rng.normal(size=18)
    Z = np.column_stack([np.ones(18), x])
    est, _ = no_pooling_fit(y, np.empty((18, 0)), Z, g, 3)
    for j in range(3):
        rows = g == j
        expected = np.linalg.lstsq(Z[rows], y[rows], rcond=None)[0]
        np.testing.assert_allclose(est[j], expected, atol=1e-10)


def test_unidentified_slope_is_nan_but_intercept_kept():
    # group 1 has x == 0 everywhere: its slope is not identified, its intercept is
    g = np.array([0, 0, 0, 1, 1])
    x = np.array([0.0, 1.0, 2.0, 0.0, 0.0])
    y = np.array([1.0, 2.0, 3.5, 5.0, 7.0])
    est, _ = no_pooling_fit(y, np.empty((5, 0)), np.column_stack([np.ones(5), x]), g, 2)
    assert np.isnan(est[1, 1])
    assert est[1, 0] == pytest.approx(6.0)
    assert np.isfinite(est[0]).all()


def test_shared_column_is_common_to_all_groups():
    rng = np.random.default_rng(2)
    g = np.repeat([0, 1], 10)
    x = rng.normal(size=20)
    y = np.array([1.0, 4.0])[g] + 2.0 * x
    est, _ = no_pooling_fit(y, x[:, None], np.ones((20, 1)), g, 2)
    np.testing.assert_allclose(est[:, 0], [1.0, 4.0], atol=1e-10)


def test_shrinkage_ratio_only_where_stable():
    assert shrinkage_ratio(10.0, 7.0, 4.0, 1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(
        shrinkage_ratio([10.0, 0.0], [10.0, 2.0], [4.0, 2.0], [1.0, 1.0]), [0.0, 1.0]
    )
    assert np.isnan(shrinkage_ratio(3.0, 3.0, 3.0, 1.0))
    assert np.isnan(shrinkage_ratio(np.nan, 1.0, 2.0, 1.0))
    # a gap smaller than one standard error would divide by noise: NaN, not 4.5 or -4.3
    assert np.isnan(shrinkage_ratio(4.1, 3.65, 4.0, 0.5))


def test_pooling_factor_is_bda3_weight_in_unit_interval():
    # BDA3 eq. 5.17: weight se^2 / (se^2 + tau^2) on the population mean, averaged over tau
    tau = np.array([1.0, 2.0, 3.0])
    se = np.array([0.5, 2.0, 10.0])
    expected = [np.mean(s**2 / (s**2 + tau**2)) for s in se]
    np.testing.assert_allclose(pooling_factor(se, tau), expected)
    assert ((pooling_factor(se, tau) > 0) & (pooling_factor(se, tau) < 1)).all()
    assert np.isnan(pooling_factor(np.array([np.nan]), tau)).all()


def _grouped(seed=1, groups=8, rows=25):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), rows)
    return rng, g, rng.normal(0, 1, groups)


def test_no_pooling_glm_logit_is_each_groups_log_odds():
    rng, g, a = _grouped()
    trials = rng.integers(1, 6, g.size)
    k = rng.binomial(trials, 1 / (1 + np.exp(-a[g])))
    k[g == 2] = 0  # no successes: no finite log odds
    est, se = no_pooling_glm(
        k, np.empty((g.size, 0)), np.ones((g.size, 1)), g, 8, link="logit", trials=trials
    )
    rate = np.array([k[g == j].sum() / trials[g == j].sum() for j in range(8)])
    keep = np.arange(8) != 2
    rate = rate[keep]
    np.testing.assert_allclose(est[keep, 0], np.log(rate / (1 - rate)), atol=1e-8)
    # classical se of a log odds: 1 / sqrt(N p (1 - p))
    n_j = np.array([trials[g == j].sum() for j in range(8)])[keep]
    np.testing.assert_allclose(se[keep, 0], 1 / np.sqrt(n_j * rate * (1 - rate)), rtol=1e-6)
    assert np.isnan(est[2, 0]) and np.isnan(se[2, 0])


def test_no_pooling_glm_poisson_solves_the_score_equations():
    rng, g, a = _grouped(seed=2)
    x = rng.normal(size=g.size)
    exposure = rng.uniform(1, 5, g.size)
    y = rng.poisson(exposure * np.exp(a[g] + 0.3 * x))
    y[g == 5] = 0
    est, _ = no_pooling_glm(
        y, x[:, None], np.ones((g.size, 1)), g, 8, link="log", offset=np.log(exposure)
    )
    assert np.isnan(est[5, 0]) and np.isfinite(np.delete(est[:, 0], 5)).all()
    # with the shared slope fixed at its MLE, each group's intercept is the log of its
    # observed over expected count; recover the slope from one group's score equation
    rows = g != 5
    alpha = est[g[rows], 0]
    slopes = np.linspace(0.0, 0.6, 6001)
    score = [
        np.sum(x[rows] * (y[rows] - exposure[rows] * np.exp(alpha + b * x[rows]))) for b in slopes
    ]
    b_hat = slopes[np.argmin(np.abs(score))]
    for j in np.flatnonzero(np.arange(8) != 5):
        m = g == j
        expected = np.log(y[m].sum() / np.sum(exposure[m] * np.exp(b_hat * x[m])))
        assert est[j, 0] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("known_se", [False, True])
def test_grouped_no_pooling_equals_the_dense_fit(known_se):
    """Per-group sums give the dense design's answer (no shared columns), in O(groups)
    memory: the path that keeps big data (1e6 rows x 1e4 groups) out of a dense design."""
    from hiermodels.numerics.pooling import no_pooling_by_group

    rng = np.random.default_rng(9)
    n, groups = 600, 30
    idx = rng.integers(0, groups, n)
    idx[idx == 3] = 4  # an empty group: NaN
    x = rng.normal(size=n)
    Z = np.column_stack([np.ones(n), x])
    y = 1 + 0.5 * x + rng.normal(0, 0.5, groups)[idx] + rng.normal(size=n)
    se = rng.uniform(0.5, 2, n) if known_se else None
    fast = no_pooling_by_group(y, Z, idx, groups, se=se)
    dense = no_pooling_fit(y, np.empty((n, 0)), Z, idx, groups, se=se)
    for a, b in zip(fast, dense, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert np.isnan(fast[0][3]).all()
