"""Every tau^2 estimator against metafor 3.8.1 and published tables, plus metafor-free checks.

Reference values: rma(yi, vi, data=dat, method=m, control=list(threshold=1e-12, tol=1e-12,
maxiter=10000)) in R 4.2.2 with metafor 3.8.1 (tests/data/metafor_reference.R), printed to 10
significant digits, for dat = the BCG log risk ratios, the Normand (1999) SMDs and
dat.raudenbush1985 (fixtures in conftest.py). The tight control makes metafor iterate ML,
REML, EB (default: stop at a tau^2 change of 1e-5) and PM (uniroot tol ~1e-4) to the exact
optimum, which is what these functions return; the default-control values differ in the 5th
to 7th digit and are checked with a tolerance that allows for that.
"""

import numpy as np
import pytest

from hiermodels.numerics.estimators import ESTIMATORS, generalized_q
from hiermodels.numerics.heterogeneity import _Weighted
from hiermodels.numerics.inference import fit_random_effects

R10 = 1e-8  # 10 printed significant digits, and the last-bit differences of two algorithms

# method: (tau2, se.tau2, beta, se, I2, H2) for bcg, smd, rau; exact control, metafor 3.8.1
EXACT = {
    "EE": (
        (0, np.nan, -0.4302851637, 0.04049875171, 92.11734685, 12.68608401),
        (0, np.nan, -0.4106114194, 0.06160275154, 93.53427066, 15.46615929),
        (0, np.nan, 0.06036556634, 0.03646785011, 49.76211847, 1.990529794),
    ),
    "DL": (
        (0.3087602629, 0.2298699925, -0.7141172221, 0.1787420895, 92.11734685, 12.68608401),
        (0.5397143748, 0.3558877203, -0.5307373106, 0.2592186057, 93.53427066, 15.46615929),
        (0.0259036723, 0.01854792776, 0.08932208443, 0.05579392472, 49.76211847, 1.990529794),
    ),
    "HE": (
        (0.328563858, 0.2070871783, -0.7158785888, 0.183279986, 92.55709741, 13.43561853),
        (0.7964655403, 0.4346623557, -0.5372107317, 0.3096764188, 95.52531734, 22.3479535),
        (0.08037017544, 0.04480135313, 0.1143176927, 0.07921375558, 75.44971743, 4.073272872),
    ),
    "HS": (
        (0.2283628637, 0.1279045566, -0.7045353739, 0.1586520931, 89.62996666, 9.643170544),
        (0.4353860082, 0.2360012017, -0.5263818588, 0.235551826, 92.10722082, 12.66980841),
        (0.02238166919, 0.01568948229, 0.08665231696, 0.05378831717, 46.11639339, 1.855852017),
    ),
    "SJ": (
        (0.3455157016, 0.1496805113, -0.7172485926, 0.1870594584, 92.8963241, 14.0772188),
        (0.7923709871, 0.3953296366, -0.5371362335, 0.308937655, 95.50323433, 22.23820572),
        (0.07714099673, 0.02956720487, 0.1133411526, 0.07806436778, 74.68221367, 3.949792398),
    ),
    "PM": (
        (0.3180684522, 0.1736630275, -0.7149681535, 0.1808921915, 92.33033795, 13.03838414),
        (0.794330181, 0.4304751772, -0.5371719637, 0.3092913683, 95.51382791, 22.2907187),
        (0.0517733101, 0.02946509931, 0.1039569702, 0.06820838732, 66.44022933, 2.979758145),
    ),
    "ML": (
        (0.2800281373, 0.1442519494, -0.7111991355, 0.1718968088, 91.37828379, 11.59861883),
        (0.6943514529, 0.357472732, -0.5351278862, 0.2906820824, 94.90080868, 19.61095274),
        (0.01255189475, 0.01229230512, 0.07773652594, 0.04749104852, 32.43113353, 1.479971549),
    ),
    "REML": (
        (0.3132432581, 0.1664257528, -0.7145323422, 0.1797815161, 92.22138452, 12.85575824),
        (0.7908429138, 0.4280954832, -0.5371082584, 0.3086614903, 95.49493707, 22.19724821),
        (0.01881828814, 0.01552401139, 0.08370124188, 0.05164067136, 41.84667025, 1.719591989),
    ),
}
EXACT["EB"] = EXACT["PM"]  # metafor prints the same numbers for EB (same estimating equation)

