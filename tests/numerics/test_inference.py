"""Meta-regression inference against metafor 3.8.1 (R 4.2.2) and published numbers.

Unless a test says otherwise the R calls are in tests/data/metafor_reference.R, with
dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg) and
exact <- list(threshold=1e-12, tol=1e-12, maxiter=10000), printed to 10 significant digits.
"""

import numpy as np
import pytest
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.estimators import generalized_q
from hiermodels.numerics.inference import (
    coefficients,
    confint_tau2,
    fit_random_effects,
    fit_stats,
    predict,
)

R10 = 1e-8


@pytest.fixture(scope="module")
def bcg(bcg_rr):
    y, v, X, year = bcg_rr
    return y, np.sqrt(v), X, year


def test_knapp_hartung_published_raudenbush1985(raudenbush):
    # Raudenbush (2009), Table 16.3, as in metafor's test suite
    # (test_analysis_example_raudenbush2009.r): REML, test="knha": mu 0.0837, se 0.0616,
    # t 1.3593, CI [-0.0457, 0.2131]
    y, v = raudenbush
    fit = fit_random_effects(y, np.sqrt(v), test="knha")
    assert (fit.test, fit.ddf) == ("knha", 18)
    np.testing.assert_allclose(
        [fit.beta[0], fit.se[0], fit.stat[0], fit.ci_low[0], fit.ci_high[0]],
        [0.0837, 0.0616, 1.3593, -0.0457, 0.2131],
        atol=1e-4,  # t is 1.35924 at the exact REML optimum, 1.3593 at metafor's default stop
    )
    # rma(yi, vi, data=dat.raudenbush1985, test="knha", control=exact): beta, se, tval, pval,
    # ci.lb, ci.ub, QM, QMp; predict(res): pi.lb, pi.ub
    np.testing.assert_allclose(
        [fit.beta[0], fit.se[0], fit.stat[0], fit.pval[0], fit.ci_low[0], fit.ci_high[0]],
        [0.08370124188, 0.06157931947, 1.359242723, 0.1908569918, -0.04567210761, 0.2130745914],
        rtol=R10,
    )
    assert (fit.QM, fit.QM_df, fit.QM_p) == (
        pytest.approx(1.84754078, rel=R10),
        (1, 18),
        pytest.approx(0.1908569918, rel=R10),
    )
    pr = predict(fit)
    np.testing.assert_allclose(
        [pr.pi_low[0], pr.pi_high[0]], [-0.2322085639, 0.3996110477], rtol=R10
    )
    # by hand: s2w = y'Py / (k - 1) scales the variance; t(18) quantile
    w = 1 / (v + fit.tau2)
    s2w = generalized_q(y, v, np.ones((19, 1)), fit.tau2) / 18
    assert fit.s2w == pytest.approx(s2w, rel=1e-12)
    assert fit.se[0] == pytest.approx(np.sqrt(s2w / w.sum()), rel=1e-12)
    half = stats.t.ppf(0.975, 18) * np.sqrt(fit.se[0] ** 2 + fit.tau2)
    assert pr.pi_high[0] == pytest.approx(fit.beta[0] + half, rel=1e-12)


# rma(yi, vi, mods=~ablat, data=dat, test=test, control=exact): beta, se, zval/tval, pval,
# ci.lb, ci.ub (intercept, ablat each); QM, QMp; predict(res, newmods=c(10, 50)): pred, se,
# ci.lb, ci.ub, pi.lb, pi.ub
ABLAT = {
    "z": (
        [
            0.25146821,
            -0.02910172501,
            0.2490953966,
            0.007195327221,
            1.009525722,
            -4.044531141,
            0.3127225723,
            5.242793974e-05,
            -0.2367497961,
            -0.04320430722,
            0.7396862161,
            -0.0149991428,
        ],
        (16.35823215, 5.242793974e-05),
        [
            -0.03954904011,
            -1.203618041,
            0.1866066679,
            0.1716439446,
            -0.4052913885,
            -1.54003399,
            0.3261933083,
            -0.8672020911,
            -0.6930435121,
            -1.841162745,
            0.6139454319,
            -0.5660733357,
        ],
    ),
    "knha": (
        [
            0.25146821,
            -0.02910172501,
            0.2839252837,
            0.008201417411,
            0.8856844543,
            -3.5483775,
            0.3947370724,
            0.004565051542,
            -0.3734471261,
            -0.04715292303,
            0.8763835461,
            -0.011050527,
        ],
        (12.59098288, 0.004565051542),
        [
            -0.03954904011,
            -1.203618041,
            0.2126990376,
            0.1956441441,
            -0.5076964655,
            -1.634227898,
            0.4285983852,
            -0.7730081828,
            -0.8070235852,
            -1.948789172,
            0.727925505,
            -0.4584469092,
        ],
    ),
}


