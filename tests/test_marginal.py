"""engine="marginal" (issue 17): the exact marginal likelihood, the sufficient statistics,
the exact conditional draws of the group effects, agreement with the full engine, and the
reuse of compiled models."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.builders.hierarchical import build
from hiermodels.builders.marginal import (
    LOGLIK_NAME,
    build_marginal,
    marginal_inputs,
    marginal_loglik,
    stats_entries,
    sufficient_statistics,
)
from hiermodels.engines import compiled
from hiermodels.engines.marginal import (
    cholesky_draws,
    draw_group_effects,
    fit_marginal,
    marginal_supported,
)
from hiermodels.errors import ConvergenceWarning, SpecError
from hiermodels.results.hierarchical import HierarchicalResult
from hiermodels.sampling import SamplingOptions

FAST = "FAST_COMPILE"


def _prepare(df, formula, **kw):
    return hm.HierarchicalModel(df, formula, **kw).prepared()


def _tiny(seed=0, n_per=(3, 3), offset=False):
    """Rows in groups of the given sizes; x far from 0 and y far from 0, as real data are."""
    rng = np.random.default_rng(seed)
    n = sum(n_per)
    df = pd.DataFrame(
        {
            "y": 50 + rng.normal(size=n),
            "x": 10 + 3 * rng.normal(size=n),
            "z": rng.normal(size=n),
            "g": np.repeat([f"g{j}" for j in range(len(n_per))], n_per),
        }
    )
    if offset:
        df["off"] = rng.normal(size=n)
    return df


def _dense_loglik(data, beta, sigma, cov):
    """log N(y | X beta + offset, sigma^2 I + Z Sigma Z') with Z block-diagonal by group."""
    f = data.factor
    Z = data.X[:, [data.terms.index(t) for t in f.varying]]
    same = f.idx[:, None] == f.idx[None, :]
    V = sigma**2 * np.eye(len(data.y)) + (Z @ cov @ Z.T) * same
    mean = data.X @ beta + (0.0 if data.offset is None else data.offset)
    return stats.multivariate_normal(mean, V).logpdf(data.y)


def _random_parameters(rng, data):
    f = data.factor
    q = len(f.varying)
    beta = rng.normal(size=len(data.terms))
    sds = np.exp(rng.normal(size=q))
    if f.correlated and q > 1:
        A = rng.normal(size=(q, q))
        C = A @ A.T + np.eye(q)
        corr = C / np.sqrt(np.outer(np.diag(C), np.diag(C)))
    else:
        corr = np.eye(q)
    return beta, float(np.exp(rng.normal())), sds[:, None] * corr * sds[None, :]


def _numpy_loglik(data, beta, sigma, cov):
    ss = sufficient_statistics(data)
    centred = beta.copy()
    centred[0] = beta[0] + beta[1:] @ ss.means[1:]  # the intercept at the predictors' means
    L = np.linalg.cholesky(cov)
    q = len(L)
    chol = [[L[i, j] if j <= i else None for j in range(q)] for i in range(q)]
    return marginal_loglik(
        np, stats=stats_entries(ss), delta=list(centred - ss.shift), sigma=sigma, chol=chol
    )


def _group_effect_variable(name, group):
    """What the full model samples for its group effects, non-centered or centered."""
    return name.endswith(("_offset", "_coef")) or name == f"{group}_effects"


# -- unit: numbers, no sampling ---------------------------------------------------------------
def test_sufficient_statistics_equal_brute_force():
    df = _tiny(1, n_per=(2, 5, 1, 4), offset=True)
    data, _, _ = _prepare(df, "y ~ x + z + offset(off) + (1 + x | g)")
    ss = sufficient_statistics(data)
    Xc = data.X - data.X.mean(axis=0) * (np.array(data.terms) != "Intercept")
    y0 = data.y - data.offset - Xc @ ss.shift
    Z = data.X[:, [0, data.terms.index("x")]]
    for j in range(data.n_groups):
        rows = data.group_idx == j
        np.testing.assert_allclose(ss.ZtZ[j], Z[rows].T @ Z[rows], rtol=1e-12)
        np.testing.assert_allclose(ss.ZtX[j], Z[rows].T @ Xc[rows], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ss.Zty[j], Z[rows].T @ y0[rows], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ss.XtX, Xc.T @ Xc, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ss.yty, y0 @ y0, rtol=1e-12)
    # the shift is the least squares fit, so its residuals are orthogonal to the design
    np.testing.assert_allclose(ss.Xty, 0.0, atol=1e-9)
    np.testing.assert_allclose(ss.means[1:], data.X[:, 1:].mean(axis=0))


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + (1 + x | g)",  # q = 2, closed form
        "y ~ x + (1 + x || g)",  # independent terms
        "y ~ x + (1 | g)",  # q = 1
        "y ~ x + z + (1 + x + z | g)",  # q = 3: the unrolled Cholesky factor
        "y ~ x + (0 + x | g)",  # a varying slope without a varying intercept
        "y ~ x + offset(off) + (1 + x | g)",
    ],
)
def test_marginal_likelihood_equals_dense_normal(formula):
    """The likelihood with the group effects integrated out is N(y | X beta, sigma^2 I +
    Z Sigma Z'), at random parameter values and at a group SD near zero."""
    data, _, _ = _prepare(_tiny(2, offset=True), formula)
    rng = np.random.default_rng(3)
    for _ in range(4):
        beta, sigma, cov = _random_parameters(rng, data)
        expected = _dense_loglik(data, beta, sigma, cov)
        np.testing.assert_allclose(_numpy_loglik(data, beta, sigma, cov), expected, rtol=1e-9)
    cov = np.diag(np.r_[1e-6, np.ones(len(cov) - 1)])
    expected = _dense_loglik(data, beta, sigma, cov)
    np.testing.assert_allclose(_numpy_loglik(data, beta, sigma, cov), expected, rtol=1e-8)


