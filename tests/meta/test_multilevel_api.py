"""Three-level meta-analysis through ``meta_analysis(levels=...)`` (issue 16).

Reference numbers: metafor's own tests (test_misc_rma_mv, dat.konstantopoulos2011: 0.1847,
0.0846, sigma2 0.0651 and 0.0327) and tests/data/multilevel_reference.R (R 4.2.2, metafor
3.8.1, clubSandwich 0.5.8), as in tests/numerics/test_multilevel.py and test_robust.py, e.g.
``rma.mv(yi, vi, random = ~ 1 | district/study, data = dat.konstantopoulos2011,
method = "REML", control = list(rel.tol = 1e-12))``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.meta.multilevel import MultilevelMetaResult
from hiermodels.meta.multilevel_engines import mixture_quantiles
from hiermodels.numerics import diagnostics
from hiermodels.numerics.multilevel import fit_multilevel
from hiermodels.numerics.robust import robust_multilevel

KWARGS = {"estimate": "yi", "vi": "vi"}
# rma.mv(yi, vi, random = ~ 1 | district/study, data = kon, method = m) (see the module doc)
METAFOR = {
    "REML": dict(
        mu=0.184713163673,
        mu_se=0.0845559187421,
        ci=(0.0189866082587, 0.350439719087),
        sigma2=(0.0650619442753, 0.0327365170279),
        pi=(-0.450230970085, 0.81965729743),
        i2=(63.3248378206, 31.8624759019),
    ),
    "ML": dict(
        mu=0.184455383966,
        mu_se=0.0804816821656,
        ci=(0.0267141855059, 0.342196582425),
        sigma2=(0.0577383588585, 0.0328647918614),
        pi=(-0.426225021981, 0.795135789912),
        i2=(60.4287324084, 34.3961579843),
    ),
}


@pytest.fixture(scope="module")
def kon():
    return hm.datasets.load("konstantopoulos2011")


@pytest.fixture(scope="module")
def exact(kon):
    return hm.meta_analysis(kon, levels=["district", "study"], random_seed=11, **KWARGS)


# -- the classical fits against metafor ----------------------------------------------------


def test_reml_matches_metafor_printed_digits(exact):
    row = exact.heterogeneity(["REML"]).loc["REML"]
    assert row["mu"] == pytest.approx(0.1847, abs=5e-5)
    assert row["mu_se"] == pytest.approx(0.0846, abs=5e-5)
    assert row["tau2_district"] == pytest.approx(0.0651, abs=5e-5)
    assert row["tau2_study"] == pytest.approx(0.0327, abs=5e-5)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_heterogeneity_rows_match_metafor(exact, method):
    ref = METAFOR[method]
    row = exact.heterogeneity([method]).loc[method]
    np.testing.assert_allclose(
        row[["mu", "mu_se", "ci_low", "ci_high"]].to_numpy(float),
        [ref["mu"], ref["mu_se"], *ref["ci"]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        row[["tau2_district", "tau2_study"]].to_numpy(float), ref["sigma2"], rtol=2e-6
    )
    np.testing.assert_allclose(row[["pi_low", "pi_high"]].to_numpy(float), ref["pi"], rtol=1e-6)
    np.testing.assert_allclose(
        row[["I2_district", "I2_study"]].to_numpy(float), ref["i2"], rtol=1e-6
    )
    assert row["I2"] == pytest.approx(sum(ref["i2"]), rel=1e-6)
    assert row["icc"] == pytest.approx(ref["sigma2"][0] / sum(ref["sigma2"]), rel=1e-5)
    # QE as rma.uni's
    assert row["Q"] == pytest.approx(578.864017958, rel=1e-10)
    assert row["Q_df"] == 55


def test_bayes_row_is_the_posterior(exact):
    table = exact.heterogeneity()
    assert list(table.index) == ["bayes", "REML", "ML"]
    summary = exact.summary()
    bayes = table.loc["bayes"]
    assert bayes["mu"] == summary.loc["mu", "mean"]
    assert bayes["pi_low"] == summary.loc["theta_new", "ci_low"]
    for level in ("district", "study"):
        tau = summary.loc[f"tau_{level}"]
        assert bayes[f"tau2_{level}"] == pytest.approx(tau["mean"] ** 2 + tau["sd"] ** 2, rel=1e-6)
    total = bayes["tau2_district"] + bayes["tau2_study"]
    assert bayes["icc"] == pytest.approx(bayes["tau2_district"] / total)
    assert bayes["I2"] == pytest.approx(bayes["I2_district"] + bayes["I2_study"])


def test_cluster_shorthand_and_implicit_nesting_give_the_same_model(kon, exact):
    short = hm.meta_analysis(kon, cluster="district", study="study", **KWARGS)
    pd.testing.assert_frame_equal(short.summary(), exact.summary())
    assert short.levels == ("district", "study")
    # without study= the effect sizes are the level "effect"
    plain = hm.meta_analysis(kon, cluster="district", **KWARGS)
    assert list(plain.summary().index) == ["mu", "tau_district", "tau_effect", "theta_new"]
    np.testing.assert_allclose(plain.summary().to_numpy(), exact.summary().to_numpy())
    # school numbers restart in each district: nested as metafor's ~ 1 | district/school
    nested = hm.meta_analysis(kon, levels=["district", "school"], **KWARGS)
    assert nested.data.studies.labels[:2] == ("11/1", "11/2")
    reml = nested.heterogeneity(["REML"]).loc["REML"]
    assert reml["tau2_school"] == pytest.approx(METAFOR["REML"]["sigma2"][1], rel=2e-6)


def test_robust_equals_the_numerics_and_clubsandwich(kon, exact):
    fit = fit_multilevel(kon.yi, kon.vi, kon.district)
    for small_sample in ("CR2", "CR1", "CR0"):
        table = exact.robust(small_sample=small_sample)
        ref = robust_multilevel(fit, small_sample=small_sample)
        assert list(table.columns) == [
            "estimate",
            "se",
            "stat",
            "df",
            "pvalue",
            "ci_low",
            "ci_high",
        ]
        np.testing.assert_allclose(table.loc["mu", "se"], ref.se[0], rtol=1e-12)
        np.testing.assert_allclose(table.loc["mu", "df"], ref.df[0], rtol=1e-12)
        np.testing.assert_allclose(table.loc["mu", "pvalue"], ref.pval[0], rtol=1e-12)
    # clubSandwich coef_test(res, vcov = "CR2", cluster = kon$district); metafor robust()
    cr2 = exact.robust("district", small_sample="CR2").loc["mu"]
    assert cr2["se"] == pytest.approx(0.0844579954348, rel=1e-6)
    assert cr2["df"] == pytest.approx(9.86315623332, rel=1e-6)
    assert cr2["pvalue"] == pytest.approx(0.0539667424706, rel=1e-5)
    cr1 = exact.robust(small_sample="CR1").loc["mu"]
    assert cr1["se"] == pytest.approx(0.0845022171524, rel=1e-6)
    assert cr1["df"] == 10


def test_robust_moderator_matches_clubsandwich(kon):
    """mods = ~ I(year - 1990): the slope does not depend on the centring."""
    meta = hm.meta_analysis(kon, levels=["district", "study"], moderators="year", **KWARGS)
    cr2 = meta.robust(small_sample="CR2")
    assert list(cr2.index) == ["Intercept", "year"]
    assert cr2.loc["year", "se"] == pytest.approx(0.0100034242933, rel=1e-6)
    assert cr2.loc["year", "df"] == pytest.approx(4.18899870875, rel=1e-6)
    assert cr2.loc["year", "pvalue"] == pytest.approx(0.622330747828, rel=1e-5)
    reml = meta.classical("REML")
    assert reml.beta[1] == pytest.approx(0.00531181826358, rel=1e-6)


# -- one effect per cluster: the two-level model --------------------------------------------


def test_one_effect_per_cluster_reduces_to_the_two_level_model():
    """With one effect size per cluster only tau_b^2 + tau_w^2 is identified; a within SD
    held at ~1e-5 by its prior leaves tau_b as the two-level tau under the same prior."""
    bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    prior = hm.priors.HalfCauchy(0.5)
    two = hm.meta_analysis(bcg, study="trial", hyperprior=prior, **KWARGS)
    three = hm.meta_analysis(
        bcg,
        cluster="trial",
        hyperprior={"trial": prior, "effect": hm.priors.HalfNormal(1e-5)},
        **KWARGS,
    )
    a, b = two.summary(), three.summary()
    cols = ["mean", "sd", "median", "ci_low", "ci_high"]
    np.testing.assert_allclose(b.loc["mu", cols], a.loc["mu", cols], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(b.loc["tau_trial", cols], a.loc["tau", cols], rtol=1e-5)
    np.testing.assert_allclose(b.loc["theta_new", cols], a.loc["theta_new", cols], rtol=1e-5)
    assert b.loc["tau_effect", "ci_high"] < 3e-5
    assert three.exact.converged
    ea, eb = two.study_effects(), three.study_effects()
    np.testing.assert_allclose(eb["mean"], ea["mean"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(eb["ci_low"], ea["ci_low"], rtol=1e-5, atol=1e-8)
    # REML: the total heterogeneity is the two-level tau^2 (and mu the same)
    reml_two = two.heterogeneity(["REML"]).loc["REML"]
    reml_three = three.heterogeneity(["REML"]).loc["REML"]
    total = reml_three["tau2_trial"] + reml_three["tau2_effect"]
    assert total == pytest.approx(reml_two["tau2"], rel=1e-6)
    assert reml_three["mu"] == pytest.approx(reml_two["mu"], rel=1e-6)


# -- the exact engine's tables -------------------------------------------------------------


def test_summary_rows_and_draws_agree_with_the_exact_numbers(exact):
    summary = exact.summary()
    assert list(summary.index) == ["mu", "tau_district", "tau_study", "theta_new"]
    n = 4000  # independent draws: Monte Carlo sd = sd / sqrt(n)
    for name in summary.index:
        draws = exact.draws(name).ravel()
        assert draws.size == n
        mcse = summary.loc[name, "sd"] / np.sqrt(n)
        assert abs(draws.mean() - summary.loc[name, "mean"]) < 4.5 * mcse, name
    # the effects: mixture moments against the draws
    effects = exact.study_effects()
    theta = exact.draws("theta").reshape(n, -1)
    z = (theta.mean(axis=0) - effects["mean"]) / (effects["sd"] / np.sqrt(n))
    assert np.abs(z).max() < 4.5
    clusters = exact.cluster_effects()
    u = exact.draws("u_district").reshape(n, -1)
    z = (u.mean(axis=0) - clusters["mean"]) / (clusters["sd"] / np.sqrt(n))
    assert np.abs(z).max() < 4.5
    assert clusters["k"].tolist() == [4, 4, 3, 4, 4, 11, 3, 8, 6, 5, 4]
    assert clusters["district"].tolist()[:3] == ["11", "12", "18"]
    assert ((0 < clusters["pooling_factor"]) & (clusters["pooling_factor"] < 1)).all()


def test_study_effects_table(exact, kon):
    table = exact.study_effects()
    assert list(table.columns[:4]) == ["study", "district", "estimate", "se"]
    np.testing.assert_allclose(table["estimate"], kon.yi)
    np.testing.assert_allclose(table["se"] ** 2, kon.vi)
    assert table["weight"].sum() == pytest.approx(100)
    assert (table["ci_low"] < table["median"]).all() and (table["median"] < table["ci_high"]).all()
    # shrinkage pulls the extreme effects in
    assert table["mean"].std() < table["estimate"].std()
    back = exact.study_effects(transform="exp")
    np.testing.assert_allclose(back["ci_low"], np.exp(table["ci_low"]))
    assert "se" not in back.columns


def test_mixture_quantiles_against_root_finding():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(40))
    means, sds = rng.normal(size=(40, 3)), rng.uniform(0.1, 2, (40, 3))
    got = mixture_quantiles(w, means, sds, (0.025, 0.5, 0.975))
    from scipy import optimize

    for j in range(3):
        for i, q in enumerate((0.025, 0.5, 0.975)):
            cdf = lambda x, j=j, q=q: w @ stats.norm.cdf(x, means[:, j], sds[:, j]) - q  # noqa: E731
            assert got[i, j] == pytest.approx(optimize.brentq(cdf, -40, 40, xtol=1e-14), abs=1e-9)


def test_idata_groups(exact, kon):
    idata = exact.idata
    assert {"posterior", "log_likelihood", "observed_data", "constant_data"} <= set(idata.children)
    post = idata["posterior"]
    assert post["u_district"].dims == ("chain", "draw", "district")
    assert post["theta"].dims == ("chain", "draw", "study")
    ll = np.asarray(idata["log_likelihood"]["yi"])
    theta = np.asarray(post["theta"])
    np.testing.assert_allclose(ll, stats.norm.logpdf(kon.yi.to_numpy(), theta, np.sqrt(kon.vi)))
    np.testing.assert_allclose(idata["observed_data"]["yi"], kon.yi)


def test_priors_per_level_and_their_warnings(kon):
    meta = hm.meta_analysis(
        kon, levels=["district", "study"], hyperprior={"study": "half_normal"}, **KWARGS
    )
    scale = np.sqrt(np.mean(kon.vi))  # the presets' data scale, as for the two-level tau
    assert meta.tau_priors == (hm.priors.HalfCauchy(scale), hm.priors.HalfNormal(scale))
    with pytest.warns(hm.PriorWarning) as caught:
        hm.meta_analysis(
            kon, levels=["district", "study"], hyperprior=hm.priors.InverseGamma(1, 1), **KWARGS
        )
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("tau_district:") for m in messages)
    assert any(m.startswith("tau_study:") for m in messages)


def test_summary_transform_and_repr(exact):
    back = exact.summary(transform="exp")
    assert list(back.index) == ["mu", "theta_new"]
    assert back.loc["mu", "median"] == pytest.approx(np.exp(exact.summary().loc["mu", "median"]))
    assert "56 effect sizes in 11 district clusters" in repr(exact)
    assert isinstance(exact, MultilevelMetaResult)


def test_forest_plot_groups_by_cluster(exact, tmp_path):
    path = tmp_path / "forest.png"
    fig = exact.plot_forest(path)
    assert path.exists()
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert {"pooled", "prediction", "subgroup:11", "subgroup:644"} <= gids
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_exact_path_does_not_import_pymc():
    import subprocess
    import sys

    code = (
        "import sys, hiermodels as hm; kon = hm.datasets.load('konstantopoulos2011'); "
        "m = hm.meta_analysis(kon, estimate='yi', vi='vi', cluster='district'); "
        "m.summary(); m.study_effects(); m.heterogeneity(); m.robust(); "
        "print(','.join(x for x in ('pymc', 'pytensor', 'arviz') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the PyMC graph (no sampling) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("parameterization", "sampled"),
    [
        (None, {"u_district_offset", "theta"}),
        ("centered", {"u_district", "theta"}),
        ("noncentered", {"u_district_offset", "theta_offset"}),
    ],
)
def test_graph_names_dims_and_parameterization(exact, parameterization, sampled):
    from hiermodels.meta.multilevel_builder import build_multilevel_graph
    from hiermodels.meta.spec import MetaSpec

    spec = MetaSpec.from_user(
        levels=["district", "study"], parameterization=parameterization, **KWARGS
    )
    model, _ = build_multilevel_graph(
        exact.data,
        mu_prior=None,
        tau_priors=exact.tau_priors,
        parameterizations=spec.level_parameterizations,
    )
    free = {v.name for v in model.free_RVs}
    assert free == {"mu", "tau_district", "tau_study", *sampled}
    assert model.named_vars_to_dims["u_district"] == ("district",)
    assert model.named_vars_to_dims["theta"] == ("study",)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


def test_mcmc_plumbing_with_a_mocked_sampler(kon, mock_pymc_sample):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mocked draws do not converge
        meta = hm.meta_analysis(kon, levels=["district", "study"], method="mcmc", **KWARGS)
    assert meta.model is not None and meta.exact is None
    assert list(meta.summary().index) == ["mu", "tau_district", "tau_study", "theta_new"]
    assert "r_hat" in meta.summary().columns
    assert len(meta.study_effects()) == 56 and len(meta.cluster_effects()) == 11
    assert "log_likelihood" in meta.idata.children


# -- real MCMC against the exact engine ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_exact_and_mcmc_agree(kon, exact, seed, sampled_well):
    mcmc = hm.meta_analysis(
        kon,
        levels=["district", "study"],
        method="mcmc",
        draws=1000,
        chains=4,
        random_seed=seed(16),
        **KWARGS,
    )
    sampled_well(mcmc)
    a, b = exact.summary(), mcmc.summary()
    for name in a.index:
        mcse = b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * mcse, name
    # quantiles of both SDs: MC standard error ~ sqrt(q(1-q)/ess) / density there
    post = exact.exact.posterior
    marginals = {
        "between": (post.tau_b_grid, np.trapezoid(post.density, post.tau_w_grid, axis=1)),
        "within": (post.tau_w_grid, np.trapezoid(post.density, post.tau_b_grid, axis=0)),
    }
    for which, name in (("between", "tau_district"), ("within", "tau_study")):
        draws = mcmc.draws(name).ravel()
        ess = b.loc[name, "ess_tail"]
        grid, density = marginals[which]
        for q in (0.1, 0.5, 0.9):
            true = float(post.quantile_tau(q, which)[0])
            se_q = np.sqrt(q * (1 - q) / ess) / np.interp(true, grid, density)
            assert abs(np.quantile(draws, q) - true) < 4 * se_q, (name, q)
    # shrunken effects and cluster effects, each within 4 of its own MC standard errors
    for name, a_table, b_table in (
        ("theta", exact.study_effects(), mcmc.study_effects()),
        ("u_district", exact.cluster_effects(), mcmc.cluster_effects()),
    ):
        draws = np.moveaxis(mcmc.draws(name), -1, 0)
        mcse = b_table["sd"] / np.sqrt(diagnostics.ess_bulk(draws))
        z = (a_table["mean"] - b_table["mean"]) / mcse
        assert np.abs(z).max() < 4.5, name  # 56 and 11 comparisons: a little more room


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")  # sampled_well
def test_fit_hierarchical_with_known_se_is_the_same_model(kon, seed, sampled_well):
    """Issue 16: ``fit_hierarchical("yi | se(sei) ~ 1 + (1 | district/study)")`` and the
    three-level ``meta_analysis`` are one model: with the same priors, the MCMC posterior of
    the former agrees with the exact posterior of the latter within Monte Carlo error."""
    mu_prior, tau_prior = hm.priors.Normal(0, 1), hm.priors.HalfNormal(0.5)
    exact = hm.meta_analysis(
        kon, levels=["district", "study"], mu_prior=mu_prior, hyperprior=tau_prior, **KWARGS
    )
    rows = kon.assign(sei=np.sqrt(kon["vi"]))
    fit = hm.fit_hierarchical(
        rows,
        "yi | se(sei) ~ 1 + (1 | district/study)",
        priors={
            "Intercept": mu_prior,
            "Intercept|district_sigma": tau_prior,
            "Intercept|district:study_sigma": tau_prior,
        },
        # each district's ~5 studies pin its effect down: centered mixes best there
        parameterization={"Intercept|district": "centered"},
        draws=1000,
        chains=4,
        random_seed=seed(17),
        sample_kwargs={"target_accept": 0.9},
    )
    sampled_well(fit, divergence_rate=0.01)
    a, b = exact.summary(), fit.summary()
    for ours, theirs in (
        ("mu", "Intercept"),
        ("tau_district", "Intercept|district_sigma"),
        ("tau_study", "Intercept|district:study_sigma"),
    ):
        mcse = b.loc[theirs, "sd"] / np.sqrt(b.loc[theirs, "ess_bulk"])
        assert abs(a.loc[ours, "mean"] - b.loc[theirs, "mean"]) < 4 * mcse, ours
        assert b.loc[theirs, "sd"] == pytest.approx(a.loc[ours, "sd"], rel=0.15), ours
