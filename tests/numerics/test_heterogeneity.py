"""Random-effects estimators against metafor's published dat.bcg results and hand computations.

metafor numbers: rma(yi, vi, data=dat) and rma(yi, vi, mods=~ablat, data=dat) with
dat <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg) (Viechtbauer
2010, J. Stat. Softw. 36(3), and the metafor documentation), printed to 4 decimals.
"""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hiermodels.numerics.effect_sizes import log_risk_ratio
from hiermodels.numerics.heterogeneity import (
    REFit,
    cochran_q,
    dersimonian_laird,
    i2_h2,
    reml,
    typical_within_variance,
)
from hiermodels.numerics.inference import fit_random_effects, predict

BCG = Path(__file__).resolve().parents[2] / "hiermodels" / "data" / "bcg.csv"
DEC4 = 5e-5  # half a unit in the 4th decimal


@pytest.fixture(scope="module")
def bcg():
    d = np.genfromtxt(BCG, delimiter=",", names=True, dtype=None, encoding="utf-8")
    yi, sei = log_risk_ratio(d["tpos"], d["tneg"], d["cpos"], d["cneg"])
    return yi, sei, np.column_stack([np.ones(yi.size), d["ablat"].astype(float)])


def test_reml_matches_metafor(bcg):
    yi, sei, _ = bcg
    fit = reml(yi, sei)
    assert isinstance(fit, REFit) and fit.method == "REML" and (fit.k, fit.p) == (13, 1)
    assert fit.mu == pytest.approx(-0.7145, abs=DEC4)
    assert fit.mu_se == pytest.approx(0.1798, abs=DEC4)
    assert fit.ci_low[0] == pytest.approx(-1.0669, abs=DEC4)
    assert fit.ci_high[0] == pytest.approx(-0.3622, abs=DEC4)
    assert fit.tau2 == pytest.approx(0.3132, abs=DEC4)
    assert fit.tau2_se == pytest.approx(0.1664, abs=DEC4)
    assert fit.I2 == pytest.approx(92.22, abs=0.005)
    assert fit.H2 == pytest.approx(12.86, abs=0.005)
    assert fit.Q == pytest.approx(152.2330, abs=DEC4)
    assert fit.Q_df == 12 and fit.Q_pvalue < 1e-4
    # predict(res): mu +/- z sqrt(mu_se^2 + tau^2), here from the printed (rounded) values
    half = stats.norm.ppf(0.975) * np.sqrt(0.1798**2 + 0.3132)
    assert fit.pi_low == pytest.approx(-0.7145 - half, abs=2e-4)
    assert fit.pi_high == pytest.approx(-0.7145 + half, abs=2e-4)


def test_dersimonian_laird_matches_metafor(bcg):
    yi, sei, _ = bcg
    fit = dersimonian_laird(yi, sei)
    assert fit.tau2 == pytest.approx(0.3088, abs=DEC4)
    assert fit.tau2_se == pytest.approx(0.2299, abs=DEC4)
    assert fit.I2 == pytest.approx(92.12, abs=0.005)
    assert fit.mu == pytest.approx(-0.7141, abs=DEC4)
    assert fit.mu_se == pytest.approx(0.1787, abs=DEC4)
    # metafor's test suite checks these against Stata's metan
    assert fit.ci_low[0] == pytest.approx(-1.0644, abs=DEC4)
    assert fit.ci_high[0] == pytest.approx(-0.3638, abs=DEC4)


def test_reml_meta_regression_matches_metafor(bcg):
    yi, sei, X = bcg
    # metafor stops Fisher scoring once a step is below 1e-5 (control threshold); with the
    # same stopping rule every printed digit is reproduced ...
    fit = reml(yi, sei, X, tol=1e-5)
    assert fit.tau2 == pytest.approx(0.0764, abs=DEC4)
    assert fit.tau2_se == pytest.approx(0.0591, abs=DEC4)
    assert fit.I2 == pytest.approx(68.39, abs=0.005)
    assert fit.H2 == pytest.approx(3.16, abs=0.005)
    np.testing.assert_allclose(fit.beta, [0.2515, -0.0291], atol=DEC4)
    np.testing.assert_allclose(fit.beta_se, [0.2491, 0.0072], atol=DEC4)
    assert fit.Q == pytest.approx(30.7331, abs=DEC4) and fit.Q_df == 11
    assert np.isnan(fit.pi_low)
    with pytest.raises(AttributeError, match="intercept-only"):
        _ = fit.mu
    # ... while the default converges to the REML root itself, 0.076348, a hair below
    assert reml(yi, sei, X).tau2 == pytest.approx(0.076348, abs=1e-6)