@pytest.mark.parametrize(
    "formula", ["y | se(s) ~ x + (1 + x | g)", "y | se(s) ~ x + offset(off) + (1 | g)"]
)
def test_known_se_likelihood_equals_dense_normal(formula):
    """Known standard errors and no residual SD: N(y | X beta, diag(se^2) + Z Sigma Z'), as
    the full model's likelihood ``Normal(eta_i, se_i)`` integrates (sums weighted by 1/se^2)."""
    df = _tiny(12, n_per=(3, 4, 2), offset=True)
    df["s"] = np.random.default_rng(13).uniform(0.3, 2.0, len(df))
    data, _, _ = _prepare(df, formula)
    ss = sufficient_statistics(data)
    np.testing.assert_allclose(ss.sum_log_var, np.sum(np.log(df["s"] ** 2)))
    rng = np.random.default_rng(14)
    for _ in range(3):
        beta, _, cov = _random_parameters(rng, data)
        same = data.group_idx[:, None] == data.group_idx[None, :]
        V = np.diag(data.se**2) + (data.Z @ cov @ data.Z.T) * same
        mean = data.X @ beta + (0.0 if data.offset is None else data.offset)
        expected = stats.multivariate_normal(mean, V).logpdf(data.y)
        np.testing.assert_allclose(_numpy_loglik(data, beta, 1.0, cov), expected, rtol=1e-9)


def test_marginal_likelihood_equals_numerical_integration():
    """Against the full model's likelihood with each group's two effects integrated out by
    quadrature (2 groups, 3 rows each): the definition, not another closed form."""
    from scipy import integrate

    data, _, _ = _prepare(_tiny(4), "y ~ x + (1 + x | g)")
    beta, sigma, cov = np.array([50.0, 0.05]), 0.9, np.array([[0.8, 0.1], [0.1, 0.05]])
    total = 0.0
    for j in range(2):
        rows = data.group_idx == j
        X, y = data.X[rows], data.y[rows]
        prior = stats.multivariate_normal(np.zeros(2), cov)

        def density(b1, b0, X=X, y=y, prior=prior):
            mean = X @ (beta + np.array([b0, b1]))
            return np.exp(stats.norm.logpdf(y, mean, sigma).sum() + prior.logpdf([b0, b1]))

        value, _ = integrate.dblquad(density, -6, 6, -1.5, 1.5, epsabs=1e-13, epsrel=1e-10)
        total += np.log(value)
    np.testing.assert_allclose(_numpy_loglik(data, beta, sigma, cov), total, rtol=1e-7)


