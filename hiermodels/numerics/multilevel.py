"""Three-level meta-analysis, as metafor's ``rma.mv(yi, vi, random = ~ 1 | cluster/es)``.

The model (Konstantopoulos 2011, Res. Synth. Methods 2:61-76; Cheung 2014, Psychol.
Methods 19:211-229)::

    y_i = x_i' beta + u_c(i) + w_i + e_i,   e_i ~ Normal(0, v_i) known,
    u_c ~ Normal(0, sigma2_between) per cluster,   w_i ~ Normal(0, sigma2_within) per effect

so y ~ Normal(X beta, V) with V block diagonal by cluster, V_c = diag(v + sigma2_within) +
sigma2_between 11'. Every product with V^-1 is done per cluster by Sherman-Morrison, in the
form V_c^-1 z = a (z - zbar) + a zbar / (1 + sigma2_between A_c), with a = 1 / (v +
sigma2_within), A_c = sum of a over the cluster and zbar the a-weighted cluster mean of z: it
never subtracts two large numbers, and never builds a k x k matrix (O(k p^2) per evaluation).

:func:`fit_multilevel` maximises the (restricted) likelihood over both variance components by
projected Fisher scoring (Harville 1977, JASA 72:320-338; the expected information of the
variance components is 1/2 tr(P V_j P V_k) for REML, 1/2 tr(V^-1 V_j V^-1 V_k) for ML), and
keeps the best of that and the two one-component fits on the faces of the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.heterogeneity import (
    _prepare,
    cochran_q,
    reml_tau2,
    typical_within_variance,
)

__all__ = ["Clusters", "MarginalCovariance", "MultilevelFit", "fit_multilevel", "prepare"]

METHODS = ("REML", "ML")
TESTS = ("z", "t")


class Clusters:
    """Effect sizes grouped by cluster: codes, the sorting order and segment sums.

    The data are kept sorted by cluster (stable), so that a sum over each cluster is one
    ``np.add.reduceat`` call.

    Examples
    --------
    >>> g = Clusters(["b", "a", "b"])
    >>> g.labels.tolist(), g.counts.tolist()
    (['a', 'b'], [1, 2])
    """

    def __init__(self, cluster):
        cluster = np.asarray(cluster).ravel()
        self.labels, self.codes = np.unique(cluster, return_inverse=True)
        self.order = np.argsort(self.codes, kind="stable")
        self.unorder = np.argsort(self.order)
        self.counts = np.bincount(self.codes)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.n = self.counts.size

    def sum(self, z, axis=0):
        """Sums of the (sorted) rows of ``z`` over each cluster, along ``axis``."""
        return np.add.reduceat(z, self.starts, axis=axis)

    def expand(self, s, axis=0):
        """Each cluster's value repeated for its rows (the inverse of :meth:`sum`'s grouping)."""
        return np.repeat(s, self.counts, axis=axis)


def prepare(y, v, cluster, X=None):
    """Validate (y, v, X) and group them by cluster.

    Returns y, v, X sorted by cluster and the :class:`Clusters`. ``v`` are sampling variances
    (metafor's ``vi``).
    """
    v = np.asarray(v, dtype=float).ravel()
    if np.any(~(v > 0)):
        raise ValueError(
            f"v must be positive sampling variances; positions {np.flatnonzero(~(v > 0)).tolist()}"
        )
    y, v, X = _prepare(y, np.sqrt(v), X)
    cluster = np.asarray(cluster).ravel()
    if cluster.size != y.size:
        raise ValueError(f"y has {y.size} values but cluster has {cluster.size}")
    if cluster.dtype.kind == "f" and np.isnan(cluster).any():
        raise ValueError(f"cluster is NaN at positions {np.flatnonzero(np.isnan(cluster))}")
    g = Clusters(cluster)
    return y[g.order], v[g.order], X[g.order], g


class MarginalCovariance:
    """V = blockdiag(diag(v + s_w) + s_b 11') at one (s_b, s_w), for data sorted by cluster.

    Examples
    --------
    >>> g = Clusters([0, 0, 1])
    >>> V = MarginalCovariance(g, np.array([1.0, 2.0, 1.0]), 0.5, 0.25)
    >>> dense = np.array([[1.75, 0.5, 0], [0.5, 2.75, 0], [0, 0, 1.75]])
    >>> bool(np.allclose(V.solve(np.ones(3)), np.linalg.solve(dense, np.ones(3))))
    True
    """

    def __init__(self, groups, v, s_b, s_w):
        self.g, self.s_b = groups, float(s_b)
        self.d = v + s_w
        self.a = 1.0 / self.d
        self.A = groups.sum(self.a)
        self.den = 1.0 + self.s_b * self.A  # 1 + s_b A_c
        self.f = self.A / self.den  # 1' V_c^-1 1
        self.q = self.a / groups.expand(self.den)  # V^-1 1 (cluster by cluster)

    def solve(self, z):
        """V^-1 z for z of shape (k,) or (k, m)."""
        a = self.a if z.ndim == 1 else self.a[:, None]
        den = self.den if z.ndim == 1 else self.den[:, None]
        zbar = self.g.expand(self.g.sum(a * z) / (self.A if z.ndim == 1 else self.A[:, None]))
        return a * ((z - zbar) + zbar / self.g.expand(den))

    def logdet(self):
        """log |V| = sum log(v + s_w) + sum_c log(1 + s_b A_c) (matrix determinant lemma)."""
        return float(np.sum(np.log(self.d)) + np.sum(np.log1p(self.s_b * self.A)))

    def diag_inv(self):
        """Diagonal of V^-1: a_i (1 + s_b (A_c - a_i)) / (1 + s_b A_c)."""
        g = self.g
        return self.a * (1 + self.s_b * (g.expand(self.A) - self.a)) / g.expand(self.den)

    def tr_inv2(self):
        """tr(V^-1 V^-1) = sum_c ||diag(a) - s_b / den a a'||_F^2."""
        g, gam = self.g, self.s_b / self.den
        s2, s3 = g.sum(self.a**2), g.sum(self.a**3)
        return float(np.sum(s2 - 2 * gam * s3 + gam**2 * s2**2))


class _Point:
    """Generalized least squares and the likelihood's score and information at (s_b, s_w)."""

    def __init__(self, y, v, X, groups, s_b, s_w):
        self.V = V = MarginalCovariance(groups, v, s_b, s_w)
        self.X, self.g = X, groups
        self.L = V.solve(X)  # V^-1 X
        H = X.T @ self.L
        H = (H + H.T) / 2
        d = np.sqrt(np.diag(H))
        self.M = np.linalg.inv(H / np.outer(d, d)) / np.outer(d, d)  # (X'V^-1X)^-1
        self.logdet_h = float(np.linalg.slogdet(H / np.outer(d, d))[1] + 2 * np.sum(np.log(d)))
        self.beta = self.M @ (self.L.T @ y)
        self.r = y - X @ self.beta
        self.e = V.solve(self.r)  # P y
        self.rss = float(self.r @ self.e)

    def loglik(self, method, logdet_xx):
        k, p = self.X.shape
        if method == "ML":
            return -0.5 * (k * math.log(2 * math.pi) + self.V.logdet() + self.rss)
        return -0.5 * (
            (k - p) * math.log(2 * math.pi) - logdet_xx + self.V.logdet() + self.logdet_h + self.rss
        )

    def score_info(self, method):
        """Score and expected information of (s_b, s_w) (Harville 1977)."""
        V, g, L, M = self.V, self.g, self.L, self.M
        E = g.sum(self.e)  # 1' P y per cluster
        tr_q, tr_qj = float(np.sum(V.diag_inv())), float(np.sum(V.f))
        tqq, tqqj, tqjqj = V.tr_inv2(), float(np.sum(V.q**2)), float(np.sum(V.f**2))
        if method == "REML":
            h = g.sum(self.X * V.q[:, None])  # rows X_c' V_c^-1 1, shape (C, p)
            LL = L.T @ L
            LJL = h.T @ h
            LQL = L.T @ V.solve(L)
            LQJL = g.sum(L * V.q[:, None]).T @ h  # sum_c (L_c' q_c) h_c'
            LJQJL = (h * V.f[:, None]).T @ h
            tr_q -= np.trace(M @ LL)
            tr_qj -= np.trace(M @ LJL)
            tqq += -2 * np.trace(M @ LQL) + np.trace(M @ LL @ M @ LL)
            tqqj += -2 * np.trace(M @ LQJL) + np.trace(M @ LL @ M @ LJL)
            tqjqj += -2 * np.trace(M @ LJQJL) + np.trace(M @ LJL @ M @ LJL)
        score = 0.5 * np.array([np.sum(E**2) - tr_qj, self.e @ self.e - tr_q])
        info = 0.5 * np.array([[tqjqj, tqqj], [tqqj, tqq]])
        return score, info


def _maximise(y, v, X, g, method, start, free, scale, tol=1e-11, max_iter=500):
    """Projected Fisher scoring over (s_b, s_w) >= 0 with step halving; ``free`` masks which
    components move. Returns (theta, loglik, converged)."""
    logdet_xx = float(np.linalg.slogdet(X.T @ X)[1])
    theta = np.where(free, np.maximum(start, 0.0), 0.0)
    pt = _Point(y, v, X, g, *theta)
    ll = pt.loglik(method, logdet_xx)
    for _ in range(max_iter):
        score, info = pt.score_info(method)
        active = free & ~((theta == 0) & (score <= 0))
        if not active.any():
            return theta, ll, True
        step = np.zeros(2)
        idx = np.flatnonzero(active)
        sub = info[np.ix_(idx, idx)]
        step[idx] = np.linalg.lstsq(sub, score[idx], rcond=1e-12)[0]
        t = 1.0
        while True:
            new = np.maximum(theta + t * step, 0.0)
            new_pt = _Point(y, v, X, g, *new)
            new_ll = new_pt.loglik(method, logdet_xx)
            if new_ll >= ll - 1e-13 * abs(ll) or t < 1e-10:
                break
            t /= 2
        moved = float(np.max(np.abs(new - theta)))
        theta, pt, ll = new, new_pt, new_ll
        if moved < tol * (scale + float(np.sum(theta))):
            return theta, ll, True
    return theta, ll, False


@dataclass(frozen=True, eq=False)
class MultilevelFit:
    """A fitted three-level random-effects model: metafor's ``rma.mv`` object.

    Attributes
    ----------
    method, test : str
        "REML" or "ML"; "z" or "t" (t with k - p degrees of freedom, metafor's default
        ``dfs = "residual"``).
    beta, se, stat, pval, ci_low, ci_high : ndarray, shape (p,)
        Coefficient table (model-based standard errors, (X'V^-1X)^-1).
    vb : ndarray, shape (p, p)
    sigma2 : ndarray, shape (2,)
        Variance components [between clusters, within clusters] (metafor's ``sigma2`` for
        ``random = ~ 1 | cluster/es``).
    loglik, deviance, AIC, BIC, AICc : float
        metafor's ``fitstats`` (p + 2 parameters; the REML ones with k - p observations).
    QE, QE_df, QE_p : float, int, float
        Test for residual heterogeneity (as ``rma.uni``'s QE).
    I2, I2_levels, vt : float, ndarray (2,), float
        Total and level-wise I^2 (percent): 100 sigma2_l / (sum sigma2 + vt) with the typical
        within-study variance vt = (k - p) / tr(P), P at W = diag(1/v) (Cheung 2014; metafor
        FAQ "I^2 for multilevel and multivariate models").
    icc : float
        sigma2_between / (sigma2_between + sigma2_within) (NaN when both are 0).
    pi_low, pi_high : float
        Prediction interval for the true effect of a new effect size in a new cluster,
        beta +/- crit sqrt(se^2 + sum sigma2) (metafor ``predict``); NaN with moderators.
    identified : bool
        False when every cluster has one effect size: then only the sum of the components is
        identified and the fit puts it all in ``sigma2[0]`` (between clusters).
    converged : bool
    k, p, n_clusters : int
    level : float
    ddf : int or None
    y, v, X, cluster : ndarray
        The data in the caller's order (``cluster`` as codes 0..n_clusters-1).
    cluster_labels : ndarray
    """

    method: str
    test: str
    beta: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    vb: np.ndarray
    sigma2: np.ndarray
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    QE: float
    QE_df: int
    QE_p: float
    I2: float
    I2_levels: np.ndarray
    vt: float
    icc: float
    pi_low: float
    pi_high: float
    identified: bool
    converged: bool
    k: int
    p: int
    n_clusters: int
    level: float
    ddf: int | None
    y: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    cluster: np.ndarray = field(repr=False)
    cluster_labels: np.ndarray = field(repr=False)

    @property
    def crit(self):
        """Critical value of the ``level`` intervals: z, or t(k - p)."""
        q = 0.5 + self.level / 2
        return float(stats.t.ppf(q, self.ddf) if self.test == "t" else stats.norm.ppf(q))

    def predict(self, x_new):
        """Predicted average effect at ``x_new`` (rows of the full design, intercept included),
        with confidence and prediction intervals (metafor ``predict(res, newmods)``).

        Returns ``{"pred", "se", "ci_low", "ci_high", "pi_low", "pi_high"}``, arrays (n,).

        Examples
        --------
        >>> fit = fit_multilevel([0.1, 0.3, 0.5, 0.2], [0.01] * 4, [1, 1, 2, 2])
        >>> float(fit.predict([[1.0]])["pred"][0]) == float(fit.beta[0])
        True
        """
        x = np.atleast_2d(np.asarray(x_new, dtype=float))
        if x.shape[1] != self.p:
            raise ValueError(f"x_new must have {self.p} columns, got shape {x.shape}")
        pred = x @ self.beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vb, x))
        c = self.crit
        half = c * np.sqrt(se**2 + float(np.sum(self.sigma2)))
        return {
            "pred": pred,
            "se": se,
            "ci_low": pred - c * se,
            "ci_high": pred + c * se,
            "pi_low": pred - half,
            "pi_high": pred + half,
        }


