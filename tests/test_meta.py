"""Meta-analysis through the public API: published numbers, plumbing, plots, bad input."""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

RUBIN_Y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]
RUBIN_SE = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]


@pytest.fixture(scope="module")
def rubin():
    return pd.DataFrame({"school": list("ABCDEFGH"), "y": RUBIN_Y, "sigma": RUBIN_SE})


@pytest.fixture(scope="module")
def schools_meta(rubin):
    return hm.meta_analysis(
        rubin,
        estimate="y",
        se="sigma",
        study="school",
        mu_prior=hm.priors.Normal(0, 50),
        hyperprior=hm.priors.HalfCauchy(25),
        random_seed=1,
    )


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes_2x2(
        hm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg", measure="log_rr"
    )


def test_exact_reproduces_bayesmeta_schools_example(schools_meta):
    # bayesmeta vignette, schools.example.1 (Röver 2020, J. Stat. Softw. 93(6))
    table = schools_meta.summary()
    assert table.loc["tau", "mean"] == pytest.approx(5.884511, rel=1e-5)
    assert table.loc["tau", "sd"] == pytest.approx(4.869904, rel=1e-5)
    assert table.loc["tau", "median"] == pytest.approx(4.758539, rel=1e-5)
    assert table.loc["mu", "mean"] == pytest.approx(7.9857, rel=1e-4)
    assert table.loc["mu", "sd"] == pytest.approx(4.9958, rel=1e-4)
    assert list(table.index) == ["mu", "tau", "theta_new"]


def test_exact_draws_match_exact_summary(schools_meta):
    post = schools_meta.idata["posterior"]
    assert post.sizes["chain"] * post.sizes["draw"] == 4000
    for name in ["mu", "tau"]:
        draws = np.asarray(post[name]).ravel()
        exact = schools_meta.summary().loc[name]
        assert abs(draws.mean() - exact["mean"]) < 4 * exact["sd"] / np.sqrt(draws.size)
    theta = np.asarray(post["theta"]).reshape(-1, 8)
    effects = schools_meta.study_effects()
    moments = schools_meta.exact.theta_moments()
    # the table is exact (mixture moments); the draws agree within Monte Carlo error
    np.testing.assert_allclose(effects["mean"], moments["mean"], rtol=1e-12)
    assert np.all(np.abs(theta.mean(axis=0) - moments["mean"]) < 5 * moments["sd"] / np.sqrt(4000))


def test_complete_pooling_of_bda3(tmp_path):
    # BDA3 §5.5: the precision-weighted mean of the eight schools is 7.7 with se 4.1;
    # REML (and DL) estimate tau^2 = 0 there, so their pooled effect is that mean
    meta = hm.meta_analysis(
        hm.datasets.load("eight_schools"), estimate="y", se="sigma", study="school"
    )
    table = meta.heterogeneity()
    for method in ["REML", "DL"]:
        assert table.loc[method, "mu"] == pytest.approx(7.69, abs=0.01)
        assert table.loc[method, "mu_se"] == pytest.approx(4.07, abs=0.01)
        assert table.loc[method, "tau2"] == 0.0


def test_heterogeneity_matches_metafor_bcg(bcg):
    meta = hm.meta_analysis(bcg, estimate="yi", se="sei", study="trial")
    table = meta.heterogeneity()
    assert list(table.index) == ["bayes", "REML", "DL"]
    # metafor: rma(yi, vi, data = dat.bcg) and method = "DL"
    assert table.loc["REML", "mu"] == pytest.approx(-0.7145, abs=1e-4)
    assert table.loc["REML", "mu_se"] == pytest.approx(0.1798, abs=1e-4)
    assert table.loc["REML", "tau2"] == pytest.approx(0.3132, abs=1e-4)
    assert table.loc["REML", "I2"] == pytest.approx(92.22, abs=0.01)
    assert table.loc["REML", "H2"] == pytest.approx(12.86, abs=0.01)
    assert table.loc["DL", "tau2"] == pytest.approx(0.3088, abs=1e-4)
    assert table.loc["DL", "I2"] == pytest.approx(92.12, abs=0.01)
    np.testing.assert_allclose(table["Q"], 152.2330, atol=1e-4)
    assert (table["Q_df"] == 12).all()
    # the Bayesian row: posterior mean of tau^2 and the I^2 it implies
    tau = meta.summary().loc["tau"]
    assert table.loc["bayes", "tau2"] == pytest.approx(tau["mean"] ** 2 + tau["sd"] ** 2)
    draws = np.asarray(meta.idata["posterior"]["tau"]).ravel() ** 2
    assert abs(draws.mean() - table.loc["bayes", "tau2"]) < 4 * draws.std() / np.sqrt(draws.size)
    assert 85 < table.loc["bayes", "I2"] < 97
    assert table.loc["bayes", "pi_low"] < table.loc["bayes", "ci_low"]