def test_conditional_draws_have_the_exact_mean_and_covariance():
    """b_j | y, theta ~ N(A_j^-1 Z_j'r_j / sigma^2, A_j^-1), A_j = Z_j'Z_j/sigma^2 + Sigma^-1."""
    df = _tiny(5, n_per=(3, 3, 6))
    data, _, _ = _prepare(df, "y ~ x + (1 + x | g)")
    ss = sufficient_statistics(data)
    beta, sigma, cov = np.array([49.0, 0.1]), 0.7, np.array([[0.5, -0.05], [-0.05, 0.02]])
    centred = np.array([beta[0] + beta[1] * ss.means[1], beta[1]])
    L = np.linalg.cholesky(cov)
    S = 40_000
    args = (ss, np.tile(centred - ss.shift, (S, 1)), np.full(S, sigma), np.tile(L, (S, 1, 1)))
    means = draw_group_effects(*args[:1], *(a[:1] for a in args[1:]), None)[0]
    draws = draw_group_effects(*args, np.random.default_rng(6))
    for j in range(data.n_groups):
        rows = data.group_idx == j
        Z, r = data.X[rows], data.y[rows] - data.X[rows] @ beta
        A_inv = np.linalg.inv(Z.T @ Z / sigma**2 + np.linalg.inv(cov))
        mean = A_inv @ Z.T @ r / sigma**2
        np.testing.assert_allclose(means[j], mean, rtol=1e-9, atol=1e-12)
        # Monte Carlo: 5 standard errors of the sample mean and of each covariance entry
        sd = np.sqrt(np.diag(A_inv))
        assert np.all(np.abs(draws[:, j].mean(axis=0) - mean) < 5 * sd / np.sqrt(S))
        se_cov = np.sqrt((np.outer(sd, sd) ** 2 + A_inv**2) / S)
        assert np.all(np.abs(np.cov(draws[:, j].T) - A_inv) < 5 * se_cov)


def test_supported_models():
    df = _tiny(7, offset=True)
    df["k"] = np.arange(len(df)) % 3
    df["n"] = 5
    df["h"] = np.arange(len(df)) % 2
    cases = {
        "y ~ x + offset(off) + (1 + x | g)": True,
        "y ~ x + (1 | g) + (1 | h)": False,  # crossed
        "y ~ x + (1 | g/h)": True,  # nested: tests/test_marginal_nested.py
        "y ~ x + (1 | g/h) + (1 | k)": False,  # three factors
        "y ~ x": False,  # nothing to integrate out
    }
    for formula, expected in cases.items():
        data, spec, _ = _prepare(df, formula)
        ok, reason = marginal_supported(data, spec)
        assert ok is expected, (formula, reason)
    data, spec, priors = _prepare(df, "k ~ x + (1 | g)", family="poisson")
    ok, reason = marginal_supported(data, spec)
    assert not ok and "poisson" in reason
    with pytest.raises(SpecError, match="engine='full'"):
        fit_marginal(data, spec, priors, SamplingOptions(draws=10))


# -- graph: names, priors and the likelihood in the PyMC model --------------------------------
@pytest.mark.parametrize(
    ("formula", "kw"),
    [
        ("y ~ x + (1 + x | g)", {}),
        ("y ~ x + (1 + x || g)", {}),
        ("y ~ x + (1 + x | g)", {"hyperprior": "inverse_gamma"}),  # LKJCorr path
        ("y ~ 1 + (1 | g)", {}),
        ("y ~ x + (1 + x | g)", {"priors": {"x": hm.priors.StudentT(3, 1.0, 2.0)}}),
    ],
)
def test_graph_has_the_full_models_priors_and_the_marginal_likelihood(formula, kw):
    data, spec, priors = _prepare(_tiny(8, n_per=(4, 3, 5)), formula, **kw)
    model = build_marginal(data, spec, priors, covariance="cholesky")
    full = build(data, spec, priors).model
    assert [v.name for v in model.free_RVs] == [
        v.name for v in full.free_RVs if not _group_effect_variable(v.name, data.group)
    ]
    assert {v.name for v in model.deterministics} == {
        v.name
        for v in full.deterministics
        if "|" not in v.name or v.name.endswith("_sigma")  # not the deviations
    }
    # every prior, transform and Jacobian as in the full model, at a random point
    point = model.initial_point(random_seed=9)
    full_point = full.initial_point(random_seed=9) | point
    for v in model.free_RVs:
        mine = model.compile_logp(vars=[v], mode=FAST)(point)
        theirs = full.compile_logp(vars=[full[v.name]], mode=FAST)(full_point)
        # 1e-8: PyTensor folds gammaln of the full model's constant parameters to ~4e-9
        # (StudentT(3, 1, 2) at its mode: -1.6940360266 folded, -1.6940360302 exact)
        np.testing.assert_allclose(mine, theirs, rtol=1e-8)
    # the potential is the dense marginal likelihood at the parameters of that point
    names = [*data.terms, "sigma", *(f"{t}|g_sigma" for t in data.varying)]
    correlated = data.factor.correlated and len(data.varying) > 1
    outputs = [model[n] for n in names] + ([model["g_corr"]] if correlated else [])
    outputs = model.replace_rvs_by_values([*outputs, model[LOGLIK_NAME]])
    values = model.compile_fn(
        outputs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST
    )(point)
    p, q = len(data.terms), len(data.varying)
    beta, sigma, sds = np.array(values[:p]), values[p], np.array(values[p + 1 : p + 1 + q])
    corr = values[p + 1 + q] if correlated else np.eye(q)
    cov = sds[:, None] * corr * sds[None, :]
    np.testing.assert_allclose(values[-1], _dense_loglik(data, beta, sigma, cov), rtol=1e-9)
    assert np.isfinite(model.compile_logp(mode=FAST)(point))
    assert np.all(np.isfinite(model.compile_dlogp(mode=FAST)(point)))


