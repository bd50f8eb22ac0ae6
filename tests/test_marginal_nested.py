"""engine="marginal" for two nested grouping factors and for known standard errors (issue 17):
the two-level marginal likelihood against the dense multivariate normal, the joint exact
draws of both levels' effects, the graph, and agreement with the full engine."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.builders.hierarchical import build
from hiermodels.builders.marginal import LOGLIK_NAME, build_marginal, marginal_inputs
from hiermodels.builders.marginal_nested import (
    draw_nested_effects,
    nested_factors,
    nested_statistics,
)
from hiermodels.engines.marginal import marginal_supported
from hiermodels.errors import ConvergenceWarning
from hiermodels.models import engine_for

FAST = "FAST_COMPILE"
KONSTANTOPOULOS = Path(__file__).parent / "data" / "konstantopoulos2011.csv"


def _prepare(df, formula, **kw):
    return hm.HierarchicalModel(df, formula, **kw).prepared()


def _tiny(seed=0, n=14):
    """2 schools x 2 classes (labels repeat across schools), x and y far from 0, and se."""
    rng = np.random.default_rng(seed)
    school = np.r_[["a", "b"], rng.choice(["a", "b"], n - 2)]
    return pd.DataFrame(
        {
            "y": 50 + rng.normal(size=n),
            "x": 10 + 3 * rng.normal(size=n),
            "school": school,
            "cls": np.r_[["c1", "c2"] * 2, rng.choice(["c1", "c2"], n - 4)][:n],
            "se": rng.uniform(0.5, 2.0, n),
            "off": rng.normal(size=n),
        }
    )


def _chol(cov):
    L = np.linalg.cholesky(cov)
    return [[L[i, j] if j <= i else None for j in range(len(L))] for i in range(len(L))]


def _random_covariances(rng, data):
    out = []
    for f in data.factors:
        q = len(f.varying)
        A = rng.normal(size=(q, q))
        cov = A @ A.T + 0.3 * np.eye(q)
        out.append(cov if f.correlated else np.diag(np.diag(cov)))
    return out


def _dense_cov(data, sigma, covs):
    """sigma^2 I (or diag(se^2)) + sum_f Z_f G_f Z_f', G_f block-diagonal by group."""
    n = len(data.y)
    V = np.diag(np.full(n, sigma**2) if data.se is None else data.se**2)
    for f, cov in zip(data.factors, covs, strict=True):
        Z = data.X[:, [data.terms.index(t) for t in f.varying]]
        V = V + (Z @ cov @ Z.T) * (f.idx[:, None] == f.idx[None, :])
    return V


def _dense_loglik(data, beta, sigma, covs):
    mean = data.X @ beta + (0.0 if data.offset is None else data.offset)
    return stats.multivariate_normal(mean, _dense_cov(data, sigma, covs)).logpdf(data.y)


def _marginal_loglik(data, beta, sigma, covs):
    ss = nested_statistics(data)
    centred = beta.copy()
    centred[0] = beta[0] + beta[1:] @ ss.means[1:]  # the intercept at the predictors' means
    chols = [_chol(c) for c in covs]
    return ss.loglik(
        np, stats=ss.entries(), delta=list(centred - ss.shift), sigma=sigma, chols=chols
    )


NESTED = [
    "y ~ x + (1 | school/cls)",
    "y ~ x + (1 + x | school/cls)",  # q1 = q2 = 2, correlated
    "y ~ x + (1 + x | school) + (1 | school:cls)",
    "y ~ x + (1 | school) + (1 + x || school:cls)",  # independent inner terms
    "y ~ x + (1 | school:cls) + (1 + x | school)",  # the inner factor first
    "y ~ x + offset(off) + (0 + x | school) + (1 | school:cls)",
    "y | se(se) ~ x + (1 | school/cls)",  # known standard errors, no sigma
    "y | se(se) ~ x + (1 + x | school) + (1 | school:cls)",
]


