"""ArviZ works on ``result.idata`` directly (issue 13): the tree carries log_likelihood,
observed_data and constant_data after a fit, posterior_predictive / prior / prior_predictive
once asked for; ``hm.compare`` agrees with ``az.compare``."""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
    # small fits: a few observations with high Pareto k, which ArviZ rightly reports
    pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning"),
]


def grouped(seed, n_groups=10, per=12):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, n_groups)[g]
    return pd.DataFrame(
        {
            "g": [f"g{j}" for j in g],
            "x": x,
            "y": eta + rng.normal(0, 0.8, g.size),
            "k": rng.poisson(np.exp(eta)),
        }
    )


def test_groups_after_a_fit_with_the_mocked_sampler(mock_pymc_sample):
    df = grouped(0)
    res = hm.fit_hierarchical(df, "y ~ x + (1 | g)", draws=30, chains=2)
    tree = res.idata
    for group in ("posterior", "log_likelihood", "observed_data", "constant_data"):
        assert group in tree.children, group
    assert tree["log_likelihood"]["y"].shape == (2, 30, len(df))
    np.testing.assert_allclose(tree["log_likelihood"]["y"].values, res.log_likelihood())
    np.testing.assert_array_equal(tree["observed_data"]["y"].values, df["y"].values)
    constant = tree["constant_data"]
    assert list(constant["term"].values) == ["Intercept", "x"]
    np.testing.assert_array_equal(constant["X"].values[:, 1], df["x"].values)
    codes = constant["g_idx"].values
    levels = constant["g_idx"].attrs["levels"].split(", ")
    assert [levels[c] for c in codes] == list(df["g"])
    # asked for: posterior predictive, prior and prior predictive join the same tree
    reps = res.ppc(random_seed=1)
    assert reps.dims == ("chain", "draw", "obs")
    assert tree["posterior_predictive"]["y"].shape == (2, 30, len(df))
    res.prior_predictive(draws=50, random_seed=2)
    assert {"prior", "prior_predictive"} <= set(tree.children)
    assert "x" in tree["prior"] and "y" in tree["prior_predictive"]


def test_log_likelihood_over_the_budget_is_added_on_request(mock_pymc_sample, monkeypatch):
    from hiermodels.results import idata

    monkeypatch.setattr(idata, "LOG_LIKELIHOOD_BUDGET", 10)
    res = hm.fit_hierarchical(grouped(1), "y ~ x + (1 | g)", draws=10, chains=1)
    assert "log_likelihood" not in res.idata.children
    assert "add_log_likelihood" in res.idata.attrs["log_likelihood"]
    res.add_log_likelihood()
    assert "log_likelihood" in res.idata.children


@pytest.fixture(scope="module")
def fits(seed):
    df = grouped(seed(41))
    kw = {"draws": 300, "tune": 300, "chains": 2, "random_seed": seed(42)}
    return {
        "slope": hm.fit_hierarchical(df, "y ~ x + (1 + x | g)", **kw),
        "intercepts": hm.fit_hierarchical(df, "y ~ x + (1 | g)", **kw),
        "poisson": hm.fit_hierarchical(df, "k ~ x + (1 | g)", family="poisson", **kw),
    }


@pytest.mark.slow
def test_arviz_functions_on_hierarchical_and_glm_fits(fits):
    for name, res in fits.items():
        loo = az.loo(res.idata)
        assert np.isfinite(loo.elpd), name
        res.ppc(random_seed=3)
        az.plot_ppc_dist(res.idata)
        res.prior_predictive(draws=100, random_seed=4)
        az.plot_prior_posterior(res.idata, var_names=["x"])
        plt.close("all")


@pytest.mark.slow
def test_hm_compare_agrees_with_az_compare(fits):
    pair = {"slope": fits["slope"], "intercepts": fits["intercepts"]}
    ours = hm.compare(pair)
    # az.compare rounds its elpd column to the uncertainty; az.loo gives the full numbers
    theirs = az.compare({k: v.idata for k, v in pair.items()})
    for name, res in pair.items():
        assert ours.loc[name, "elpd_loo"] == pytest.approx(az.loo(res.idata).elpd, rel=1e-10)
    assert list(ours.index) == list(theirs.index)
    best, other = ours.index
    elpd = {name: az.loo(res.idata).elpd for name, res in pair.items()}
    assert ours.loc[other, "elpd_diff"] == pytest.approx(elpd[other] - elpd[best], rel=1e-8)
    assert "Best out-of-sample prediction" in ours.attrs["verdict"]
    assert ours.index.name == "model" and ours["rank"].tolist() == [0, 1]


def test_compare_meta_analyses_exact_has_loso():
    schools = hm.datasets.load("eight_schools")
    kw = {"estimate": "y", "se": "sigma", "study": "school"}
    table = hm.compare(
        {
            "half-Cauchy": hm.meta_analysis(schools, **kw),
            "half-normal": hm.meta_analysis(schools, hyperprior="half_normal", **kw),
        }
    )
    assert set(table.index) == {"half-Cauchy", "half-normal"}
    assert np.isfinite(table["elpd_loso"]).all()
    assert "For a new study" in table.attrs["verdict"]


def test_compare_refuses_what_it_cannot_compare(mock_pymc_sample):
    with pytest.raises(hm.SpecError, match="at least two"):
        hm.compare({"one": object()})
    a = hm.fit_hierarchical(grouped(2), "y ~ x + (1 | g)", draws=10, chains=1)
    b = hm.fit_hierarchical(grouped(3, per=6), "y ~ x + (1 | g)", draws=10, chains=1)
    with pytest.raises(hm.SpecError, match="different data"):
        hm.compare({"a": a, "b": b})


def test_arviz_on_exact_meta_analysis():
    schools = hm.datasets.load("eight_schools")
    meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school", random_seed=1)
    tree = meta.idata
    assert {"posterior", "log_likelihood", "observed_data", "constant_data"} <= set(tree.children)
    loo = az.loo(tree)
    assert np.isfinite(loo.elpd)
    # pointwise: log N(y_j | theta_j, se_j) per draw
    theta = tree["posterior"]["theta"].values
    expected = -0.5 * ((schools["y"].values - theta) / schools["sigma"].values) ** 2
    expected -= np.log(schools["sigma"].values * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(tree["log_likelihood"]["y"].values, expected)


@pytest.mark.slow
def test_arviz_on_mcmc_meta_analysis(seed):
    schools = hm.datasets.load("eight_schools")
    meta = hm.meta_analysis(
        schools, estimate="y", se="sigma", study="school", method="mcmc", draws=400,
        tune=400, chains=2, random_seed=seed(5), sample_kwargs={"target_accept": 0.95},
    )  # fmt: skip
    assert np.isfinite(az.loo(meta.idata).elpd)
    table = hm.compare({"mcmc": meta, "exact": hm.meta_analysis(
        schools, estimate="y", se="sigma", study="school")})  # fmt: skip
    # the same model: elpd agrees within a few standard errors of the difference
    assert abs(table["elpd_diff"].iloc[1]) < 3 * table["dse"].iloc[1] + 0.5
