"""Real MCMC, small and seeded: recovery of known truths and of published lme4 estimates.

Three models are compiled in this module (simulated centered, simulated non-centered,
sleepstudy); keep it that way, each cold compile costs tens of seconds.
"""

import numpy as np
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.slow,
    # the fits are judged by sampled_well (a divergence rate, R-hat, ESS), not by warnings
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
]

POPULATION = ["Intercept", "x", "sigma", "Intercept|g_sigma", "x|g_sigma"]


def _fit(df, parameterization, seed):
    return hm.fit_hierarchical(
        df,
        y="y",
        group="g",
        predictors=["x"],
        varying=["x"],
        parameterization=parameterization,
        draws=2000,
        tune=1000,
        chains=2,
        random_seed=seed,
    )


@pytest.fixture(scope="module")
def fits(simulated, seed):
    df, truth = simulated
    return truth, _fit(df, "noncentered", seed(11)), _fit(df, "centered", seed(12))


def test_truth_inside_posterior_intervals(fits, sampled_well):
    truth, noncentered, _ = fits
    # 99% intervals: five parameters at 95% would miss one in four data sets by design
    table = noncentered.summary(prob=0.99)
    for name in POPULATION:
        assert table.loc[name, "ci_low"] < truth[name] < table.loc[name, "ci_high"], name
    sampled_well(noncentered)


def test_centered_and_noncentered_agree(fits, sampled_well):
    _, noncentered, centered = fits
    # 10 rows per group: the centered form meets the funnel now and then (a few divergences
    # in 4000 draws on some machines), so it is allowed a somewhat higher rate
    sampled_well(centered, divergence_rate=0.01)
    a, b = noncentered.summary(), centered.summary()
    for name in POPULATION:
        mcse = np.hypot(
            a.loc[name, "sd"] / np.sqrt(a.loc[name, "ess_bulk"]),
            b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"]),
        )
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * mcse, name
    ga, gb = noncentered.group_effects(), centered.group_effects()
    # group coefficients: posterior sds are ~0.1-0.2, agreement well inside that
    assert np.abs(ga["mean"] - gb["mean"]).max() < 0.05


def test_partial_pooling_shrinks_toward_population(fits):
    _, noncentered, _ = fits
    table = noncentered.group_effects()
    # with 10 rows per group and tau of the order of sigma, pooling is partial: in (0, 1)
    inside = table["pooling_factor"].between(0, 1)
    assert inside.mean() > 0.8
    assert 0.02 < table["pooling_factor"].median() < 0.7


def test_sleepstudy_matches_lme4(seed, sampled_well):
    # lme4: lmer(Reaction ~ Days + (Days | Subject), sleepstudy), REML fixed effects
    # (Bates et al. 2015, J. Stat. Softw. 67(1), §1): 251.405 (SE 6.825), 10.467 (SE 1.546)
    sleep = hm.datasets.load("sleepstudy")
    res = hm.fit_hierarchical(
        sleep,
        y="reaction",
        group="subject",
        predictors=["days"],
        varying=["days"],
        draws=1000,
        tune=1000,
        chains=2,
        random_seed=seed(5),
    )
    sampled_well(res)
    table = res.summary()
    for name, published in [("Intercept", 251.405), ("days", 10.467)]:
        assert abs(table.loc[name, "mean"] - published) < table.loc[name, "sd"], name
    # the posterior sds are close to lme4's standard errors (weakly informative priors)
    assert table.loc["Intercept", "sd"] == pytest.approx(6.825, rel=0.3)
    assert table.loc["days", "sd"] == pytest.approx(1.546, rel=0.3)
    # lme4's REML SDs: subject intercept 24.74, slope 5.92, residual 25.59
    assert table.loc["sigma", "mean"] == pytest.approx(25.59, rel=0.1)
    assert table.loc["days|subject_sigma", "mean"] == pytest.approx(5.92, rel=0.35)