# -- unit: numbers, no sampling ---------------------------------------------------------------
def test_nesting_is_read_from_the_data():
    df = _tiny(1)
    data, _, _ = _prepare(df, "y ~ x + (1 | school/cls)")
    outer, inner = nested_factors(data)
    assert (outer.name, inner.name) == ("school", "school:cls")
    # class labels unique across schools: nested without the formula saying so
    unique = df.assign(room=df["school"] + "-" + df["cls"])
    data, spec, _ = _prepare(unique, "y ~ x + (1 | room) + (1 | school)")
    outer, inner = nested_factors(data)
    assert (outer.name, inner.name) == ("school", "room")
    assert marginal_supported(data, spec)[0]
    # the same class label in both schools is one level: crossed with school
    data, spec, _ = _prepare(df, "y ~ x + (1 | school) + (1 | cls)")
    assert nested_factors(data) is None
    ok, reason = marginal_supported(data, spec)
    assert not ok and "crossed" in reason
    data, spec, _ = _prepare(
        df.assign(k=np.arange(len(df)) % 3), "y ~ x + (1 | school/cls) + (1|k)"
    )
    ok, reason = marginal_supported(data, spec)
    assert not ok and "3 grouping factors" in reason


def test_nested_statistics_equal_brute_force():
    data, _, _ = _prepare(_tiny(2), "y | se(se) ~ x + offset(off) + (1 + x | school/cls)")
    ss = nested_statistics(data)
    outer, inner = data.factors
    w = 1 / data.se**2
    Xc = data.X - data.X.mean(axis=0) * (np.array(data.terms) != "Intercept")
    y0 = data.y - data.offset - Xc @ ss.shift
    Z = data.X  # both factors vary Intercept and x
    for k in range(inner.n_groups):
        rows = inner.idx == k
        Zw = Z[rows] * w[rows, None]
        assert outer.idx[rows][0] == ss.parent[k] and len(set(outer.idx[rows])) == 1
        for name, value in [
            ("Z1Z1", Zw.T @ Z[rows]),
            ("Z1X", Zw.T @ Xc[rows]),
            ("Z2y", Zw.T @ y0[rows]),
        ]:
            np.testing.assert_allclose(getattr(ss, name)[k], value, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ss.XtX, Xc.T @ (Xc * w[:, None]), rtol=1e-12)
    np.testing.assert_allclose(ss.yty, y0 @ (w * y0), rtol=1e-12)
    np.testing.assert_allclose(ss.Xty, 0.0, atol=1e-9)  # the weighted least squares fit
    np.testing.assert_allclose(ss.sum_log_var, np.sum(np.log(data.se**2)))


@pytest.mark.parametrize("formula", NESTED)
def test_nested_marginal_likelihood_equals_dense_normal(formula):
    """log N(y | X beta + offset, sigma^2 I + Z1 G1 Z1' + Z2 G2 Z2') (sigma^2 I replaced by
    diag(se^2) with known standard errors), at random values and at group SDs near zero."""
    data, _, _ = _prepare(_tiny(3), formula)
    assert [f.n_groups for f in data.factors] in ([2, 4], [4, 2])
    rng = np.random.default_rng(4)
    sigma = 1.0 if data.se is not None else 0.7
    for _ in range(3):
        beta, covs = rng.normal(size=len(data.terms)), _random_covariances(rng, data)
        expected = _dense_loglik(data, beta, sigma, covs)
        np.testing.assert_allclose(_marginal_loglik(data, beta, sigma, covs), expected, rtol=1e-9)
    for which in range(2):
        tiny = [c * (1e-10 if k == which else 1.0) for k, c in enumerate(covs)]
        expected = _dense_loglik(data, beta, sigma, tiny)
        np.testing.assert_allclose(_marginal_loglik(data, beta, sigma, tiny), expected, rtol=1e-8)


