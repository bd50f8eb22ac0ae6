"""Leave-one-out influence diagnostics and cumulative meta-analysis, as metafor's
``influence()`` and ``cumul()`` for ``rma.uni`` fits.

Both refit the model (same estimator, test and level) on subsets of the studies:
without study i (Viechtbauer & Cheung 2010, Res. Synth. Methods 1:112-125), or with the first
j studies in a given order (Lau et al. 1992, N. Engl. J. Med. 327:248-254).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hiermodels.numerics.heterogeneity import _prepare_units, in_squared_units
from hiermodels.numerics.inference import fit_random_effects

__all__ = ["Cumulative", "Influence", "cumulative", "influence"]


@dataclass(frozen=True)
class Influence:
    """Case-deletion diagnostics, one value per study (metafor's ``influence()$inf``).

    Attributes
    ----------
    rstudent : ndarray
        Externally standardized residuals (y_i - x_i' b_(-i)) / sqrt(s2w_(-i) (v_i +
        tau2_(-i)) + x_i' vb_(-i) x_i).
    dffits : ndarray
        (x_i' b - x_i' b_(-i)) / sqrt(s2w_(-i) h_i (tau2_(-i) + v_i)).
    cook_d : ndarray
        (b - b_(-i))' vb^-1 (b - b_(-i)) over the coefficients ``btt``.
    cov_r : ndarray
        det vb_(-i) / det vb (covariance ratio, over ``btt``).
    tau2_del, QE_del : ndarray
        tau^2 and QE without study i.
    hat : ndarray
        Leverages, the diagonal of X (X'WX)^-1 X'W at the full fit.
    weight : ndarray
        Percent weights 100 w_i / sum w.
    dfbetas : ndarray, shape (k, p)
        (b - b_(-i)) / sqrt(s2w_(-i) diag((X'W_(-i)X)^-1)), W_(-i) with tau2_(-i) and all k
        studies (metafor's definition).
    is_influential : ndarray of bool
        metafor's flag: |dffits| > 3 sqrt(p / (k - p)), or F_chi2(m)(cook_d) > 0.5, or
        hat > 3 p / k, or any |dfbetas| > 1.
    """

    rstudent: np.ndarray
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    QE_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: np.ndarray
    is_influential: np.ndarray


def influence(y, se, X=None, *, method="REML", test="z", level=0.95, btt=None):
    """Leave-one-out diagnostics of a random-effects model, as metafor's ``influence(res)``.

    Parameters are those of :func:`~hiermodels.numerics.inference.fit_random_effects`; each
    study is left out in turn and the model refitted with the same ``method`` and ``test``.
    ``btt`` (default all coefficients, as metafor's ``influence``) chooses the coefficients of
    Cook's distance and the covariance ratio.

    Examples
    --------
    >>> inf = influence([0.0, 1.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5], method="DL")
    >>> int(np.argmax(np.abs(inf.rstudent)))
    2
    """
    full = fit_random_effects(y, se, X, method=method, test=test, level=level)
    # everything below in the units of the full fit (y, v and the refits alike); only
    # tau2_del has a unit (unit^2), the other diagnostics are ratios
    y, v, X, unit = full.y, full.v, full.X, full.unit
    k, p = X.shape
    if k - 1 <= p:
        raise ValueError(f"leaving one of {k} studies out leaves too few to fit {p} coefficients")
    btt = list(range(p)) if btt is None else [int(j) for j in btt]
    w = 1 / (v + full.tau2_u)
    xwx_inv = np.linalg.inv(X.T @ (X * w[:, None]))
    hat = np.einsum("ij,jk,ik->i", X, xwx_inv, X) * w
    vb_full = full.vb_u[np.ix_(btt, btt)]
    vb_inv = np.linalg.inv(vb_full)
    det_full = np.linalg.det(vb_full)
    out = {name: np.empty(k) for name in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del")}
    out["QE_del"] = np.empty(k)
    dfbetas = np.empty((k, p))
    beta_full = full.beta / unit
    pred_full = X @ beta_full
    for i in range(k):
        keep = np.arange(k) != i
        res = fit_random_effects(
            y[keep], np.sqrt(v[keep]), X[keep], method=method, test=test, level=level
        )
        x = X[i]
        pred = x @ res.beta
        vpred = x @ res.vb @ x
        out["tau2_del"][i], out["QE_del"][i] = res.tau2, res.QE
        out["rstudent"][i] = (y[i] - pred) / math.sqrt(res.s2w * (v[i] + res.tau2) + vpred)
        out["dffits"][i] = (pred_full[i] - pred) / math.sqrt(res.s2w * hat[i] * (res.tau2 + v[i]))
        vb_del = np.linalg.inv(X.T @ (X * (1 / (v + res.tau2))[:, None]))
        dfb = beta_full - res.beta
        dfbetas[i] = dfb / np.sqrt(res.s2w * np.diag(vb_del))
        dfb = dfb[btt]
        out["cook_d"][i] = dfb @ vb_inv @ dfb
        out["cov_r"][i] = np.linalg.det(res.vb[np.ix_(btt, btt)]) / det_full
    out["tau2_del"] = in_squared_units(out["tau2_del"], unit)
    m = len(btt)
    flag = (
        (np.abs(out["dffits"]) > 3 * math.sqrt(p / (k - p)))
        | (stats.chi2.cdf(out["cook_d"], m) > 0.5)
        | (hat > 3 * p / k)
        | np.any(np.abs(dfbetas) > 1, axis=1)
    )
    return Influence(**out, hat=hat, weight=full.weights, dfbetas=dfbetas, is_influential=flag)


@dataclass(frozen=True)
class Cumulative:
    """Cumulative meta-analysis, one row per step (metafor's ``cumul()``).

    Row j is the intercept-only fit to the studies ``order[:j + 1]``. ``stat`` is z, or t
    under ``test="knha"``.
    """

    order: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    Q: np.ndarray
    Qp: np.ndarray
    tau2: np.ndarray
    I2: np.ndarray
    H2: np.ndarray


def cumulative(y, se, *, order=None, method="REML", test="z", level=0.95):
    """Cumulative meta-analysis, as metafor's ``cumul(res, order=order)``.

    Parameters
    ----------
    y, se : array_like, shape (k,)
    order : array_like, shape (k,), optional
        Sort key of the studies (e.g. publication year); studies are added in increasing
        order of it, ties in their given order (R's stable ``order()``). Default: as given.
    method, test, level
        As in :func:`~hiermodels.numerics.inference.fit_random_effects`. The first step
        (one study) has tau^2 = 0, Q = 0, I^2 = 0, H^2 = 1, as in metafor.

    Examples
    --------
    >>> cu = cumulative([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], method="DL")
    >>> [round(float(e), 3) for e in cu.estimate]
    [0.0, 0.5, 1.333]
    """
    y, v, _, unit = _prepare_units(y, se, None)  # fitted in units of the se, scaled back
    k = y.size
    idx = np.arange(k) if order is None else np.argsort(np.asarray(order), kind="stable")
    if idx.size != k:
        raise ValueError(f"order has {idx.size} values for {k} studies")
    rows = []
    for j in range(1, k + 1):
        sub = idx[:j]
        fit = fit_random_effects(y[sub], np.sqrt(v[sub]), method=method, test=test, level=level)
        coef = (fit.beta, fit.se, fit.stat, fit.pval, fit.ci_low, fit.ci_high)
        rows.append([c[0] for c in coef] + [fit.QE, fit.QE_p, fit.tau2, fit.I2, fit.H2])
    cols = np.array(rows, dtype=float).T
    for j in (0, 1, 4, 5):  # estimate, se, ci_low, ci_high
        cols[j] *= unit
    cols[8] = in_squared_units(cols[8], unit)  # tau2
    return Cumulative(idx, *cols)