def test_cochran_q_with_moderators_is_metafor_qe(bcg):
    yi, sei, X = bcg
    q, df, p = cochran_q(yi, sei, X)
    assert q == pytest.approx(30.7331, abs=DEC4) and df == 11
    assert p == pytest.approx(stats.chi2.sf(30.7331, 11), rel=1e-4)
    assert cochran_q(yi, sei)[0] == pytest.approx(152.2330, abs=DEC4)


def test_dersimonian_laird_by_hand():
    # y = (0, 2, 6), se = (1, 1, 2): w = (1, 1, 1/4), sum w = 9/4, weighted mean 14/9,
    # Q = (14/9)^2 + (4/9)^2 + (40/9)^2 / 4 = 68/9, tr P = 9/4 - (33/16)/(9/4) = 4/3,
    # tau^2 = (68/9 - 2) / (4/3) = 25/6
    fit = dersimonian_laird([0.0, 2.0, 6.0], [1.0, 1.0, 2.0])
    assert fit.Q == pytest.approx(68 / 9, rel=1e-12)
    assert fit.tau2 == pytest.approx(25 / 6, rel=1e-12)
    # random-effects weights 1 / (v + 25/6) = (6/31, 6/31, 6/49)
    w = [Fraction(6, 31), Fraction(6, 31), Fraction(6, 49)]
    mu = (w[1] * 2 + w[2] * 6) / sum(w)
    assert fit.mu == pytest.approx(float(mu), rel=1e-12)
    assert fit.mu_se == pytest.approx(float(1 / sum(w)) ** 0.5, rel=1e-12)
    # s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2) = 2 (9/4) / (81/16 - 33/16) = 3/2
    assert typical_within_variance([1.0, 1.0, 2.0]) == pytest.approx(1.5, rel=1e-12)
    assert fit.I2 == pytest.approx(100 * (25 / 6) / (25 / 6 + 1.5), rel=1e-12)
    assert fit.H2 == pytest.approx((25 / 6 + 1.5) / 1.5, rel=1e-12)


def test_reml_with_equal_variances_is_sample_variance_minus_v():
    # with equal se the REML estimate has the closed form s_y^2 - se^2 (Viechtbauer 2005)
    y = np.array([0.0, 1.0, 3.0, -1.0, 2.5])
    fit = reml(y, np.full(5, 0.5))
    assert fit.tau2 == pytest.approx(np.var(y, ddof=1) - 0.25, rel=1e-9)
    assert fit.mu == pytest.approx(y.mean(), rel=1e-12)
    assert fit.mu_se == pytest.approx(np.sqrt(np.var(y, ddof=1) / 5), rel=1e-9)


def test_homogeneous_studies_truncate_tau2_at_zero():
    y, se = [0.1, 0.12, 0.09, 0.11], [0.2, 0.3, 0.25, 0.2]
    for fit in (reml(y, se), dersimonian_laird(y, se)):
        assert fit.tau2 == 0.0 and fit.I2 == 0.0 and fit.H2 == 1.0
        w = 1 / np.square(se)
        assert fit.mu == pytest.approx(np.sum(w * y) / np.sum(w), rel=1e-12)


def test_i2_and_h2_are_consistent(bcg):
    yi, sei, X = bcg
    i2, h2 = i2_h2(reml(yi, sei, X).tau2, sei, X)
    assert i2 == pytest.approx(100 * (1 - 1 / h2), rel=1e-12)
    assert i2 == pytest.approx(68.39, abs=0.005)