def test_nested_draws_have_the_exact_joint_conditional():
    """(b1, b2) | y, theta ~ N(A^-1 Z'W r, A^-1), A = Z'WZ + blockdiag(G)^-1 with Z = [Z1 Z2]
    dense (BDA3 §14.7): means exactly, draws within 5 Monte Carlo standard errors."""
    data, _, _ = _prepare(_tiny(5, n=16), "y | se(se) ~ x + (1 + x | school) + (1 | school:cls)")
    ss = nested_statistics(data)
    outer, inner = data.factors
    beta = np.array([49.0, 0.1])
    covs = [np.array([[0.5, -0.05], [-0.05, 0.02]]), np.array([[0.3]])]
    Z1 = np.zeros((len(data.y), 2 * outer.n_groups))
    for k in range(2):
        Z1[np.arange(len(data.y)), outer.idx * 2 + k] = data.X[:, k]
    Z2 = np.eye(inner.n_groups)[inner.idx]
    Z = np.hstack([Z1, Z2])
    prior = np.kron(np.eye(outer.n_groups), covs[0])
    prior = np.block(
        [
            [prior, np.zeros((len(prior), inner.n_groups))],
            [np.zeros((inner.n_groups, len(prior))), covs[1][0, 0] * np.eye(inner.n_groups)],
        ]
    )
    W = np.diag(1 / data.se**2)
    A_inv = np.linalg.inv(Z.T @ W @ Z + np.linalg.inv(prior))
    mean = A_inv @ Z.T @ W @ (data.y - data.X @ beta)
    centred = np.array([beta[0] + beta[1] * ss.means[1], beta[1]])
    S = 40_000
    args = [np.tile(centred - ss.shift, (S, 1)), np.ones(S)]
    args += [np.tile(np.linalg.cholesky(c), (S, 1, 1)) for c in covs]
    m1, m2 = draw_nested_effects(ss, *(a[:1] for a in args), None)
    got = np.r_[m1[0].ravel(), m2[0].ravel()]
    np.testing.assert_allclose(got, mean, rtol=1e-9, atol=1e-12)
    b1, b2 = draw_nested_effects(ss, *args, np.random.default_rng(6), block=50_000)
    draws = np.hstack([b1.reshape(S, -1), b2.reshape(S, -1)])
    sd = np.sqrt(np.diag(A_inv))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * sd / np.sqrt(S))
    se_cov = np.sqrt((np.outer(sd, sd) ** 2 + A_inv**2) / S)
    assert np.all(np.abs(np.cov(draws.T) - A_inv) < 5 * se_cov)


def test_auto_engine_takes_marginal_for_nested_and_known_se():
    df = _tiny(7)
    formulas = [f"y{se} ~ x + (1 | school/cls)" for se in ("", " | se(se)")]
    # with a residual SD too: tests/test_marginal_nested_se_sigma.py
    for formula in [*formulas, "y | se(se, sigma = TRUE) ~ x + (1 | school/cls)"]:
        data, spec, _ = hm.HierarchicalModel(df, formula).prepared(resolve=False)
        assert engine_for(data, spec) == "marginal", formula


# -- graph ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 + x | school) + (1 | school:cls)",
        "y | se(se) ~ x + (1 | school:cls) + (1 + x || school)",
    ],
)
def test_nested_graph_has_the_full_models_priors_and_the_marginal_likelihood(formula):
    data, spec, priors = _prepare(_tiny(8, n=20), formula)
    stats = nested_statistics(data)
    inputs = marginal_inputs(data, spec, priors, covariance="cholesky", stats=stats)
    model = build_marginal(data, spec, priors, inputs)
    full = build(data, spec, priors).model
    effects = {v for v in full.named_vars if v.endswith(("_offset", "_coef", "_effects"))}
    expected = [v.name for v in full.free_RVs if v.name not in effects]
    assert [v.name for v in model.free_RVs] == expected
    assert ("sigma" in model.named_vars) is (data.se is None)
    point = model.initial_point(random_seed=9)
    names = [*data.terms, *(f"{t}|{f.name}_sigma" for f, t in data.effects)]
    corr = [f"{f.name}_corr" for f in data.factors if f.correlated and len(f.varying) > 1]
    names += corr + (["sigma"] if data.se is None else [])
    outputs = model.replace_rvs_by_values([*(model[n] for n in names), model[LOGLIK_NAME]])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)
    values = dict(zip(names, fn(point)[:-1], strict=True))
    loglik = fn(point)[-1]
    covs = []
    for f in data.factors:
        sds = np.array([values[f"{t}|{f.name}_sigma"] for t in f.varying])
        R = values.get(f"{f.name}_corr", np.eye(len(sds)))
        covs.append(sds[:, None] * R * sds[None, :])
    beta = np.array([values[t] for t in data.terms])
    expected = _dense_loglik(data, beta, values.get("sigma", 1.0), covs)
    np.testing.assert_allclose(loglik, expected, rtol=1e-9)
    assert np.all(np.isfinite(model.compile_dlogp(mode=FAST)(point)))


