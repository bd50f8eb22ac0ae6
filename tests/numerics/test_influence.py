"""Influence diagnostics and cumulative meta-analysis: refits (metafor-free) and metafor 3.8.1.

metafor numbers: R 4.2.2, metafor 3.8.1, calls in tests/data/metafor_reference.R with
dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg), printed to 10
significant digits.
"""

import numpy as np
import pytest
from scipy import stats

from hiermodels.numerics.inference import fit_random_effects
from hiermodels.numerics.influence import cumulative, influence

R10 = 1e-8


def r(text):
    """Numbers as R prints them, whitespace separated."""
    return np.array(text.split(), dtype=float)


# influence(rma(yi, vi, data=dat, test=test, control=list(threshold=1e-12, tol=1e-12,
# maxiter=10000)))$inf; metafor 3.8.1. tau2.del, QE.del, hat, weight are the same for "knha".
INF = {
    "z": {
        "rstudent": r(
            """-0.2181424857 -1.291790186 -0.7547197657 -1.451200664 0.8477105776 -0.1179994906
        -1.303727059 1.450080525 0.4076131684 -1.127738776 0.6690791768 1.289840968
        1.187902893"""
        ),
        "dffits": r(
            """-0.0407075475 -0.3435877099 -0.160361504 -0.5200509885 0.2707452182
        -0.01900634833 -0.3361575038 0.4774600074 0.141548473 -0.3486946995 0.2315045129
        0.2526198948 0.3548608993"""
        ),
        "cook_d": r(
            """0.001716541342 0.1132497014 0.02598033104 0.2294816391 0.07623144462
        0.0004134962686 0.1087416195 0.1991775917 0.02199843082 0.1170178352
        0.05807815595 0.06343341626 0.122812904"""
        ),
        "cov_r": r(
            """1.116448986 1.010192292 1.066995811 0.9651264851 1.138023354 1.240716427
        1.007711408 1.001070139 1.196762238 1.050527325 1.185979092 1.025856935
        1.065040678"""
        ),
        "dfbetas": r(
            """-0.04026588917 -0.34586231 -0.1596552766 -0.5138133873 0.2710842622
        -0.01922868053 -0.3387038721 0.4713738837 0.1418921892 -0.3486597506 0.233001917
        0.2535220025 0.3548158293"""
        ),
    },
    "knha": {
        "rstudent": r(
            """-0.2135978504 -1.286829637 -0.7427641192 -1.408779853 0.847010552 -0.1182992176
        -1.301362125 1.430850966 0.407103657 -1.113110069 0.6701696306 1.312864744
        1.187872855"""
        ),
        "dffits": r(
            """-0.03985947356 -0.3422683133 -0.1578211896 -0.5048491039 0.2705216412
        -0.0190546258 -0.3355477208 0.4711283967 0.1413715392 -0.3441715308 0.231881815
        0.2571291825 0.3548519262"""
        ),
        "cook_d": r(
            """0.001697411561 0.1119876043 0.02569079648 0.2269242096 0.0753818928
        0.000408888111 0.1075297621 0.1969578819 0.02175327205 0.1157137446
        0.05743091119 0.06272649047 0.1214442309"""
        ),
        "cov_r": r(
            """1.151485654 1.006650679 1.089344434 1.012711624 1.127201676 1.220680313
        1.000106148 1.016700022 1.18638916 1.066304018 1.168948725 0.9791563594
        1.053224729"""
        ),
        "dfbetas": r(
            """-0.03942701644 -0.3445341788 -0.1571261497 -0.4987938374 0.2708604052
        -0.01927752274 -0.3380894701 0.4651229813 0.1417148257 -0.3441370353
        0.2333816596 0.2580473929 0.3548068574"""
        ),
    },
}
SHARED = {
    "tau2_del": r(
        """0.3361567018 0.292583084 0.3207379296 0.2627581481 0.3278032604 0.3595540704
        0.2930258698 0.2731829294 0.3494520098 0.2987245046 0.3404882878 0.3081622148
        0.3037333664"""
    ),
    "QE_del": r(
        """151.5825727 145.3176077 150.1970445 96.56259497 151.3200089 128.1866647
        145.8296381 67.9858115 152.2050607 139.8270733 151.4655045 150.7868345
        149.7884238"""
    ),
    "hat": r(
        """0.05059482734 0.06364679373 0.04436027403 0.09698747019 0.08868456391
        0.1009573854 0.06027181414 0.1018943904 0.08743133212 0.08367607258 0.09925027
        0.03821629063 0.08402851552"""
    ),
}


@pytest.mark.parametrize("test", ["z", "knha"])
def test_influence_matches_metafor(bcg_rr, test):
    y, v, _, _ = bcg_rr
    inf = influence(y, np.sqrt(v), test=test)
    for name, expected in {**INF[test], **SHARED}.items():
        got = getattr(inf, name)
        np.testing.assert_allclose(np.ravel(got), expected, rtol=R10, err_msg=name)
    np.testing.assert_allclose(inf.weight, 100 * np.array(SHARED["hat"]), rtol=R10)
    assert not inf.is_influential.any()  # metafor: is.infl all FALSE


