"""Estimators of the heterogeneity variance tau^2, as the R package metafor's ``rma.uni``.

The model is y ~ Normal(X beta, V + tau^2 I) with V = diag(v). Every estimator is a
function ``(y, v, X) -> (tau2, tau2_se)`` of validated data (see
:func:`hiermodels.numerics.heterogeneity._prepare`), registered by metafor's ``method=`` code
in :data:`ESTIMATORS`; the standard errors are metafor's (``res$se.tau2``). Formulas follow
Viechtbauer (2005), J. Educ. Behav. Stat. 30:261-293 and metafor 3.8's ``rma.uni`` source.

Where metafor iterates to a tolerance (ML, REML and EB stop at a tau^2 change below 1e-5,
PM's ``uniroot`` at about 1e-4), these functions return the exact optimum or root instead
(to about 1e-10 relative), so they agree with metafor to its tolerance and with metafor run
at ``control=list(threshold=1e-12, tol=1e-12)`` to many digits.

P = W - W X (X'WX)^-1 X'W is the residual projection for weights W, and y'Py the
generalized Q statistic. The standard errors of HE, SJ and HS use k x k matrices (as metafor
does); the estimates themselves use only O(k p^2) sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from hiermodels.numerics.heterogeneity import (
    _TINY,
    _threshold,
    _Weighted,
    dl_tau2,
    polish_root,
    reml_tau2,
)

__all__ = ["ESTIMATORS", "Estimator", "generalized_q", "loglik_ml", "loglik_reml"]


def generalized_q(y, v, X, tau2):
    """The generalized Q statistic y'P(tau2)y = sum w (y - X b)^2, w = 1/(v + tau2).

    Decreasing in tau2; at tau2 = 0 it is Cochran's Q (DerSimonian & Kacker 2007).
    """
    return _Weighted(y, X, 1 / (v + tau2)).rss


def loglik_ml(y, v, X, tau2):
    """Log-likelihood at tau2 with beta profiled out (metafor's ``ll.ML``)."""
    k = y.size
    rss = generalized_q(y, v, X, tau2)
    return -0.5 * (k * math.log(2 * math.pi) + float(np.sum(np.log(v + tau2))) + rss)


def loglik_reml(y, v, X, tau2):
    """Restricted log-likelihood at tau2 (metafor's ``ll.REML`` with ``REMLf = TRUE``).

    -1/2 [(k - p) log 2 pi - log|X'X| + sum log(v + tau2) + log|X'WX| + y'Py]
    (Viechtbauer 2005, eq. 8, plus the 1/2 log|X'X| metafor adds so that the value does not
    depend on how the moderators are coded).
    """
    k, p = X.shape
    fit = _Weighted(y, X, 1 / (v + tau2))
    return -0.5 * (
        (k - p) * math.log(2 * math.pi)
        - float(np.linalg.slogdet(X.T @ X)[1])
        + float(np.sum(np.log(v + tau2)))
        + fit.logdet_xwx()
        + fit.rss
    )


def _projection(w, X):
    """P = W - W X (X'WX)^-1 X'W as a k x k matrix (for metafor's trace formulas)."""
    wx = X * w[:, None]
    return np.diag(w) - wx @ np.linalg.solve(X.T @ wx, wx.T)


def _root_decreasing(f, hi):
    """The t >= 0 with f(t) = 0 for a decreasing f with f(0) > 0 (Brent's method).

    The bracket [0, hi] grows until f(hi) < 0; the root is found to the last bits.
    """
    for _ in range(200):
        if f(hi) < 0:
            break
        hi = 4 * hi + 1.0
    else:  # pragma: no cover - f would have to stay positive up to 4^200
        raise ValueError("no root: the function stays positive as tau^2 grows")
    return float(
        optimize.brentq(f, 0.0, hi, xtol=_TINY, rtol=4 * np.finfo(float).eps, maxiter=2000)
    )


def _hedges(y, v, X):
    """Hedges' (1983) unweighted method of moments: (RSS_ols - tr(P_ols V)) / (k - p)."""
    k, p = X.shape
    ols = _Weighted(y, X, np.ones(k))
    hat = np.einsum("ij,jk,ik->i", X, ols.cov, X)
    return (ols.rss - float(np.sum(v * (1 - hat)))) / (k - p)


def _ee(y, v, X):
    """Equal (common, "fixed") effects: tau^2 = 0 by assumption."""
    return 0.0, math.nan


def _he(y, v, X):
    k, p = X.shape
    tau2 = max(0.0, _hedges(y, v, X))
    P = np.eye(k) - X @ np.linalg.solve(X.T @ X, X.T)  # OLS residual projection
    PV = P * v[None, :]
    var = 2 * np.sum(PV * PV.T) + 4 * tau2 * np.trace(PV) + 2 * tau2**2 * (k - p)
    return tau2, math.sqrt(var) / (k - p)


def _hs(y, v, X):
    """Hunter & Schmidt (2004): (Q - k) / sum w with w = 1/v (Viechtbauer 2005, eq. 13)."""
    k, p = X.shape
    w = 1 / v
    tau2 = max(0.0, (generalized_q(y, v, X, 0.0) - k) / float(np.sum(w)))
    P = _projection(w, X)
    var = 2 * (k - p) + 4 * tau2 * np.trace(P) + 2 * tau2**2 * np.sum(P * P)
    return tau2, math.sqrt(var) / float(np.sum(w))


def _sj(y, v, X):
    """Sidik & Jonkman (2005): one step from tau0^2 = mean((y - ybar)^2), metafor's start.

    tau^2 = tau0^2 y'P0 y / (k - p) with P0 at the weights 1/(v + tau0^2); positive whenever
    the y differ.
    """
    k, p = X.shape
    tau0 = float(np.mean((y - y.mean()) ** 2))
    w = 1 / (v + tau0)
    tau2 = max(0.0, tau0 * _Weighted(y, X, w).rss / (k - p))
    P = _projection(w, X)
    PV = P * v[None, :]
    var = 2 * np.sum(PV * PV.T) + 4 * tau2 * np.sum(PV * P) + 2 * tau2**2 * np.sum(P * P)
    return tau2, tau0 / (k - p) * math.sqrt(var)


def _pm(y, v, X):
    """Paule & Mandel (1982): the tau^2 >= 0 at which y'P(tau^2)y = k - p.

    Also the empirical Bayes estimator of Morris (1983) / Berkey et al. (1995): metafor's
    EB iteration tau^2 += (k/(k-p) y'Py - k) / sum w stops where y'Py = k - p, the same
    equation (Viechtbauer et al. 2015, Res. Synth. Methods 6:28-32). Standard error
    sqrt(2 k^2 / (k - p)) / sum w, metafor's for both.
    """
    k, p = X.shape
    df = k - p
    if generalized_q(y, v, X, 0.0) <= df:
        tau2 = 0.0
    else:
        tau2 = _root_decreasing(lambda t: generalized_q(y, v, X, t) - df, float(np.max(v)))
    w = 1 / (v + tau2)
    return tau2, math.sqrt(2 * k**2 / df) / float(np.sum(w))


def _ml(y, v, X, tol=1e-10, max_iter=100):
    """Maximum likelihood by Fisher scoring from the (truncated) Hedges estimate.

    tau^2 += (y'PPy - tr W) / tr(W^2) (Viechtbauer 2005, eq. 6), to a relative change below
    ``tol``; if it does not settle, Brent's method finds the root of the score. Like
    metafor (``ll0check``), tau^2 = 0 if the likelihood is higher there.
    SE = sqrt(2 / sum w^2).
    """

    def score(t):  # y'PPy - tr W, in units of the weights' scale c^2 (sign is what counts)
        fit = _Weighted(y, X, 1 / (v + t))
        return fit.ypy2_u - float(np.sum(fit.u)) / fit.c, float(np.sum(fit.u**2))

    k, p = X.shape
    s2 = (k - p) / _Weighted(y, X, 1 / v).tr_p
    tau2 = max(0.0, _hedges(y, v, X))
    for _ in range(max_iter):
        s, info = score(tau2)
        adj = 0.0 if (tau2 == 0 and s < 0) else s / info
        while tau2 + adj < 0:
            adj /= 2
        tau2 += adj
        if abs(adj) < _threshold(tol, tau2 + s2):
            break
    else:
        tau2 = 0.0 if score(0.0)[0] <= 0 else _root_decreasing(lambda t: score(t)[0], tau2)
    if tau2 > 0 and tol <= 1e-8:
        # the root to the last bits, as reml_tau2: the same tau^2 whatever the data's units
        tau2 = polish_root(lambda t: score(t)[0], tau2)
    if 0 < tau2 < 1e-6 * s2 and tol <= 1e-8 and score(0.0)[0] <= 0:
        tau2 = 0.0  # creeping to the boundary, where the maximum is (as reml_tau2)
    if tau2 > 0 and loglik_ml(y, v, X, 0.0) - loglik_ml(y, v, X, tau2) > 1.2e-4:
        tau2 = 0.0  # metafor's ll0check (tolerance .Machine$double.eps^0.25)
    return tau2, math.sqrt(2 / float(np.sum((1 / (v + tau2)) ** 2)))


def _reml(y, v, X):
    return reml_tau2(y, v, X)


@dataclass(frozen=True)
class Estimator:
    """A tau^2 estimator of :data:`ESTIMATORS`: ``estimate(y, v, X) -> (tau2, tau2_se)``.

    ``likelihood`` names the likelihood the estimate maximizes ("ML", "REML") or is ``None``;
    metafor reports the REML fit statistics for REML fits and the ML ones otherwise.
    """

    name: str
    description: str
    estimate: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, float]]
    source: str
    likelihood: str | None = None


#: tau^2 estimators by metafor's ``method=`` code.
ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("EE", "equal (common) effects, tau^2 = 0", _ee, "Hedges & Olkin 1985"),
        Estimator("DL", "DerSimonian-Laird method of moments", dl_tau2, "DerSimonian & Laird 1986"),
        Estimator("HE", "Hedges' unweighted method of moments", _he, "Hedges 1983"),
        Estimator("HS", "Hunter-Schmidt", _hs, "Hunter & Schmidt 2004"),
        Estimator("SJ", "Sidik-Jonkman", _sj, "Sidik & Jonkman 2005"),
        Estimator("PM", "Paule-Mandel", _pm, "Paule & Mandel 1982"),
        Estimator("EB", "empirical Bayes (equal to PM)", _pm, "Morris 1983; Berkey et al. 1995"),
        Estimator("ML", "maximum likelihood", _ml, "Hardy & Thompson 1996", "ML"),
        Estimator("REML", "restricted maximum likelihood", _reml, "Viechtbauer 2005", "REML"),
    )
}