def fit_multilevel(y, v, cluster, X=None, *, method="REML", level=0.95, test="z"):
    """Fit the three-level meta-analysis model by REML or ML (metafor's ``rma.mv``).

    ``y_i ~ Normal(x_i' beta + u_c(i) + w_i, v_i)``, ``u_c ~ Normal(0, sigma2[0])``,
    ``w_i ~ Normal(0, sigma2[1])``: metafor's ``rma.mv(yi, vi, mods, random = ~ 1 |
    cluster/es)``.

    Parameters
    ----------
    y, v : array_like, shape (k,)
        Effect sizes and their sampling variances.
    cluster : array_like, shape (k,)
        Cluster (study, district, ...) of each effect size; at least two clusters.
    X : array_like, shape (k, p), optional
        Full design matrix, intercept included; default intercept only.
    method : {"REML", "ML"}
    level : float
    test : {"z", "t"}
        Wald z (metafor's default), or t with k - p degrees of freedom.

    Returns
    -------
    MultilevelFit

    Examples
    --------
    >>> fit = fit_multilevel([0.1, 0.3, 0.5, 0.2, 0.9, 0.7], [0.01] * 6, [1, 1, 2, 2, 3, 3])
    >>> fit.sigma2.shape, fit.n_clusters
    ((2,), 3)
    """
    if method not in METHODS:
        raise SpecError(f"method must be one of {METHODS}, got {method!r}")
    if test not in TESTS:
        raise SpecError(f"test must be one of {TESTS}, got {test!r}")
    if not 0 < level < 1:
        raise SpecError(f"level must be in (0, 1), got {level!r}")
    ys, vs, Xs, g = prepare(y, v, cluster, X)
    k, p = Xs.shape
    if g.n < 2:
        raise ValueError("a three-level model needs at least 2 clusters")
    if k < p + 2:
        raise ValueError(f"{k} effect sizes cannot estimate {p} coefficients and 2 variances")
    vt = typical_within_variance(np.sqrt(vs), Xs)
    # start from the two-level REML total heterogeneity, split in halves
    tau2 = reml_tau2(ys, vs, Xs)[0]
    t0 = max(tau2, 0.01 * vt)
    identified = bool(np.any(g.counts > 1))
    runs = [((t0, 0.0), np.array([True, False]))]  # face sigma2_within = 0
    if identified:
        runs = [
            ((t0 / 2, t0 / 2), np.array([True, True])),
            *runs,
            ((0.0, t0), np.array([False, True])),
        ]
    best = None
    for start, free in runs:
        theta, ll, ok = _maximise(ys, vs, Xs, g, method, np.array(start), free, vt)
        if best is None or ll > best[1] + 1e-10 * max(1.0, abs(ll)):
            best = (theta, ll, ok)
    sigma2, ll, converged = best
    pt = _Point(ys, vs, Xs, g, *sigma2)
    return _finish(method, test, level, ys, vs, Xs, g, sigma2, ll, pt, vt, identified, converged)


