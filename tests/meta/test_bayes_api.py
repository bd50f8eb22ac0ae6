"""bayesmeta's answers through the public API: bayes_factors, summary(interval="hdi") and
prior_sensitivity.

Published numbers: bayesmeta's eight-schools analysis (Röver 2020, J. Stat. Softw. 93(6); the
vignette "An introduction to meta-analysis using the bayesmeta package",
``schools.example.1``: Rubin1981 data, mu ~ Normal(0, 50), tau ~ half-Cauchy(25)) prints the
shortest 95% intervals tau [0, 15.165894] and mu [-1.823353, 17.824562] and the marginal
modes tau 0 and mu 7.929503. Its mu numbers come from the DIRECT mixture approximation,
accurate to ~1e-3 of mu's scale (tests/numerics/test_bayes_extras.py), so mu is compared at
5e-3. The Bayes factors are checked against the numerics functions, which
tests/numerics/test_bayes_extras.py checks against quadrature of the marginal likelihoods.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import SpecError
from hiermodels.numerics.bayes_extras import bayes_factor_mu, bayes_factor_tau

DATA = Path(__file__).resolve().parents[1] / "data"
CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
MU_PRIOR = hm.priors.Normal(0, 50)
TAU_PRIOR = hm.priors.HalfCauchy(25)


@pytest.fixture(scope="module")
def rubin():
    """bayesmeta's Rubin1981: unrounded eight-schools effects and standard errors."""
    return pd.read_csv(DATA / "rubin1981.csv")


@pytest.fixture(scope="module")
def schools(rubin):
    return hm.meta_analysis(
        rubin, estimate="effect", se="stderr", study="school", mu_prior=MU_PRIOR,
        hyperprior=TAU_PRIOR,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)


def test_bayes_factors_are_the_numerics_values(schools, rubin):
    table = schools.bayes_factors()
    assert list(table.index) == ["mu = 0", "tau = 0"]
    y, se = rubin["effect"].to_numpy(), rubin["stderr"].to_numpy()
    priors = {"tau_logprior": TAU_PRIOR.logpdf, "mu_mean": 0.0, "mu_sd": 50.0}
    mu, tau = bayes_factor_mu(y, se, **priors), bayes_factor_tau(y, se, **priors)
    np.testing.assert_allclose(table.loc["mu = 0", "bf01"], mu.bf01, rtol=1e-10)
    np.testing.assert_allclose(table.loc["tau = 0", "bf01"], tau.bf01, rtol=1e-10)
    np.testing.assert_allclose(table["bf10"], 1 / table["bf01"], rtol=1e-12)
    # Savage-Dickey: the ratio of the densities reported beside it
    np.testing.assert_allclose(
        table["bf01"], table["posterior_density"] / table["prior_density"], rtol=1e-10
    )
    assert "moderate evidence for tau = 0" in table.loc["tau = 0", "reading"]
    assert list(schools.bayes_factors(which="tau").index) == ["tau = 0"]


def test_bayes_factor_conditions_name_the_fix(rubin, bcg):
    flat = hm.meta_analysis(rubin, estimate="effect", se="stderr", hyperprior=TAU_PRIOR)
    with pytest.raises(SpecError, match=r"mu_prior=hm.priors.Normal\(0, s\)"):
        flat.bayes_factors()
    assert flat.bayes_factors(which="tau").loc["tau = 0", "bf01"] > 0  # mu flat is fine here
    improper = hm.meta_analysis(
        rubin, estimate="effect", se="stderr", mu_prior=MU_PRIOR,
        hyperprior=hm.priors.Uniform(0, None),
    )  # fmt: skip
    with pytest.raises(SpecError, match="proper tau prior"):
        improper.bayes_factors(which="tau")
    assert np.isnan(improper.prior_sensitivity([hm.priors.Uniform(0, None)])["bf01_tau"]).all()
    reg = hm.meta_analysis(bcg, estimate="yi", vi="vi", moderators=["ablat"], mu_prior=MU_PRIOR)
    with pytest.raises(SpecError, match="intercept-only"):
        reg.bayes_factors()
    with pytest.raises(SpecError, match="which must name"):
        flat.bayes_factors(which="theta")


# the mocked sampler returns prior draws, which R-hat rightly flags: not what is tested here
@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_bayes_factors_refuse_an_mcmc_fit(mock_pymc_sample, rubin):
    meta = hm.meta_analysis(
        rubin, estimate="effect", se="stderr", mu_prior=MU_PRIOR, hyperprior=TAU_PRIOR,
        method="mcmc", draws=20, chains=2, tune=10,
    )  # fmt: skip
    with pytest.raises(SpecError, match="method='exact'"):
        meta.bayes_factors()
    # the shortest intervals come from the draws then, without a mode
    table = meta.summary(interval="hdi")
    assert table["mode"].isna().all()
    assert (table["ci_low"] <= table["ci_high"]).all()


