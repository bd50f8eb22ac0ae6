"""Egger's test, the rank test, trim and fill and PET-PEESE against metafor 3.8.1.

Reference numbers: R 4.2.2, metafor 3.8.1, printed by tests/data/bias_reference.R; each
test names its R call. metafor's REML stops at a tau^2 change below 1e-5, so REML numbers
agree to about 1e-4 relative; the others to many digits.
"""

import math

import numpy as np
import pandas as pd
import pytest

from hiermodels.errors import SpecError
from hiermodels.numerics.bias import egger_test, rank_test, trim_and_fill
from hiermodels.numerics.effect_sizes import escalc
from hiermodels.numerics.pet_peese import pet_peese

from .conftest import DATA

REML_RTOL = 2e-4


@pytest.fixture(scope="module")
def egger2001():
    """dat <- escalc("OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.egger2001): yi, sei, ni."""
    d = pd.read_csv(DATA / "egger2001.csv")
    yi, vi = escalc("OR", ai=d["ai"], n1i=d["n1i"], ci=d["ci"], n2i=d["n2i"])
    return yi, np.sqrt(vi), (d["n1i"] + d["n2i"]).to_numpy(float)


@pytest.fixture(scope="module")
def bcg(bcg_rr):
    yi, vi, _, _ = bcg_rr
    return yi, np.sqrt(vi)


# -- Egger's regression test ------------------------------------------------------------