@pytest.mark.parametrize("test", ["z", "knha"])
def test_meta_regression_table_qm_and_predict_match_metafor(bcg, test):
    y, se, X, _ = bcg
    fit = fit_random_effects(y, se, X, test=test)
    table, (qm, qm_p), pred = ABLAT[test]
    got = coefficients(fit)
    stat = "tval" if test == "knha" else "zval"
    keys = ("estimate", "se", stat, "pval", "ci.lb", "ci.ub")
    np.testing.assert_allclose(np.concatenate([got[k] for k in keys]), table, rtol=R10)
    assert fit.btt == (1,)
    assert fit.QM_df == ((1, 11) if test == "knha" else (1,))
    np.testing.assert_allclose([fit.QM, fit.QM_p], [qm, qm_p], rtol=R10)
    pr = predict(fit, [10, 50])
    parts = (pr.pred, pr.se, pr.ci_low, pr.ci_high, pr.pi_low, pr.pi_high)
    np.testing.assert_allclose(np.concatenate(parts), pred, rtol=R10)
    # one moderator: QM is the squared z (or t) of its coefficient
    assert fit.QM == pytest.approx(fit.stat[1] ** 2, rel=1e-12)


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        # rma(yi, vi, mods=~ablat+year, data=dat, test=test, control=exact): QM, QMp, and
        # anova(res, btt=3)$QM; metafor 3.8.1
        ("z", (12.20448688, 0.002237841621, 0.01687524235)),
        ("knha", (4.964947556, 0.03180350129, 0.01373014598)),
    ],
)
def test_omnibus_test_of_two_moderators(bcg, test, expected):
    y, se, X, year = bcg
    X3 = np.column_stack([X, year])
    fit = fit_random_effects(y, se, X3, test=test)
    assert fit.QM_df == ((2, 10) if test == "knha" else (2,))
    one = fit_random_effects(y, se, X3, test=test, btt=[2])
    np.testing.assert_allclose([fit.QM, fit.QM_p, one.QM], expected, rtol=R10)


def test_predict_newmods_shapes_and_errors(bcg):
    y, se, X, _ = bcg
    fit = fit_random_effects(y, se, X)
    a = predict(fit, [[10], [50]])
    np.testing.assert_allclose(a.pred, predict(fit, [10, 50]).pred, rtol=1e-15)
    np.testing.assert_allclose(predict(fit).pred, X @ fit.beta, rtol=1e-15)  # fitted values
    with pytest.raises(SpecError, match="newmods must be finite with 1 column"):
        predict(fit, [[10, 1]])
    plain = fit_random_effects(y, se)
    with pytest.raises(SpecError, match="no moderators"):
        predict(plain, [1.0])
    # intercept only: the pooled effect, its CI and the prediction interval
    pr = predict(plain)
    half = stats.norm.ppf(0.975) * np.sqrt(plain.se[0] ** 2 + plain.tau2)
    np.testing.assert_allclose([pr.pi_low[0], pr.pi_high[0]], plain.beta[0] + [-half, half])


def test_q_profile_interval_published_for_dl(bcg):
    # metafor's test suite (test_misc_confint.r): res <- rma(yi, vi, data=dat, method="DL");
    # confint(res): tau^2 0.3088 [0.1197, 1.1115], I^2 92.1173 [81.9177, 97.6781],
    # H^2 12.6861 [5.5303, 43.0680]. The Q-profile limits do not depend on the estimator,
    # only the estimate does: REML gives the same interval around 0.3132.
    y, se, _, _ = bcg
    ci = confint_tau2(fit_random_effects(y, se, method="DL"))
    np.testing.assert_allclose(ci.tau2, [0.3088, 0.1197, 1.1115], atol=5e-5)
    # metafor's tolerance is .01 relative here: I^2's lower limit prints as 81.9177 but is
    # 81.92057 when the root is found exactly (below)
    np.testing.assert_allclose(ci.I2, [92.1173, 81.9177, 97.6781], atol=5e-3)
    np.testing.assert_allclose(ci.H2, [12.6861, 5.5303, 43.0680], atol=2e-3)
    # confint(res, control=list(tol=1e-12)), metafor 3.8.1: tau2, tau, I2, H2 (est, lb, ub)
    exact = [0.3087602629, 0.1197183611, 1.111479084, 0.5556620042, 0.346003412, 1.054267084]
    exact += [92.11734685, 81.92057456, 97.67807496, 12.68608401, 5.531149224, 43.06771243]
    np.testing.assert_allclose([*ci.tau2, *ci.tau, *ci.I2, *ci.H2], exact, rtol=R10)
    reml = confint_tau2(fit_random_effects(y, se))
    np.testing.assert_allclose(reml.tau2[1:], ci.tau2[1:], rtol=1e-14)
    # metafor-free: the limits solve Q(tau^2) = chi^2 quantiles with 12 df
    v = se**2
    ones = np.ones((13, 1))
    assert generalized_q(y, v, ones, ci.tau2[1]) == pytest.approx(stats.chi2.isf(0.025, 12))
    assert generalized_q(y, v, ones, ci.tau2[2]) == pytest.approx(stats.chi2.ppf(0.025, 12))


