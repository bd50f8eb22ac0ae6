"""Subgroup analysis through the public API on the BCG trials, split by allocation.

metafor numbers: R 4.2.2, metafor 3.8.1, dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos,
di=cneg, data=dat.bcg), exact <- list(threshold=1e-12, tol=1e-12, maxiter=10000).
"""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
R10 = 1e-8


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)


@pytest.fixture(scope="module")
def meta(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial", subgroup="alloc")


# rma(yi, vi, data=dat, subset=alloc==level, control=exact): k, b, se, tau2, QE, I2
SEPARATE = {
    "alternate": (2, -0.5407929618, 0.2816016131, 0.1325770399, 5.562513508, 82.02251557),
    "random": (7, -0.9709647043, 0.275956103, 0.3925280069, 110.2132612, 89.9343157),
    "systematic": (4, -0.4242073915, 0.3597452324, 0.4003458802, 16.59186358, 86.42211959),
}


def test_estimates_equal_separate_meta_analyses(bcg, meta):
    sub = meta.subgroup_analysis()  # the column given to meta_analysis(subgroup=)
    table = sub.estimates()
    assert list(table.index) == ["alternate", "random", "systematic"]
    for level, expected in SEPARATE.items():
        row = table.loc[level]
        got = [row["k"], row["mu"], row["mu_se"], row["tau2"], row["Q"], row["I2"]]
        np.testing.assert_allclose(got, expected, rtol=R10, err_msg=level)
        # the same as a meta-analysis of the subgroup alone, through the public API
        alone = hm.meta_analysis(
            bcg[bcg["alloc"] == level],
            estimate="yi",
            vi="vi",
            study="trial",
            hyperprior=meta.tau_prior,  # the same prior (presets scale with the se's)
        )
        reml = alone.heterogeneity(["REML"]).loc["REML"]
        for col in ("mu", "mu_se", "ci_low", "ci_high", "tau2", "Q", "I2"):
            assert row[col] == pytest.approx(reml[col], rel=1e-12), (level, col)
        # the Bayesian columns are the exact fit of the subgroup alone, same priors
        post = alone.summary()
        assert row["bayes_mu"] == pytest.approx(post.loc["mu", "mean"], rel=1e-10)
        assert row["bayes_ci_low"] == pytest.approx(post.loc["mu", "ci_low"], rel=1e-10)
        assert row["bayes_tau"] == pytest.approx(post.loc["tau", "median"], rel=1e-10)


def test_between_subgroup_tests_match_metafor(meta):
    sub = meta.subgroup_analysis("alloc")
    test = sub.test()
    # rma(yi, vi, mods = ~ factor(alloc), data=dat, control=exact): QM 1.767511402 on 2 df,
    # p 0.4132280328
    assert test.loc["QM", "Q"] == pytest.approx(1.767511402, rel=R10)
    assert test.loc["QM", "df"] == 2
    assert test.loc["QM", "pvalue"] == pytest.approx(0.4132280328, rel=R10)
    # the fixed-effect test of the three separate estimates:
    # rma(c(b1, b2, b3), sei=c(se1, se2, se3), method="FE")$QE = 1.861444946, p 0.3942687589
    assert test.loc["Q_between", "Q"] == pytest.approx(1.861444946, rel=R10)
    assert test.loc["Q_between", "pvalue"] == pytest.approx(0.3942687589, rel=R10)
    assert "metafor" in test.loc["QM", "note"]
    # by hand from the estimates table
    est = sub.estimates()
    w = 1 / est["mu_se"] ** 2
    q = np.sum(w * (est["mu"] - np.sum(w * est["mu"]) / w.sum()) ** 2)
    assert test.loc["Q_between", "Q"] == pytest.approx(q, rel=1e-12)
    # knha: F(2, 10) = 0.9662208448, p 0.4133837457 (same call with test="knha")
    knha = meta.subgroup_analysis("alloc", test="knha").test()
    assert knha.loc["QM", "Q"] == pytest.approx(0.9662208448, rel=R10)
    assert (knha.loc["QM", "df"], knha.loc["QM", "df2"]) == (2, 10)
    assert knha.loc["QM", "pvalue"] == pytest.approx(0.4133837457, rel=R10)
    # DL: rma(yi, vi, mods = ~ factor(alloc), data=dat, method="DL"): QM 1.434912452
    dl = meta.subgroup_analysis("alloc", method="DL").test()
    assert dl.loc["QM", "Q"] == pytest.approx(1.434912452, rel=R10)


def test_common_tau(meta):
    sub = meta.subgroup_analysis("alloc", common_tau=True)
    est = sub.estimates()
    # rma(yi, vi, mods = ~ factor(alloc) - 1, data=dat, control=exact): b and se per level,
    # one tau2 = 0.3615036643
    np.testing.assert_allclose(est["mu"], [-0.5179557772, -0.9657741785, -0.4289175609], rtol=R10)
    np.testing.assert_allclose(est["mu_se"], [0.4411944604, 0.2672440941, 0.3449453676], rtol=R10)
    np.testing.assert_allclose(est["tau2"], 0.3615036643, rtol=R10)
    # with one tau^2 and z tests, the fixed-effect test of the estimates is metafor's QM
    test = sub.test()
    assert test.loc["Q_between", "Q"] == pytest.approx(test.loc["QM", "Q"], rel=1e-9)
    # the level's own heterogeneity does not depend on the choice
    pd.testing.assert_series_equal(est["Q"], meta.subgroup_analysis("alloc").estimates()["Q"])


def test_subgroup_errors(bcg, meta):
    plain = hm.meta_analysis(bcg, estimate="yi", vi="vi")
    with pytest.raises(hm.SpecError, match="name the subgroup column"):
        plain.subgroup_analysis()
    with pytest.raises(hm.DataError, match="'region' not in the data"):
        plain.subgroup_analysis("region")
    with pytest.raises(hm.DataError, match="single level"):
        hm.meta_analysis(bcg.assign(g="a"), estimate="yi", vi="vi").subgroup_analysis("g")
    with pytest.raises(hm.SpecError, match="unknown method 'bayes'"):
        meta.subgroup_analysis(method="bayes")
