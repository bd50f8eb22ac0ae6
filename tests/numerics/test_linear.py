"""Exact reference-prior regression (BDA3 §14.2) against direct formulas."""

import numpy as np
import pytest
from scipy import stats

from hiermodels.numerics.linear import flat_prior_regression


@pytest.fixture
def regression():
    rng = np.random.default_rng(4)
    X = np.column_stack([np.ones(40), rng.normal(size=40), rng.integers(0, 2, 40)])
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.7, size=40)
    return X, y


def test_summary_is_the_t_posterior(regression):
    X, y = regression
    fit = flat_prior_regression(y, X)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    s2 = np.sum((y - X @ beta) ** 2) / (40 - 3)
    scale = np.sqrt(s2 * np.diag(np.linalg.inv(X.T @ X)))
    s = fit.summary(0.9)
    np.testing.assert_allclose(s["mean"], beta, rtol=1e-10)
    np.testing.assert_allclose(s["sd"], scale * np.sqrt(37 / 35), rtol=1e-10)
    np.testing.assert_allclose(s["upper"], beta + stats.t.ppf(0.95, 37) * scale, rtol=1e-10)
    contrast = fit.summary(0.9, contrasts=[[1.0, 0.0, 1.0]])
    np.testing.assert_allclose(contrast["mean"], beta[0] + beta[2], rtol=1e-10)


def test_draws_have_the_posterior_moments(regression):
    X, y = regression
    fit = flat_prior_regression(y, X)
    beta, sigma = fit.draw(200_000, rng=1)
    s = fit.summary()
    np.testing.assert_allclose(beta.mean(axis=0), s["mean"], atol=4 * s["sd"].max() / 400)
    np.testing.assert_allclose(beta.std(axis=0), s["sd"], rtol=0.01)
    # E[sigma^2 | y] = (n - p) s^2 / (n - p - 2) for the scaled inverse chi-square
    np.testing.assert_allclose(np.mean(sigma**2), 37 * fit.s2 / 35, rtol=0.01)


def test_rank_deficient_design_marks_unidentified_coefficients():
    # the third column duplicates the second: neither coefficient is identified, their sum is
    X = np.column_stack([np.ones(6), [0, 1, 0, 1, 1, 0.0], [0, 1, 0, 1, 1, 0.0]])
    y = np.array([1.0, 2.0, 1.5, 2.5, 2.2, 0.9])
    fit = flat_prior_regression(y, X)
    assert fit.estimable.tolist() == [True, False, False]
    s = fit.summary()
    assert np.isfinite(s["mean"][0]) and np.isnan(s["mean"][1:]).all()
    total = fit.summary(contrasts=[[0.0, 1.0, 1.0]])["mean"][0]
    assert total == pytest.approx(np.mean(y[[1, 3, 4]]) - np.mean(y[[0, 2, 5]]))
    beta, _ = fit.draw(10, rng=0)
    np.testing.assert_allclose(beta[:, 1], beta[:, 2])  # minimum-norm: the sum is split evenly