def test_q_profile_with_moderator_and_at_zero(bcg):
    y, se, X, _ = bcg
    # confint(rma(yi, vi, mods=~ablat, data=dat), control=list(tol=1e-12)): 0.01668006832,
    # 0.7848352546; metafor 3.8.1
    ci = confint_tau2(fit_random_effects(y, se, X))
    np.testing.assert_allclose(ci.tau2[1:], [0.01668006832, 0.7848352546], rtol=R10)
    # homogeneous data: Q(0) below the lower quantile, so both limits are 0 (metafor's
    # "null" interval)
    ci = confint_tau2(fit_random_effects([0.1, 0.12, 0.09, 0.11], [0.2, 0.3, 0.25, 0.2]))
    assert ci.tau2 == (0.0, 0.0, 0.0) and ci.I2[1:] == (0.0, 0.0)
    with pytest.raises(SpecError, match="equal-effects"):
        confint_tau2(fit_random_effects(y, se, method="EE"))


# fitstats(res) for rma(yi, vi, data=dat, method=m, control=exact) and with mods=~ablat:
# logLik, deviance, AIC, BIC, AICc (ML column for all but REML); metafor 3.8.1
FITSTATS = {
    ("ML", False): [-12.66507635, 37.11602097, 29.3301527, 30.46005141, 30.5301527],
    ("ML", True): [-7.685665528, 27.15719933, 21.37133106, 23.06617913, 24.03799772],
    ("REML", False): [-12.20237142, 24.40474283, 28.40474283, 29.37455613, 29.73807616],
    ("REML", True): [-8.087320058, 16.17464012, 22.17464012, 23.36832593, 25.60321155],
    ("DL", False): [-12.68233578, 37.15053984, 29.36467156, 30.49457028, 30.56467156],
    ("DL", True): [-7.833845091, 27.45355846, 21.66769018, 23.36253825, 24.33435685],
    ("EE", False): [-70.2235699, 152.2330081, 142.4471398, 143.0120892, 142.8107762],
    ("EE", True): [-9.473610869, 30.73309001, 22.94722174, 24.07712045, 24.14722174],
}


@pytest.mark.parametrize(("method", "mods"), sorted(FITSTATS))
def test_fit_stats_match_metafor(bcg, method, mods):
    y, se, X, _ = bcg
    s = fit_stats(fit_random_effects(y, se, X if mods else None, method=method))
    got = [s.loglik, s.deviance, s.AIC, s.BIC, s.AICc]
    np.testing.assert_allclose(got, FITSTATS[method, mods], rtol=R10)


def test_fit_stats_published_and_by_hand(bcg):
    # metafor's test suite (test_misc_fitstats.r), ML: logLik -12.6651, deviance 37.1160,
    # AIC 29.3302, BIC 30.4601, AICc 30.5302
    y, se, _, _ = bcg
    fit = fit_random_effects(y, se, method="ML")
    s = fit_stats(fit)
    np.testing.assert_allclose(
        [s.loglik, s.deviance, s.AIC, s.BIC, s.AICc],
        [-12.6651, 37.1160, 29.3302, 30.4601, 30.5302],
        atol=5e-5,
    )
    # the ML log-likelihood is the sum of the marginal normal densities
    marginal = stats.norm.logpdf(y, fit.beta[0], np.sqrt(se**2 + fit.tau2)).sum()
    assert s.loglik == pytest.approx(marginal, rel=1e-12)
    with pytest.raises(SpecError, match="likelihood must be"):
        fit_stats(fit, likelihood="GLS")


def test_one_study_and_bad_arguments():
    fit = fit_random_effects([0.3], [0.2], method="REML", test="knha")
    assert (fit.tau2, fit.QE, fit.I2, fit.H2, fit.test) == (0.0, 0.0, 0.0, 1.0, "z")
    assert fit.se[0] == pytest.approx(0.2)
    with pytest.raises(SpecError, match="unknown method 'XX'"):
        fit_random_effects([0.1, 0.2], [0.1, 0.1], method="XX")
    with pytest.raises(SpecError, match="test must be one of"):
        fit_random_effects([0.1, 0.2], [0.1, 0.1], test="t")
    with pytest.raises(ValueError, match="need k > p"):
        fit_random_effects([0.1, 0.2], [0.1, 0.1], X=[[1, 0], [1, 1]])