def test_influence_published_first_study(bcg_rr):
    # metafor's test suite (test_misc_influence.r), study 1, REML: rstudent -0.218142,
    # dffits -0.040708, cook.d 0.001717, cov.r 1.116449, tau2.del 0.336157, QE.del 151.582573,
    # hat 0.050595, weight 5.059483, dfbs -0.040266
    y, v, _, _ = bcg_rr
    inf = influence(y, np.sqrt(v))
    got = [inf.rstudent[0], inf.dffits[0], inf.cook_d[0], inf.cov_r[0], inf.tau2_del[0]]
    got += [inf.QE_del[0], inf.hat[0], inf.weight[0], inf.dfbetas[0, 0]]
    expected = [-0.218142, -0.040708, 0.001717, 1.116449, 0.336157, 151.582573]
    expected += [0.050595, 5.059483, -0.040266]
    np.testing.assert_allclose(got, expected, atol=5e-7)


def test_influence_with_moderator_matches_metafor(bcg_rr):
    # influence(rma(yi, vi, mods=~ablat, data=dat, method="DL"))$inf; metafor 3.8.1
    y, v, X, _ = bcg_rr
    inf = influence(y, np.sqrt(v), X, method="DL")
    expected = {
        "rstudent": r(
            """0.2255452466 -0.5005173018 -0.5564032693 -0.7707671521 -0.3014988076 1.09805205
        -2.680011808 0.5811202465 0.185496624 -1.180947177 -0.2228903172 1.506226344
        2.017243223"""
        ),
        "dffits": r(
            """0.05692397424 -0.2036212583 -0.09885156648 -0.569474143 -0.1380876656
        0.6435365512 -0.625053764 0.4750577652 0.08751538781 -0.4249091337
        -0.05055863073 0.1819170587 0.5146137288"""
        ),
        "cook_d": r(
            """0.003457242262 0.04216505611 0.009866723324 0.3327752921 0.0205728681
        0.3761569166 0.3594006806 0.3209332816 0.008203149443 0.1749841471
        0.003938782994 0.03295883502 0.2442752769"""
        ),
        "cov_r": r(
            """1.141902339 1.250255679 1.082965699 1.623963708 1.513633536 1.162742999
        0.5454247508 2.543633801 1.299954501 1.021848685 2.065176013 0.9471945193
        0.8395382638"""
        ),
        "tau2_del": r(
            """0.06738315813 0.06666027232 0.06550151819 0.06545844901 0.07130662742
        0.05677751774 0.03845945692 0.09132035228 0.0714595436 0.0589374669
        0.08861709275 0.06006509797 0.05250352938"""
        ),
        "hat": r(
            """0.04503135535 0.1389206234 0.03209122057 0.3570089527 0.2176798963 0.2494373773
        0.05829734517 0.3705902513 0.09010558753 0.1126794207 0.235593388 0.01706876185
        0.07549581988"""
        ),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(getattr(inf, name), values, rtol=R10, err_msg=name)
    assert inf.hat.sum() == pytest.approx(2, rel=1e-12)  # trace of the hat matrix is p


@pytest.mark.parametrize(("method", "test"), [("REML", "z"), ("DL", "knha"), ("PM", "z")])
def test_influence_equals_refits_without_each_study(bcg_rr, method, test):
    """The metafor-independent check: every diagnostic from an explicit refit."""
    y, v, X, _ = bcg_rr
    se = np.sqrt(v)
    full = fit_random_effects(y, se, X, method=method, test=test)
    inf = influence(y, se, X, method=method, test=test)
    w = 1 / (v + full.tau2)
    for i in range(y.size):
        keep = np.arange(y.size) != i
        res = fit_random_effects(y[keep], se[keep], X[keep], method=method, test=test)
        x = X[i]
        assert inf.tau2_del[i] == pytest.approx(res.tau2, rel=1e-12, abs=1e-15)
        assert inf.QE_del[i] == pytest.approx(res.QE, rel=1e-12)
        pred = x @ res.beta
        scale = res.s2w * (v[i] + res.tau2) + x @ res.vb @ x
        assert inf.rstudent[i] == pytest.approx((y[i] - pred) / np.sqrt(scale), rel=1e-10)
        dfb = full.beta - res.beta
        assert inf.cook_d[i] == pytest.approx(dfb @ np.linalg.solve(full.vb, dfb), rel=1e-10)
        ratio = np.linalg.det(res.vb) / np.linalg.det(full.vb)
        assert inf.cov_r[i] == pytest.approx(ratio, rel=1e-10)
        h = w[i] * x @ np.linalg.solve(X.T @ (X * w[:, None]), x)
        assert inf.hat[i] == pytest.approx(h, rel=1e-12)
    assert inf.weight.sum() == pytest.approx(100, rel=1e-12)


# cumul(rma(yi, vi, data=dat, method="DL", test=test), order=dat$year); metafor 3.8.1.
# Q, Qp, tau2, I2, H2 do not depend on the test.
CUMUL_Z = {
    "estimate": r(
        """-0.8893113339 -1.325003442 -0.9615353219 -0.9523947426 -1.099322287
        -0.9539942407 -0.8977333659 -0.7819364494 -0.8531334163 -0.7644612611
        -0.6881230659 -0.7900865999 -0.7141172221"""
    ),
    "se": r(
        """0.5706003549 0.3489887723 0.2335009609 0.1846264747 0.1978234884 0.1676480881
        0.178315892 0.1739491757 0.1721442097 0.1542204076 0.1496155077 0.1630846384
        0.1787420895"""
    ),
    "ci_low": r(
        """-2.007667479 -2.009008867 -1.419188796 -1.314255984 -1.4870492 -1.282578455
        -1.247226092 -1.122870569 -1.190529867 -1.066727706 -0.9813640726 -1.109726618
        -1.06444528"""
    ),
    "Q": r(
        """0 0.9314790774 3.187911641 3.861370005 7.641536551 10.18536459 13.21160484
        19.57488884 22.82077895 34.12030096 39.61215454 67.9858115 152.2330081"""
    ),
    "tau2": r(
        """0 0 0.07543986586 0.04255151883 0.08318907291 0.07231906478 0.09653290918
        0.1219755496 0.1351035608 0.1278801554 0.1382344135 0.2108852326 0.3087602629"""
    ),
    "I2": r(
        """0 0 37.26300396 22.30736769 47.65450675 50.90995559 54.58538102 64.2398991
        64.94422904 73.62274146 74.7552232 83.82015342 92.11734685"""
    ),
    "H2": r(
        """1 1 1.593955821 1.287123335 1.910384138 2.037072918 2.20193414 2.796412691
        2.852597369 3.791144551 3.961215454 6.180528318 12.68608401"""
    ),
}
CUMUL_KNHA = {
    # step 1 has k = 1, where metafor switches to test="z"
    "se": r(
        """0.5706003549 0.3368201052 0.2232375283 0.1719256397 0.1608674376 0.1709767085
        0.1998068746 0.198696089 0.1972796808 0.1804907187 0.1786830181 0.1800664899
        0.1806966283"""
    ),
    "pval": r(
        """0.1191020323 0.1584741928 0.0499016104 0.01159584112 0.002398479143
        0.002548716722 0.004134630294 0.0056369351 0.002530712843 0.002188901667
        0.003206552752 0.001085047549 0.001920766767"""
    ),
    "ci_high": r(
        """0.2290448112 2.954701774 -0.001021761516 -0.4052506258 -0.6526826776
        -0.5144846196 -0.4088235566 -0.3120948586 -0.3982056566 -0.3561628889
        -0.2899924911 -0.3937629277 -0.32041309"""
    ),
}


def test_cumulative_matches_metafor(bcg_rr):
    y, v, _, year = bcg_rr
    cu = cumulative(y, np.sqrt(v), order=year, method="DL")
    for name, expected in CUMUL_Z.items():
        np.testing.assert_allclose(getattr(cu, name), expected, rtol=R10, atol=1e-14)
    cu = cumulative(y, np.sqrt(v), order=year, method="DL", test="knha")
    for name, expected in CUMUL_KNHA.items():
        np.testing.assert_allclose(getattr(cu, name), expected, rtol=R10, err_msg=name)
    np.testing.assert_allclose(cu.Q, CUMUL_Z["Q"], rtol=R10)


@pytest.mark.parametrize("method", ["REML", "EE", "SJ"])
def test_cumulative_equals_refits_with_studies_added(bcg_rr, method):
    y, v, _, year = bcg_rr
    se = np.sqrt(v)
    cu = cumulative(y, se, order=year, method=method)
    order = np.argsort(year, kind="stable")
    assert cu.order.tolist() == order.tolist()
    for j in range(2, y.size + 1):
        fit = fit_random_effects(y[order[:j]], se[order[:j]], method=method)
        got = (cu.estimate[j - 1], cu.se[j - 1], cu.tau2[j - 1], cu.Q[j - 1], cu.I2[j - 1])
        assert got == pytest.approx((fit.beta[0], fit.se[0], fit.tau2, fit.QE, fit.I2))
    # the first step is study order[0] alone: its own estimate, z interval, no heterogeneity
    first = order[0]
    assert (cu.estimate[0], cu.se[0], cu.tau2[0], cu.Q[0]) == (y[first], se[first], 0.0, 0.0)
    z = stats.norm.ppf(0.975)
    assert cu.ci_high[0] == pytest.approx(y[first] + z * se[first], rel=1e-12)


def test_influence_needs_enough_studies():
    with pytest.raises(ValueError, match="too few"):
        influence([0.1, 0.5], [0.1, 0.1])