def _finish(method, test, level, y, v, X, g, sigma2, ll, pt, vt, identified, converged):
    k, p = X.shape
    vb = (pt.M + pt.M.T) / 2
    se = np.sqrt(np.diag(vb))
    stat = pt.beta / se
    ddf = k - p if test == "t" else None
    q = 0.5 + level / 2
    if test == "t":
        crit, pval = stats.t.ppf(q, ddf), 2 * stats.t.sf(np.abs(stat), ddf)
    else:
        crit, pval = stats.norm.ppf(q), 2 * stats.norm.sf(np.abs(stat))
    parms = p + 2
    if method == "ML":
        dev = -2 * (ll + 0.5 * float(np.sum(np.log(2 * math.pi * v))))
        n = k
    else:
        dev, n = -2 * ll, k - p
    big = max(n, parms + 2)
    qe, qe_df, qe_p = cochran_q(y, np.sqrt(v), X)
    total = float(np.sum(sigma2))
    i2_levels = 100 * sigma2 / (total + vt)
    intercept_only = p == 1 and np.all(X == 1)
    half = crit * math.sqrt(se[0] ** 2 + total) if intercept_only else math.nan
    unorder = g.unorder
    return MultilevelFit(
        method=method,
        test=test,
        beta=pt.beta,
        se=se,
        stat=stat,
        pval=pval,
        ci_low=pt.beta - crit * se,
        ci_high=pt.beta + crit * se,
        vb=vb,
        sigma2=np.asarray(sigma2, dtype=float),
        loglik=float(ll),
        deviance=float(dev),
        AIC=float(-2 * ll + 2 * parms),
        BIC=float(-2 * ll + parms * math.log(n)),
        AICc=float(-2 * ll + 2 * parms * big / (big - parms - 1)),
        QE=float(qe),
        QE_df=int(qe_df),
        QE_p=float(qe_p),
        I2=float(100 * total / (total + vt)),
        I2_levels=i2_levels,
        vt=float(vt),
        icc=float(sigma2[0] / total) if total > 0 else math.nan,
        pi_low=float(pt.beta[0] - half),
        pi_high=float(pt.beta[0] + half),
        identified=identified,
        converged=converged,
        k=k,
        p=p,
        n_clusters=g.n,
        level=level,
        ddf=ddf,
        y=y[unorder],
        v=v[unorder],
        X=X[unorder],
        cluster=g.codes,
        cluster_labels=g.labels,
    )
