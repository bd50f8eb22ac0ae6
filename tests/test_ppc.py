"""Posterior and prior predictive checks."""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


@pytest.fixture
def counts():
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {"y": rng.poisson(2.0, 40), "x": rng.normal(size=40), "g": np.repeat(list("abcd"), 10)}
    )


def test_ppc_draws_and_plot(mock_pymc_sample, counts, tmp_path):
    # the mocked sampler returns prior draws: tight priors keep the rates plausible
    res = hm.fit_hierarchical(
        counts,
        y="y",
        group="g",
        predictors=["x"],
        family="poisson",
        hyperprior=hm.priors.HalfNormal(0.2),
        priors={"Intercept": hm.priors.Normal(0.7, 0.1), "x": hm.priors.Normal(0, 0.1)},
        draws=30,
    )
    reps = res.ppc(random_seed=1)
    assert reps.dims == ("chain", "draw", "obs") and reps.shape[-1] == 40
    # replicated counts are Poisson around exp(eta): their mean matches the expected mean
    expected = np.exp(res.linear_predictor()).mean()
    assert float(reps.mean()) == pytest.approx(expected, rel=0.1)
    assert (reps.values >= 0).all() and np.array_equal(reps.values, np.round(reps.values))
    path = tmp_path / "ppc.png"
    res.plot_ppc(path, random_seed=1)
    assert path.stat().st_size > 10_000


def test_ppc_plot_continuous(mock_pymc_sample, radon, tmp_path):
    res = hm.fit_hierarchical(radon, y="log_radon", group="county", draws=20)
    path = tmp_path / "ppc.png"
    res.plot_ppc(path, n_draws=10)
    assert path.stat().st_size > 10_000


def test_prior_predictive_before_fitting(counts):
    model = hm.HierarchicalModel(counts, y="y", group="g", predictors=["x"], family="poisson")
    prior = model.prior_predictive(draws=200, random_seed=2)
    y = prior["prior_predictive"]["y"]
    assert y.shape == (1, 200, 40)
    assert {"Intercept", "x", "Intercept|g_sigma"} <= set(prior["prior"].data_vars)
    # the intercept prior is centred on log(mean count): the median prior draw is near it
    centre = np.log((counts["y"].sum() + 0.5) / 40)
    assert float(prior["prior"]["Intercept"].median()) == pytest.approx(centre, abs=0.5)
