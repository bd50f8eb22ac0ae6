"""Real MCMC against the exact engine (one compiled model)."""

import numpy as np
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.slow,
    # judged by a divergence rate and R-hat, not by warnings (see the test)
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
]


def test_exact_and_mcmc_agree(seed):
    schools = hm.datasets.load("eight_schools")
    kwargs = {
        "estimate": "y",
        "se": "sigma",
        "study": "school",
        "mu_prior": hm.priors.Normal(0, 50),
        "hyperprior": hm.priors.HalfCauchy(25),
    }
    exact = hm.meta_analysis(schools, method="exact", **kwargs)
    # eight schools is the textbook funnel: even non-centered, the default step size leaves a
    # few divergences, so raise target_accept as the diagnostics message advises
    mcmc = hm.meta_analysis(
        schools,
        method="mcmc",
        draws=2500,
        tune=1000,
        chains=2,
        random_seed=seed(3),
        sample_kwargs={"target_accept": 0.95},
        **kwargs,
    )
    # a divergence now and then is chance; a biased fit shows a rate, and the comparisons below
    assert np.asarray(mcmc.idata["sample_stats"]["diverging"]).mean() < 0.005
    assert mcmc.summary()["r_hat"].max() < 1.02
    a, b = exact.summary(), mcmc.summary()
    for name in ["mu", "tau", "theta_new"]:
        mcse = b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * mcse, name
    # tau quantiles: MC standard error of a quantile ~ sqrt(q(1-q)/ess) / density there
    tau = np.asarray(mcmc.idata["posterior"]["tau"]).ravel()
    ess = b.loc["tau", "ess_tail"]
    grid, density = exact.exact.tau_grid, exact.exact.tau_density
    for q in [0.1, 0.5, 0.9]:
        true = exact.exact.quantile_tau(q)
        se_q = np.sqrt(q * (1 - q) / ess) / np.interp(true, grid, density)
        assert abs(np.quantile(tau, q) - true) < 4 * se_q, q
    # shrunken school effects agree too
    ea, eb = exact.study_effects(), mcmc.study_effects()
    assert np.abs(ea["mean"] - eb["mean"]).max() < 4 * (eb["sd"] / np.sqrt(1000)).max()


def test_student_t_prior_on_mu_matches_the_reweighted_exact_posterior(seed, sampled_well):
    """A prior the exact engine cannot integrate: MCMC against importance reweighting.

    With independent priors on mu and tau, the posterior under mu ~ StudentT is the
    flat-prior posterior times the t density of mu (normalized); the flat-prior one has
    exact independent draws, so reweighting 200,000 of them gives the truth to a small Monte
    Carlo error. A t(3, 0, 0.2) prior on the log risk ratio pulls the BCG pooled effect
    (about -0.71 under a flat prior) toward 0 by a margin MCMC must reproduce.
    """
    bcg = hm.effect_sizes_2x2(
        hm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg", measure="log_rr"
    )
    prior = hm.priors.StudentT(nu=3, mu=0, sigma=0.2)
    kwargs = {"estimate": "yi", "se": "sei", "study": "trial", "hyperprior": "half_normal"}
    with pytest.raises(hm.SpecError, match="method='mcmc'"):
        hm.meta_analysis(bcg, mu_prior=prior, **kwargs)
    flat = hm.meta_analysis(bcg, draws=50_000, chains=4, random_seed=seed(5), **kwargs)
    mu_flat = np.asarray(flat.idata["posterior"]["mu"]).ravel()
    w = np.exp(prior.logpdf(mu_flat))
    w /= w.sum()
    truth = float(w @ mu_flat)
    truth_sd = float(np.sqrt(w @ (mu_flat - truth) ** 2))
    truth_mcse = truth_sd / np.sqrt(1 / np.sum(w**2))  # Kish's effective sample size
    assert truth - mu_flat.mean() > 0.1  # the prior matters here (about 0.16)
    mcmc = hm.meta_analysis(
        bcg,
        mu_prior=prior,
        method="mcmc",
        draws=500,
        tune=1000,
        chains=2,
        random_seed=seed(6),
        # the BCG trials pin their effects down (se well below tau), where the centered form
        # mixes well and the non-centered one slowly (Betancourt & Girolami 2015)
        parameterization="centered",
        **kwargs,
    )
    sampled_well(mcmc)
    table = mcmc.summary()
    mcse = table.loc["mu", "sd"] / np.sqrt(table.loc["mu", "ess_bulk"])
    assert abs(table.loc["mu", "mean"] - truth) < 4 * np.hypot(mcse, truth_mcse)
    assert table.loc["mu", "sd"] == pytest.approx(truth_sd, rel=0.2)
    # the frequentist tables do not depend on the engine
    np.testing.assert_allclose(
        mcmc.heterogeneity().loc["REML"], flat.heterogeneity().loc["REML"], rtol=1e-12
    )
