"""Influence diagnostics, cumulative meta-analysis and its plot, through the public API.

metafor numbers: R 4.2.2, metafor 3.8.1; the full tables are checked in
tests/numerics/test_influence.py, here the public tables must carry them, study by study.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import hiermodels as hm

CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}
R10 = 1e-8


@pytest.fixture(scope="module")
def bcg():
    return hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)


@pytest.fixture(scope="module")
def meta(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")


def test_influence_matches_metafor_and_refits(bcg, meta):
    table = meta.influence()
    assert list(table["study"]) == [str(t) for t in bcg["trial"]]
    # tests/numerics/test_influence.py (metafor's test_misc_influence.r), study 1, REML:
    # rstudent -0.218142, dffits -0.040708, cook.d 0.001717, cov.r 1.116449,
    # tau2.del 0.336157, QE.del 151.582573, hat 0.050595, weight 5.059483, dfbs -0.040266
    first = table.iloc[0]
    cols = ["rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat", "weight"]
    expected = [-0.218142, -0.040708, 0.001717, 1.116449, 0.336157, 151.582573, 0.050595]
    np.testing.assert_allclose(first[cols].to_numpy(float), [*expected, 5.059483], atol=1e-6)
    assert first["dfbetas_mu"] == pytest.approx(-0.040266, abs=1e-6)
    assert not table["is_influential"].any()  # metafor: is.infl all FALSE
    # tau2_del and QE_del are the refits without each study, through the public API
    for i in (0, 3, 7):
        refit = hm.meta_analysis(bcg.drop(index=i), estimate="yi", vi="vi")
        row = refit.heterogeneity(["REML"]).loc["REML"]
        assert table.loc[i, "tau2_del"] == pytest.approx(row["tau2"], rel=1e-10)
        assert table.loc[i, "QE_del"] == pytest.approx(row["Q"], rel=1e-10)
    # with a moderator: one dfbetas column per coefficient
    reg = hm.meta_analysis(bcg, estimate="yi", vi="vi", moderators="ablat").influence("DL")
    assert {"dfbetas_Intercept", "dfbetas_ablat"} <= set(reg.columns)


def test_cumulative_matches_metafor_and_refits(bcg, meta):
    cu = meta.cumulative("year", method="DL")
    # tests/numerics/test_influence.py, CUMUL_Z: cumul(rma(yi, vi, data=dat, method="DL"),
    # order=dat$year), metafor 3.8.1
    np.testing.assert_allclose(
        cu["mu"][:4], [-0.8893113339, -1.325003442, -0.9615353219, -0.9523947426], rtol=R10
    )
    np.testing.assert_allclose(
        cu["tau2"][-3:], [0.1382344135, 0.2108852326, 0.3087602629], rtol=R10
    )
    np.testing.assert_allclose(cu["Q"].iloc[-1], 152.2330081, rtol=R10)
    assert list(cu["year"]) == sorted(bcg["year"])
    # each step is the meta-analysis of the studies added so far
    order = np.argsort(bcg["year"].to_numpy(), kind="stable")
    for j in (2, 6, 12):
        sub = bcg.iloc[order[: j + 1]]
        row = hm.meta_analysis(sub, estimate="yi", vi="vi").heterogeneity(["DL"]).loc["DL"]
        for col in ("mu", "mu_se", "ci_low", "ci_high", "tau2", "Q", "I2", "H2"):
            assert cu.loc[j, col] == pytest.approx(row[col], rel=1e-10), (j, col)
    # sort keys as an array give the same table; None keeps the data's order
    by_keys = meta.cumulative(bcg["year"].to_numpy(), method="DL")
    np.testing.assert_array_equal(by_keys["mu"], cu["mu"])
    assert list(meta.cumulative()["study"]) == [str(t) for t in bcg["trial"]]
    with pytest.raises(hm.SpecError, match="one sort key per study"):
        meta.cumulative([1, 2, 3])


def test_plot_cumulative(meta, tmp_path):
    fig = meta.plot_cumulative(tmp_path / "cumulative.png", order="year")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 13 and labels[0] == "1" and labels[1].startswith("+ ")
    assert (tmp_path / "cumulative.png").stat().st_size > 5_000
    plt.close(fig)