# -- real MCMC ---------------------------------------------------------------------------------
def _check_agree(agreement, marginal, full, data, k_population=4, k_effects=5):
    mine, theirs = marginal.idata["posterior"], full.idata["posterior"]
    names = [*data.terms, *(f"{t}|{f.name}_sigma" for f, t in data.effects)]
    names += ["sigma"] if data.se is None else []
    effects = [f"{t}|{f.name}" for f, t in data.effects]
    for k, group in ((k_population, names), (k_effects, effects)):
        for name in group:
            assert mine[name].dims == theirs[name].dims, name
            diff, bound = agreement(np.asarray(mine[name]), np.asarray(theirs[name]), k)
            assert np.all(diff < bound), (name, diff.max(), np.argmax(diff / bound))
    for f in data.factors:
        np.testing.assert_array_equal(mine[f.name].values, theirs[f.name].values)


def _fit_both(df, formula, seed, draws=500, full_draws=1000):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # rates asserted instead
        model = hm.HierarchicalModel(df, formula)
        marginal = model.fit(draws, chains=4, random_seed=seed, engine="auto")
        full = model.fit(full_draws, chains=4, random_seed=seed + 1, engine="full")
    assert marginal.idata["posterior"].attrs["engine"] == "marginal"
    return model.prepared()[0], marginal, full


def simulate_nested(seed, n_schools=15, n_classes=4, n_per=6):
    """Classes within schools, a slope varying by school: (1 + x || school) + (1 | class)."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), n_classes * n_per)
    cls = np.tile(np.repeat(np.arange(n_classes), n_per), n_schools)
    u0, u1 = rng.normal(0, 0.7, n_schools), rng.normal(0, 0.3, n_schools)
    v = rng.normal(0, 0.5, n_schools * n_classes)
    x = rng.normal(size=school.size)
    y = 2 + u0[school] + (0.5 + u1[school]) * x + v[school * n_classes + cls]
    y = y + rng.normal(0, 0.8, school.size)
    return pd.DataFrame({"y": y, "x": x, "school": school, "cls": cls})


@pytest.mark.slow
def test_marginal_and_full_engines_agree_on_nested_data(seed, sampled_well, agreement):
    df = simulate_nested(seed(180))
    formula = "y ~ x + (1 + x || school) + (1 | school:cls)"
    data, marginal, full = _fit_both(df, formula, seed(181))
    sampled_well(marginal, rhat=1.03, ess_per_chain=25)
    sampled_well(full, rhat=1.05, ess_per_chain=15)
    _check_agree(agreement, marginal, full, data)
    assert marginal.log_likelihood().shape == (4, 500, len(df))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["eight_schools", "konstantopoulos"])
def test_marginal_and_full_engines_agree_with_known_se(which, seed, sampled_well, agreement):
    """Known standard errors, no residual SD: eight schools (one factor, BDA3 §5.5) and the
    three-level meta-analysis of Konstantopoulos (2011), schools within districts."""
    if which == "eight_schools":
        df, formula = hm.datasets.load("eight_schools"), "y | se(sigma) ~ 1 + (1 | school)"
    else:
        df = pd.read_csv(KONSTANTOPOULOS).assign(sei=lambda d: np.sqrt(d["vi"]))
        formula = "yi | se(sei) ~ 1 + (1 | district/school)"
    data, marginal, full = _fit_both(df, formula, seed(182))
    assert "sigma" not in marginal.idata["posterior"]
    sampled_well(marginal, rhat=1.03, ess_per_chain=25)
    sampled_well(full, divergence_rate=0.01, rhat=1.05, ess_per_chain=15)
    _check_agree(agreement, marginal, full, data)
