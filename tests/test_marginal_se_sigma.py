"""engine="marginal" with known standard errors and a residual SD (``y | se(s, sigma=True)``):
row variance ``v_i = se_i^2 + sigma^2``, the weighted sums summed from the rows per gradient
(:class:`hiermodels.builders.marginal.RowStatistics`). Checked against the dense marginal
covariance ``diag(se^2 + sigma^2) + Z Sigma Z'`` (Laird & Ware 1982), the dense conditional
of the group effects (BDA3 §15.4) and the full engine, which scores ``Normal(eta_i,
sqrt(se_i^2 + sigma^2))``."""

import warnings

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.builders.hierarchical import build
from hiermodels.builders.marginal import (
    ROW_GROUP,
    ROWS,
    RowStatistics,
    marginal_inputs,
    row_statistics,
)
from hiermodels.engines.marginal import draw_group_effects, fit_marginal, marginal_supported
from hiermodels.errors import ConvergenceWarning
from hiermodels.results.hierarchical import HierarchicalResult
from hiermodels.sampling import SamplingOptions

FORMULA = "y | se(s, sigma=True) ~ x + (1 + x | g)"


def _tiny(seed=0, n_per=(3, 4, 2)):
    rng = np.random.default_rng(seed)
    n = sum(n_per)
    return pd.DataFrame(
        {
            "y": 50 + rng.normal(size=n),
            "x": 10 + 3 * rng.normal(size=n),
            "g": np.repeat([f"g{j}" for j in range(len(n_per))], n_per),
            "s": rng.uniform(0.3, 2.0, n),
        }
    )


def _prepare(df, formula=FORMULA):
    return hm.HierarchicalModel(df, formula).prepared()


def _graph_loglik(data, rs: RowStatistics, beta, sigma, cov):
    """The graph's likelihood (``RowStatistics.loglik`` on PyTensor constants), evaluated."""
    entries = rs.entries()
    tensors = {
        k: (pt.as_tensor(np.asarray(v)) if not isinstance(v, list) else v)
        for k, v in entries.items()
    }
    tensors |= {ROWS: pt.as_tensor(rs.rows), ROW_GROUP: pt.as_tensor(rs.group)}
    centred = beta.copy()
    centred[0] = beta[0] + beta[1:] @ rs.means[1:]  # the intercept at the predictors' means
    L = np.linalg.cholesky(cov)
    q = len(L)
    chol = [[pt.as_tensor(L[i, j]) if j <= i else None for j in range(q)] for i in range(q)]
    delta = [pt.as_tensor(d) for d in centred - rs.shift]
    out = rs.loglik(pt, stats=tensors, delta=delta, sigma=pt.as_tensor(sigma), chols=[chol])
    return float(out.eval())


def _dense(data, sigma, cov):
    same = data.group_idx[:, None] == data.group_idx[None, :]
    return np.diag(data.se**2 + sigma**2) + (data.Z @ cov @ data.Z.T) * same


# -- unit: numbers, no sampling ---------------------------------------------------------------
def test_supported_for_one_factor_and_nested_not_crossed():
    df = _tiny(1)
    df["h"] = np.arange(len(df)) % 2
    data, spec, _ = _prepare(df)
    assert marginal_supported(data, spec)[0]
    # nested: tests/test_marginal_nested_se_sigma.py
    data, spec, _ = _prepare(df, "y | se(s, sigma=True) ~ x + (1 | g/h)")
    assert marginal_supported(data, spec)[0]
    data, spec, _ = _prepare(df, "y | se(s, sigma=True) ~ x + (1 | g) + (1 | h)")
    ok, reason = marginal_supported(data, spec)
    assert not ok and "crossed" in reason


@pytest.mark.parametrize(
    ("beta", "sigma", "cov"),
    [
        (np.array([50.0, 0.05]), 0.8, np.array([[0.8, 0.1], [0.1, 0.05]])),
        (np.array([48.0, 0.3]), 2.5, np.array([[2.0, -0.3], [-0.3, 0.2]])),
    ],
)
def test_loglik_equals_dense_normal(beta, sigma, cov):
    """N(y | X beta, diag(se^2 + sigma^2) + Z Sigma Z') at two parameter points."""
    data, spec, priors = _prepare(_tiny(2))
    rs = marginal_inputs(data, spec, priors).stats
    assert isinstance(rs, RowStatistics)
    expected = stats.multivariate_normal(data.X @ beta, _dense(data, sigma, cov)).logpdf(data.y)
    np.testing.assert_allclose(_graph_loglik(data, rs, beta, sigma, cov), expected, rtol=1e-9)