def test_meta_regression_on_latitude(bcg):
    meta = hm.meta_analysis(bcg, estimate="yi", se="sei", study="trial", moderators=["ablat"])
    table = meta.heterogeneity()
    # metafor: rma(yi, vi, mods = ~ ablat, data = dat.bcg)
    assert table.loc["REML", "mu"] == pytest.approx(0.2515, abs=1e-4)
    assert table.loc["REML", "Q"] == pytest.approx(30.7331, abs=1e-4)
    assert table.loc["REML", "I2"] == pytest.approx(68.39, abs=0.01)
    # metafor: estimate -0.0291, se 0.0072; tau^2 0.0763; R^2 75.63%
    assert table.loc["REML", "ablat"] == pytest.approx(-0.0291, abs=1e-4)
    assert table.loc["REML", "ablat_se"] == pytest.approx(0.0072, abs=1e-4)
    assert table.loc["REML", "tau2"] == pytest.approx(0.0763, abs=1e-4)
    assert table.loc["REML", "R2"] == pytest.approx(75.63, abs=0.01)
    summary = meta.summary()
    assert table.loc["bayes", "ablat"] == pytest.approx(summary.loc["ablat", "mean"])
    # leave-one-out reports the slope too; each row's REML slope is the refit's
    loo = meta.leave_one_out()
    refit = hm.meta_analysis(  # the same tau prior (presets scale with the se's)
        bcg.iloc[1:],
        estimate="yi",
        se="sei",
        study="trial",
        moderators=["ablat"],
        hyperprior=meta.tau_prior,
    )
    first = loo.iloc[0]
    assert first["ablat_reml"] == pytest.approx(refit.heterogeneity().loc["REML", "ablat"])
    assert first["ablat"] == pytest.approx(refit.summary().loc["ablat", "mean"], rel=1e-6)
    assert list(summary.index) == ["Intercept", "ablat", "tau", "theta_new"]
    # the latitude slope is clearly negative (vaccine works better far from the equator)
    assert summary.loc["ablat", "ci_high"] < 0
    assert summary.loc["ablat", "mean"] == pytest.approx(-0.029, abs=0.003)


def test_study_effects(schools_meta):
    effects = schools_meta.study_effects()
    assert list(effects["study"]) == list("ABCDEFGH")
    for col in [
        "estimate",
        "se",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "pooling_factor",
        "shrinkage_ratio",
        "weight",
    ]:
        assert col in effects.columns
    mu = schools_meta.summary().loc["mu", "mean"]
    lo = np.minimum(effects["estimate"], mu)
    hi = np.maximum(effects["estimate"], mu)
    assert ((effects["mean"] >= lo - 0.5) & (effects["mean"] <= hi + 0.5)).all()
    assert effects["pooling_factor"].between(0, 1).all()
    # the least precise school (H, se 17.6) is pooled most, the most precise (E, 9.4) least
    assert effects.loc[effects["se"].idxmax(), "pooling_factor"] == effects["pooling_factor"].max()
    assert effects.loc[effects["se"].idxmin(), "pooling_factor"] == effects["pooling_factor"].min()
    assert effects["weight"].sum() == pytest.approx(100)


def test_leave_one_out_matches_refit(rubin, schools_meta):
    loo = schools_meta.leave_one_out()
    assert list(loo["left_out"]) == list("ABCDEFGH")
    refit = hm.meta_analysis(
        rubin.iloc[1:],
        estimate="y",
        se="sigma",
        study="school",
        mu_prior=hm.priors.Normal(0, 50),
        hyperprior=hm.priors.HalfCauchy(25),
    )
    assert loo.loc[0, "mu"] == pytest.approx(refit.summary().loc["mu", "mean"], rel=1e-10)
    assert loo.loc[0, "tau_median"] == pytest.approx(refit.summary().loc["tau", "median"])
    # leaving out school A (the largest effect) lowers the pooled effect
    assert loo.loc[0, "mu"] < schools_meta.summary().loc["mu", "mean"]


def test_plots_render_one_row_per_study(schools_meta, tmp_path):
    fig = schools_meta.plot_forest(tmp_path / "forest.png")
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "label"]
    assert labels == [*"ABCDEFGH", "Pooled estimate", "Prediction interval"]
    assert (tmp_path / "forest.png").stat().st_size > 10_000
    fig = schools_meta.plot_funnel(tmp_path / "funnel.png")
    assert len(fig.axes[0].collections[-1].get_offsets()) == 8
    assert (tmp_path / "funnel.png").stat().st_size > 10_000