def test_separate_covariance_samples_sds_and_correlations_on_their_own():
    """The default: each SD a free variable and pm.LKJCorr for the correlations (the full
    model's form for SD priors of different families); the same likelihood."""
    data, spec, priors = _prepare(_tiny(8, n_per=(4, 3, 5)), "y ~ x + (1 + x | g)")
    model = build_marginal(data, spec, priors)
    assert [v.name for v in model.free_RVs] == [
        "x",
        "Intercept_at_means",
        "Intercept|g_sigma",
        "x|g_sigma",
        "g_corr_chol",
        "sigma",
    ]
    point = model.initial_point(random_seed=10)
    names = ["Intercept", "x", "sigma", "Intercept|g_sigma", "x|g_sigma", "g_corr"]
    outputs = model.replace_rvs_by_values([*(model[n] for n in names), model[LOGLIK_NAME]])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)
    b0, b1, sigma, s0, s1, corr, loglik = fn(point)
    sds = np.array([s0, s1])
    cov = sds[:, None] * corr * sds[None, :]
    expected = _dense_loglik(data, np.array([b0, b1]), sigma, cov)
    np.testing.assert_allclose(loglik, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="covariance"):
        marginal_inputs(data, spec, priors, covariance="dense")


def test_new_data_of_the_same_structure_has_the_same_key():
    """The key holds no data-derived number: the sums and the data-scaled priors are data."""
    a = marginal_inputs(*_prepare(_tiny(10, n_per=(3, 4)), "y ~ x + (1 + x | g)"))
    b = marginal_inputs(*_prepare(_tiny(11, n_per=(5, 2)) * 1, "y ~ x + (1 + x | g)"))
    c = marginal_inputs(*_prepare(_tiny(11, n_per=(2, 2, 3)), "y ~ x + (1 + x | g)"))
    assert a.key == b.key
    assert not np.array_equal(a.values["marginal::scalars"], b.values["marginal::scalars"])
    assert a.key != c.key  # another number of groups: other shapes


def test_fixed_scales_keep_the_graph_of_other_data():
    """Priors fixed as numbers (as hm.calibrate keeps the user's data's): the standardizing
    of other data changes the graph, unless it is given as ``scales=``; the sums are still
    the new data's."""
    from hiermodels.defaults import data_scales
    from hiermodels.families import get_family

    priors = {"Intercept": hm.priors.Normal(0, 100), "x": hm.priors.Normal(0, 10)}
    data, spec, fixed = _prepare(_tiny(10, n_per=(3, 4)), "y ~ x + (1 | g)", priors=priors)
    other = _tiny(11, n_per=(5, 2)).assign(y=lambda d: 3 * d["y"] - 40)
    new, _, _ = _prepare(other, "y ~ x + (1 | g)", priors=priors)
    scales = data_scales(data, get_family("gaussian"))
    a = marginal_inputs(data, spec, fixed)
    assert marginal_inputs(new, spec, fixed).key != a.key
    b = marginal_inputs(new, spec, fixed, scales=scales)
    assert b.key == a.key and b.standardize == a.standardize
    np.testing.assert_allclose(b.stats.yty, sufficient_statistics(new).yty)
    with pytest.raises(SpecError, match="inputs= or scales="):
        fit_marginal(new, spec, fixed, inputs=b, scales=scales)


# -- real MCMC ---------------------------------------------------------------------------------
def _population(idata, data):
    post = idata["posterior"]
    names = [*data.terms, "sigma", *(f"{t}|{data.group}_sigma" for t in data.varying)]
    out = {n: np.asarray(post[n]) for n in names}
    out["corr"] = np.asarray(post[f"{data.group}_corr"])[..., 1, 0]
    return out


