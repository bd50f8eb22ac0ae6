import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.priors import PRESETS, resolve_hyperprior


@pytest.fixture
def df():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(6), 5)
    x = rng.normal(0, 2.0, size=30)
    return pd.DataFrame({"y": rng.normal(10, 4, size=30) + x, "x": x, "g": g.astype(str)})


# preset -> (PyMC distribution of the SD's random variable, its scale parameter as documented)
EXPECTED = {
    "half_cauchy": ("halfcauchy", lambda s: {"beta": s}),
    "half_normal": ("halfnormal", lambda s: {"sigma": s}),
    "half_t": ("halfstudentt", lambda s: {"sigma": s, "nu": 3.0}),
    # PyMC stores the exponential by its scale 1/lam
    "exponential": ("exponential", lambda s: {"scale": s}),
    "inverse_gamma": ("invgamma", lambda s: {"alpha": 0.001, "beta": 0.001 * s**2}),
    "uniform": ("uniform", lambda s: {"lower": 0.0, "upper": 100 * s}),
    # fixed-scale presets for log odds ratios (the data scale is ignored)
    "half_normal_logor": ("halfnormal", lambda s: {"sigma": 0.5}),
    "turner_general": ("lognormal", lambda s: {"mu": -1.28, "sigma": 0.87}),
    "turner_mortality": ("lognormal", lambda s: {"mu": -1.975, "sigma": 0.67}),
    "turner_subjective": ("lognormal", lambda s: {"mu": -1.35, "sigma": 0.76}),
}


def test_every_preset_is_listed_with_source():
    assert set(PRESETS) == set(EXPECTED)
    for preset in PRESETS.values():
        assert preset.description and preset.source


def _rv_params(rv):
    """Family and parameter values of a random variable's distribution."""
    op = rv.owner.op
    values = [np.asarray(p.eval(), dtype=float) for p in op.dist_params(rv.owner)]
    return type(op).__name__.lower().replace("rv", ""), values


def _assert_params(kind, values, preset, scales):
    family, params = EXPECTED[preset]
    assert family in kind
    for k, scale in enumerate(scales):
        for expected in params(scale).values():
            found = [np.atleast_1d(v)[k if np.size(v) > 1 else 0] for v in values]
            assert any(np.isclose(v, expected, rtol=1e-6) for v in found), (found, expected)


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_builds_documented_distribution(df, preset):
    s_y = df["y"].std()
    scales = [s_y, s_y / df["x"].std(ddof=0)]
    model = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], varying=["x"], hyperprior=preset, correlated=False
    ).build()
    for term, scale in zip(["Intercept", "x"], scales, strict=True):
        name = f"{term}|g_sigma" + ("_variance" if preset == "inverse_gamma" else "")
        _assert_params(*_rv_params(model[name]), preset, [scale])


@pytest.mark.parametrize(
    "preset", ["half_cauchy", "half_normal", "half_t", "exponential", "turner_general"]
)
def test_correlated_preset_is_the_sd_dist_of_lkj_cholesky_cov(df, preset):
    s_y = df["y"].std()
    model = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], varying=["x"], hyperprior=preset
    ).build()
    (sd_dist,) = [i for i in model["g_chol_cov"].owner.inputs[3:] if i.owner is not None]
    _assert_params(*_rv_params(sd_dist), preset, [s_y, s_y / df["x"].std(ddof=0)])


def test_explicit_prior_object_overrides_scale(df):
    model = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], hyperprior=hm.priors.HalfCauchy(5)
    )
    table = model.default_priors()
    assert str(table.loc["Intercept|g_sigma", "prior"]) == "HalfCauchy(beta=5)"
    _, values = _rv_params(model.build()["Intercept|g_sigma"])
    assert 5.0 in values


def test_default_priors_resolved_to_numbers(df):
    table = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], varying=["x"]
    ).default_priors()
    assert list(table.index) == [
        "Intercept",
        "x",
        "sigma",
        "Intercept|g_sigma",
        "x|g_sigma",
        "g_corr",
    ]
    assert str(table.loc["g_corr", "prior"]) == "LKJ(eta=2)"
    s_y, s_x = df["y"].std(), df["x"].std(ddof=0)
    prior = table.loc["x", "prior"]
    assert isinstance(prior, hm.priors.Normal) and prior.mu == 0.0
    assert prior.sigma == pytest.approx(2.5 * s_y / s_x)
    # the intercept's prior is on the intercept at the predictors' means (brms, rstanarm)
    intercept = table.loc["Intercept", "prior"]
    assert (intercept.mu, intercept.sigma) == pytest.approx((df["y"].mean(), 2.5 * s_y))
    assert table.loc["sigma", "prior"].scale == pytest.approx(s_y)