def test_conditional_effects_have_the_dense_mean_and_covariance():
    """b_j | y, theta ~ N(A_j^-1 Z_j'W_j r_j, A_j^-1), A_j = Z_j'W_j Z_j + Sigma^-1,
    W_j = diag(1 / (se_i^2 + sigma^2)), for two values of sigma in one call."""
    data, _, _ = _prepare(_tiny(3, n_per=(3, 3, 6)))
    rs = row_statistics(data)
    beta, cov = np.array([49.0, 0.1]), np.array([[0.5, -0.05], [-0.05, 0.02]])
    centred = np.array([beta[0] + beta[1] * rs.means[1], beta[1]])
    L = np.linalg.cholesky(cov)
    S = 40_000
    sigmas = np.repeat([0.4, 1.7], S // 2)
    delta, chol = np.tile(centred - rs.shift, (S, 1)), np.tile(L, (S, 1, 1))
    means = draw_group_effects(rs, delta[[0, -1]], sigmas[[0, -1]], chol[[0, -1]], None)
    draws = draw_group_effects(rs, delta, sigmas, chol, np.random.default_rng(4))
    for half, sigma in enumerate([0.4, 1.7]):
        part = draws[half * (S // 2) : (half + 1) * (S // 2)]
        for j in range(data.n_groups):
            rows = data.group_idx == j
            Z, r = data.X[rows], data.y[rows] - data.X[rows] @ beta
            W = np.diag(1.0 / (data.se[rows] ** 2 + sigma**2))
            A_inv = np.linalg.inv(Z.T @ W @ Z + np.linalg.inv(cov))
            mean = A_inv @ Z.T @ W @ r
            np.testing.assert_allclose(means[half, j], mean, rtol=1e-9, atol=1e-12)
            n = len(part)
            sd = np.sqrt(np.diag(A_inv))
            assert np.all(np.abs(part[:, j].mean(axis=0) - mean) < 5 * sd / np.sqrt(n))
            se_cov = np.sqrt((np.outer(sd, sd) ** 2 + A_inv**2) / n)
            assert np.all(np.abs(np.cov(part[:, j].T) - A_inv) < 5 * se_cov)


# -- real MCMC ---------------------------------------------------------------------------------
def _simulated(seed):
    """30 groups of 3-10 rows, se in [0.5, 1.5], sigma 0.8, correlated intercept and slope."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 11, 30)
    g = np.repeat(np.arange(30), sizes)
    b = rng.multivariate_normal([0, 0], [[1.0, 0.1], [0.1, 0.25]], 30)
    x = rng.normal(size=len(g))
    s = rng.uniform(0.5, 1.5, len(g))
    eta = 2.0 + b[g, 0] + (0.5 + b[g, 1]) * x
    y = eta + rng.normal(size=len(g)) * np.sqrt(s**2 + 0.8**2)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j}" for j in g], "s": s})


@pytest.mark.slow
def test_marginal_and_full_engines_agree(seed, sampled_well, agreement):
    df = _simulated(seed(41))
    data, spec, priors = _prepare(df)
    options = SamplingOptions(draws=500, tune=1000, chains=4, random_seed=seed(42))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # asserted below instead
        idata, _ = fit_marginal(data, spec, priors, options)
        full = hm.HierarchicalModel(df, FORMULA).fit(
            500, tune=1000, chains=4, random_seed=seed(43), engine="full"
        )
    marginal = HierarchicalResult(idata, build(data, spec, priors).model, data, spec, priors)
    sampled_well(marginal, rhat=1.03, ess_per_chain=25)
    sampled_well(full, rhat=1.05, ess_per_chain=15)
    # population parameters within 4 Monte Carlo standard errors of the difference
    for name in ["Intercept", "x", "sigma", "Intercept|g_sigma", "x|g_sigma", "g_corr"]:
        a, b = np.asarray(idata["posterior"][name]), np.asarray(full.idata["posterior"][name])
        if name == "g_corr":  # the one correlation
            a, b = a[..., 1, 0], b[..., 1, 0]
        diff, bound = agreement(a, b, 4)
        assert np.all(diff < bound), (name, diff, bound)
    # every group's deviations within 5 (the max over 30 of them)
    for name in ("Intercept|g", "x|g"):
        a, b = np.asarray(idata["posterior"][name]), np.asarray(full.idata["posterior"][name])
        diff, bound = agreement(a, b, 5)
        assert np.all(diff < bound), (name, diff.max())
