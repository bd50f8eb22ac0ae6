"""Three-level meta-analysis (issue 16): REML/ML fits against metafor's rma.mv, and the exact
2-D posterior against the two-level exact engine, dense-matrix algebra and brute force.

Reference numbers: tests/data/multilevel_reference.R (R 4.2.2, metafor 3.8.1), e.g.
``rma.mv(yi, vi, random = ~ 1 | district/study, data = dat.konstantopoulos2011,
control = list(rel.tol = 1e-12))``; metafor's own tests publish the rounded ones.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.exact import exact_posterior
from hiermodels.numerics.heterogeneity import reml
from hiermodels.numerics.multilevel import fit_multilevel
from hiermodels.numerics.multilevel_exact import (
    ImproperPosteriorError,
    MultilevelLikelihood,
    multilevel_posterior,
)
from hiermodels.numerics.tau_marginal import ConditionalModel

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def kon():
    return pd.read_csv(DATA / "konstantopoulos2011.csv")


@pytest.fixture(scope="module")
def assink():
    return pd.read_csv(DATA / "assink2016.csv")


def deltype_design(d):
    """model.matrix(~ factor(deltype)): levels covert (reference), general, overt."""
    return np.column_stack(
        [np.ones(len(d))] + [(d.deltype == lv).to_numpy(float) for lv in ("general", "overt")]
    )


def half_normal(scale):
    return lambda t: 0.5 * np.log(2 / np.pi) - np.log(scale) - 0.5 * (t / scale) ** 2


def half_cauchy(scale):
    return lambda t: np.log(2 / (np.pi * scale)) - np.log1p((t / scale) ** 2)


# -- REML / ML fits ---------------------------------------------------------------------


def test_konstantopoulos_published(kon):
    """metafor's tests (test_misc_rma_mv, dat.konstantopoulos2011): 0.1847, 0.0846,
    sigma2 = 0.0651, 0.0327."""
    fit = fit_multilevel(kon.yi, kon.vi, kon.district)
    assert fit.beta[0] == pytest.approx(0.1847, abs=5e-5)
    assert fit.se[0] == pytest.approx(0.0846, abs=5e-5)
    np.testing.assert_allclose(fit.sigma2, [0.0651, 0.0327], atol=5e-5)


# rma.mv(yi, vi, random = ~ 1 | district/study, data = kon, method = m,
#        control = list(rel.tol = 1e-12)); fitstats(res); predict(res); I^2 by the metafor FAQ
KON = {
    "REML": dict(
        beta=0.184713163673,
        se=0.0845559187421,
        ci=(0.0189866082587, 0.350439719087),
        sigma2=(0.0650619442753, 0.0327365170279),
        stats=(-7.95872403371, 15.9174480674, 21.9174480674, 27.9394476231, 22.3880363027),
        pi=(-0.450230970085, 0.81965729743),
        i2=(63.3248378206, 31.8624759019),
    ),
    "ML": dict(
        beta=0.184455383966,
        se=0.0804816821656,
        ci=(0.0267141855059, 0.342196582425),
        sigma2=(0.0577383588585, 0.0328647918614),
        stats=(-8.39493557126, 161.446384263, 22.7898711425, 28.8659262147, 23.2514096041),
        pi=(-0.426225021981, 0.795135789912),
        i2=(60.4287324084, 34.3961579843),
    ),
}
# the same for rma.mv(yi, vi, random = ~ 1 | study/esid, data = assink,
#                     control = list(rel.tol = 1e-10))
ASSINK = {
    "REML": dict(
        beta=0.426799367095,
        se=0.118429193476,
        ci=(0.194682413165, 0.658916321026),
        sigma2=(0.187870223945, 0.11199208915),
        stats=(-73.6327054403, 147.265410881, 153.265410881, 161.050770431, 153.51804246),
        pi=(-0.671283966688, 1.52488270088),
        i2=(58.3057153975, 34.7568589618),
    ),
    "ML": dict(
        beta=0.426647113161,
        se=0.11492296777,
        ci=(0.201402235335, 0.651891990987),
        sigma2=(0.174545144148, 0.111572324642),
        stats=(-74.7055994435, 273.183785973, 155.411198887, 163.226709445, 155.661198887),
        pi=(-0.645660552215, 1.49895477854),
        i2=(56.5839811479, 36.1694754959),
    ),
}


def check_fit(fit, ref):
    np.testing.assert_allclose(fit.beta[0], ref["beta"], rtol=1e-6)
    np.testing.assert_allclose(fit.se[0], ref["se"], rtol=1e-6)
    np.testing.assert_allclose([fit.ci_low[0], fit.ci_high[0]], ref["ci"], rtol=1e-6)
    np.testing.assert_allclose(fit.sigma2, ref["sigma2"], rtol=2e-6)
    got = (fit.loglik, fit.deviance, fit.AIC, fit.BIC, fit.AICc)
    np.testing.assert_allclose(got, ref["stats"], rtol=1e-9)
    np.testing.assert_allclose([fit.pi_low, fit.pi_high], ref["pi"], rtol=1e-6)
    np.testing.assert_allclose(fit.I2_levels, ref["i2"], rtol=1e-6)
    assert fit.I2 == pytest.approx(sum(ref["i2"]), rel=1e-6)
    assert fit.icc == pytest.approx(ref["sigma2"][0] / sum(ref["sigma2"]), rel=1e-5)
    assert fit.converged


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_konstantopoulos_against_metafor(kon, method):
    fit = fit_multilevel(kon.yi, kon.vi, kon.district, method=method)
    check_fit(fit, KON[method])
    # QE as rma.uni's: 578.864017958, p 1.79683030193e-88
    assert fit.QE == pytest.approx(578.864017958, rel=1e-10)
    assert fit.QE_p == pytest.approx(1.79683030193e-88, rel=1e-8)
    assert (fit.k, fit.n_clusters, fit.QE_df) == (56, 11, 55)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_assink_against_metafor(assink, method):
    fit = fit_multilevel(assink.yi, assink.vi, assink.study, method=method)
    check_fit(fit, ASSINK[method])
    assert fit.QE == pytest.approx(809.461128156, rel=1e-10)


def test_moderators_against_metafor(kon, assink):
    # rma.mv(yi, vi, mods = ~ I(year - 1990), random = ~ 1 | district/study, data = kon, ...)
    X = np.column_stack([np.ones(len(kon)), kon.year - 1990])
    fit = fit_multilevel(kon.yi, kon.vi, kon.district, X)
    np.testing.assert_allclose(fit.beta, [0.180718495449, 0.00531181826358], rtol=1e-6)
    np.testing.assert_allclose(fit.se, [0.0886862892958, 0.00943579392121], rtol=1e-6)
    np.testing.assert_allclose(fit.sigma2, [0.0722655907382, 0.0326501959069], rtol=2e-6)
    assert fit.loglik == pytest.approx(-7.24046677679, rel=1e-10)
    assert fit.QE == pytest.approx(550.259675495, rel=1e-10)
    np.testing.assert_allclose(fit.I2_levels, [65.7663805301, 29.713798593], rtol=1e-6)
    assert np.isnan(fit.pi_low)
    # rma.mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = assink, ...)
    fit = fit_multilevel(assink.yi, assink.vi, assink.study, deltype_design(assink))
    np.testing.assert_allclose(
        fit.beta, [-0.259406966866, 0.729655865798, 0.507764325438], rtol=1e-6
    )
    np.testing.assert_allclose(fit.se, [0.216852066003, 0.192313884013, 0.210603032974], rtol=1e-6)
    np.testing.assert_allclose(fit.sigma2, [0.189890565649, 0.0846878212487], rtol=2e-6)
    np.testing.assert_allclose((fit.loglik, fit.AICc), (-66.292016331, 143.243373321), rtol=1e-10)
    np.testing.assert_allclose(fit.I2_levels, [63.7978934657, 28.4527279142], rtol=1e-6)


def test_t_test_against_metafor(kon):
    """rma.mv(..., test = "t"): t(k - p = 55) for the coefficients and predict()."""
    fit = fit_multilevel(kon.yi, kon.vi, kon.district, test="t")
    assert fit.ddf == 55
    assert fit.ci_low[0] == pytest.approx(0.0152593158216, rel=1e-6)
    assert fit.pval[0] == pytest.approx(0.033205018795, rel=1e-6)
    np.testing.assert_allclose(
        [fit.pi_low, fit.pi_high], [-0.464511255232, 0.833937582577], rtol=1e-6
    )
    pr = fit.predict([[1.0]])
    assert pr["pi_low"][0] == pytest.approx(fit.pi_low, rel=1e-12)


def test_the_fit_is_the_maximum(kon):
    """No point near the estimate has a higher likelihood (the score is zero there)."""
    from hiermodels.numerics.multilevel import _Point, prepare

    y, v, X, g = prepare(kon.yi, kon.vi, kon.district)
    fit = fit_multilevel(kon.yi, kon.vi, kon.district)
    logdet_xx = float(np.linalg.slogdet(X.T @ X)[1])
    best = _Point(y, v, X, g, *fit.sigma2).loglik("REML", logdet_xx)
    for db in (-1e-4, 0, 1e-4):
        for dw in (-1e-4, 0, 1e-4):
            other = _Point(y, v, X, g, fit.sigma2[0] + db, fit.sigma2[1] + dw)
            assert other.loglik("REML", logdet_xx) <= best + 1e-12


def test_boundary_component_is_zero():
    """Identical effects within each cluster: the within-cluster variance is exactly 0 (a
    boundary maximum), the between-cluster one positive."""
    rng = np.random.default_rng(3)
    cl = np.repeat(np.arange(8), 3)
    y = np.repeat(rng.normal(0, 0.5, 8), 3)
    fit = fit_multilevel(y, np.full(24, 0.04), cl)
    assert fit.sigma2[1] == 0.0
    assert fit.sigma2[0] > 0
    assert fit.converged


def test_one_effect_per_cluster_is_the_two_level_model(kon):
    """Singleton clusters: only sigma2_b + sigma2_w is identified, and it is rma.uni's tau^2."""
    fit = fit_multilevel(kon.yi, kon.vi, kon.study)
    two = reml(kon.yi, np.sqrt(kon.vi))
    assert not fit.identified
    assert fit.sigma2.sum() == pytest.approx(two.tau2, rel=1e-7)
    assert fit.beta[0] == pytest.approx(two.mu, rel=1e-8)
    assert fit.se[0] == pytest.approx(two.mu_se, rel=1e-7)