def test_user_prior_by_name(df):
    model = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], priors={"x": hm.priors.Normal(1, 2)}
    )
    assert model.default_priors().loc["x", "rule"] == "given"
    with pytest.raises(hm.SpecError, match="unknown parameter"):
        hm.HierarchicalModel(df, y="y", group="g", priors={"z": hm.priors.Normal()}).build()


@pytest.mark.parametrize(
    ("prior", "reference"),
    [
        (hm.priors.HalfCauchy(2.0), stats.halfcauchy(scale=2.0)),
        (hm.priors.HalfNormal(2.0), stats.halfnorm(scale=2.0)),
        (hm.priors.Exponential(2.0), stats.expon(scale=2.0)),
        (hm.priors.Normal(1.0, 2.0), stats.norm(1.0, 2.0)),
        (hm.priors.Uniform(0.0, 4.0), stats.uniform(0.0, 4.0)),
        (hm.priors.LogNormal(-1.0, 0.5), stats.lognorm(s=0.5, scale=np.exp(-1.0))),
    ],
)
def test_numpy_logpdf_matches_scipy(prior, reference):
    x = np.array([0.3, 1.0, 3.5])
    np.testing.assert_allclose(prior.logpdf(x), reference.logpdf(x))


@pytest.mark.parametrize(
    "prior",
    [hm.priors.HalfStudentT(1.5, 3.0), hm.priors.InverseGamma(2.0, 3.0), hm.priors.HalfCauchy(2.0)],
)
def test_numpy_logpdf_matches_pymc_on_sd_scale(prior):
    x = np.array([0.3, 1.0, 3.5])
    with pm.Model() as model:
        tau = prior.create("tau")
    if "tau_variance" in model.named_vars:
        # p(tau) = p_var(tau^2) * 2 tau
        logp = pm.logp(model["tau_variance"], x**2).eval() + np.log(2 * x)
    else:
        logp = pm.logp(tau, x).eval()
    np.testing.assert_allclose(prior.logpdf(x), logp, rtol=1e-6)


def test_inverse_gamma_and_flat_warn(df):
    assert "toward zero" in resolve_hyperprior("inverse_gamma", scale=1.0).warning(8)
    flat = resolve_hyperprior("uniform", scale=1.0)
    assert "heavy-tailed" in flat.warning(3)
    assert flat.warning(4) is None
    assert resolve_hyperprior("half_cauchy", scale=1.0).warning(2) is None


def test_turner_prior_median_on_tau():
    # log(tau^2) ~ N(-2.56, 1.74) has median tau = exp(-1.28) = 0.278 (Turner et al. 2015)
    prior = hm.priors.PRESETS["turner_general"](1.0)
    grid = np.linspace(1e-6, 20, 400_001)
    cdf = np.cumsum(np.exp(prior.logpdf(grid))) * (grid[1] - grid[0])
    assert grid[np.searchsorted(cdf, 0.5)] == pytest.approx(0.278, abs=0.002)


def test_lkj_prior_is_listed_and_replaceable(df):
    kw = {"y": "y", "group": "g", "predictors": ["x"], "varying": ["x"]}
    model = hm.HierarchicalModel(df, priors={"g_corr": hm.priors.LKJ(4.0)}, **kw)
    table = model.default_priors()
    assert table.loc["g_corr", "rule"] == "given"
    chol = model.build()["g_chol_cov"]
    assert 4.0 in _rv_params(chol)[1]  # the eta the graph uses
    with pytest.raises(hm.SpecError, match="LKJ"):
        hm.HierarchicalModel(df, priors={"g_corr": hm.priors.Normal(0, 1)}, **kw).build()
    with pytest.raises(hm.SpecError, match="LKJ"):
        hm.HierarchicalModel(df, priors={"x": hm.priors.LKJ(2.0)}, **kw).build()


def test_default_priors_print_as_one_readable_column(df):
    table = hm.HierarchicalModel(df, y="y", group="g", predictors=["x"]).default_priors()
    assert list(table.columns) == ["prior", "role", "rule"]
    text = table.to_string()
    assert "Normal(mu=0, sigma=" in text and "object" not in text
