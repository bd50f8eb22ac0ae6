"""Small-study effects through the public API: egger_test, rank_test, trim_and_fill, pet_peese.

Reference numbers: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8.1 (the same R calls as
tests/data/bias_reference.R, which tests/numerics/test_bias.py checks the numerics against),
dat.egger2001 (Egger et al. 2001, magnesium trials) as
``escalc("OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.egger2001)`` and dat.bcg as
``escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)``; sources of the data in
tests/data/README.md. metafor's REML stops at a tau^2 change below 1e-5, hence REML_RTOL.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import SpecError

DATA = Path(__file__).resolve().parents[1] / "data"
REML_RTOL = 2e-4
CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}


@pytest.fixture(scope="module")
def egger2001():
    d = pd.read_csv(DATA / "egger2001.csv")
    d["ni"] = d["n1i"] + d["n2i"]
    d["label"] = d["study"] + " " + d["year"].astype(str) + " #" + d["id"].astype(str)
    d = hm.effect_sizes(d, "OR", ai="ai", n1i="n1i", ci="ci", n2i="n2i")
    return hm.meta_analysis(d, estimate="yi", vi="vi", study="label")


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)


@pytest.fixture(scope="module")
def bcg_meta(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")


@pytest.fixture(scope="module")
def bcg_reg(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial", moderators=["ablat"])


def test_egger_random_effects_matches_metafor(egger2001):
    """regtest(rma(yi, vi, data=dat)): z = -4.66864946, p = 3.031861737e-06, limit estimate
    b = 0.04191809778 (CI -0.1604445071, 0.2442807026)."""
    res = egger2001.egger_test()
    assert round(res.stat, 4) == -4.6686
    np.testing.assert_allclose(res.pvalue, 3.031861737e-06, rtol=10 * REML_RTOL)
    np.testing.assert_allclose(
        [res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
        [0.04191809778, -0.1604445071, 0.2442807026],
        rtol=REML_RTOL,
    )
    assert res.df is None and res.moderators == ()
    series = res.to_series()
    assert series["stat"] == res.stat and np.isnan(series["df"])
    assert "Evidence of funnel-plot asymmetry" in res.reading
    assert "does not prove publication bias" in res.reading


def test_egger_lm_sqrtninv_takes_a_column_of_sample_sizes(egger2001):
    """regtest(rma(yi, vi, data=dat), model="lm", predictor="sqrtninv") with ni = n1i + n2i:
    t = -5.608291476, df = 14, p = 6.450874154e-05, limit estimate 0.1050145802
    (CI 0.03000955344, 0.1800196069)."""
    res = egger2001.egger_test(model="lm", predictor="sqrtninv", ni="ni")
    assert round(res.stat, 4) == -5.6083
    assert res.df == 14
    np.testing.assert_allclose(
        [res.stat, res.pvalue, res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
        [-5.608291476, 6.450874154e-05, 0.1050145802, 0.03000955344, 0.1800196069],
        rtol=1e-8,
    )
    # the same sample sizes given as numbers
    ni = egger2001.frame["ni"].to_numpy()
    assert egger2001.egger_test(model="lm", predictor="sqrtninv", ni=ni).stat == res.stat


def test_egger_needs_sample_sizes_for_n_predictors(egger2001):
    with pytest.raises(SpecError, match="ni="):
        egger2001.egger_test(predictor="ninv")
    with pytest.raises(SpecError, match="not a column"):
        egger2001.egger_test(predictor="ninv", ni="n_total")
    with pytest.raises(SpecError, match="unknown method"):
        egger2001.egger_test(method="XYZ")


def test_egger_with_moderators_matches_metafor(bcg_reg):
    """regtest(rma(yi, vi, mods = ~ ablat, data=dat.bcg)): z = -0.5989504825,
    p = 0.5492059057; model="lm": t = -1.087634408, p = 0.3022754781, df = 10; no limit
    estimate (metafor's est is NULL)."""
    res = bcg_reg.egger_test()
    np.testing.assert_allclose([res.stat, res.pvalue], [-0.5989504825, 0.5492059057],
                               rtol=REML_RTOL)  # fmt: skip
    assert res.moderators == ("ablat",) and np.isnan(res.limit_estimate)
    assert "given the moderators" in res.reading and "No clear evidence" in res.reading
    lm = bcg_reg.egger_test(model="lm")
    assert lm.df == 10
    np.testing.assert_allclose([lm.stat, lm.pvalue], [-1.087634408, 0.3022754781], rtol=1e-8)


def test_rank_test_matches_metafor(egger2001):
    """ranktest(rma(yi, vi, data=dat.egger2001)): Kendall's tau = 0.15, p = 0.4502848863."""
    res = egger2001.rank_test()
    assert round(res.tau, 2) == 0.15
    np.testing.assert_allclose(res.pvalue, 0.4502848863, rtol=1e-9)
    assert "No clear evidence" in res.reading


def test_trim_and_fill_bcg_fills_four_on_the_right(bcg_meta):
    """trimfill(rma(yi, vi, data=dat.bcg, method="EE")): k0 = 4 (right), se.k0 = 2.385325591,
    b = -0.2910259921 (CI -0.3660223217, -0.2160296625); filled yi 0.7892928193 0.8594992058
    1.003336673 1.038846239."""
    tf = bcg_meta.trim_and_fill(estimator="L0", method="EE")
    assert (tf.k0, tf.side, tf.k) == (4, "right", 13)
    np.testing.assert_allclose(tf.se_k0, 2.385325591, rtol=1e-9)
    np.testing.assert_allclose(
        [tf.mu, tf.ci_low, tf.ci_high], [-0.2910259921, -0.3660223217, -0.2160296625], rtol=1e-8
    )
    assert list(tf.filled.columns) == ["study", "estimate", "se"]
    assert list(tf.filled["study"]) == ["filled 1", "filled 2", "filled 3", "filled 4"]
    np.testing.assert_allclose(
        np.sort(tf.filled["estimate"]),
        [0.7892928193, 0.8594992058, 1.003336673, 1.038846239],
        rtol=1e-9,
    )
    assert tf.to_series()["k0"] == 4
    assert "4 missing studies" in tf.reading


def test_trim_and_fill_r0_and_forced_side(bcg_meta):
    """trimfill(rma(yi, vi, data=dat.bcg, method="REML"), estimator="R0"): k0 = 0, p.k0 = 0.5."""
    tf = bcg_meta.trim_and_fill(estimator="R0")
    assert tf.k0 == 0 and tf.p_k0 == 0.5 and tf.filled.empty
    assert bcg_meta.trim_and_fill(method="EE", side="left").side == "left"


def test_pet_peese_is_reported(egger2001):
    res = egger2001.pet_peese()
    # PET is Egger's weighted regression on the standard error: the same intercept as
    # regtest(model="lm"), 0.09961714382
    np.testing.assert_allclose(res.pet.intercept, 0.09961714382, rtol=1e-8)
    assert res.use in ("PET", "PEESE") and res.ci_low < res.estimate < res.ci_high
    assert "PET" in res.reading


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: m.trim_and_fill(), "trim and fill is not defined for a meta-regression"),
        (lambda m: m.rank_test(), "the rank test is not defined for a meta-regression"),
        (lambda m: m.pet_peese(), "PET-PEESE is not defined for a meta-regression"),
    ],
)
def test_funnel_methods_refuse_a_meta_regression(bcg_reg, call, words):
    with pytest.raises(SpecError, match=words) as caught:
        call(bcg_reg)
    assert "ablat" in str(caught.value) and "egger_test()" in str(caught.value)