def test_too_few_studies_raise():
    with pytest.raises(ValueError, match="need k > p"):
        reml([0.1, 0.2], [0.1, 0.1], X=[[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="se finite and > 0"):
        dersimonian_laird([0.1, 0.2], [0.1, -0.1])


def test_reml_when_fisher_scoring_oscillates():
    """Data on which Fisher scoring overshoots forever (steps ~ -0.87 x the previous one):
    the fit still ends at the root of the REML score, to rounding."""
    rng = np.random.default_rng(2)
    se = np.linspace(0.5, 1.5, 50)
    for _ in range(236):
        y = rng.normal(rng.normal(0, 0.5, 50), se)
    fit = reml(y, se)
    w = 1 / (se**2 + fit.tau2)
    mu = np.sum(w * y) / np.sum(w)
    # REML score y'PPy - tr P = sum w^2 (y - mu)^2 - (sum w - sum w^2 / sum w); each of its
    # two terms is about tr P, so relative to tr P it is zero to a few ulps at the root (a
    # maximizer of the likelihood leaves ~sqrt(eps) = 1.5e-8 here)
    tr_p = np.sum(w) - np.sum(w**2) / np.sum(w)
    score = np.sum(w**2 * (y - mu) ** 2) - tr_p
    assert fit.tau2 == pytest.approx(0.124111, abs=1e-5)
    assert abs(score) / tr_p < 1e-12


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_refit_and_fit_random_effects_agree(bcg, method):
    """The original REFit functions and the general entry point share their numerics."""
    yi, sei, X = bcg
    old = {"DL": dersimonian_laird, "REML": reml}[method]
    for design in (None, X):
        a, b = old(yi, sei, design), fit_random_effects(yi, sei, design, method=method)
        assert a.tau2 == b.tau2 and a.tau2_se == b.tau2_se
        np.testing.assert_allclose(a.beta, b.beta, rtol=1e-14)
        np.testing.assert_allclose(a.beta_se, b.se, rtol=1e-14)
        np.testing.assert_allclose([a.I2, a.H2, a.Q], [b.I2, b.H2, b.QE], rtol=1e-14)
    # intercept only: REFit's prediction interval is metafor's predict() under test="z"
    a = old(yi, sei)
    pr = predict(fit_random_effects(yi, sei, method=method))
    np.testing.assert_allclose([a.pi_low, a.pi_high], [pr.pi_low[0], pr.pi_high[0]], rtol=1e-14)


# not ML: its likelihood at tau^2 = 0 grows like -log se_6 without bound, so for every tiny
# se_6 metafor's ll0check (kept here) picks tau^2 = 0, where beta's se vanishes with se_6
@pytest.mark.parametrize("method", ["REML", "DL", "PM", "SJ"])
def test_meta_regression_with_a_study_of_vanishing_variance_takes_the_limit(bcg_rr, method):
    """BCG on absolute latitude (metafor's rma(yi, vi, mods = ~ ablat)) with trial 6's se set
    to 1e-300, a spread of 1e300 over the others (once refused beyond 1e152): the fit takes the
    limit v_6 -> 0, where its weight at tau^2 > 0 is 1 / tau^2. Brute force: se_6 = 1e-8,
    1e-12, 1e-16, computed as given, agree with it (they differ from the limit by
    O(se_6^2 / se_j^2) <= 1e-14). The many-column fit then comes from a row-sorted QR
    (Powell & Reid 1969), as the normal equations lose every digit at such weights."""
    yi, vi, X, _ = bcg_rr
    se = np.sqrt(vi)

    def fit(tiny):
        s = se.copy()
        s[5] = tiny
        f = fit_random_effects(yi, s, X, method=method)
        return np.r_[f.beta, f.se, f.tau2, f.I2, f.H2, f.QE, f.QM]

    limit = fit(1e-300)
    assert np.isfinite(limit).all() and limit[4] > 0  # tau^2 > 0
    for tiny in (1e-8, 1e-12, 1e-16):
        np.testing.assert_allclose(fit(tiny), limit, rtol=1e-8 if tiny == 1e-8 else 1e-11)