# rma(yi, vi, data=dat, method=m) with metafor's default control: tau2 (bcg, smd, rau)
DEFAULT = {
    "PM": (0.3180937119, 0.7943153579, 0.05175820509),
    "EB": (0.3180685158, 0.7943302257, 0.05177426916),
    "ML": (0.280028171, 0.6943514571, 0.01256209255),
    "REML": (0.313243326, 0.790842921, 0.01882634806),
}

# rma(yi, vi, mods=~ablat, data=dat, method=m, control=exact) on the BCG log risk ratios:
# (tau2, se.tau2); metafor 3.8.1
MODS = {
    "EE": (0, np.nan),
    "DL": (0.06330050243, 0.05482514786),
    "HE": (0.2090480264, 0.1707119646),
    "HS": (0.0290849079, 0.01628845677),
    "SJ": (0.2318437161, 0.1195337806),
    "PM": (0.1421319415, 0.09749856352),
    "EB": (0.1421319415, 0.09749856352),
    "ML": (0.03435144248, 0.02801418012),
    "REML": (0.07634796396, 0.0590472289),
}


def test_the_registry_has_metafors_estimators():
    assert set(ESTIMATORS) == {"EE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML"}
    assert {e.likelihood for e in ESTIMATORS.values()} == {None, "ML", "REML"}


@pytest.mark.parametrize("method", sorted(EXACT))
def test_estimators_match_metafor_on_three_data_sets(method, bcg_rr, normand_smd, raudenbush):
    data = [bcg_rr[:2], normand_smd, raudenbush]
    for (y, v), expected in zip(data, EXACT[method], strict=True):
        fit = fit_random_effects(y, np.sqrt(v), method=method)
        got = (fit.tau2, fit.tau2_se, fit.beta[0], fit.se[0], fit.I2, fit.H2)
        np.testing.assert_allclose(got, expected, rtol=R10, atol=1e-14)
    for (y, v), tau2 in zip(data, DEFAULT.get(method, ()), strict=False):
        # metafor's own stopping rules leave it within ~3e-5 of the exact optimum
        assert fit_random_effects(y, np.sqrt(v), method=method).tau2 == pytest.approx(
            tau2, abs=3e-5
        )


@pytest.mark.parametrize("method", sorted(MODS))
def test_estimators_with_a_moderator_match_metafor(method, bcg_rr):
    y, v, X, _ = bcg_rr
    fit = fit_random_effects(y, np.sqrt(v), X, method=method)
    np.testing.assert_allclose([fit.tau2, fit.tau2_se], MODS[method], rtol=R10)


def test_viechtbauer_2005_table_published():
    # Viechtbauer (2005), J. Educ. Behav. Stat. 30:261-293, p. 271, example 1, as in metafor's
    # test suite (test_analysis_example_viechtbauer2005.r), 4 decimals
    y = [-0.581, 0.530, 0.771, 1.031, 0.553, 0.295, 0.078, 0.573, -0.176, -0.232]
    v = np.array([0.023, 0.052, 0.060, 0.115, 0.095, 0.203, 0.200, 0.211, 0.051, 0.040])
    published = {  # tau2, I2, H2, se.tau2
        "HS": (0.2282, 77.2284, 4.3914, 0.1328),
        "HE": (0.1484, 68.7988, 3.205, 0.1234),
        "DL": (0.2768, 80.4447, 5.1137, 0.1841),
        "ML": (0.1967, 74.5098, 3.9231, 0.1255),
        "REML": (0.2232, 76.8399, 4.3178, 0.1464),
        "EB": (0.192, 74.0511, 3.8537, 0.133),
        "SJ": (0.1992, 74.7545, 3.9611, 0.0979),
    }
    for method, (tau2, i2, h2, se) in published.items():
        fit = fit_random_effects(y, np.sqrt(v), method=method)
        assert fit.tau2 == pytest.approx(tau2, abs=1e-4), method
        assert fit.I2 == pytest.approx(i2, abs=1e-3), method
        assert fit.H2 == pytest.approx(h2, abs=1e-3), method
        assert fit.tau2_se == pytest.approx(se, abs=1e-4), method


