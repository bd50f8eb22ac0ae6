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
