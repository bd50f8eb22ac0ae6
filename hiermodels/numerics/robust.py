"""Cluster-robust (sandwich) standard errors for meta-regression, as metafor's ``robust``.

The coefficients are the weighted least squares estimates b = M X'W y, M = (X'WX)^-1, of a
*working model* y ~ Normal(X beta, Phi) with W = Phi^-1; the sandwich
``M (sum_c X_c' W_c A_c e_c e_c' A_c' W_c X_c) M`` (e = y - X b, c over clusters) stays
consistent when Phi is wrong (Hedges, Tipton & Johnson 2010, Res. Synth. Methods 1:39-65):

- CR0: A_c = I.
- CR1: CR0 times n / (n - p) (n clusters), with t(n - p) tests: metafor's
  ``robust(res, cluster)`` default (``adjust = TRUE``).
- CR2: A_c = U_c' (U_c (Phi_c - X_c M X_c') U_c')^(-1/2) U_c with Phi_c = U_c'U_c (Bell &
  McCaffrey 2002, Survey Methodology 28:169-181; Pustejovsky & Tipton 2018, J. Bus. Econ.
  Stat. 36:672-683, eq. 5 with W = Phi^-1), and Satterthwaite degrees of freedom for each
  coefficient: df = (sum_c g_c'Phi g_c)^2 / sum_cd (g_c'Phi g_d)^2 with g_c the weights of
  y in cluster c's term of the variance (P&T 2018, section 3.2; clubSandwich's
  ``coef_test(res, vcov = "CR2")`` and metafor's ``robust(res, cluster,
  clubSandwich = TRUE)``).

The working model here is the three-level one of :mod:`hiermodels.numerics.multilevel`:
Phi_c = diag(v + sigma2_within) + sigma2_between 11' (``sigma2 = (0, tau2)`` is the
two-level model with weights 1 / (v + tau2), ``(0, 0)`` the fixed-effect weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.multilevel import MarginalCovariance, MultilevelFit, prepare

__all__ = ["SMALL_SAMPLE", "RobustTable", "robust_multilevel", "robust_se"]

SMALL_SAMPLE = ("CR0", "CR1", "CR2")


@dataclass(frozen=True, eq=False)
class RobustTable:
    """Coefficient table with cluster-robust standard errors.

    Attributes
    ----------
    estimate, se, stat, df, pval, ci_low, ci_high : ndarray, shape (p,)
        t statistics, their degrees of freedom (n - p for CR0/CR1, Satterthwaite for CR2),
        two-sided p-values and ``level`` intervals.
    vcov : ndarray, shape (p, p)
        The robust covariance matrix of the estimates.
    small_sample : str
    n_clusters : int
    level : float
    """

    estimate: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    df: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vcov: np.ndarray
    small_sample: str
    n_clusters: int
    level: float


def _inv_sqrt(S):
    """Symmetric inverse square root, through the eigendecomposition (pseudo-inverse for
    eigenvalues at rounding level, as clubSandwich's ``matrix_power``)."""
    lam, Q = np.linalg.eigh((S + S.T) / 2)
    keep = lam > 1e-12 * max(float(lam.max()), 0.0)
    root = np.zeros_like(lam)
    root[keep] = 1 / np.sqrt(lam[keep])
    return (Q * root) @ Q.T


def robust_se(y, v, cluster, X=None, *, sigma2=(0.0, 0.0), small_sample="CR2", level=0.95):
    """Cluster-robust coefficient table for the working model given by ``sigma2``.

    Parameters
    ----------
    y, v : array_like, shape (k,)
        Effect sizes and sampling variances.
    cluster : array_like, shape (k,)
        Independent clusters (also the clusters of the working model's ``sigma2[0]``).
    X : array_like, shape (k, p), optional
        Full design matrix; default intercept only.
    sigma2 : (float, float)
        Working model variances (between clusters, within clusters), usually the estimates
        of :func:`~hiermodels.numerics.multilevel.fit_multilevel`.
    small_sample : {"CR2", "CR1", "CR0"}
    level : float

    Returns
    -------
    RobustTable

    Examples
    --------
    >>> tab = robust_se([0.1, 0.3, 0.5, 0.2, 0.9, 0.7], [0.01] * 6, [1, 1, 2, 2, 3, 3],
    ...                 sigma2=(0.05, 0.01), small_sample="CR1")
    >>> float(tab.df[0])
    2.0
    """
    if small_sample not in SMALL_SAMPLE:
        raise SpecError(f"small_sample must be one of {SMALL_SAMPLE}, got {small_sample!r}")
    if not 0 < level < 1:
        raise SpecError(f"level must be in (0, 1), got {level!r}")
    s_b, s_w = (float(s) for s in sigma2)
    if not (s_b >= 0 and s_w >= 0):
        raise ValueError(f"sigma2 must be two variances >= 0, got {sigma2}")
    y, v, X, g = prepare(y, v, cluster, X)
    k, p = X.shape
    n = g.n
    if n <= p:
        raise ValueError(f"{n} clusters cannot give robust standard errors for {p} coefficients")
    V = MarginalCovariance(g, v, s_b, s_w)
    WX = V.solve(X)
    M = np.linalg.inv(X.T @ WX)
    M = (M + M.T) / 2
    beta = M @ (WX.T @ y)
    e = y - X @ beta
    ends = g.starts + g.counts
    if small_sample == "CR2":
        Ae = np.empty(k)
        blocks = []
        for c in range(n):
            rows = slice(g.starts[c], ends[c])
            Phi = np.diag(V.d[rows]) + s_b
            U = np.linalg.cholesky(Phi).T  # Phi = U'U
            B = U @ (Phi - X[rows] @ M @ X[rows].T) @ U.T
            A = U.T @ _inv_sqrt(B) @ U
            Ae[rows] = A @ e[rows]
            blocks.append(A)
    else:
        Ae = e
    # cluster terms X_c' W_c A_c e_c, all at once: W A e is V^-1 applied cluster by cluster
    u = g.sum(X * V.solve(Ae)[:, None])  # (n, p)
    meat = u.T @ u
    vcov = M @ meat @ M
    if small_sample == "CR1":
        vcov *= n / (n - p)
    vcov = (vcov + vcov.T) / 2
    se = np.sqrt(np.diag(vcov))
    if small_sample == "CR2":
        df = _satterthwaite(X, V, M, WX, g, blocks)
    else:
        df = np.full(p, float(n - p))
    stat = beta / se
    crit = stats.t.ppf(0.5 + level / 2, df)
    return RobustTable(
        estimate=beta,
        se=se,
        stat=stat,
        df=df,
        pval=2 * stats.t.sf(np.abs(stat), df),
        ci_low=beta - crit * se,
        ci_high=beta + crit * se,
        vcov=vcov,
        small_sample=small_sample,
        n_clusters=n,
        level=level,
    )


def _satterthwaite(X, V, M, WX, g, blocks):
    """Satterthwaite degrees of freedom of each coefficient under the working model.

    For the coefficient picked by the unit vector c, cluster j contributes (p_j'e_j)^2 with
    p_j = A_j W_j X_j M c, and p_j'e_j = g_j'y with g_j = (I - H)_j' p_j, where (I - H)_j
    are cluster j's rows of I - X M X'W. With y ~ Normal(., Phi), the sum has mean
    tr(G'Phi G) and variance 2 ||G'Phi G||_F^2, G = [g_1 .. g_n], which gives
    df = tr(G'Phi G)^2 / ||G'Phi G||_F^2 (P&T 2018, section 3.2).
    """
    k, p = X.shape
    ends = g.starts + g.counts
    df = np.empty(p)
    for j in range(p):
        Mc = M[:, j]
        G = np.zeros((k, g.n))
        xp = np.empty((p, g.n))
        for c in range(g.n):
            rows = slice(g.starts[c], ends[c])
            pc = blocks[c] @ (WX[rows] @ Mc)  # A_c W_c X_c M c (W_c X_c = rows of V^-1 X)
            G[rows, c] = pc
            xp[:, c] = X[rows].T @ pc
        G -= WX @ (M @ xp)  # minus W X M X_c' p_c, for every cluster
        PhiG = _apply_phi(V, G)
        P = G.T @ PhiG
        df[j] = np.trace(P) ** 2 / np.sum(P * P)
    return df


def _apply_phi(V, Z):
    """Phi Z for the block-diagonal working covariance, column by column."""
    g = V.g
    return V.d[:, None] * Z + V.s_b * g.expand(g.sum(Z))


def robust_multilevel(fit: MultilevelFit, *, small_sample="CR2", level=None):
    """:func:`robust_se` with the working model and clusters of a :class:`MultilevelFit`.

    Examples
    --------
    >>> from hiermodels.numerics.multilevel import fit_multilevel
    >>> fit = fit_multilevel([0.1, 0.3, 0.5, 0.2, 0.9, 0.7], [0.01] * 6, [1, 1, 2, 2, 3, 3])
    >>> tab = robust_multilevel(fit, small_sample="CR1")
    >>> bool(np.isclose(tab.estimate[0], fit.beta[0]))
    True
    """
    return robust_se(
        fit.y,
        fit.v,
        fit.cluster,
        fit.X,
        sigma2=tuple(fit.sigma2),
        small_sample=small_sample,
        level=fit.level if level is None else level,
    )