def test_hdi_reproduces_bayesmeta_eight_schools(schools):
    table = schools.summary(interval="hdi")
    assert list(table.columns[:4]) == ["mean", "sd", "median", "mode"]
    assert table.attrs["interval"] == "hdi"
    assert table.loc["tau", "ci_low"] == 0.0 and table.loc["tau", "mode"] == 0.0
    np.testing.assert_allclose(table.loc["tau", "ci_high"], 15.165894, rtol=1e-6)
    np.testing.assert_allclose(
        table.loc["mu", ["ci_low", "ci_high"]], [-1.823353, 17.824562], atol=5e-3
    )
    np.testing.assert_allclose(table.loc["mu", "mode"], 7.929503, atol=5e-3)
    # the other columns are the equal-tailed summary's
    pd.testing.assert_frame_equal(
        table[["mean", "sd", "median"]], schools.summary()[["mean", "sd", "median"]]
    )


@pytest.mark.parametrize("moderators", [[], ["ablat"]])
def test_hdi_holds_its_mass_and_is_no_wider_than_equal_tailed(bcg, moderators):
    meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial", moderators=moderators)
    prob = 0.9
    hdi, equal = meta.summary(prob, interval="hdi"), meta.summary(prob)
    post = meta.exact
    for k, name in enumerate(meta.coefficient_names):
        lo, hi = hdi.loc[name, ["ci_low", "ci_high"]]
        np.testing.assert_allclose(post.cdf_beta(hi, index=k) - post.cdf_beta(lo, index=k), prob,
                                   atol=1e-5)  # fmt: skip
    lo, hi = hdi.loc["tau", ["ci_low", "ci_high"]]
    np.testing.assert_allclose(post.cdf_tau(hi) - post.cdf_tau(lo), prob, atol=1e-5)
    lo, hi = hdi.loc["theta_new", ["ci_low", "ci_high"]]
    np.testing.assert_allclose(post.cdf_predictive(hi) - post.cdf_predictive(lo), prob, atol=1e-5)
    width = hdi["ci_high"] - hdi["ci_low"]
    assert (width <= equal["ci_high"] - equal["ci_low"] + 1e-9).all()
    # tau's posterior is skewed to the right: its shortest interval is strictly shorter
    assert width["tau"] < (equal["ci_high"] - equal["ci_low"])["tau"] - 1e-3
    assert (hdi["ci_low"] <= hdi["mode"]).all() and (hdi["mode"] <= hdi["ci_high"]).all()


def test_hdi_with_a_transform_and_bad_interval(bcg):
    meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
    rr = meta.summary(interval="hdi", transform="exp")
    np.testing.assert_allclose(
        rr.loc["mu", "ci_low"], np.exp(meta.summary(interval="hdi").loc["mu", "ci_low"])
    )
    with pytest.raises(SpecError, match="interval must be"):
        meta.summary(interval="shortest")


def test_prior_sensitivity_rows_are_refits(rubin, schools):
    table = schools.prior_sensitivity()
    assert list(table.index) == ["half_cauchy", "half_normal", "half_t", "exponential", "uniform"]
    refit = hm.meta_analysis(
        rubin, estimate="effect", se="stderr", mu_prior=MU_PRIOR, hyperprior="half_normal"
    )
    row, s = table.loc["half_normal"], refit.summary()
    assert row["prior"] == str(refit.tau_prior)
    np.testing.assert_allclose(
        row[["mu_mean", "mu_median", "mu_ci_low", "mu_ci_high"]].to_numpy(float),
        s.loc["mu", ["mean", "median", "ci_low", "ci_high"]].to_numpy(float),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        row[["tau_median", "tau_ci_low", "tau_ci_high", "theta_new_ci_low",
             "theta_new_ci_high"]].to_numpy(float),
        [s.loc["tau", "median"], s.loc["tau", "ci_low"], s.loc["tau", "ci_high"],
         s.loc["theta_new", "ci_low"], s.loc["theta_new", "ci_high"]],
        rtol=1e-12,
    )  # fmt: skip
    bf = refit.bayes_factors()
    np.testing.assert_allclose(row["bf01_mu"], bf.loc["mu = 0", "bf01"], rtol=1e-12)
    np.testing.assert_allclose(row["bf01_tau"], bf.loc["tau = 0", "bf01"], rtol=1e-12)
    # a prior object is a row too, labelled by the prior
    own = schools.prior_sensitivity([TAU_PRIOR])
    np.testing.assert_allclose(
        own.loc[str(TAU_PRIOR), "mu_mean"], schools.summary().loc["mu", "mean"], rtol=1e-12
    )


def test_prior_sensitivity_without_a_proper_mu_prior_leaves_the_mu_factor_out(bcg):
    meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
    table = meta.prior_sensitivity(("half_normal", "uniform"), prob=0.9)
    assert table["bf01_mu"].isna().all() and (table["bf01_tau"] > 0).all()
    assert table.attrs["prob"] == 0.9
    with pytest.raises(SpecError, match="unknown hyperprior"):
        meta.prior_sensitivity(("half_normal", "cauchy"))
