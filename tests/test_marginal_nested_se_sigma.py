"""engine="marginal" for two nested factors with known standard errors and a residual SD
(``y | se(s, sigma=True) ~ ... + (1 | outer/inner)``): row variance ``se_i^2 + sigma^2``, the
per-inner-group sums weighted by ``1 / (se_i^2 + sigma^2)`` and summed from the rows at every
evaluation (:class:`hiermodels.builders.marginal_nested.NestedRowStatistics`). Checked
against the dense marginal covariance ``diag(se^2 + sigma^2) + Z1 G1 Z1' + Z2 G2 Z2'``
(Laird & Ware 1982; Harville 1977), the dense conditional of both levels' effects (BDA3
§14.7, §15.4) and the full engine, which scores ``Normal(eta_i, sqrt(se_i^2 + sigma^2))``,
on simulated three-level meta-analytic data (studies in schools in districts, the design of
Konstantopoulos 2011 with several studies per school)."""

import time
import warnings

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.builders.hierarchical import build
from hiermodels.builders.marginal import (
    LOGLIK_NAME,
    ROW_GROUP,
    ROWS,
    build_marginal,
    marginal_inputs,
)
from hiermodels.builders.marginal_nested import (
    NestedRowStatistics,
    draw_nested_effects,
    nested_row_statistics,
)
from hiermodels.engines.marginal import marginal_supported
from hiermodels.errors import ConvergenceWarning
from hiermodels.models import engine_for

FAST = "FAST_COMPILE"


def _prepare(df, formula):
    return hm.HierarchicalModel(df, formula).prepared()


def _tiny(seed=0, n=14):
    """2 schools x 2 classes (labels repeat across schools), x and y far from 0, and se."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": 50 + rng.normal(size=n),
            "x": 10 + 3 * rng.normal(size=n),
            "school": np.r_[["a", "b"], rng.choice(["a", "b"], n - 2)],
            "cls": np.r_[["c1", "c2"] * 2, rng.choice(["c1", "c2"], n - 4)],
            "se": rng.uniform(0.3, 2.0, n),
        }
    )


def _dense_cov(data, sigma, covs):
    """diag(se^2 + sigma^2) + sum_f Z_f G_f Z_f', G_f block-diagonal by the factor's groups."""
    V = np.diag(data.se**2 + sigma**2)
    for f, cov in zip(data.factors, covs, strict=True):
        Z = data.X[:, [data.terms.index(t) for t in f.varying]]
        V = V + (Z @ cov @ Z.T) * (f.idx[:, None] == f.idx[None, :])
    return V


def _graph_loglik(rs: NestedRowStatistics, beta, sigma, covs):
    """The graph's likelihood (``NestedRowStatistics.loglik`` on PyTensor constants)."""
    tensors = {
        k: (v if isinstance(v, list) else pt.as_tensor(np.asarray(v)))
        for k, v in rs.entries().items()
    }
    tensors |= {k: pt.as_tensor(v) for k, v in rs.row_values().items()}
    centred = beta.copy()
    centred[0] = beta[0] + beta[1:] @ rs.rows.means[1:]  # the intercept at the x means
    chols = []
    for cov in covs:
        L, q = np.linalg.cholesky(cov), len(cov)
        chols.append(
            [[pt.as_tensor(L[i, j]) if j <= i else None for j in range(q)] for i in range(q)]
        )
    delta = [pt.as_tensor(d) for d in centred - rs.shift]
    out = rs.loglik(pt, stats=tensors, delta=delta, sigma=pt.as_tensor(sigma), chols=chols)
    return float(out.eval())


FORMULAS = [
    "y | se(se, sigma=True) ~ x + (1 | school/cls)",
    "y | se(se, sigma=True) ~ x + (1 + x | school) + (1 | school:cls)",  # q1 = 2, correlated
    "y | se(se, sigma=True) ~ x + (1 | school:cls) + (1 + x | school)",  # inner factor first
    "y | se(se, sigma=True) ~ x + (1 | school) + (1 + x || school:cls)",  # q2 = 2, independent
]