def test_egger_rma_default_matches_metafor(egger2001):
    """regtest(rma(yi, vi, data=dat)): z = -4.66864946, p = 3.031861737e-06,
    b = 0.04191809778 (CI -0.1604445071, 0.2442807026)."""
    y, se, _ = egger2001
    res = egger_test(y, se)
    assert res.df is None
    np.testing.assert_allclose(res.stat, -4.66864946, rtol=REML_RTOL)
    np.testing.assert_allclose(res.pvalue, 3.031861737e-06, rtol=10 * REML_RTOL)
    np.testing.assert_allclose(
        [res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
        [0.04191809778, -0.1604445071, 0.2442807026],
        rtol=REML_RTOL,
    )
    assert res.intercept == res.limit_estimate and res.slope < 0
    assert round(res.stat, 4) == -4.6686


@pytest.mark.parametrize(
    ("predictor", "stat", "p", "est", "lb", "ub"),
    [
        # regtest(rma(yi, vi, data=dat), model="lm", predictor=...)
        ("sei", -5.784621355, 4.728663543e-05, 0.09961714382, 0.02725284818, 0.1719814395),
        ("vi", -3.347287667, 0.004789743949, 0.03364198771, -0.05659700033, 0.1238809758),
        ("ninv", -3.616170821, 0.002806971753, 0.03717272787, -0.05012240745, 0.1244678632),
        ("sqrtninv", -5.608291476, 6.450874154e-05, 0.1050145802, 0.03000955344, 0.1800196069),
    ],
)
def test_egger_lm_matches_metafor(egger2001, predictor, stat, p, est, lb, ub):
    y, se, ni = egger2001
    res = egger_test(y, se, model="lm", predictor=predictor, ni=ni)
    assert res.df == 14
    np.testing.assert_allclose(
        [res.stat, res.pvalue, res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
        [stat, p, est, lb, ub],
        rtol=1e-8,
    )


@pytest.mark.parametrize(
    ("predictor", "stat", "est", "lb", "ub"),
    [
        # regtest(rma(yi, vi, data=dat), predictor=...)
        ("vi", -2.091357445, -0.4000765267, -0.8096192451, 0.009466191709),
        ("ninv", -2.112458295, -0.3591013755, -0.7915397559, 0.07333700478),
        ("sqrtninv", -4.977247611, 0.07350836153, -0.08671014698, 0.23372687),
    ],
)
def test_egger_rma_predictors_match_metafor(egger2001, predictor, stat, est, lb, ub):
    y, se, ni = egger2001
    res = egger_test(y, se, predictor=predictor, ni=ni)
    np.testing.assert_allclose(
        [res.stat, res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
        [stat, est, lb, ub],
        rtol=REML_RTOL,
        atol=1e-5,
    )


def test_egger_knha_and_ee_match_metafor(egger2001, bcg):
    y, se, _ = egger2001
    # regtest(rma(yi, vi, data=dat, method="DL", test="knha")): t = -5.784621355, df = 14
    res = egger_test(y, se, method="DL", test="knha")
    assert res.df == 14
    np.testing.assert_allclose([res.stat, res.pvalue], [-5.784621355, 4.728663543e-05], rtol=1e-8)
    # regtest(rma(yi, vi, data=dat, method="EE")): z = -5.760041117, CI 0.03320650194 ...
    res = egger_test(y, se, method="EE")
    np.testing.assert_allclose(
        [res.stat, res.pvalue, res.limit_ci_low, res.limit_ci_high],
        [-5.760041117, 8.409344897e-09, 0.03320650194, 0.1660277857],
        rtol=1e-8,
    )
    # dat.bcg: regtest(rma(yi, vi)) z = -0.8033291121; regtest(..., model="lm") t = -1.401282002
    yb, sb = bcg
    np.testing.assert_allclose(egger_test(yb, sb).stat, -0.8033291121, rtol=REML_RTOL)
    res = egger_test(yb, sb, model="lm")
    np.testing.assert_allclose([res.stat, res.pvalue], [-1.401282002, 0.1887069951], rtol=1e-8)
    assert res.df == 11


def test_egger_lm_is_egger_1997_regression_of_snd_on_precision(egger2001):
    """Egger et al. (1997): regress y/se on 1/se by OLS; its intercept is the slope on se of
    the weighted fit, so the t statistics agree."""
    y, se, _ = egger2001
    X = np.column_stack([np.ones_like(se), 1 / se])
    z = y / se
    beta, rss, *_ = np.linalg.lstsq(X, z, rcond=None)
    cov = rss[0] / (len(y) - 2) * np.linalg.inv(X.T @ X)
    t_intercept = beta[0] / math.sqrt(cov[0, 0])
    res = egger_test(y, se, model="lm")
    np.testing.assert_allclose(res.stat, t_intercept, rtol=1e-10)
    np.testing.assert_allclose(res.limit_estimate, beta[1], rtol=1e-10)


def test_egger_reading_names_the_evidence_and_the_caveat(egger2001, bcg):
    y, se, _ = egger2001
    text = egger_test(y, se).reading
    assert "Evidence of funnel-plot asymmetry" in text and "p < 0.001" in text
    assert "does not prove publication bias" in text
    text = egger_test(*bcg).reading
    assert "No clear evidence" in text and "p = 0.422" in text


def test_egger_bad_arguments(egger2001):
    y, se, _ = egger2001
    with pytest.raises(SpecError, match="ni="):
        egger_test(y, se, predictor="ninv")
    with pytest.raises(SpecError, match="predictor"):
        egger_test(y, se, predictor="n")
    with pytest.raises(SpecError, match="model"):
        egger_test(y, se, model="glm")
    with pytest.raises(ValueError, match="positions \\[1\\]"):
        egger_test([0.1, 0.2, 0.3], [0.1, -0.1, 0.2])


# -- rank test --------------------------------------------------------------------------


def test_rank_test_matches_metafor(egger2001, bcg):
    """ranktest(rma(yi, vi, data=dat.egger2001)): Kendall's tau = 0.15, p = 0.4502848863;
    dat.bcg: tau = 0.02564102564, p = 0.95236190796."""
    res = rank_test(*egger2001[:2])
    assert res.exact
    np.testing.assert_allclose([res.tau, res.pvalue], [0.15, 0.4502848863], rtol=1e-9)
    res = rank_test(*bcg)
    np.testing.assert_allclose([res.tau, res.pvalue], [0.02564102564, 0.95236190796], rtol=1e-9)
    assert "No clear evidence" in res.reading


def test_rank_test_with_ties_uses_the_normal_approximation():
    """ranktest(c(0.1, 0.5, -0.2, 0.3, 0.8, 0.1, 0.4), c(0.04, 0.09, 0.04, 0.16, 0.25,
    0.09, 0.01)) (cor.test warns: no exact p with ties): tau = 0.2503130872, p = 0.4422060595."""
    v = np.array([0.04, 0.09, 0.04, 0.16, 0.25, 0.09, 0.01])
    res = rank_test([0.1, 0.5, -0.2, 0.3, 0.8, 0.1, 0.4], np.sqrt(v))
    assert not res.exact
    np.testing.assert_allclose([res.tau, res.pvalue], [0.2503130872, 0.4422060595], rtol=1e-8)
    assert "little power" in res.reading  # 7 studies


# -- trim and fill ----------------------------------------------------------------------

# trimfill(rma(yi, vi, data=dat, method=m), estimator=e): k0, side, se.k0, b, se, ci.lb,
# ci.ub, tau2, p.k0
TRIMFILL = {
    ("bcg", "EE", "L0"): (4, "right", 2.385325591, -0.2910259921, 0.0382641366, -0.3660223217,
                          -0.2160296625, 0.0, math.nan),
    ("bcg", "EE", "R0"): (4, "right", 3.16227766, -0.2910259921, 0.0382641366, -0.3660223217,
                          -0.2160296625, 0.0, 0.03125),
    ("bcg", "REML", "L0"): (1, "right", 2.452798643, -0.6570828008, 0.178528467, -1.006992166,
                            -0.3071734353, 0.3312880373, math.nan),
    ("bcg", "REML", "R0"): (0, "right", 1.414213562, -0.7145323484, 0.1797815318,
                            -1.066897676, -0.362167021, 0.313243326, 0.5),
    ("bcg", "DL", "L0"): (1, "right", 2.452798643, -0.656073213, 0.1734634025, -0.9960552345,
                          -0.3160911915, 0.3081321533, math.nan),
    ("bcg", "DL", "R0"): (0, "right", 1.414213562, -0.7141172221, 0.1787420895, -1.06444528,
                          -0.3637891641, 0.3087602629, 0.5),
    ("eg", "EE", "L0"): (8, "right", 2.243428973, 0.03520584432, 0.0303050356, -0.02419093402,
                         0.09460262265, 0.0, math.nan),
    ("eg", "EE", "R0"): (12, "right", 5.099019514, 0.04237624073, 0.03017659203,
                         -0.01676879282, 0.1015212743, 0.0, 0.0001220703125),
    ("eg", "REML", "L0"): (7, "right", 2.445217621, -0.3915339265, 0.2153885247,
                           -0.8136876776, 0.03061982454, 0.4829069867, math.nan),
    ("eg", "REML", "R0"): (3, "right", 2.828427125, -0.5868885547, 0.2056790416,
                           -0.9900120686, -0.1837650408, 0.3181852301, 0.0625),
    ("eg", "DL", "L0"): (7, "right", 2.445217621, -0.3654580426, 0.1761650848, -0.7107352642,
                         -0.02018082097, 0.2270839904, math.nan),
    ("eg", "DL", "R0"): (7, "right", 4.0, -0.3654580426, 0.1761650848, -0.7107352642,
                         -0.02018082097, 0.2270839904, 0.00390625),
}  # fmt: skip


@pytest.mark.parametrize(("data", "method", "estimator"), sorted(TRIMFILL))
def test_trim_and_fill_matches_metafor(egger2001, bcg, data, method, estimator):
    y, se = bcg if data == "bcg" else egger2001[:2]
    k0, side, se_k0, b, b_se, lb, ub, tau2, p_k0 = TRIMFILL[data, method, estimator]
    res = trim_and_fill(y, se, estimator=estimator, method=method)
    assert (res.k0, res.side, res.filled_y.size, res.fit.k) == (k0, side, k0, len(y) + k0)
    rtol = REML_RTOL if method == "REML" else 1e-8
    np.testing.assert_allclose(res.se_k0, se_k0, rtol=1e-9)
    np.testing.assert_allclose(
        [res.estimate, res.se, res.ci_low, res.ci_high], [b, b_se, lb, ub], rtol=rtol
    )
    np.testing.assert_allclose(res.tau2, tau2, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(res.p_k0, p_k0, rtol=1e-12)  # NaN == NaN here


def test_trim_and_fill_bcg_fills_four_studies_on_the_right(bcg):
    """trimfill(rma(yi, vi, data=dat.bcg, method="EE")): 4 filled on the right, yi
    0.7892928193 0.8594992058 1.003336673 1.038846239, vi 0.07302479361 0.0200100319
    0.1945811214 0.2230172476."""
    res = trim_and_fill(*bcg, method="EE")
    np.testing.assert_allclose(
        np.sort(res.filled_y), [0.7892928193, 0.8594992058, 1.003336673, 1.038846239], rtol=1e-9
    )
    np.testing.assert_allclose(
        np.sort(res.filled_se**2),
        np.sort([0.07302479361, 0.0200100319, 0.1945811214, 0.2230172476]),
        rtol=1e-9,
    )
    # the filled studies mirror the four with the most negative log RR about the estimate
    assert (res.filled_y > 0).all()
    assert "4 missing studies" in res.reading and "right side" in res.reading


def test_trim_and_fill_side_can_be_forced_and_mirrors(bcg):
    y, se = bcg
    left = trim_and_fill(y, se, method="EE", side="left")
    assert left.side == "left"
    # flipping the data flips the side metafor's rule chooses and the filled studies
    flipped = trim_and_fill(-y, se, method="EE")
    right = trim_and_fill(y, se, method="EE")
    assert flipped.side == "left" and flipped.k0 == right.k0
    np.testing.assert_allclose(np.sort(flipped.filled_y), np.sort(-right.filled_y), rtol=1e-12)
    np.testing.assert_allclose(flipped.estimate, -right.estimate, rtol=1e-12)


def test_trim_and_fill_symmetric_funnel_fills_nothing():
    """trimfill(rma(y, se^2, method="EE")) with these data: k0 = 0 (left), b = 0.005390244.
    (With exactly mirrored y, |y - b| ties and metafor's ties.method="first" fills 1: so do
    we, but that is a property of the ranks, not of the funnel.)"""
    se = np.array([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4])
    y = np.array([0.05, 0.12, 0.21, 0.33, -0.04, -0.11, -0.19, -0.32])
    res = trim_and_fill(y, se, method="EE")
    assert res.k0 == 0 and res.filled_y.size == 0 and res.side == "left"
    np.testing.assert_allclose(res.estimate, 0.005390244, rtol=1e-7)
    tied = trim_and_fill([0.05, 0.1, 0.2, 0.3, -0.05, -0.1, -0.2, -0.3], se, method="EE")
    assert (tied.k0, tied.side) == (1, "left")
    assert "no missing studies" in res.reading


def test_trim_and_fill_bad_arguments(bcg):
    with pytest.raises(SpecError, match="estimator"):
        trim_and_fill(*bcg, estimator="Q1")
    with pytest.raises(SpecError, match="side"):
        trim_and_fill(*bcg, side="up")


# -- PET-PEESE --------------------------------------------------------------------------


def _hand_wls(y, x, se):
    """Weighted least squares by the normal equations, written out for two coefficients."""
    w = 1 / se**2
    sw, swx, swxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    swy, swxy = (w * y).sum(), (w * x * y).sum()
    det = sw * swxx - swx**2
    b0 = (swxx * swy - swx * swxy) / det
    b1 = (sw * swxy - swx * swy) / det
    s2 = (w * (y - b0 - b1 * x) ** 2).sum() / (len(y) - 2)
    return b0, math.sqrt(s2 * swxx / det), b1


def test_pet_peese_against_hand_wls(egger2001):
    from scipy import stats

    y, se, _ = egger2001
    res = pet_peese(y, se)
    for line, x in ((res.pet, se), (res.peese, se**2)):
        b0, b0_se, b1 = _hand_wls(y, x, se)
        np.testing.assert_allclose([line.intercept, line.intercept_se, line.slope], [b0, b0_se, b1])
        t = stats.t.ppf(0.975, len(y) - 2)
        np.testing.assert_allclose([line.ci_low, line.ci_high], [b0 - t * b0_se, b0 + t * b0_se])
    # PET is Egger's weighted regression: same intercept as regtest(model="lm")
    np.testing.assert_allclose(res.pet.intercept, 0.09961714382, rtol=1e-9)
    np.testing.assert_allclose(res.peese.intercept, 0.03364198771, rtol=1e-9)


def test_pet_peese_conditional_rule(egger2001):
    y, se, _ = egger2001
    res = pet_peese(y, se)
    # PET's intercept 0.0996 with t = 2.95 on 14 df: one-sided p = 0.005 < 0.05, so PEESE
    assert res.pet_pvalue_one_sided < 0.05 and res.use == "PEESE"
    assert res.estimate == res.peese.intercept
    assert "PEESE" in res.reading and "sensitivity analysis" in res.reading
    # testing for a negative effect instead, PET's positive intercept is not significant
    neg = pet_peese(y, se, direction="negative")
    assert neg.pet_pvalue_one_sided > 0.95 and neg.use == "PET"
    assert neg.estimate == neg.pet.intercept


def test_pet_chosen_when_no_effect_remains():
    rng = np.random.default_rng(5)
    se = rng.uniform(0.05, 0.5, 30)
    y = 1.5 * se + rng.normal(0, 1, 30) * se * 0.3  # pure small-study effect, no true effect
    res = pet_peese(y, se)
    assert res.use == "PET" and abs(res.pet.intercept) < 0.1
    assert "PET is used" in res.reading
