"""hm.calibrate: simulation-based calibration of the exact meta-analysis engine (fast) and of
the MCMC engine (slow, a handful of simulations), and drawing from the priors."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.calibration import Calibration

SIMS = 200


@pytest.fixture(scope="module")
def schools_meta():
    schools = hm.datasets.load("eight_schools")
    return hm.meta_analysis(
        schools,
        estimate="y",
        se="sigma",
        study="school",
        mu_prior=hm.priors.Normal(0, 20),
        hyperprior="half_normal",
    )


def _halve_spread(draws):
    """A deliberately wrong engine: the right posterior centre, half its spread."""
    return {k: v.mean() + 0.5 * (v - v.mean()) for k, v in draws.items()}


def test_exact_engine_is_calibrated_on_eight_schools(schools_meta, seed):
    cal = hm.calibrate(schools_meta, SIMS, random_seed=seed(1))
    assert isinstance(cal, Calibration) and cal.engine == "exact"
    assert cal.n_sims == SIMS and cal.n_failed == 0 and cal.n_values == 1000
    assert list(cal.ranks.columns[:2]) == ["mu", "tau"]
    assert cal.ranks.shape[1] == 2 + 4  # and a sample of four study effects
    assert cal.ranks.to_numpy().min() >= 0 and cal.ranks.to_numpy().max() <= 999
    # the ECDF test's p-value is exact for uniform ranks, which independent draws from the
    # right posterior give: Bonferroni over the parameters keeps the family-wise rate 0.1%
    p = cal.uniformity()["ecdf_p"]
    assert p.min() > 0.001 / len(p), p
    cover = cal.coverage().query("level == 0.9")
    assert np.allclose(cover["expected"], 0.9)
    assert np.all(np.abs(cover["coverage"] - 0.9) < 4 * cover["binomial_sd"]), cover


def test_halved_posterior_spread_is_detected(schools_meta, seed):
    cal = hm.calibrate(schools_meta, SIMS, random_seed=seed(1), _posterior_transform=_halve_spread)
    table = cal.uniformity()
    assert table["ecdf_p"].max() < 1e-6, table
    assert table.loc[["mu", "tau"], "chi2_p"].max() < 1e-6
    assert (cal.coverage().query("level == 0.9")["coverage"] < 0.8).all()


def test_arguments_of_meta_analysis_give_the_same_calibration(schools_meta, seed):
    args = {
        "data": hm.datasets.load("eight_schools"),
        "estimate": "y",
        "se": "sigma",
        "study": "school",
        "mu_prior": hm.priors.Normal(0, 20),
        "hyperprior": "half_normal",
    }
    a = hm.calibrate(args, 20, random_seed=seed(2), params=["mu", "theta[B]"])
    b = hm.calibrate(schools_meta, 20, random_seed=seed(2), params=["mu", "theta[B]"])
    pd.testing.assert_frame_equal(a.ranks, b.ranks)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert list(a.ranks.columns) == ["mu", "theta[B]"]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"mu_prior": None}, "mu_prior=hm.priors.Normal"),
        ({"method": "mcmc", "draws": 10, "chains": 1}, "method='exact'"),
        ({"moderators": ["x"]}, "moderator"),
    ],
)
@pytest.mark.filterwarnings("ignore::hiermodels.ConvergenceWarning")  # mocked draws
def test_meta_analyses_calibrate_cannot_refit_are_refused(kw, words, mock_pymc_sample):
    schools = hm.datasets.load("eight_schools").assign(x=np.arange(8.0))
    args = {"mu_prior": hm.priors.Normal(0, 20)} | kw
    meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school", **args)
    with pytest.raises(hm.SpecError, match=words.replace("(", r"\(").replace(".", r"\.")):
        hm.calibrate(meta, 10)


def test_bad_arguments_are_refused(schools_meta):
    with pytest.raises(hm.SpecError, match="n_sims"):
        hm.calibrate(schools_meta, 1)
    with pytest.raises(hm.SpecError, match=r"params \['nope'\]"):
        hm.calibrate(schools_meta, 5, params=["nope"])
    with pytest.raises(hm.SpecError, match="calibrate takes"):
        hm.calibrate(pd.DataFrame({"y": [1.0]}), 5)
    improper = hm.meta_analysis(
        hm.datasets.load("eight_schools"),
        estimate="y",
        se="sigma",
        mu_prior=hm.priors.Normal(0, 20),
        hyperprior=hm.priors.Uniform(0),
    )
    with pytest.raises(hm.SpecError, match="improper"):
        hm.calibrate(improper, 5)


def test_plot_and_summary(schools_meta, seed):
    import matplotlib.pyplot as plt

    cal = hm.calibrate(schools_meta, 40, random_seed=seed(4), params=["mu", "tau"])
    fig = cal.plot()
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "mu"
    plt.close(fig)
    summary = cal.summary()
    assert list(summary.columns) == [
        "chi2_p",
        "ecdf_p",
        "coverage_50",
        "coverage_80",
        "coverage_90",
        "coverage_95",
    ]
    assert cal.to_dict()["n_sims"] == 40
    assert "40 simulations" in repr(cal)


# -- drawing from the priors (Prior.sample) --------------------------------------------------


@pytest.mark.parametrize(
    ("prior", "dist"),
    [
        (hm.priors.Normal(1, 2), stats.norm(1, 2)),
        (hm.priors.HalfNormal(2), stats.halfnorm(scale=2)),
        (hm.priors.HalfCauchy(3), stats.halfcauchy(scale=3)),
        (hm.priors.Exponential(2), stats.expon(scale=2)),
        (hm.priors.Gamma(2, 0.5), stats.gamma(2, scale=2)),
        (hm.priors.LogNormal(0.5, 0.7), stats.lognorm(0.7, scale=np.exp(0.5))),
        (hm.priors.Uniform(1, 4), stats.uniform(1, 3)),
        (hm.priors.StudentT(4, 1, 2), stats.t(4, 1, 2)),
    ],
    ids=lambda x: type(x).__name__,
)
def test_prior_draws_follow_the_prior(prior, dist, seed):
    draws = prior.sample(2000, np.random.default_rng(seed(5)))
    assert draws.shape == (2000,)
    assert stats.kstest(draws, dist.cdf).pvalue > 1e-4


@pytest.mark.parametrize(
    "prior", [hm.priors.HalfStudentT(2, 3), hm.priors.InverseGamma(3, 2)], ids=str
)
def test_prior_draws_match_the_log_density(prior, seed):
    draws = np.sort(prior.sample(2000, np.random.default_rng(seed(6))))
    grid = np.linspace(1e-6, np.quantile(draws, 0.999), 20001)
    cdf = np.cumsum(np.exp(prior.logpdf(grid))) * (grid[1] - grid[0])
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-4


# -- the MCMC engine (slow) ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_mcmc_calibration_plumbing(seed):
    rng = np.random.default_rng(seed(7))
    g = np.repeat(np.arange(5), 4)
    df = pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.normal(size=g.size), "g": g})
    model = hm.HierarchicalModel(df, "y ~ x + (1 | g)", parameterization="noncentered")
    cal = hm.calibrate(model, 8, draws=150, tune=300, chains=2, random_seed=seed(8))
    assert cal.engine == "mcmc" and cal.n_values == 200
    population = ["Intercept", "x", "sigma", "Intercept|g_sigma"]
    assert list(cal.ranks.columns[:4]) == population
    assert [c for c in cal.ranks.columns[4:]] == [f"Intercept|g[{j}]" for j in (0, 1, 3, 4)]
    assert cal.n_sims + cal.n_failed == 8 and cal.n_sims >= 6
    r = cal.ranks.to_numpy()
    assert r.min() >= 0 and r.max() <= 199
    # the truths are the prior draws: positive SDs, and not all the same
    assert (cal.truth["sigma"] > 0).all() and cal.truth["x"].std() > 0
    # the ranks place the truth among the posterior draws: a posterior shrunk to a point at
    # its mean puts every truth at rank 0 or 199
    shrunk = hm.calibrate(
        model,
        3,
        draws=100,
        tune=200,
        chains=2,
        random_seed=seed(8),
        params=["x"],
        _posterior_transform=lambda d: {k: np.full_like(v, v.mean()) for k, v in d.items()},
    )
    assert set(shrunk.ranks["x"]) <= {0, 199}


@pytest.mark.slow
def test_processes_give_the_same_ranks(schools_meta, seed):
    one = hm.calibrate(schools_meta, 30, random_seed=seed(9))
    two = hm.calibrate(schools_meta, 30, random_seed=seed(9), n_jobs=2)
    pd.testing.assert_frame_equal(one.ranks, two.ranks)


# -- one compiled model for every refit (slow) -------------------------------------------


def _small_design(seed):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(6), 4)
    return pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.normal(size=g.size), "g": g})


def _check_sane(cal, n_sims):
    """What chance cannot break in a handful of refits of a sound engine."""
    assert cal.n_sims == n_sims and cal.n_failed == 0
    r = cal.ranks.to_numpy()
    assert r.min() >= 0 and r.max() <= cal.n_values - 1
    # 90% intervals: the pooled coverage of n_sims x params Bernoulli(0.9) trials (correlated
    # within a refit) falls below one half only if the engine is broken (Talts et al. 2018)
    cover = cal.coverage().query("level == 0.9")["coverage"].mean()
    assert 0.5 < cover <= 1.0, cover
    assert len(cal.refit_seconds) == n_sims


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["full", "marginal"])
def test_mcmc_refits_compile_the_model_once(engine, seed):
    from hiermodels.engines import compiled

    model = hm.HierarchicalModel(
        _small_design(seed(21)), "y ~ x + (1 | g)", parameterization="noncentered"
    )
    compiled.clear_cache()
    before = compiled.compile_count()
    cal = hm.calibrate(model, 8, draws=150, tune=200, chains=2, random_seed=seed(22), engine=engine)
    assert compiled.compile_count() - before == 1  # the first refit; the others reuse it
    assert cal.engine == ("marginal" if engine == "marginal" else "mcmc")
    assert list(cal.ranks.columns[:4]) == ["Intercept", "x", "sigma", "Intercept|g_sigma"]
    _check_sane(cal, 8)


@pytest.mark.slow
def test_marginal_refits_of_nested_factors_compile_the_model_once(seed):
    # the marginal engine's nested sums (builders.marginal_nested), refitted through
    # fit_marginal(scales=) like one factor
    from hiermodels.engines import compiled

    rng = np.random.default_rng(seed(25))
    school = np.repeat(np.arange(4), 9)
    df = pd.DataFrame(
        {
            "y": rng.normal(size=school.size),
            "school": school,
            "cls": np.tile(np.repeat(np.arange(3), 3), 4),  # labels repeat across schools
        }
    )
    model = hm.HierarchicalModel(df, "y ~ 1 + (1 | school/cls)")
    compiled.clear_cache()
    before = compiled.compile_count()
    kw = {"draws": 150, "tune": 200, "chains": 2, "random_seed": seed(26)}
    cal = hm.calibrate(model, 6, engine="marginal", **kw)
    assert compiled.compile_count() - before == 1
    assert cal.engine == "marginal"
    population = ["Intercept", "sigma", "Intercept|school_sigma", "Intercept|school:cls_sigma"]
    assert list(cal.ranks.columns[:4]) == population
    _check_sane(cal, 6)


@pytest.mark.filterwarnings("ignore::hiermodels.ConvergenceWarning")  # mocked draws
def test_marginal_engine_where_it_does_not_apply_is_refused(mock_pymc_sample):
    df = _small_design(1).assign(k=lambda d: (d["y"] > 0).astype(int))
    model = hm.HierarchicalModel(df, "k ~ x + (1 | g)", family="bernoulli")
    with pytest.raises(hm.SpecError, match="engine='marginal'"):
        hm.calibrate(model, 4, engine="marginal")


@pytest.mark.slow
def test_mcmc_refits_in_processes_give_the_same_ranks(seed):
    # each process compiles the model once; the seeds, not the processes, decide the draws
    model = hm.HierarchicalModel(_small_design(seed(23)), "y ~ 1 + (1 | g)")
    kw = {"draws": 100, "tune": 150, "chains": 2, "random_seed": seed(24)}
    one = hm.calibrate(model, 6, **kw)
    assert one.engine == "marginal"  # "auto", the default, as fit()
    two = hm.calibrate(model, 6, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.ranks, two.ranks)


# -- refits on a dask cluster ----------------------------------------------------------------


def test_a_dask_cluster_gives_the_same_ranks(schools_meta, dask_client, seed):
    one = hm.calibrate(schools_meta, 30, random_seed=seed(9))
    on_cluster = hm.calibrate(schools_meta, 30, random_seed=seed(9), client=dask_client)
    pd.testing.assert_frame_equal(one.ranks, on_cluster.ranks)
    pd.testing.assert_frame_equal(one.truth, on_cluster.truth)
    assert len(on_cluster.refit_seconds) == 30


def test_a_client_that_is_not_one_is_refused(schools_meta):
    with pytest.raises(hm.SpecError, match=r"distributed\.Client"):
        hm.calibrate(schools_meta, 5, client="tcp://localhost:8786")


@pytest.mark.slow
def test_mcmc_refits_on_a_dask_cluster_compile_once_per_worker(dask_client, seed):
    from hiermodels.engines import compiled

    model = hm.HierarchicalModel(_small_design(seed(23)), "y ~ 1 + (1 | g)")
    kw = {"draws": 100, "tune": 150, "chains": 2, "random_seed": seed(24)}
    dask_client.run(compiled.clear_cache)
    before = dask_client.run(compiled.compile_count)
    one = hm.calibrate(model, 6, **kw)
    on_cluster = hm.calibrate(model, 6, client=dask_client, **kw)
    # the seeds, not the worker a refit ran on, decide the draws
    pd.testing.assert_frame_equal(one.ranks, on_cluster.ranks)
    after = dask_client.run(compiled.compile_count)
    compiles = [after[w] - before[w] for w in after]
    assert all(c <= 1 for c in compiles) and 1 <= sum(compiles) <= 2, compiles