# -- unit: numbers, no sampling ---------------------------------------------------------------
def test_supported_when_nested_not_when_crossed():
    df = _tiny(1)
    data, spec, _ = _prepare(df, FORMULAS[0])
    ok, reason = marginal_supported(data, spec)
    assert ok and "nested" in reason
    data, spec, _ = hm.HierarchicalModel(df, FORMULAS[0]).prepared(resolve=False)
    assert engine_for(data, spec) == "marginal"  # "auto" reads the spec as given
    data, spec, _ = _prepare(df, "y | se(se, sigma=True) ~ x + (1 | school) + (1 | cls)")
    ok, reason = marginal_supported(data, spec)
    assert not ok and "crossed" in reason
    with pytest.raises(hm.SpecError, match="engine='full'"):
        engine_for(data, spec, engine="marginal")


def test_row_sums_equal_brute_force_at_a_sigma():
    """The per-inner-group sums weighted at sigma = 0.9, by hand: Z_l'WZ_m, Z_l'WX_c, Z_l'Wy0,
    W = diag(1 / (se^2 + 0.9^2)), the same column layout as NestedStatistics'."""
    data, _, _ = _prepare(_tiny(2), FORMULAS[1])
    rs = nested_row_statistics(data)
    outer, inner = data.factors
    entries = rs.rows.group_entries(np.array([0.9]))
    w = 1 / (data.se**2 + 0.81)
    Xc = data.X - data.X.mean(axis=0) * (np.array(data.terms) != "Intercept")
    y0 = data.y - Xc @ rs.shift
    Z1, Z2 = data.X, data.X[:, :1]
    for k in range(inner.n_groups):
        rows = inner.idx == k
        assert np.all(outer.idx[rows] == rs.parent[k])
        W = w[rows, None]
        for name, value in [
            ("Z1Z1", (Z1[rows] * W).T @ Z1[rows]),
            ("Z1Z2", (Z1[rows] * W).T @ Z2[rows]),
            ("Z2X", (Z2[rows] * W).T @ Xc[rows]),
            ("Z1y", (Z1[rows] * W).T @ y0[rows]),
        ]:
            got = np.array(entries[name], dtype=float)[..., 0, k]
            np.testing.assert_allclose(got, value, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize(
    ("point", "sigma"),
    [(0, 0.8), (1, 2.5)],
)
def test_loglik_equals_dense_normal(formula, point, sigma):
    """log N(y | X beta, diag(se^2 + sigma^2) + Z1 G1 Z1' + Z2 G2 Z2') at two parameter
    points (random covariances; one with a group SD near zero)."""
    data, _, _ = _prepare(_tiny(3), formula)
    assert sorted(f.n_groups for f in data.factors) == [2, 4]
    rng = np.random.default_rng(10 + point)
    beta, covs = np.array([50.0, 0.05]) + rng.normal(size=2), []
    for f in data.factors:
        A = rng.normal(size=(len(f.varying),) * 2)
        cov = A @ A.T + 0.3 * np.eye(len(f.varying))
        covs.append(cov if f.correlated else np.diag(np.diag(cov)))
    if point == 1:
        covs[0] = covs[0] * 1e-10
    rs = nested_row_statistics(data)
    expected = stats.multivariate_normal(data.X @ beta, _dense_cov(data, sigma, covs))
    got = _graph_loglik(rs, beta, sigma, covs)
    np.testing.assert_allclose(got, expected.logpdf(data.y), rtol=1e-9)


def test_graph_has_sigma_and_the_dense_likelihood():
    """The PyMC graph: the full model's free variables but the effects (``sigma`` among them),
    and at its initial point the dense marginal log density and a finite gradient."""
    formula = FORMULAS[1]
    data, spec, priors = _prepare(_tiny(8, n=20), formula)
    rows = nested_row_statistics(data)
    inputs = marginal_inputs(data, spec, priors, covariance="cholesky", stats=rows)
    assert isinstance(inputs.stats, NestedRowStatistics) and ROWS in inputs.values
    model = build_marginal(data, spec, priors, inputs)
    full = build(data, spec, priors).model
    effects = {v for v in full.named_vars if v.endswith(("_offset", "_coef", "_effects"))}
    assert [v.name for v in model.free_RVs] == [
        v.name for v in full.free_RVs if v.name not in effects
    ]
    assert "sigma" in model.named_vars and ROW_GROUP in model.named_vars
    point = model.initial_point(random_seed=9)
    outer, inner = data.factors
    names = [*data.terms, "sigma", "school_corr"]
    names += [f"{t}|{f.name}_sigma" for f, t in data.effects]
    outputs = model.replace_rvs_by_values([*(model[n] for n in names), model[LOGLIK_NAME]])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)
    *values, loglik = fn(point)
    v = dict(zip(names, values, strict=True))
    sds = np.array([v[f"{t}|school_sigma"] for t in outer.varying])
    covs = [
        sds[:, None] * v["school_corr"] * sds[None, :],
        np.array([[v[f"Intercept|{inner.name}_sigma"] ** 2]]),
    ]
    beta = np.array([v[t] for t in data.terms])
    expected = stats.multivariate_normal(data.X @ beta, _dense_cov(data, v["sigma"], covs))
    np.testing.assert_allclose(loglik, expected.logpdf(data.y), rtol=1e-9)
    assert np.all(np.isfinite(model.compile_dlogp(mode=FAST)(point)))


