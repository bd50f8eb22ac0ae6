"""Cluster-robust standard errors against metafor's robust() and clubSandwich's coef_test.

Reference numbers: tests/data/multilevel_reference.R (R 4.2.2, metafor 3.8.1, clubSandwich
0.5.8). ``res`` is the REML fit ``rma.mv(yi, vi, random = ~ 1 | district/study, data = kon,
control = list(rel.tol = 1e-12))``; CR1 is ``robust(res, cluster = kon$district)``, CR0 the
same with ``adjust = FALSE``, CR2 ``robust(res, cluster = kon$district, clubSandwich = TRUE)``
(identical to ``coef_test(res, vcov = "CR2", cluster = kon$district)``).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiermodels.errors import SpecError
from hiermodels.numerics.multilevel import fit_multilevel
from hiermodels.numerics.robust import robust_multilevel, robust_se

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def kon():
    return pd.read_csv(DATA / "konstantopoulos2011.csv")


def test_konstantopoulos_intercept(kon):
    fit = fit_multilevel(kon.yi, kon.vi, kon.district)
    cr1 = robust_multilevel(fit, small_sample="CR1")
    assert cr1.se[0] == pytest.approx(0.0845022171524, rel=1e-6)
    assert cr1.stat[0] == pytest.approx(2.18589724504, rel=1e-6)
    assert cr1.pval[0] == pytest.approx(0.0537073136367, rel=1e-5)
    assert cr1.ci_low[0] == pytest.approx(-0.00356950944329, rel=1e-4)
    assert cr1.df[0] == 10
    assert robust_multilevel(fit, small_sample="CR0").se[0] == pytest.approx(
        0.0805697027631, rel=1e-6
    )
    cr2 = robust_multilevel(fit, small_sample="CR2")
    assert cr2.se[0] == pytest.approx(0.0844579954348, rel=1e-6)
    assert cr2.df[0] == pytest.approx(9.86315623332, rel=1e-6)
    assert cr2.pval[0] == pytest.approx(0.0539667424706, rel=1e-5)
    assert cr2.ci_low[0] == pytest.approx(-0.00382548351677, rel=1e-4)


def test_konstantopoulos_moderator(kon):
    """mods = ~ I(year - 1990)."""
    X = np.column_stack([np.ones(len(kon)), kon.year - 1990])
    fit = fit_multilevel(kon.yi, kon.vi, kon.district, X)
    cr1 = robust_multilevel(fit, small_sample="CR1")
    np.testing.assert_allclose(cr1.se, [0.0881191203011, 0.00946891307203], rtol=1e-6)
    np.testing.assert_allclose(cr1.pval, [0.0705174908129, 0.588507023159], rtol=1e-5)
    np.testing.assert_array_equal(cr1.df, [9, 9])
    cr2 = robust_multilevel(fit, small_sample="CR2")
    np.testing.assert_allclose(cr2.se, [0.089512610911, 0.0100034242933], rtol=1e-6)
    np.testing.assert_allclose(cr2.df, [8.31012851576, 4.18899870875], rtol=1e-6)
    np.testing.assert_allclose(cr2.pval, [0.0768661795728, 0.622330747828], rtol=1e-5)


def test_assink_factor_moderator():
    """rma.mv(yi, vi, mods = ~ factor(deltype), random = ~ 1 | study/esid, data = assink,
    control = list(rel.tol = 1e-10)), robust over study."""
    d = pd.read_csv(DATA / "assink2016.csv")
    X = np.column_stack(
        [np.ones(len(d))] + [(d.deltype == lv).to_numpy(float) for lv in ("general", "overt")]
    )
    fit = fit_multilevel(d.yi, d.vi, d.study, X)
    cr1 = robust_multilevel(fit, small_sample="CR1")
    np.testing.assert_allclose(
        cr1.se, [0.107904030328, 0.0245763752649, 0.0328106201358], rtol=1e-5
    )
    np.testing.assert_array_equal(cr1.df, [14, 14, 14])
    cr0 = robust_multilevel(fit, small_sample="CR0")
    np.testing.assert_allclose(
        cr0.se, [0.0979213119428, 0.0223026971413, 0.0297751526017], rtol=1e-5
    )
    cr2 = robust_multilevel(fit, small_sample="CR2")
    np.testing.assert_allclose(
        cr2.se, [0.114782963165, 0.0538568247545, 0.0826742703935], rtol=1e-5
    )
    np.testing.assert_allclose(cr2.df, [6.77543670182, 2.27648132826, 1.98704874895], rtol=1e-5)
    np.testing.assert_allclose(
        cr2.pval, [0.0595636418627, 0.00317826147805, 0.0259018806343], rtol=1e-4
    )


def test_cr2_against_dense_matrices():
    """CR2 and its Satterthwaite df from k x k matrices, straight from P&T (2018) eq. 5."""
    rng = np.random.default_rng(7)
    cl = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])
    k = cl.size
    X = np.column_stack([np.ones(k), rng.normal(size=k)])
    v = rng.uniform(0.02, 0.1, k)
    y = X @ [0.2, 0.1] + rng.normal(0, 0.3, 5)[cl] + rng.normal(0, np.sqrt(v))
    sb, sw = 0.05, 0.02
    tab = robust_se(y, v, cl, X, sigma2=(sb, sw), small_sample="CR2")
    Phi = np.diag(v + sw) + sb * (cl[:, None] == cl[None, :])
    W = np.linalg.inv(Phi)
    M = np.linalg.inv(X.T @ W @ X)
    b = M @ X.T @ W @ y
    e = y - X @ b
    IH = np.eye(k) - X @ M @ X.T @ W
    meat = np.zeros((2, 2))
    terms = []
    for c in range(5):
        r = cl == c
        U = np.linalg.cholesky(Phi[np.ix_(r, r)]).T
        B = U @ IH[r] @ Phi @ IH[r].T @ U.T
        lam, Q = np.linalg.eigh(B)
        A = U.T @ (Q / np.sqrt(lam)) @ Q.T @ U
        t = X[r].T @ W[np.ix_(r, r)] @ A
        meat += np.outer(t @ e[r], t @ e[r])
        terms.append((r, t))
    vc = M @ meat @ M
    np.testing.assert_allclose(tab.estimate, b, rtol=1e-10)
    np.testing.assert_allclose(tab.vcov, vc, rtol=1e-9)
    for j in range(2):
        G = np.zeros((k, 5))
        for c, (r, t) in enumerate(terms):
            G[:, c] = IH[r].T @ (t.T @ M[:, j])
        P = G.T @ Phi @ G
        assert tab.df[j] == pytest.approx(np.trace(P) ** 2 / np.sum(P**2), rel=1e-9)


def test_bad_arguments(kon):
    with pytest.raises(SpecError):
        robust_se(kon.yi, kon.vi, kon.district, small_sample="HC3")
    with pytest.raises(ValueError, match="clusters"):
        robust_se(kon.yi, kon.vi, np.ones(len(kon)))