def test_presets_scale_and_warnings(rubin):
    meta = hm.meta_analysis(rubin, estimate="y", se="sigma", study="school")
    rms = np.sqrt(np.mean(np.square(RUBIN_SE)))
    assert isinstance(meta.tau_prior, hm.priors.HalfCauchy)
    assert meta.tau_prior.beta == pytest.approx(rms)
    with pytest.warns(hm.PriorWarning, match="toward zero"):
        hm.meta_analysis(rubin, estimate="y", se="sigma", hyperprior="inverse_gamma")
    with pytest.warns(hm.PriorWarning, match="heavy-tailed"):
        hm.meta_analysis(rubin.iloc[:3], estimate="y", se="sigma", hyperprior="uniform")


def test_improper_posterior_is_a_clear_error(rubin):
    with pytest.raises(hm.SpecError, match="improper"), pytest.warns(hm.PriorWarning):
        hm.meta_analysis(
            rubin.iloc[:2], estimate="y", se="sigma", hyperprior=hm.priors.Uniform(upper=None)
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.assign(sigma=[15, 0, 16, -1, 9, 11, 10, 18]),
            r"'sigma' has 2 value\(s\) <= 0 \(rows 1, 3\)",
        ),
        (
            lambda d: d.assign(sigma=[15, np.nan, 16, 11, 9, 11, 10, 18]),
            r"'sigma' has 1 missing value\(s\) \(row 1\)",
        ),
        (lambda d: d.iloc[:1], "at least 2 studies"),
        (lambda d: d.assign(school=list("AACDEFGH")), r"duplicate study labels \(rows 0, 1"),
        (
            lambda d: d.assign(y=d["y"].astype(str).str.replace("28", "n/a")),
            r"estimate column 'y' is not numeric.*row 0",
        ),
        (lambda d: d.drop(columns="sigma"), r"'sigma' not in the data"),
    ],
)
def test_bad_input(change, message):
    data = change(hm.datasets.load("eight_schools"))
    before = data.copy()
    with pytest.raises(hm.DataError, match=message):
        hm.meta_analysis(data, estimate="y", se="sigma", study="school")
    pd.testing.assert_frame_equal(data, before)


def test_bad_options(rubin):
    with pytest.raises(hm.SpecError, match="unknown method"):
        hm.meta_analysis(rubin, estimate="y", se="sigma", method="bootstrap")
    with pytest.raises(hm.SpecError, match="unknown hyperprior"):
        hm.meta_analysis(rubin, estimate="y", se="sigma", hyperprior="cauchy")
    with pytest.raises(hm.SpecError, match="method='mcmc'"):
        hm.meta_analysis(rubin, estimate="y", se="sigma", mu_prior=hm.priors.HalfNormal(1))


def test_effect_sizes_from_counts():
    bcg = hm.datasets.load("bcg")
    rr = hm.effect_sizes_2x2(bcg, ai="tpos", bi="tneg", ci="cpos", di="cneg")
    assert "yi" not in bcg.columns  # the caller's frame is untouched
    # metafor escalc("RR", ...) on dat.bcg, trials 1 and 2
    np.testing.assert_allclose(rr["yi"][:2], [-0.8893, -1.5854], atol=1e-4)
    np.testing.assert_allclose(rr["sei"][:2] ** 2, [0.3256, 0.1946], atol=1e-4)
    odds = hm.effect_sizes_2x2(bcg, ai="tpos", bi="tneg", ci="cpos", di="cneg", measure="log_or")
    # log OR of trial 1 by hand: log((4 * 128) / (119 * 11))
    assert odds.loc[0, "yi"] == pytest.approx(np.log(4 * 128 / (119 * 11)))
    with pytest.raises(hm.DataError, match="negative"):
        hm.effect_sizes_2x2(
            bcg.assign(tpos=-bcg["tpos"]), ai="tpos", bi="tneg", ci="cpos", di="cneg"
        )


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_mcmc_plumbing_with_mocked_sampler(mock_pymc_sample, rubin):
    meta = hm.meta_analysis(
        rubin,
        estimate="y",
        se="sigma",
        study="school",
        method="mcmc",
        draws=20,
        chains=2,
        hyperprior="half_normal",
    )
    assert {"mu", "tau", "theta", "theta_new", "theta_offset"} <= set(
        meta.idata["posterior"].data_vars
    )
    assert meta.model.named_vars_to_dims["theta"] == ("school",)
    table = meta.summary()
    assert list(table.index) == ["mu", "tau", "theta_new"]
    assert "r_hat" in table.columns
    assert len(meta.study_effects()) == 8


def test_centered_meta_model_samples_theta_directly(rubin):
    from hiermodels.meta.builder import build_meta_model
    from hiermodels.meta.data import prepare_studies

    data = prepare_studies(rubin, estimate="y", se="sigma", study="school")
    prior = hm.priors.HalfCauchy(5)
    centered = build_meta_model(data, mu_prior=None, tau_prior=prior, parameterization="centered")
    assert centered["theta"] in centered.free_RVs
    noncentered = build_meta_model(data, mu_prior=None, tau_prior=prior)
    assert noncentered["theta"] in noncentered.deterministics
    assert "theta_offset" in noncentered.named_vars