def test_conditional_effects_have_the_dense_mean_and_covariance():
    """(b1, b2) | y, theta ~ N(A^-1 Z'W r, A^-1), A = Z'WZ + blockdiag(G)^-1, Z = [Z1 Z2] dense,
    W = diag(1 / (se^2 + sigma^2)) (BDA3 §14.7), for two values of sigma in one call, in
    several blocks: means exactly, draws within 5 Monte Carlo standard errors."""
    data, _, _ = _prepare(_tiny(5, n=16), FORMULAS[1])
    rs = nested_row_statistics(data)
    outer, inner = data.factors
    beta = np.array([49.0, 0.1])
    covs = [np.array([[0.5, -0.05], [-0.05, 0.02]]), np.array([[0.3]])]
    n = len(data.y)
    Z1 = np.zeros((n, 2 * outer.n_groups))
    for k in range(2):
        Z1[np.arange(n), outer.idx * 2 + k] = data.X[:, k]
    Z = np.hstack([Z1, np.eye(inner.n_groups)[inner.idx]])
    G = np.zeros((Z.shape[1],) * 2)
    G[: Z1.shape[1], : Z1.shape[1]] = np.kron(np.eye(outer.n_groups), covs[0])
    G[Z1.shape[1] :, Z1.shape[1] :] = covs[1][0, 0] * np.eye(inner.n_groups)
    centred = np.array([beta[0] + beta[1] * rs.rows.means[1], beta[1]])
    S, sigmas = 40_000, (0.4, 1.7)
    sigma = np.repeat(sigmas, S // 2)
    args = [np.tile(centred - rs.shift, (S, 1)), sigma]
    args += [np.tile(np.linalg.cholesky(c), (S, 1, 1)) for c in covs]
    m1, m2 = draw_nested_effects(rs, *(a[[0, -1]] for a in args), None)
    b1, b2 = draw_nested_effects(rs, *args, np.random.default_rng(6), block=100_000)
    means = np.hstack([m1.reshape(2, -1), m2.reshape(2, -1)])
    draws = np.hstack([b1.reshape(S, -1), b2.reshape(S, -1)])
    for half, s in enumerate(sigmas):
        W = np.diag(1 / (data.se**2 + s**2))
        A_inv = np.linalg.inv(Z.T @ W @ Z + np.linalg.inv(G))
        mean = A_inv @ Z.T @ W @ (data.y - data.X @ beta)
        np.testing.assert_allclose(means[half], mean, rtol=1e-9, atol=1e-12)
        part = draws[half * (S // 2) : (half + 1) * (S // 2)]
        sd, m = np.sqrt(np.diag(A_inv)), len(part)
        assert np.all(np.abs(part.mean(axis=0) - mean) < 5 * sd / np.sqrt(m))
        se_cov = np.sqrt((np.outer(sd, sd) ** 2 + A_inv**2) / m)
        assert np.all(np.abs(np.cov(part.T) - A_inv) < 5 * se_cov)


# -- real MCMC ---------------------------------------------------------------------------------
def simulate(seed, n_districts=12, n_schools=4, n_per=4):
    """Studies in schools in districts, with known standard errors and a residual SD:
    ``y = 0.3 + 0.2 x + u_district + v_school + e``, ``u ~ N(0, 0.5)``, ``v ~ N(0, 0.35)``,
    ``e ~ N(0, sqrt(se^2 + 0.4^2))``, se in [0.2, 0.8]. Several rows per school, so that the
    school SD and sigma are told apart (in Konstantopoulos 2011 each school has one study,
    and only ``tau_school^2 + sigma^2`` is identified: the full engine diverges on ~5% of
    its transitions there, too many to compare against)."""
    rng = np.random.default_rng(seed)
    district = np.repeat(np.arange(n_districts), n_schools * n_per)
    school = np.tile(np.repeat(np.arange(n_schools), n_per), n_districts)
    u = rng.normal(0, 0.5, n_districts)
    v = rng.normal(0, 0.35, n_districts * n_schools)
    x = rng.normal(size=district.size)
    se = rng.uniform(0.2, 0.8, district.size)
    eta = 0.3 + 0.2 * x + u[district] + v[district * n_schools + school]
    y = eta + rng.normal(size=district.size) * np.sqrt(se**2 + 0.4**2)
    return pd.DataFrame({"yi": y, "x": x, "sei": se, "district": district, "school": school})


@pytest.mark.slow
def test_marginal_and_full_engines_agree_on_nested_data(seed, sampled_well, agreement):
    """``yi | se(sei, sigma=True) ~ x + (1 | district/school)`` on :func:`simulate` (192
    rows, 12 districts, 48 schools): the population parameters (``sigma`` among them) within
    4 Monte Carlo standard errors of the difference, every district's and school's effect
    within 5 (the max over 60 of them)."""
    df = simulate(seed(190))
    formula = "yi | se(sei, sigma=True) ~ x + (1 | district/school)"
    model = hm.HierarchicalModel(df, formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # rates asserted instead
        clock = time.perf_counter()
        marginal = model.fit(500, chains=4, random_seed=seed(191), engine="auto")
        seconds = {"marginal": time.perf_counter() - clock}
        clock = time.perf_counter()
        full = model.fit(1000, chains=4, random_seed=seed(192), engine="full")
        seconds["full"] = time.perf_counter() - clock
    print(f"wall seconds: {seconds}")  # shown with -s; the report quotes it
    assert marginal.idata["posterior"].attrs["engine"] == "marginal"
    sampled_well(marginal, rhat=1.03, ess_per_chain=25)
    sampled_well(full, divergence_rate=0.01, rhat=1.05, ess_per_chain=15)
    data = model.prepared()[0]
    mine, theirs = marginal.idata["posterior"], full.idata["posterior"]
    population = ["Intercept", "x", "sigma"]
    population += [f"Intercept|{f.name}_sigma" for f in data.factors]
    effects = [f"Intercept|{f.name}" for f in data.factors]
    for k, names in ((4, population), (5, effects)):
        for name in names:
            assert mine[name].dims == theirs[name].dims, name
            diff, bound = agreement(np.asarray(mine[name]), np.asarray(theirs[name]), k)
            assert np.all(diff < bound), (name, diff.max(), np.argmax(diff / bound))