def test_raudenbush_2009_table_16_3(raudenbush):
    # Raudenbush (2009), Handbook of Research Synthesis, Table 16.3, as in metafor's test
    # suite (test_analysis_example_raudenbush2009.r): tau2, mu, se, z for EE, ML, REML, DL, HE
    y, v = raudenbush
    table = {
        "EE": (0, 0.0604, 0.0365, 1.6553),
        "ML": (0.0126, 0.0777, 0.0475, 1.6368),
        "REML": (0.0188, 0.0837, 0.0516, 1.6208),
        "DL": (0.0259, 0.0893, 0.0558, 1.6009),
        "HE": (0.0804, 0.1143, 0.0792, 1.4432),
    }
    for method, expected in table.items():
        fit = fit_random_effects(y, np.sqrt(v), method=method)
        got = (fit.tau2, fit.beta[0], fit.se[0], fit.stat[0])
        # 4 decimals; ML's z is 1.63687 at the exact optimum (tau2 = 0.012552) and 1.6368 at
        # metafor's default stop (0.012562), hence 1e-4
        np.testing.assert_allclose(got, expected, atol=1e-4)


# -- metafor-independent checks: each estimate solves its defining equation


def test_pm_and_eb_solve_the_generalized_q_equation(bcg_rr):
    y, v, X, _ = bcg_rr
    for design in (X[:, :1], X):
        k, p = design.shape
        for method in ("PM", "EB"):
            tau2 = fit_random_effects(y, np.sqrt(v), design, method=method).tau2
            assert generalized_q(y, v, design, tau2) == pytest.approx(k - p, rel=1e-12)


def test_ml_and_reml_solve_their_score_equations(bcg_rr, normand_smd):
    for y, v in (bcg_rr[:2], normand_smd):
        tau2 = fit_random_effects(y, np.sqrt(v), method="ML").tau2
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        # ML score: sum w^2 (y - mu)^2 - sum w = 0 (Viechtbauer 2005, eq. 6)
        assert np.sum(w**2 * (y - mu) ** 2) == pytest.approx(np.sum(w), rel=1e-9)
        tau2 = fit_random_effects(y, np.sqrt(v), method="REML").tau2
        fit = _Weighted(y, np.ones((y.size, 1)), 1 / (v + tau2))
        assert abs(fit.score_u()) * fit.c < 1e-9 * fit.tr_p


def test_closed_forms_by_hand():
    # y = (0, 2, 6), v = (1, 1, 4): Q = 68/9, sum w = 9/4
    y, v = np.array([0.0, 2.0, 6.0]), np.array([1.0, 1.0, 4.0])
    hs = fit_random_effects(y, np.sqrt(v), method="HS").tau2
    assert hs == pytest.approx((68 / 9 - 3) / (9 / 4), rel=1e-12)
    # HE: (sum (y - ybar)^2 - sum v (1 - 1/k)) / (k - 1) = (56/3 - 4) / 2 = 22/3
    he = fit_random_effects(y, np.sqrt(v), method="HE").tau2
    assert he == pytest.approx((56 / 3 - 6 * 2 / 3) / 2, rel=1e-12)
    # SJ: tau0 = mean((y - ybar)^2) = 56/9; tau0 * Q(tau0) / (k - 1)
    tau0 = 56 / 9
    sj = fit_random_effects(y, np.sqrt(v), method="SJ").tau2
    assert sj == pytest.approx(tau0 * generalized_q(y, v, np.ones((3, 1)), tau0) / 2, rel=1e-12)


@pytest.mark.parametrize("method", sorted(ESTIMATORS))
def test_homogeneous_data_give_tau2_zero_or_small(method):
    y, se = [0.1, 0.12, 0.09, 0.11], [0.2, 0.3, 0.25, 0.2]
    tau2 = fit_random_effects(y, se, method=method).tau2
    if method == "SJ":  # Sidik-Jonkman is positive whenever the y differ
        assert 0 < tau2 < 1e-3
    else:
        assert tau2 == 0.0
