"""Meta-analysis of numerically extreme but valid data: tiny and huge standard errors, two
studies, identical estimates. Every result method must work and give sensible numbers."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

Y = [0.1, 0.3, -0.2, 0.5, 0.05, 0.25]
SE = [0.2, 0.15, 0.3, 0.25, 0.1, 0.2]
HOMOGENEOUS_Y = [0.31, 0.28, 0.30, 0.33, 0.29, 0.30]  # Q far below its df: tau^2 = 0


def frame(y, se):
    return pd.DataFrame({"study": [f"s{i}" for i in range(len(y))], "y": y, "se": se})


def with_se(y, i, value):
    se = list(SE)
    se[i] = value
    return frame(y, se)


def run_everything(meta):
    """Call every result method; return them (plots are drawn and closed)."""
    out = {
        "summary": meta.summary(),
        "heterogeneity": meta.heterogeneity(),
        "study_effects": meta.study_effects(),
        "leave_one_out": meta.leave_one_out(),
    }
    for plot in (meta.plot_forest, meta.plot_funnel):
        fig = plot()
        assert fig.axes
        plt.close(fig)
    return out


def assert_finite(table, skip=()):
    numbers = table.drop(columns=list(skip)).select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(numbers).all(), table


# -- tiny standard errors --------------------------------------------------------------------


@pytest.mark.parametrize("tiny", [1e-4, 1e-8, 1e-20, 1e-100, 1e-150])
def test_tiny_se_dominates_the_pooled_estimate(tiny):
    # homogeneous studies (tau^2 = 0), so the fixed-effect weights rule: the study with
    # se = tiny gets all but ~tiny^2 of the weight
    meta = hm.meta_analysis(with_se(HOMOGENEOUS_Y, 2, tiny), estimate="y", se="se", study="study")
    out = run_everything(meta)
    table = out["heterogeneity"]
    for method in ("REML", "DL"):
        assert table.loc[method, "tau2"] == 0.0 and table.loc[method, "I2"] == 0.0
        assert table.loc[method, "mu"] == pytest.approx(0.30, abs=10 * tiny + 1e-15)
        assert table.loc[method, "mu_se"] == pytest.approx(tiny, rel=1e-3)
    effects = out["study_effects"].set_index("study")
    assert effects.loc["s2", "weight"] == pytest.approx(100, abs=1e-3)
    # the precise study's own effect is its estimate; the posterior sd cannot exceed its se
    assert effects.loc["s2", "mean"] == pytest.approx(0.30, abs=10 * tiny + 1e-15)
    # (up to rounding: a mixture over the tau grid of values 0.3 is 0.3 to a few eps)
    assert effects.loc["s2", "sd"] <= tiny * (1 + 1e-9) + 1e-15
    assert effects.loc["s2", "ci_low"] <= 0.30 <= effects.loc["s2", "ci_high"]
    for name in ("summary", "study_effects", "leave_one_out"):
        assert_finite(out[name], skip=["shrinkage_ratio"] if name == "study_effects" else [])
    # Bayes: the pooled effect lies between the precise study and the rest
    assert abs(out["summary"].loc["mu", "mean"] - 0.30) < 0.02


def test_tiny_se_results_converge_to_their_limit():
    """Heterogeneous studies with one se -> 0: everything tends to a limit (the study is known
    exactly), so se = 1e-20, 1e-100 and 1e-150 give the same numbers to ~1e-10, and se = 1e-8
    differs from them by O(se^2 / tau^2) only."""
    tables = {}
    for tiny in (1e-8, 1e-20, 1e-100, 1e-150):
        meta = hm.meta_analysis(
            with_se(Y, 2, tiny), estimate="y", se="se", study="study", random_seed=1
        )
        out = run_everything(meta)
        tables[tiny] = out
        het = out["heterogeneity"]
        assert np.isfinite(het.to_numpy(dtype=float)).all()
        assert (het["tau2"] > 0).all() and (het["I2"] > 50).all()
    cols = ["mu", "mu_se", "tau2", "I2", "H2", "Q", "pi_low", "pi_high"]
    limit = tables[1e-150]["heterogeneity"][cols]
    for tiny in (1e-8, 1e-20, 1e-100):
        got = tables[tiny]["heterogeneity"][cols]
        rtol = 1e-5 if tiny == 1e-8 else 1e-10
        np.testing.assert_allclose(got.to_numpy(), limit.to_numpy(), rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(
            tables[tiny]["summary"].to_numpy(),
            tables[1e-150]["summary"].to_numpy(),
            rtol=1e-5 if tiny == 1e-8 else 1e-8,
        )
    # the limit itself by hand: Q with one study known exactly is the pairwise form
    # sum_{i<j} w_i w_j (y_i - y_j)^2 / sum w, which tends to sum_{j != 2} w_j (y_j - y_2)^2
    w = 1 / np.square(np.delete(SE, 2))
    q = np.sum(w * (np.delete(Y, 2) - Y[2]) ** 2)
    assert limit.loc["REML", "Q"] == pytest.approx(q, rel=1e-12)


# -- huge standard errors --------------------------------------------------------------------


@pytest.mark.parametrize("huge", [1e100, 1e150])
def test_huge_se_study_has_no_weight(huge):
    prior = hm.priors.HalfNormal(0.5)  # fixed: the default scales with the RMS of the se
    meta = hm.meta_analysis(
        with_se(Y, 3, huge), estimate="y", se="se", study="study", hyperprior=prior
    )
    without = hm.meta_analysis(
        frame(np.delete(Y, 3), np.delete(SE, 3)),
        estimate="y",
        se="se",
        study="study",
        hyperprior=prior,
    )
    out = run_everything(meta)
    cols = ["mu", "mu_se", "ci_low", "ci_high", "tau2", "tau", "pi_low", "pi_high"]
    got, ref = out["heterogeneity"][cols], without.heterogeneity()[cols]
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        out["summary"].to_numpy(), without.summary().to_numpy(), rtol=1e-8, atol=1e-12
    )
    effects = out["study_effects"].set_index("study")
    assert effects.loc["s3", "weight"] < 1e-100
    assert effects.loc["s3", "pooling_factor"] == pytest.approx(1.0)
    # its own effect is the population's: a new study's distribution
    assert effects.loc["s3", "mean"] == pytest.approx(out["summary"].loc["mu", "mean"], rel=1e-8)
    kept = effects.drop(index="s3")
    np.testing.assert_allclose(kept["mean"], without.study_effects()["mean"], rtol=1e-8)
    for name in ("summary", "study_effects", "leave_one_out"):
        # the shrinkage ratio is NaN by definition where an estimate is within one se of mu
        assert_finite(out[name], skip=["shrinkage_ratio"] if name == "study_effects" else [])


def test_uniformly_tiny_or_huge_units_scale_out():
    """The same data in units 1e-140 or 1e140 times as large: every number scales."""
    base = hm.meta_analysis(
        frame(Y, SE), estimate="y", se="se", study="study", hyperprior="half_normal"
    )
    for unit in (1e-140, 1e140):
        meta = hm.meta_analysis(
            frame(np.multiply(Y, unit), np.multiply(SE, unit)),
            estimate="y",
            se="se",
            hyperprior="half_normal",  # scaled by the RMS of the se, so it scales too
        )
        out = run_everything(meta)
        het, ref = out["heterogeneity"], base.heterogeneity()
        for col, power in (("mu", 1), ("mu_se", 1), ("tau2", 2), ("I2", 0), ("H2", 0), ("Q", 0)):
            np.testing.assert_allclose(het[col] / unit**power, ref[col], rtol=1e-7)
        np.testing.assert_allclose(
            out["summary"].to_numpy() / unit, base.summary().to_numpy(), rtol=1e-7
        )


# -- two studies -----------------------------------------------------------------------------


def test_two_studies_i2_and_h2_by_hand():
    # y = (0.1, 0.5), se = (0.1, 0.2): w = (100, 25), fixed-effect mean 0.18,
    # Q = 100 * 0.08^2 + 25 * 0.32^2 = 3.2 on 1 df, tr P = 125 - 10625 / 125 = 40, so the
    # typical within-study variance is s^2 = (k - 1) / tr P = 0.025 (metafor's formula, which
    # is defined for k = 2). DL: tau^2 = (3.2 - 1) / 40 = 0.055; REML for two studies solves
    # (y1 - y2)^2 = v1 + v2 + 2 tau^2, also 0.055. I2 = 100 * 0.055 / 0.08 = 68.75,
    # H2 = 0.08 / 0.025 = 3.2 (= Q / df for DL, as it must be).
    df = frame([0.1, 0.5], [0.1, 0.2])
    meta = hm.meta_analysis(df, estimate="y", se="se", study="study", hyperprior="half_normal")
    out = run_everything(meta)
    table = out["heterogeneity"]
    for method in ("REML", "DL"):
        assert table.loc[method, "Q"] == pytest.approx(3.2, rel=1e-12)
        assert table.loc[method, "Q_df"] == 1
        assert table.loc[method, "tau2"] == pytest.approx(0.055, rel=1e-9)
        assert table.loc[method, "I2"] == pytest.approx(68.75, rel=1e-9)
        assert table.loc[method, "H2"] == pytest.approx(3.2, rel=1e-9)
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    # leaving one of two out leaves one study: REML is undefined there (NaN), the posterior is
    # not (the proper prior on tau carries it: mu | y ~ Normal(y_i, sqrt(se_i^2 + tau^2)))
    loo = out["leave_one_out"]
    assert loo[["mu_reml", "tau2_reml", "I2_reml"]].isna().all().all()
    assert loo["mu"].tolist() == pytest.approx([0.5, 0.1], abs=1e-9)
    assert np.isfinite(loo[["mu", "mu_sd", "ci_low", "ci_high", "tau_mean"]].to_numpy()).all()


def test_two_studies_under_a_half_cauchy_prior_have_no_posterior_variance():
    """With k = 2 and a flat prior on mu, p(tau | y) falls like tau^-3 under a half-Cauchy
    prior, so E[tau^2 | y] (hence sd(mu), sd(tau), the bayes tau2) is infinite: reported as
    inf, with the limits I2 = 100 and H2 = inf, and no RuntimeWarning on the way."""
    meta = hm.meta_analysis(frame([0.1, 0.5], [0.1, 0.2]), estimate="y", se="se", study="study")
    summary = meta.summary()
    assert np.isinf(summary.loc["mu", "sd"]) and np.isfinite(summary.loc["mu", "mean"])
    bayes = meta.heterogeneity().loc["bayes"]
    assert np.isinf(bayes["tau2"]) and bayes["I2"] == 100.0 and np.isinf(bayes["H2"])


# -- identical estimates ---------------------------------------------------------------------


def test_identical_estimates():
    meta = hm.meta_analysis(
        frame([0.3] * 5, [0.1, 0.2, 0.3, 0.1, 0.5]), estimate="y", se="se", study="study"
    )
    out = run_everything(meta)
    table = out["heterogeneity"]
    for method in ("REML", "DL"):
        assert table.loc[method, "Q"] == pytest.approx(0.0, abs=1e-25)  # zero up to rounding
        assert table.loc[method, "Q_pvalue"] == pytest.approx(1.0, abs=1e-12)
        assert table.loc[method, "tau2"] == 0.0
        assert table.loc[method, "I2"] == 0.0 and table.loc[method, "H2"] == 1.0
        assert table.loc[method, "mu"] == pytest.approx(0.3, rel=1e-14)
    assert out["summary"].loc["mu", "mean"] == pytest.approx(0.3, rel=1e-12)
    effects = out["study_effects"]
    np.testing.assert_allclose(effects["mean"], 0.3, rtol=1e-12)
    # the shrinkage ratio (the fraction of the gap to mu closed) is 0/0 when the estimate
    # already is mu: NaN by definition; the pooling factor stays defined
    assert effects["shrinkage_ratio"].isna().all()
    assert ((effects["pooling_factor"] > 0) & (effects["pooling_factor"] < 1)).all()
    assert_finite(effects, skip=["shrinkage_ratio"])
    assert_finite(out["summary"])
    assert_finite(out["leave_one_out"])


# -- the limit of a study with vanishing (or infinite) variance ----------------------------
# One study's se 1e-300 among se of about 10 (a ratio of 1e301, once refused beyond 1e152):
# its variance has no double-precision relation to the others', so the classical fits take
# the limit v_i / v_others -> 0 (hiermodels.numerics.heterogeneity._prepare_units) and the
# exact engine computes in units of the geometric middle of the se. Brute force: the same
# data with se_i = 1e-8, 1e-12, 1e-16 (computed as given) must agree with the 1e-300 answers,
# since everything that has a limit differs from it by O(se_i^2 / se_j^2) <= 1e-30.

SCHOOLS_Y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]  # Rubin (1981), BDA3 5.5
SCHOOLS_SE = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]
CLASSICAL = ["REML", "DL", "PM", "ML", "HE", "SJ", "EB", "EE", "HS"]
LIMIT_COLUMNS = ["mu", "ci_low", "ci_high", "tau2", "tau", "I2", "H2", "Q", "Q_pvalue"]
LIMIT_COLUMNS += ["pi_low", "pi_high", "tau2_ci_low", "tau2_ci_high", "I2_ci_low", "I2_ci_high"]


def schools_with(i, se_i):
    se = list(SCHOOLS_SE)
    se[i] = se_i
    df = pd.DataFrame({"school": list("ABCDEFGH"), "y": SCHOOLS_Y, "se": se})
    # a fixed prior: the default scales with the RMS of the se, which a huge se dominates
    prior = hm.priors.HalfCauchy(25)
    return hm.meta_analysis(df, estimate="y", se="se", study="school", hyperprior=prior)


@pytest.fixture(scope="module")
def tiny_limit():
    return {s: schools_with(4, s) for s in (1e-8, 1e-12, 1e-16, 1e-300)}


def test_tiny_se_classical_fits_converge_to_the_limit(tiny_limit):
    limit = tiny_limit[1e-300].heterogeneity(CLASSICAL)
    assert np.isfinite(limit[LIMIT_COLUMNS].drop(index="EE").to_numpy(dtype=float)).all()
    for tiny in (1e-8, 1e-12, 1e-16):
        got = tiny_limit[tiny].heterogeneity(CLASSICAL)
        for method in CLASSICAL:
            cols = LIMIT_COLUMNS if method != "HS" else ["mu", "Q", "Q_pvalue"]
            if method == "EE":
                cols = ["mu", "Q", "Q_pvalue", "I2", "H2"]
            np.testing.assert_allclose(
                got.loc[method, cols].to_numpy(dtype=float),
                limit.loc[method, cols].to_numpy(dtype=float),
                rtol=1e-9,
                atol=3 * tiny,  # a common-effect CI is y_E +/- 1.96 se_E
                err_msg=f"{method} at se {tiny:g}",
            )
    # closed forms of the limit (study E, y = -0.64, known exactly): the common effect is its
    # estimate, with the standard error of 1 / sqrt(sum w) ~ se_E (Hedges & Olkin 1985);
    # Q = sum_{j != E} w_j (y_j - y_E)^2 (the pairwise form of Q with w_E -> inf); tr P ->
    # 2 sum_{j != E} w_j, so s^2 = (k - 1) / tr P and DL's tau^2 = (Q - (k - 1)) / tr P
    # (DerSimonian & Laird 1986; metafor's I^2 = tau^2 / (tau^2 + s^2))
    w = 1 / np.square(np.delete(SCHOOLS_SE, 4))
    q = float(np.sum(w * (np.delete(SCHOOLS_Y, 4) - SCHOOLS_Y[4]) ** 2))
    tr_p = 2 * w.sum()
    dl = (q - 7) / tr_p
    assert limit.loc["EE", "mu"] == SCHOOLS_Y[4]
    assert limit.loc["EE", "mu_se"] == pytest.approx(1e-300, rel=1e-12)
    assert limit.loc["DL", "Q"] == pytest.approx(q, rel=1e-12)
    assert limit.loc["DL", "tau2"] == pytest.approx(dl, rel=1e-12)
    assert limit.loc["DL", "I2"] == pytest.approx(100 * dl / (dl + 7 / tr_p), rel=1e-12)
    # with tau^2 > 0 the exact study's weight is 1 / tau^2 (no overflow): DL's mu is the
    # random-effects mean with v_E = 0
    w_re = 1 / (np.square(SCHOOLS_SE) + dl)
    w_re[4] = 1 / dl
    assert limit.loc["DL", "mu"] == pytest.approx(np.sum(w_re * SCHOOLS_Y) / w_re.sum(), rel=1e-12)
    # HS's tau^2 is (Q - k) / sum w: it vanishes with se_E^2 (1e-400 here), and so does the
    # common-effect se with se_E; both are numbers a double holds only as ~0
    assert limit.loc["HS", "tau2"] < 1e-140 and limit.loc["HS", "mu_se"] < 1e-70


def test_tiny_se_every_method_runs_and_the_posterior_converges(tiny_limit):
    meta = tiny_limit[1e-300]
    out = run_everything(meta)
    for name in ("summary", "study_effects", "leave_one_out"):
        assert_finite(out[name], skip=["shrinkage_ratio"] if name == "study_effects" else [])
    for call in (meta.influence, meta.cumulative, meta.rank_test, meta.pet_peese):
        call()
    assert np.isfinite(meta.egger_test().stat) and np.isfinite(meta.trim_and_fill().mu)
    ref = tiny_limit[1e-16]
    # exact-engine numbers: quadrature over tau accurate to ~1e-8
    np.testing.assert_allclose(
        meta.summary().to_numpy(dtype=float), ref.summary().to_numpy(dtype=float), rtol=1e-7
    )
    effects, ref_effects = meta.study_effects(), ref.study_effects()
    cols = ["mean", "ci_low", "ci_high", "pooling_factor", "weight"]
    np.testing.assert_allclose(effects[cols], ref_effects[cols], rtol=1e-7, atol=1e-12)
    # the exact study keeps its estimate, and its posterior sd is its se (up to a rounding)
    assert effects.loc[4, "mean"] == pytest.approx(-0.64, abs=1e-13)
    assert effects.loc[4, "sd"] < 1e-15 and effects.loc[4, "weight"] > ref_effects["weight"][3]


def test_huge_se_study_has_the_limit_of_no_weight():
    """se = 1e300 among se of about 10: the study's weight is 0 in every fit, while it still
    counts in k (Q's degrees of freedom, DL's k - 1, the typical variance's k - 1) as in
    metafor; se = 1e8, 1e12, 1e16 (computed as given) converge to it."""
    limit = schools_with(3, 1e300)
    table = limit.heterogeneity(["bayes", *CLASSICAL])
    assert np.isfinite(table[["mu", "tau", "I2", "H2", "Q"]].to_numpy(dtype=float)).all()
    for huge in (1e8, 1e12, 1e16):
        got = schools_with(3, huge).heterogeneity(["bayes", *CLASSICAL])
        rtol = 1e-6 if huge == 1e8 else 1e-9
        for method in CLASSICAL:
            cols = ["mu", "mu_se", "tau2", "I2", "H2", "Q"]
            np.testing.assert_allclose(
                got.loc[method, cols].to_numpy(dtype=float),
                table.loc[method, cols].to_numpy(dtype=float),
                rtol=rtol,
                atol=1e-12,
                err_msg=f"{method} at se {huge:g}",
            )
        np.testing.assert_allclose(
            got.loc["bayes", ["mu", "mu_se", "tau"]].to_numpy(dtype=float),
            table.loc["bayes", ["mu", "mu_se", "tau"]].to_numpy(dtype=float),
            rtol=1e-6,
        )
    effects = limit.study_effects().set_index("study")
    assert effects.loc["D", "weight"] == 0.0
    assert effects.loc["D", "pooling_factor"] == pytest.approx(1.0, abs=1e-15)
    run_everything(limit)


def test_spread_beyond_double_precision_is_refused():
    # se 1e-300 and 1e10 together: a ratio of 1e310, more than any double holds
    schools = pd.DataFrame({"y": SCHOOLS_Y, "se": [1e-300, *SCHOOLS_SE[1:7], 1e10]})
    with pytest.raises(hm.DataError, match="spans more than a factor 1e\\+302"):
        hm.meta_analysis(schools, estimate="y", se="se")