def test_bad_arguments(kon):
    with pytest.raises(SpecError):
        fit_multilevel(kon.yi, kon.vi, kon.district, method="DL")
    with pytest.raises(ValueError, match="at least 2 clusters"):
        fit_multilevel(kon.yi, kon.vi, np.ones(len(kon)))
    with pytest.raises(ValueError, match="cluster"):
        fit_multilevel(kon.yi, kon.vi, kon.district[:5])


# -- the marginal likelihood of (tau_b, tau_w) -------------------------------------------


def dense_logml(y, v, cl, X, tb, tw, m=None, s=None):
    """log p(y | tau) from k x k matrices: restricted likelihood (flat prior on beta) or the
    normal density N(y | X m, V + X S X')."""
    k, p = X.shape
    V = np.diag(v + tw**2) + tb**2 * (cl[:, None] == cl[None, :])
    if s is not None:
        return stats.multivariate_normal(X @ m, V + X @ np.diag(np.square(s)) @ X.T).logpdf(y)
    Vi = np.linalg.inv(V)
    H = X.T @ Vi @ X
    P = Vi - Vi @ X @ np.linalg.solve(H, X.T @ Vi)
    return -0.5 * (
        (k - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(H)[1] + y @ P @ y
    )


def test_logml_against_dense_algebra(assink):
    d = assink.iloc[::-1]  # unsorted clusters
    y, v, cl, X = d.yi.to_numpy(), d.vi.to_numpy(), d.study.to_numpy(), deltype_design(d)
    tb, tw = np.array([0.0, 0.1, 0.5, 2.0]), np.array([0.3, 0.0, 0.25, 1.0])
    lik = MultilevelLikelihood(y, v, cl, X)
    want = [dense_logml(y, v, cl, X, b, w) for b, w in zip(tb, tw, strict=True)]
    np.testing.assert_allclose(lik.logml(tb, tw), want, rtol=1e-11)
    m, s = np.array([0.1, 0.2, -0.1]), np.array([0.5, 1.0, 2.0])
    lik = MultilevelLikelihood(y, v, cl, X, beta_mean=m, beta_sd=s)
    want = [dense_logml(y, v, cl, X, b, w, m, s) for b, w in zip(tb, tw, strict=True)]
    np.testing.assert_allclose(lik.logml(tb, tw), want, rtol=1e-11)


def test_logml_reduces_to_the_two_level_model(kon):
    """tau_b = 0: the two-level likelihood in tau_w; singleton clusters: in sqrt(tb^2 + tw^2)."""
    two = ConditionalModel(kon.yi, np.sqrt(kon.vi), None, 0.1, 0.5)
    tw = np.array([0.0, 0.05, 0.3, 1.5])
    lik = MultilevelLikelihood(kon.yi, kon.vi, kon.district, beta_mean=0.1, beta_sd=0.5)
    np.testing.assert_allclose(
        lik.logml(np.zeros(4), tw), two.conditional(tw)[0] + two.log_const, rtol=1e-12
    )
    tb = np.array([0.2, 0.0, 0.1, 0.7])
    lik = MultilevelLikelihood(kon.yi, kon.vi, kon.study, beta_mean=0.1, beta_sd=0.5)
    np.testing.assert_allclose(
        lik.logml(tb, tw), two.conditional(np.hypot(tb, tw))[0] + two.log_const, rtol=1e-12
    )


# -- the exact posterior -------------------------------------------------------------------


def test_fixed_component_matches_the_exact_two_level_engine(kon):
    prior = half_cauchy(0.5)
    post = multilevel_posterior(kon.yi, kon.vi, kon.district, tau_priors=(0.0, prior))
    two = exact_posterior(kon.yi, np.sqrt(kon.vi), tau_logprior=prior)
    s, t = post.beta_summary(), two.beta_summary()
    for key in ("mean", "sd", "median", "lower", "upper"):
        np.testing.assert_allclose(s[key], t[key], rtol=1e-7)
    s, t = post.tau_summary()["within"], two.tau_summary()
    for key in ("mean", "sd", "median", "lower", "upper"):
        assert s[key] == pytest.approx(t[key], rel=1e-6)
    np.testing.assert_allclose(post.theta_moments()["mean"], two.theta_moments()["mean"], rtol=1e-7)
    np.testing.assert_allclose(post.theta_moments()["sd"], two.theta_moments()["sd"], rtol=1e-6)
    # singleton clusters with tau_w fixed at 0: tau_b is the two-level tau
    post = multilevel_posterior(kon.yi, kon.vi, kon.study, tau_priors=(prior, 0.0))
    assert post.tau_summary()["between"]["median"] == pytest.approx(
        two.tau_summary()["median"], rel=1e-6
    )
    np.testing.assert_allclose(post.beta_summary()["sd"], two.beta_summary()["sd"], rtol=1e-7)


@pytest.fixture(scope="module")
def kon_post(kon):
    return multilevel_posterior(
        kon.yi,
        kon.vi,
        kon.district,
        tau_priors=(half_normal(0.5), half_normal(0.5)),
        beta_prior=(0.0, 1.0),
    )


def test_posterior_against_brute_force_grid(kon, kon_post):
    """A dense uniform grid in (tau_b, tau_w) itself (not log tau), trapezoid rule, with the
    likelihood from dense k x k matrices on a coarser check."""
    lik = MultilevelLikelihood(kon.yi, kon.vi, kon.district, beta_mean=0.0, beta_sd=1.0)
    t = np.linspace(0, 1.6, 801)  # both half-normal(0.5) priors: e^-5 beyond 1.6
    tb, tw = np.meshgrid(t, t, indexing="ij")
    ll, mean, cov = lik.conditional(tb.ravel(), tw.ravel())
    logd = ll + half_normal(0.5)(tb.ravel()) + half_normal(0.5)(tw.ravel())
    w1 = np.full(t.size, t[1])
    w1[[0, -1]] /= 2
    w = (w1[:, None] * w1[None, :]).ravel() * np.exp(logd - logd.max())
    w /= w.sum()
    s = kon_post.tau_summary()
    assert s["between"]["mean"] == pytest.approx(w @ tb.ravel(), rel=1e-4)
    assert s["within"]["mean"] == pytest.approx(w @ tw.ravel(), rel=1e-4)
    bmean = w @ mean[:, 0]
    bvar = w @ (cov[:, 0, 0] + (mean[:, 0] - bmean) ** 2)
    mom = kon_post.beta_moments()
    assert mom["mean"][0] == pytest.approx(bmean, rel=1e-5)
    assert mom["cov"][0, 0] == pytest.approx(bvar, rel=1e-4)
    for i, name in enumerate(("between", "within")):
        marg = w.reshape(t.size, t.size).sum(axis=1 - i)
        cdf = np.cumsum(marg) - marg / 2
        for q in (0.1, 0.5, 0.9):
            assert kon_post.quantile_tau(q, name)[0] == pytest.approx(
                np.interp(q, cdf, t), rel=2e-3
            )
    # the grid density itself: at the posterior's nodes, the normalised density agrees
    i, j = np.unravel_index(np.argmax(kon_post.density), kon_post.density.shape)
    b, wv = kon_post.tau_b_grid[i], kon_post.tau_w_grid[j]
    dens = np.exp(
        lik.conditional([b], [wv])[0] + half_normal(0.5)(b) + half_normal(0.5)(wv) - logd.max()
    )
    z = (w1[:, None] * w1[None, :]).ravel() @ np.exp(logd - logd.max())
    assert kon_post.density[i, j] == pytest.approx(dens[0] / z, rel=1e-4)
    # the dense-matrix likelihood at a few grid points
    d = kon
    for b, wv in [(0.1, 0.2), (0.3, 0.05)]:
        want = dense_logml(
            d.yi.to_numpy(),
            d.vi.to_numpy(),
            d.district.to_numpy(),
            np.ones((len(d), 1)),
            b,
            wv,
            np.zeros(1),
            np.ones(1),
        )
        assert lik.logml([b], [wv])[0] == pytest.approx(want, rel=1e-11)


def test_grid_edges_carry_no_mass(kon_post, kon):
    # in log tau, where the grid is uniform (in tau the density need not vanish at 0)
    d = kon_post.density * np.outer(kon_post.tau_b_grid, kon_post.tau_w_grid)
    peak = d.max()
    assert d[0].max() < 1e-8 * peak and d[-1].max() < 1e-8 * peak
    assert d[:, 0].max() < 1e-8 * peak and d[:, -1].max() < 1e-8 * peak
    assert kon_post.converged
    # a coarser fixed grid over the same data gives the same answers
    coarse = multilevel_posterior(
        kon.yi,
        kon.vi,
        kon.district,
        tau_priors=(half_normal(0.5), half_normal(0.5)),
        beta_prior=(0.0, 1.0),
        grid_size=129,
    )
    assert coarse.beta_moments()["mean"][0] == pytest.approx(
        kon_post.beta_moments()["mean"][0], rel=1e-6
    )


def test_draws_reproduce_the_grid_moments(kon_post):
    n = 40_000
    dr = kon_post.draw(n, np.random.default_rng(20260916))
    s = kon_post.tau_summary()
    for key, name in (("tau_b", "between"), ("tau_w", "within")):
        mcse = s[name]["sd"] / np.sqrt(n)
        assert abs(dr[key].mean() - s[name]["mean"]) < 4 * mcse
        assert dr[key].std() == pytest.approx(s[name]["sd"], rel=0.03)
    mom = kon_post.beta_moments()
    sd = np.sqrt(mom["cov"][0, 0])
    assert abs(dr["beta"][:, 0].mean() - mom["mean"][0]) < 4 * sd / np.sqrt(n)
    assert dr["beta"][:, 0].std() == pytest.approx(sd, rel=0.03)
    for key, mom in (("u", kon_post.cluster_moments()), ("theta", kon_post.theta_moments())):
        assert dr[key].shape[1] == mom["mean"].size
        z = (dr[key].mean(axis=0) - mom["mean"]) / (mom["sd"] / np.sqrt(n))
        assert np.abs(z).max() < 4.5
        np.testing.assert_allclose(dr[key].std(axis=0), mom["sd"], rtol=0.04)


def test_shrinkage_is_between_0_and_1(kon_post):
    for mom in (kon_post.cluster_moments(), kon_post.theta_moments()):
        assert ((mom["shrinkage"] > 0) & (mom["shrinkage"] < 1)).all()


def test_improper_prior_is_an_error(kon):
    with pytest.raises(ImproperPosteriorError):
        multilevel_posterior(
            kon.yi, kon.vi, kon.district, tau_priors=(lambda t: -np.log(t), half_normal(0.5))
        )
