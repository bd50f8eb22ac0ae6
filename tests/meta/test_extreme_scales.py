"""Every result method on data in extreme units: eight schools (Rubin 1981) and BCG (Colditz
et al. 1994, metafor's dat.bcg) with y and se multiplied by 1e-300 ... 1e300 give the scaled
answers of the same data in ordinary units (locations and scales times the factor, variances
times its square where a double holds that, I^2, H^2, Q, z, p, weights and Bayes factors
unchanged), because the numerics compute in units of the se's geometric middle
(hiermodels.numerics.heterogeneity.data_unit). Before, se below 1e-150 or above 1e150 were
refused with "rescale units"."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

SCALES = [1e-300, 1e-200, 1e-4, 1e4, 1e200, 1e300]
# columns by the power of the unit they carry; all others are locations or scales (power 1)
POWER_0 = {
    "I2", "H2", "Q", "Q_df", "Q_pvalue", "I2_ci_low", "I2_ci_high", "H2_ci_low", "H2_ci_high",
    "pooling_factor", "shrinkage_ratio", "weight", "ess_bulk", "ess_tail", "r_hat", "k",
    "rstudent", "dffits", "cook_d", "cov_r", "QE_del", "hat", "dfbetas_mu", "is_influential",
    "stat", "pvalue", "Q_p", "I2_reml", "prob_positive", "prob_negative", "bf01_mu", "bf01_tau",
    "bf01", "bf10", "df", "QE", "QE_df", "QE_pvalue", "pvalue_one_sided", "k0", "se_k0", "slope",
}  # fmt: skip
POWER_2 = {"tau2", "tau2_se", "tau2_ci_low", "tau2_ci_high", "tau2_reml", "tau2_del", "tau2_sd"}
POWER_MINUS_1 = {"posterior_density", "prior_density"}  # densities of mu (or tau): per unit
RTOL = 1e-10  # classical numbers: closed forms and roots found to the last bits
RTOL_BAYES = 1e-7  # exact-engine numbers: the tau quadrature is accurate to ~1e-8


def power(column):
    if column in POWER_2:
        return 2
    if column in POWER_MINUS_1:
        return -1
    return 0 if column in POWER_0 else 1


def eight_schools(scale=1.0):
    df = hm.datasets.load("eight_schools")
    return df.assign(y=df["y"] * scale, sigma=df["sigma"] * scale)


def bcg(scale=1.0):
    df = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")
    return df.assign(yi=df["yi"] * scale, sei=np.sqrt(df["vi"]) * scale)


def fit(which, scale):
    if which == "eight_schools":
        return hm.meta_analysis(
            eight_schools(scale), estimate="y", se="sigma", study="school",
            hyperprior="half_normal", mu_prior=hm.priors.Normal(0, 50 * scale), random_seed=3,
        )  # fmt: skip
    return hm.meta_analysis(
        bcg(scale), estimate="yi", se="sei", study="trial", hyperprior="half_cauchy",
        random_seed=3,
    )  # fmt: skip


def tables(meta, scale):
    """Every table a result gives, as DataFrames (objects via to_series or their fields)."""
    tf = meta.trim_and_fill()
    pet = meta.pet_peese()
    out = {
        "summary": meta.summary(),
        "hdi": meta.summary(interval="hdi").drop(columns=["mode"]),
        "heterogeneity": meta.heterogeneity(["bayes", "REML", "DL", "PM", "ML", "HE", "SJ"]),
        "heterogeneity_knha": meta.heterogeneity(["REML", "EE"], test="knha"),
        "study_effects": meta.study_effects(),
        "leave_one_out": meta.leave_one_out(),
        "influence": meta.influence(),
        "cumulative": meta.cumulative(),
        "coefficients": meta.coefficients(),
        "coefficients_bayes": meta.coefficients("bayes"),
        "predict": meta.predict(),
        "predict_bayes": meta.predict(method="bayes"),
        "egger": meta.egger_test().to_series().to_frame().T,
        "egger_lm": meta.egger_test(model="lm").to_series().to_frame().T,
        "rank": pd.DataFrame({"k0": [meta.rank_test().tau], "pvalue": [meta.rank_test().pvalue]}),
        "trim_and_fill": pd.DataFrame(
            {"mu": [tf.mu], "ci_low": [tf.ci_low], "ci_high": [tf.ci_high], "k0": [tf.k0]}
        ),
        "filled": tf.filled,
        "pet_peese": pd.DataFrame(
            {"estimate": [pet.estimate], "ci_low": [pet.ci_low], "ci_high": [pet.ci_high]}
        ),
        # the priors are scaled with the data (their names show the scale)
        "prior_sensitivity": meta.prior_sensitivity(["half_normal", "half_cauchy"]).drop(
            columns="prior"
        ),
        "probability": pd.DataFrame(
            {"pvalue": [meta.probability(f"mu < {0.5 * scale!r}"), meta.prob_above(0.0)]}
        ),
        "draws": pd.DataFrame({"mu": meta.draws("mu").ravel(), "tau": meta.draws("tau").ravel()}),
    }
    if meta.mu_prior is not None:
        out["bayes_factors"] = meta.bayes_factors().drop(columns="reading")
    return out


def assert_scaled(got, base, scale, name):
    """``got`` (fitted at ``scale``) is ``base`` scaled, column by column."""
    assert list(got.columns) == list(base.columns), name
    for col in base.columns:
        b, g = base[col], got[col]
        if not pd.api.types.is_numeric_dtype(b) or b.dtype == bool:
            assert list(g) == list(b), (name, col)
            continue
        if abs(power(col) * math.log10(scale)) > 290:
            continue  # tau^2 of data in units 1e-300 is 1e-600: no double holds it
        factor = scale ** power(col)
        rtol = RTOL_BAYES if name in BAYESIAN or col in BAYESIAN_COLUMNS else RTOL
        b = b.to_numpy(dtype=float)
        # atol: numbers that are zero up to rounding in either
        size = float(np.max(np.abs(b), where=np.isfinite(b), initial=1.0))
        np.testing.assert_allclose(
            g.to_numpy(dtype=float) / factor,
            b,
            rtol=rtol,
            atol=1e-12 * size,
            err_msg=f"{name}.{col} at scale {scale:g}",
        )


BAYESIAN = {
    "summary", "hdi", "study_effects", "leave_one_out", "coefficients_bayes", "predict_bayes",
    "prior_sensitivity", "probability", "draws", "bayes_factors",
}  # fmt: skip
BAYESIAN_COLUMNS = {"pooling_factor", "shrinkage_ratio", "mean", "sd"}


@pytest.fixture(scope="module", params=["eight_schools", "bcg"])
def base(request):
    meta = fit(request.param, 1.0)
    return request.param, tables(meta, 1.0)


@pytest.mark.parametrize("scale", SCALES)
def test_every_table_scales_with_the_units(base, scale):
    which, reference = base
    meta = fit(which, scale)
    got = tables(meta, scale)
    for name, table in reference.items():
        if name == "heterogeneity":
            table = table.drop(index="bayes")  # the bayes row is checked below, in BAYESIAN
            assert_scaled(
                got[name].loc[["bayes"]], reference[name].loc[["bayes"]], scale, "summary"
            )
            assert_scaled(got[name].drop(index="bayes"), table, scale, name)
            continue
        assert_scaled(got[name], table, scale, name)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_plots_and_save_load_at_extreme_units(tmp_path, scale):
    meta = fit("eight_schools", scale)
    for draw in (meta.plot_forest, meta.plot_funnel, meta.plot_tau, meta.plot_joint):
        fig = draw()
        assert fig.axes
        plt.close(fig)
    back = hm.load(meta.save(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(back.summary(), meta.summary())
    # "summary": the tolerance of the exact engine's numbers, for the bayes row
    base = fit("eight_schools", 1.0).heterogeneity()
    assert_scaled(back.heterogeneity(), base, scale, "summary")
