"""Heterogeneity by every estimator, coefficients, the moderator test, predictions,
back-transforms and posterior probabilities, from the public API on the shipped data.

metafor numbers: R 4.2.2, metafor 3.8.1, with dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos,
di=cneg, data=dat.bcg) and exact <- list(threshold=1e-12, tol=1e-12, maxiter=10000) (the calls
of tests/data/metafor_reference.R). Where a number is already checked against metafor in
tests/numerics, the test names the place it comes from.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import hiermodels as hm

DATA = Path(__file__).resolve().parents[1] / "data"
R10 = 1e-8
CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)


@pytest.fixture(scope="module")
def meta(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial", random_seed=11)


@pytest.fixture(scope="module")
def ablat(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial", moderators="ablat")


# tests/numerics/test_estimators.py, EXACT (rma(yi, vi, data=dat, method=m, control=exact),
# metafor 3.8.1): tau2, mu, se, I2, H2 on the BCG log risk ratios
BCG_METHODS = {
    "EE": (0, -0.4302851637, 0.04049875171, 92.11734685, 12.68608401),
    "DL": (0.3087602629, -0.7141172221, 0.1787420895, 92.11734685, 12.68608401),
    "HE": (0.328563858, -0.7158785888, 0.183279986, 92.55709741, 13.43561853),
    "HS": (0.2283628637, -0.7045353739, 0.1586520931, 89.62996666, 9.643170544),
    "SJ": (0.3455157016, -0.7172485926, 0.1870594584, 92.8963241, 14.0772188),
    "PM": (0.3180684522, -0.7149681535, 0.1808921915, 92.33033795, 13.03838414),
    "EB": (0.3180684522, -0.7149681535, 0.1808921915, 92.33033795, 13.03838414),
    "ML": (0.2800281373, -0.7111991355, 0.1718968088, 91.37828379, 11.59861883),
    "REML": (0.3132432581, -0.7145323422, 0.1797815161, 92.22138452, 12.85575824),
}


def test_heterogeneity_rows_for_every_method_match_metafor(meta):
    table = meta.heterogeneity(["bayes", *BCG_METHODS])
    assert list(table.index) == ["bayes", *BCG_METHODS]
    for method, expected in BCG_METHODS.items():
        row = table.loc[method]
        got = [row["tau2"], row["mu"], row["mu_se"], row["I2"], row["H2"]]
        np.testing.assert_allclose(got, expected, rtol=R10, atol=1e-14, err_msg=method)
        # z intervals around each estimate
        half = stats.norm.ppf(0.975) * row["mu_se"]
        assert row["ci_high"] - row["mu"] == pytest.approx(half, rel=1e-12)
    # Cochran's Q is the data's: metafor QE = 152.2330081 on 12 df in every row
    np.testing.assert_allclose(table["Q"], 152.2330081, rtol=R10)
    assert (table["Q_df"] == 12).all()
    # the old default columns are all still there, in the old order first
    old = ["mu", "mu_se", "ci_low", "ci_high", "tau2", "tau", "I2", "H2", "Q", "Q_df"]
    old += ["Q_pvalue", "pi_low", "pi_high"]
    assert list(meta.heterogeneity().columns[: len(old)]) == old
    assert list(meta.heterogeneity().index) == ["bayes", "REML", "DL"]


def test_q_profile_intervals(meta):
    # tests/numerics/test_inference.py::test_q_profile_interval_published_for_dl:
    # confint(rma(yi, vi, data=dat, method="DL"), control=list(tol=1e-12)), metafor 3.8.1:
    # tau2 [0.1197183611, 1.111479084], I2 [81.92057456, 97.67807496],
    # H2 [5.531149224, 43.06771243]. The Q-profile limits do not depend on the estimator.
    table = meta.heterogeneity(["DL", "REML", "PM", "EE"])
    for method in ("DL", "REML", "PM"):
        row = table.loc[method]
        got = [row[f"{q}_ci_{s}"] for q in ("tau2", "I2", "H2") for s in ("low", "high")]
        expected = [0.1197183611, 1.111479084, 81.92057456, 97.67807496]
        expected += [5.531149224, 43.06771243]
        np.testing.assert_allclose(got, expected, rtol=R10, err_msg=method)
    assert table.loc["EE", ["tau2_ci_low", "tau2_ci_high"]].isna().all()
    # a 90% interval is narrower
    narrow = meta.heterogeneity(["REML"], prob=0.9).loc["REML"]
    assert table.loc["REML", "tau2_ci_low"] < narrow["tau2_ci_low"]
    assert narrow["tau2_ci_high"] < table.loc["REML", "tau2_ci_high"]


def test_knapp_hartung_on_raudenbush1985():
    # tests/numerics/test_inference.py::test_knapp_hartung_published_raudenbush1985:
    # rma(yi, vi, data=dat.raudenbush1985, test="knha", control=exact), metafor 3.8.1: mu
    # 0.08370124188, se 0.06157931947, t 1.359242723, p 0.1908569918, CI [-0.04567210761,
    # 0.2130745914]; predict(res): PI [-0.2322085639, 0.3996110477]. Raudenbush (2009),
    # Table 16.3: 0.0837, se 0.0616, CI [-0.0457, 0.2131].
    rau = pd.read_csv(DATA / "raudenbush1985.csv")
    meta = hm.meta_analysis(rau, estimate="yi", vi="vi", study="study")
    row = meta.heterogeneity(["REML"], test="knha").loc["REML"]
    np.testing.assert_allclose(
        [row["mu"], row["mu_se"], row["ci_low"], row["ci_high"], row["pi_low"], row["pi_high"]],
        [0.08370124188, 0.06157931947, -0.04567210761, 0.2130745914, -0.2322085639, 0.3996110477],
        rtol=R10,
    )
    coef = meta.coefficients(test="knha").loc["mu"]
    np.testing.assert_allclose(
        [coef["estimate"], coef["stat"], coef["pvalue"]],
        [0.08370124188, 1.359242723, 0.1908569918],
        rtol=R10,
    )
    assert meta.coefficients(test="knha").attrs["df"] == 18


# tests/numerics/test_inference.py, ABLAT: rma(yi, vi, mods=~ablat, data=dat, test=test,
# control=exact), metafor 3.8.1: (estimate, se, stat, pval, ci.lb, ci.ub) for intercept and
# ablat; QM, QMp; predict(res, newmods=c(10, 50)): pred, se, ci.lb, ci.ub, pi.lb, pi.ub
ABLAT = {
    "z": {
        "Intercept": (0.25146821, 0.2490953966, 1.009525722, 0.3127225723, -0.2367497961),
        "ablat": (-0.02910172501, 0.007195327221, -4.044531141, 5.242793974e-05, -0.04320430722),
        "QM": (16.35823215, 5.242793974e-05),
        "predict": {
            "mean": (-0.03954904011, -1.203618041),
            "se": (0.1866066679, 0.1716439446),
            "ci_low": (-0.4052913885, -1.54003399),
            "ci_high": (0.3261933083, -0.8672020911),
            "pi_low": (-0.6930435121, -1.841162745),
            "pi_high": (0.6139454319, -0.5660733357),
        },
    },
    "knha": {
        "Intercept": (0.25146821, 0.2839252837, 0.8856844543, 0.3947370724, -0.3734471261),
        "ablat": (-0.02910172501, 0.008201417411, -3.5483775, 0.004565051542, -0.04715292303),
        "QM": (12.59098288, 0.004565051542),
        "predict": {
            "mean": (-0.03954904011, -1.203618041),
            "se": (0.2126990376, 0.1956441441),
            "ci_low": (-0.5076964655, -1.634227898),
            "ci_high": (0.4285983852, -0.7730081828),
            "pi_low": (-0.8070235852, -1.948789172),
            "pi_high": (0.727925505, -0.4584469092),
        },
    },
}


@pytest.mark.parametrize("test", ["z", "knha"])
def test_coefficients_moderator_test_and_predict_match_metafor(ablat, test):
    expected = ABLAT[test]
    table = ablat.coefficients(test=test)
    assert list(table.index) == ["Intercept", "ablat"]
    for name in ("Intercept", "ablat"):
        got = table.loc[name, ["estimate", "se", "stat", "pvalue", "ci_low"]]
        np.testing.assert_allclose(got.to_numpy(float), expected[name], rtol=R10)
    qm = ablat.moderator_test(test=test)
    np.testing.assert_allclose([qm["QM"], qm["pvalue"]], expected["QM"], rtol=R10)
    if test == "knha":
        assert (qm["df1"], qm["df2"]) == (1, 11)
    else:
        assert qm["df"] == 1
    # metafor: QE = 30.73309001 on 11 df (residual heterogeneity)
    assert qm["QE"] == pytest.approx(30.73309001, rel=R10) and qm["QE_df"] == 11
    pred = ablat.predict(pd.DataFrame({"ablat": [10, 50]}), test=test)
    assert list(pred["ablat"]) == [10, 50]
    for column, values in expected["predict"].items():
        np.testing.assert_allclose(pred[column], values, rtol=R10, err_msg=column)
    # a dict works as well as a frame
    pd.testing.assert_frame_equal(ablat.predict({"ablat": [10, 50]}, test=test), pred)


def test_bayes_coefficients_and_predictions_are_the_exact_posterior(ablat):
    exact = ablat.exact
    table = ablat.coefficients("bayes")
    summary = ablat.summary()
    np.testing.assert_allclose(table["estimate"], summary.loc[["Intercept", "ablat"], "mean"])
    np.testing.assert_allclose(table["ci_high"], summary.loc[["Intercept", "ablat"], "ci_high"])
    assert table.loc["ablat", "prob_negative"] == pytest.approx(exact.cdf_beta(0.0, index=1))
    assert table.loc["ablat", "prob_negative"] > 0.99  # the slope is negative (metafor p 5e-5)
    np.testing.assert_allclose(table["prob_positive"] + table["prob_negative"], 1.0)
    pred = ablat.predict(pd.DataFrame({"ablat": [10, 50]}), method="bayes")
    columns = ["ablat", "mean", "sd", "median", "ci_low", "ci_high", "pi_low", "pi_high"]
    assert list(pred.columns) == columns
    # against the draws: x' beta and theta_new = x' beta + tau z per draw
    beta = np.column_stack([ablat.draws(n).ravel() for n in ("Intercept", "ablat")])
    tau = ablat.draws("tau").ravel()
    rng = np.random.default_rng(5)
    for i, x in enumerate([10, 50]):
        lin = beta @ [1.0, x]
        new = lin + tau * rng.standard_normal(lin.size)
        assert abs(lin.mean() - pred.loc[i, "mean"]) < 4 * pred.loc[i, "sd"] / np.sqrt(lin.size)
        # quantiles within a few Monte Carlo se's (4000 independent draws)
        for q, col in ((0.025, "pi_low"), (0.975, "pi_high")):
            assert abs(np.mean(new <= pred.loc[i, col]) - q) < 4 * np.sqrt(q * (1 - q) / 4000)
        for q, col in ((0.025, "ci_low"), (0.975, "ci_high")):
            assert abs(np.mean(lin <= pred.loc[i, col]) - q) < 4 * np.sqrt(q * (1 - q) / 4000)
    # the Bayesian intervals sit near the REML ones (flat mu prior, 13 studies)
    reml = ablat.predict(pd.DataFrame({"ablat": [10, 50]}))
    np.testing.assert_allclose(pred["mean"], reml["mean"], atol=0.05)


def test_bayes_heterogeneity_row(meta):
    row = meta.heterogeneity().loc["bayes"]
    tau = meta.summary().loc["tau"]
    assert row["tau2"] == pytest.approx(tau["mean"] ** 2 + tau["sd"] ** 2)
    assert row["tau2_ci_low"] == pytest.approx(tau["ci_low"] ** 2, rel=1e-12)
    assert row["tau2_ci_high"] == pytest.approx(tau["ci_high"] ** 2, rel=1e-12)
    # I2 per draw: its equal-tailed interval from the draws agrees with the exact one
    s2 = row["tau2"] * (100 - row["I2"]) / row["I2"]  # the typical within-study variance
    i2 = 100 * meta.draws("tau").ravel() ** 2 / (meta.draws("tau").ravel() ** 2 + s2)
    for q, col in ((0.025, "I2_ci_low"), (0.975, "I2_ci_high")):
        assert abs(np.mean(i2 <= row[col]) - q) < 4 * np.sqrt(q * (1 - q) / i2.size)
    t2 = meta.draws("tau").ravel() ** 2
    assert abs(t2.std() - row["tau2_se"]) < 0.1 * row["tau2_se"]
    assert row["pi_low"] == meta.summary().loc["theta_new", "ci_low"]


def _bcg_posterior_mass(meta, fun):
    """E[fun(tau, m(tau), s(tau)) | y] by quadrature over tau, where mu | tau, y ~
    Normal(m, s) under the flat mu prior (BDA3 eqs. 5.20-5.21)."""
    y, v = meta.data.y, meta.data.se**2

    def parts(t):
        w = 1 / (v + t**2)
        s2 = 1 / w.sum()
        m = s2 * (w * y).sum()
        # log p(tau | y) up to a constant: prior + marginal likelihood (BDA3 eq. 5.21)
        log = meta.tau_prior.logpdf(np.array([t]))[0]
        log += 0.5 * np.log(s2) + 0.5 * np.log(w).sum() - 0.5 * (w * (y - m) ** 2).sum()
        return np.exp(log + 12.0), m, np.sqrt(s2)  # shifted to keep the numbers near 1

    def dens(t):
        return parts(t)[0]

    def weighted(t):
        p, m, s = parts(t)
        return p * fun(t, m, s)

    opts = {"limit": 400, "epsabs": 0, "epsrel": 1e-11}
    norm = sum(integrate.quad(dens, a, b, **opts)[0] for a, b in ((0, 1), (1, 5), (5, np.inf)))
    mass = sum(integrate.quad(weighted, a, b, **opts)[0] for a, b in ((0, 1), (1, 5), (5, np.inf)))
    return mass / norm


def test_probabilities_are_the_exact_posterior_mass(meta):
    p = meta.probability("mu < 0")
    # a direct numerical integral of P(mu < 0 | tau, y) over p(tau | y)
    direct = _bcg_posterior_mass(meta, lambda t, m, s: stats.norm.cdf(-m / s))
    assert p == pytest.approx(direct, rel=1e-6)
    assert 0.99 < p < 1
    # and the draws agree within Monte Carlo error
    draws = meta.draws("mu").ravel()
    assert abs(np.mean(draws < 0) - p) < 4 * np.sqrt(p * (1 - p) / draws.size) + 1 / draws.size
    # other quantities and operators
    assert meta.probability("mu >= 0") == pytest.approx(1 - p, abs=1e-15)
    assert meta.prob_above(-0.5) == pytest.approx(meta.probability("mu > -0.5"))
    tau_p = meta.probability("tau < 0.4")
    direct = _bcg_posterior_mass(meta, lambda t, m, s: float(t < 0.4))
    assert tau_p == pytest.approx(direct, abs=1e-6)
    new_p = meta.probability("theta_new > 0")
    direct = _bcg_posterior_mass(meta, lambda t, m, s: stats.norm.sf(-m / np.sqrt(s**2 + t**2)))
    assert new_p == pytest.approx(direct, rel=1e-6)
    assert meta.prob_above(0, of="theta_new") == pytest.approx(new_p)
    assert new_p > 1 - p  # a new study's effect is more uncertain than the mean
    assert meta.probability("  mu<=-0.7145 ") == pytest.approx(
        meta.exact.cdf_beta(-0.7145), rel=1e-14
    )


def test_probability_of_a_coefficient(ablat):
    assert ablat.probability("ablat < 0") == pytest.approx(ablat.exact.cdf_beta(0.0, index=1))
    # mu is the intercept of a meta-regression
    assert ablat.probability("mu > 0") == ablat.probability("Intercept > 0")


def test_transform_exp_gives_exp_of_the_bounds(meta):
    plain, rr = meta.summary(), meta.summary(transform="exp")
    assert list(rr.index) == ["mu", "theta_new"]
    assert list(rr.columns) == ["median", "ci_low", "ci_high"]
    for col in ("median", "ci_low", "ci_high"):
        np.testing.assert_allclose(rr[col], np.exp(plain.loc[["mu", "theta_new"], col]))
    het, het_rr = meta.heterogeneity(), meta.heterogeneity(transform="exp")
    assert "mu_se" not in het_rr.columns
    for col in ("ci_low", "ci_high", "pi_low", "pi_high"):
        np.testing.assert_allclose(het_rr[col], np.exp(het[col]), rtol=1e-14)
    np.testing.assert_allclose(
        het_rr.loc[["REML", "DL"], "mu"], np.exp(het.loc[["REML", "DL"], "mu"])
    )
    # the Bayesian point estimate on the ratio scale is the posterior median's transform
    assert het_rr.loc["bayes", "mu"] == pytest.approx(np.exp(plain.loc["mu", "median"]))
    np.testing.assert_allclose(het_rr["tau2"], het["tau2"])  # scales are left alone
    # metafor 3.8.1 (R 4.2.2): predict(rma(yi, vi, data=dat), transf=exp) prints
    # pred 0.489421, ci 0.344074 0.696166, pi 0.154634 1.549028
    np.testing.assert_allclose(
        het_rr.loc["REML", ["mu", "ci_low", "ci_high", "pi_low", "pi_high"]].to_numpy(float),
        [0.489421, 0.344074, 0.696166, 0.154634, 1.549028],
        atol=1e-6,
    )
    effects, eff_rr = meta.study_effects(), meta.study_effects(transform=np.exp)
    for col in ("estimate", "median", "ci_low", "ci_high"):
        np.testing.assert_allclose(eff_rr[col], np.exp(effects[col]), rtol=1e-14)
    assert not {"se", "mean", "sd"} & set(eff_rr.columns)
    # an interval on the correlation scale
    z = meta.summary(transform="tanh")
    np.testing.assert_allclose(z["ci_low"], np.tanh(plain.loc[["mu", "theta_new"], "ci_low"]))


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_mcmc_engine_reports_from_its_draws(mock_pymc_sample, bcg, meta):
    fit = hm.meta_analysis(
        bcg, estimate="yi", vi="vi", study="trial", method="mcmc", draws=30, chains=2
    )
    assert fit.exact is None
    table = fit.heterogeneity(["bayes", "REML", "DL"])
    # classical rows never depend on the engine
    pd.testing.assert_frame_equal(table.loc[["REML", "DL"]], meta.heterogeneity(["REML", "DL"]))
    tau = fit.draws("tau").ravel()
    assert table.loc["bayes", "tau2"] == pytest.approx(np.mean(tau**2))
    assert table.loc["bayes", "tau2_ci_high"] == pytest.approx(np.quantile(tau, 0.975) ** 2)
    mu = fit.draws("mu").ravel()
    assert fit.probability("mu < 0") == pytest.approx(np.mean(mu < 0))
    assert fit.probability("tau > 0.2") == pytest.approx(np.mean(tau > 0.2))
    coef = fit.coefficients("bayes").loc["mu"]
    assert coef["estimate"] == pytest.approx(mu.mean())
    assert coef["prob_negative"] == pytest.approx(np.mean(mu <= 0))
    pred = fit.predict(method="bayes")
    assert pred.loc[0, "mean"] == pytest.approx(mu.mean())
    assert len(fit.influence()) == 13 and len(fit.cumulative("year")) == 13