def _fit_both(df, formula, seed, draws=500, full_draws=500):
    data, spec, priors = _prepare(df, formula)
    options = SamplingOptions(draws=draws, tune=1000, chains=4, random_seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # asserted below instead
        idata, _ = fit_marginal(data, spec, priors, options)
        full = hm.HierarchicalModel(df, formula).fit(
            full_draws, tune=1000, chains=4, random_seed=seed + 1, engine="full"
        )
    marginal = HierarchicalResult(idata, build(data, spec, priors).model, data, spec, priors)
    return data, marginal, full


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "formula", "full_draws"),
    [
        ("sleepstudy", "reaction ~ days + (1 + days | subject)", 500),
        # the full engine's floor SD mixes slowly (R-hat 1.15 seen with 4 x 500 draws)
        ("radon", "log_radon ~ floor + (1 + floor | county)", 2000),
    ],
)
def test_marginal_and_full_engines_agree(
    dataset, formula, full_draws, seed, sampled_well, agreement
):
    df = hm.datasets.load(dataset)
    data, marginal, full = _fit_both(df, formula, seed(170), full_draws=full_draws)
    # radon's floor SD has its posterior mode at zero: a long tail on the log scale NUTS
    # samples, in either engine (the full engine's ESS of it varies 4x between seeds,
    # benchmarks/bench_radon_ess.py; the marginal engine's 85-440 per 1000 draws over seeds
    # 0-4); the comparison below allows for the Monte Carlo error of each
    sampled_well(marginal, rhat=1.03, ess_per_chain=25)
    sampled_well(full, rhat=1.05, ess_per_chain=15)
    # the same posterior variables, dims and coords, less the full model's offsets
    mine, theirs = marginal.idata["posterior"], full.idata["posterior"]
    assert set(mine.data_vars) - {f"{data.group}_corr_chol"} == {
        v for v in theirs.data_vars if not _group_effect_variable(v, data.group)
    } - {f"{data.group}_chol_cov"}
    for v in set(mine.data_vars) & set(theirs.data_vars):
        assert mine[v].dims == theirs[v].dims, v
    for c in (set(mine.coords) & set(theirs.coords)) - {"chain", "draw"}:
        np.testing.assert_array_equal(mine[c].values, theirs[c].values)
    # population parameters within 4 Monte Carlo standard errors of the difference
    a, b = _population(marginal.idata, data), _population(full.idata, data)
    for name in a:
        diff, bound = agreement(a[name], b[name], 4)
        assert np.all(diff < bound), (name, diff, bound)
    # every group's deviations within 5 (the max over up to 170 of them)
    for t in data.varying:
        name = f"{t}|{data.group}"
        diff, bound = agreement(np.asarray(mine[name]), np.asarray(theirs[name]), 5)
        assert np.all(diff < bound), (name, diff.max(), np.argmax(diff / bound))
    # the draws of the Cholesky factor are those of the SDs and correlations
    L = cholesky_draws(mine, data.factor)
    sds = np.stack([np.asarray(mine[f"{t}|{data.group}_sigma"]) for t in data.varying], -1)
    cov = sds[..., :, None] * np.asarray(mine[f"{data.group}_corr"]) * sds[..., None, :]
    np.testing.assert_allclose(L @ np.swapaxes(L, -1, -2), cov, rtol=1e-8, atol=1e-12)
    # what results read works on the marginal posterior
    assert marginal.log_likelihood().shape == (4, 500, len(data.y))
    effects = marginal.group_effects()
    assert len(effects) == data.n_groups * len(data.varying)
    assert effects["mean"].notna().all()


@pytest.mark.slow
def test_refit_with_new_data_reuses_the_compiled_model(seed):
    """New data of the same structure: no compilation, and the same draws as a fresh fit."""
    first = _tiny(seed(171), n_per=(8,) * 12)
    second = _tiny(seed(172), n_per=(15,) * 12)
    options = SamplingOptions(draws=200, tune=300, chains=2, random_seed=seed(173))
    formula = "y ~ x + (1 + x | g)"
    compiled.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_marginal(*_prepare(first, formula), options)
        count = compiled.compile_count()
        reused, _ = fit_marginal(*_prepare(second, formula), options)
        assert compiled.compile_count() == count
        compiled.clear_cache()
        fresh, _ = fit_marginal(*_prepare(second, formula), options)
        assert compiled.compile_count() == count + 1
    for name, values in fresh["posterior"].data_vars.items():
        np.testing.assert_allclose(reused["posterior"][name], values, rtol=1e-12, err_msg=name)
