"""Classical random-effects meta-analysis: Q, DerSimonian-Laird, REML, I^2 and H^2.

Definitions follow the R package metafor (``rma.uni``; Viechtbauer 2010, J. Stat. Softw.
36(3)), so numbers can be checked against it: the model is y ~ Normal(X beta, V + tau^2 I)
with V = diag(se^2), and P = W - W X (X'WX)^-1 X'W is the residual projection for the weights
W. Everything is computed from O(k p^2) sums, never a k x k matrix. metafor centres y before
some of these sums; that changes nothing when X has an intercept column, and here y is never
centred (for a model without intercept the uncentred form is the one that matches the model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

_TINY = np.finfo(float).tiny
_HUGE = np.finfo(float).max / 1e6  # room for sums of a few variances and tau^2
# largest ratio of two standard errors computed as given: the data are computed in units of
# the geometric middle of the se (see data_unit) and weights relative to the middle of their
# range, so squares of the weights stay below SE_RATIO^2 = 1e304 (see _Weighted)
SE_RATIO = 1e152
# beyond SE_RATIO, up to this ratio, the classical fits take the limit (see _prepare_units):
# se of 1e-300 among se of 10 (the exact engine computes such data as given, in units of
# their geometric middle, where 1e302^(1/2) still leaves tau^2 room below overflow)
SE_RATIO_LIMIT = 1e302
_LIMIT_BITS = 250  # the limit path keeps se within 2^+-250 (1.8e75) of their median
_UNIT_FREE_BITS = 64  # data whose se middle is within 2^+-64 (1.8e19) of 1 keep their units

__all__ = [
    "SE_RATIO",
    "SE_RATIO_LIMIT",
    "REFit",
    "cochran_q",
    "data_unit",
    "dersimonian_laird",
    "dl_tau2",
    "i2_h2",
    "i2_h2_tau",
    "in_squared_units",
    "others_sum",
    "reml",
    "reml_tau2",
    "scaled_se",
    "typical_within_variance",
]


def data_unit(se) -> float:
    """The unit the data are computed in: a power of two near the geometric middle of the se.

    y / unit and se / unit are exact (a power of two scales without rounding), their squares
    and weights stay representable for se of 1e-300 or 1e300, and every answer scales back
    exactly: locations and scales by unit, variances by unit^2, I^2, H^2, Q, z and p not at
    all. Data whose middle lies within 2^+-64 of 1 keep unit 1 (computed as given, so the
    numbers checked against metafor do not move by a rounding).

    Examples
    --------
    >>> data_unit([0.1, 0.3]), data_unit([1e-200, 3e-200]) == 2.0**-664
    (1.0, True)
    """
    se = np.asarray(se, dtype=float)
    mid = round((math.log2(float(se.min())) + math.log2(float(se.max()))) / 2)
    return 1.0 if abs(mid) <= _UNIT_FREE_BITS else math.ldexp(1.0, mid)


def _prepare(y, se, X):
    """Validated y, sampling variances and design, in the units given (no rescaling)."""
    y, v, X, _ = _prepare_units(y, se, X, rescale=False)
    return y, v, X


def _prepare_units(y, se, X, rescale=True):
    """Validated y / unit, (se / unit)^2, X and the unit of :func:`data_unit`.

    The limit path: where the se span more than :data:`SE_RATIO` (up to
    :data:`SE_RATIO_LIMIT`), no one unit holds all se^2 and their weights. The unit is then
    the median se, and an se beyond 2^+-250 of it is taken as that bound: a study whose
    variance is 1e-150 of the median's already has its limiting weight (everything that has
    a limit as its v_i -> 0, or its weight -> 0 for a huge se, is reached to ~1e-150
    relative: the estimate, Q, tr P, I^2, H^2, tau^2 of DL/REML/..., Viechtbauer 2005's
    formulas being continuous there). The one number that vanishes with v_i instead, the
    standard error of a common-effect (tau^2 = 0) estimate, is computed from the se as given
    (:func:`_fe_se`).
    """
    y = np.asarray(y, dtype=float).ravel()
    se = np.asarray(se, dtype=float).ravel()
    k = y.size
    if se.size != k:
        raise ValueError(f"y has {k} values but se has {se.size}")
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(se) | ~(se > 0))
    if bad.size:
        raise ValueError(
            f"y/se invalid at positions {bad.tolist()}: y must be finite and se finite and > 0"
        )
    most = SE_RATIO_LIMIT if rescale else SE_RATIO
    if _log_spread(se) > math.log(most):
        raise ValueError(
            f"se spans more than a factor {most:g} (positions {int(se.argmin())} and "
            f"{int(se.argmax())}): the weights 1/se^2 do not fit in double precision"
        )
    unit = 1.0
    if rescale:
        se, unit = scaled_se(se)
        y = y / unit
    v = se**2
    bad = np.flatnonzero(~((v >= _TINY) & (v <= _HUGE)))
    if bad.size:
        raise ValueError(
            f"se at positions {bad.tolist()}: se^2 underflows or overflows double precision; "
            "express y and se in other units"
        )
    X = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float)
    X = X.reshape(k, -1) if X.ndim == 1 else X
    if X.shape[0] != k or not np.isfinite(X).all():
        raise ValueError(f"X must be a finite ({k}, p) array, got shape {X.shape}")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"X ({k} x {X.shape[1]}) is rank deficient; drop redundant columns")
    return y, v, X, unit


def scaled_se(se):
    """(se / unit, unit) as the fits here use them: the unit of :func:`data_unit`, or on the
    limit path (se spanning more than :data:`SE_RATIO`) the median se with the se clipped to
    2^+-250 of it (see :func:`_prepare_units`). For code that weights by 1/se^2 itself.

    Examples
    --------
    >>> su, unit = scaled_se([1e-300, 10.0, 10.0])
    >>> unit, bool(su[0] == 2.0**-250)
    (8.0, True)
    """
    se = np.asarray(se, dtype=float)
    if not _is_limit(se):
        unit = data_unit(se)
        return se / unit, unit
    unit = math.ldexp(1.0, round(math.log2(float(np.median(se)))))
    bound = math.ldexp(1.0, _LIMIT_BITS)
    return np.clip(se / unit, 1 / bound, bound), unit


def _log_spread(se):
    """log(max se / min se), which does not overflow where the ratio would."""
    se = np.asarray(se, dtype=float)
    return math.log(float(se.max())) - math.log(float(se.min()))


def in_squared_units(x, unit):
    """``x * unit^2``: a variance back in the data's units. Where that is beyond double
    precision (tau^2 of data in units 1e-300 is 1e-600) it is 0 or inf, without warnings
    or errors (Python's ``unit**2`` raises OverflowError); its root stays exact elsewhere."""
    with np.errstate(over="ignore", under="ignore"):
        return x * unit * unit


def _is_limit(se):
    """Whether :func:`_prepare_units` takes the limit path for these se."""
    return _log_spread(se) > math.log(SE_RATIO)


def _fe_se(se, X):
    """1 / sqrt(sum x_i^2 / se_i^2): the standard error of a one-coefficient common-effect
    fit (Hedges & Olkin 1985), from the se as given (exact for any spread of them; it is
    about the smallest se / |x| when one study outweighs the others)."""
    r = np.abs(np.asarray(X, dtype=float).ravel()) / np.asarray(se, dtype=float).ravel()
    top = float(r.max())
    return 1 / (top * math.sqrt(float(np.sum((r / top) ** 2))))


def others_sum(a):
    """sum_{j != i} a_j for every i (along the last axis), from prefix and suffix sums.

    ``sum(a) - a_i`` cancels catastrophically when one term dominates (a study with a tiny
    standard error); prefix and suffix sums never subtract.
    """
    a = np.asarray(a, dtype=float)
    zero = np.zeros((*a.shape[:-1], 1))
    before = np.concatenate([zero, np.cumsum(a[..., :-1], axis=-1)], axis=-1)
    after = np.concatenate([np.cumsum(a[..., :0:-1], axis=-1)[..., ::-1], zero], axis=-1)
    return before + after


class _Weighted:
    """Weighted least squares with weights w and the traces of P it implies.

    The weights are used relative to the geometric middle ``c`` of their range,
    ``u = w / c``, so that weights of 1e300 (se = 1e-150) and their squares neither overflow
    nor underflow; quantities ending in ``_u`` are in those units. With one coefficient
    (intercept only, or one column) every sum is written with leave-one-out sums, which keeps
    full relative precision when one study outweighs all others by many orders of magnitude:
    its residual is (y_i A_i - x_i S_i) / a with A_i, S_i the sums over the other studies,
    and 1 - h_i = A_i / a for its leverage h_i. With more coefficients and weights spread
    over more than 1e8, the normal equations (and sum u^3) lose every digit or overflow, so
    the fit comes from a Householder QR of U^(1/2) X with the rows sorted by weight (Powell &
    Reid 1969; Cox & Higham 1999), P / c in the form B B' with
    B = U^(1/2) Q_perp, Q_perp the last k - p columns of the full Q, so that tr P = |B|^2,
    tr PP = |B'B|^2 and the weighted residuals Q_perp Q_perp' U^(1/2) y need no subtraction.
    """

    _SPREAD = 1e8  # weights spread wider than this take the QR path (more than one column)

    def __init__(self, y, X, w):
        self.c = math.sqrt(float(w.max())) * math.sqrt(max(float(w.min()), _TINY))
        u = w / self.c
        self.u, self.X = u, X
        self._b = None
        if X.shape[1] > 1 and float(u.max()) > self._SPREAD * float(u.min()):
            self._qr_fit(y, X, u)
        elif X.shape[1] == 1:
            x = X[:, 0]
            ux2, uxy = u * x * x, u * x * y
            a = float(np.sum(ux2))
            self._loo = others_sum(ux2)  # A_i: leave-one-out sum of u x^2
            self.cov_u = np.array([[1 / a]])
            self.beta = np.array([np.sum(uxy) / a])
            self.resid = (y * self._loo - x * others_sum(uxy)) / a
        else:
            self.cov_u = np.linalg.inv(X.T @ (X * u[:, None]))
            self.beta = self.cov_u @ (X.T @ (u * y))
            self.resid = y - X @ self.beta

    def _qr_fit(self, y, X, u):
        p = X.shape[1]
        order = np.argsort(-u, kind="stable")
        back = np.argsort(order)
        root = np.sqrt(u[order])
        q, r = np.linalg.qr(X[order] * root[:, None], mode="complete")
        r = r[:p]
        qy = q.T @ (y[order] * root)
        self.beta = np.linalg.solve(r, qy[:p])
        r_inv = np.linalg.inv(r)
        self.cov_u = r_inv @ r_inv.T
        perp = q[:, p:]
        e = perp @ qy[p:]  # U^(1/2) r, with no cancellation in the studies of large weight
        self._rss_u = float(qy[p:] @ qy[p:])
        self._e = e[back]
        self.resid = self._e / np.sqrt(u)
        self._b = (perp * root[:, None])[back]  # P / c = B B'
        self._logdet_r = 2 * float(np.sum(np.log(np.abs(np.diag(r)))))

    @property
    def cov(self):
        """(X'WX)^-1: covariance of beta-hat (Hedges & Olkin 1985)."""
        return self.cov_u / self.c

    @property
    def rss(self):
        """y'Py = sum w r^2 (Cochran's Q when w = 1/se^2)."""
        if self._b is not None:
            return self.c * self._rss_u
        return float(self.c * np.sum(self.u * self.resid**2))

    @property
    def ypy2_u(self):
        """y'PPy / c^2 = |U r|^2, since P y = W r."""
        if self._b is not None:
            return float(np.sum(self.u * self._e**2))
        return float(np.sum((self.u * self.resid) ** 2))

    @property
    def tr_p_u(self):
        """tr(P) / c = sum u_i (1 - h_i)."""
        X, u = self.X, self.u
        if self._b is not None:
            return float(np.sum(self._b**2))
        if X.shape[1] == 1:
            return float(np.sum(u * self._loo) * self.cov_u[0, 0])
        return float(np.sum(u) - np.trace(self.cov_u @ (X.T @ (X * (u**2)[:, None]))))

    @property
    def tr_pp_u(self):
        """tr(PP) / c^2 = sum_ij P_ij^2 in units of c.

        One coefficient: P_ii = u_i A_i / a and P_ij = -u_i x_i u_j x_j / a (i != j). Else
        sum u^2 - 2 tr(M X'U^3 X) + tr((M X'U^2 X)^2) with M = (X'UX)^-1.
        """
        X, u, M = self.X, self.u, self.cov_u
        if self._b is not None:
            return float(np.sum((self._b.T @ self._b) ** 2))
        if X.shape[1] == 1:
            ux = u * X[:, 0]
            diag = u * self._loo * M[0, 0]
            # squared last: (u_i M)^2 alone can underflow while u_i M sqrt(T_i) does not
            off = (ux * M[0, 0] * np.sqrt(others_sum(ux**2))) ** 2
            return float(np.sum(diag**2) + np.sum(off))
        mc = M @ (X.T @ (X * (u**2)[:, None]))
        return float(
            np.sum(u**2) - 2 * np.trace(M @ (X.T @ (X * (u**3)[:, None]))) + np.trace(mc @ mc)
        )

    @property
    def tr_p(self):
        """tr(P) = sum w - tr((X'WX)^-1 X'W^2 X)."""
        return self.c * self.tr_p_u

    def score_u(self):
        """The REML score 2 d logL / d tau^2 = y'PPy - tr P, divided by c^2 (Viechtbauer 2005)."""
        return self.ypy2_u - self.tr_p_u / self.c

    def logdet_xwx(self):
        """log |X'WX|."""
        X = self.X
        if self._b is not None:
            return self._logdet_r + X.shape[1] * math.log(self.c)
        return float(
            np.linalg.slogdet(X.T @ (X * self.u[:, None]))[1] + X.shape[1] * math.log(self.c)
        )


def cochran_q(y, se, X=None):
    """Cochran's Q (metafor's QE with moderators), its degrees of freedom and p-value.

    Q = sum_i w_i (y_i - x_i' b)^2 with w_i = 1/se_i^2 and b the fixed-effect weighted least
    squares fit; under homogeneity Q ~ chi^2(k - p) (Cochran 1954; Hedges & Olkin 1985).

    Returns
    -------
    (Q, df, pvalue) : (float, int, float)

    Examples
    --------
    >>> q, df, p = cochran_q([0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    >>> float(q), df
    (2.0, 2)
    """
    y, v, X, _ = _prepare_units(y, se, X)  # Q is the same in any units
    df = y.size - X.shape[1]
    q = _Weighted(y, X, 1 / v).rss
    return q, df, float(stats.chi2.sf(q, df)) if df > 0 else math.nan


def typical_within_variance(se, X=None):
    """metafor's "typical" sampling variance s^2 = (k - p) / tr(P), with W = diag(1/se^2).

    For an intercept-only model this is Higgins & Thompson's (2002)
    (k - 1) sum w / ((sum w)^2 - sum w^2).

    Examples
    --------
    >>> float(typical_within_variance([1.0, 1.0, 1.0]))
    1.0
    """
    se = np.asarray(se, dtype=float).ravel()
    _, v, X, unit = _prepare_units(np.zeros_like(se), se, X)
    s2 = (se.size - X.shape[1]) / _Weighted(np.zeros_like(se), X, 1 / v).tr_p
    return in_squared_units(s2, unit)


def i2_h2_tau(tau, se, X=None):
    """:func:`i2_h2` from tau rather than tau^2: the same I^2 and H^2, computed in the units of
    :func:`data_unit`, so that they stay exact where tau^2 or s^2 under- or overflow
    (se of 1e-300: tau^2 ~ 1e-600 is 0 in double precision, tau / unit is not).

    Examples
    --------
    >>> i2, h2 = i2_h2_tau(1e-300, [1e-300, 1e-300, 1e-300])
    >>> round(float(i2), 12), round(float(h2), 12)
    (50.0, 2.0)
    """
    se = np.asarray(se, dtype=float).ravel()
    _, v, X, unit = _prepare_units(np.zeros_like(se), se, X)
    s2 = (se.size - X.shape[1]) / _Weighted(np.zeros_like(se), X, 1 / v).tr_p
    if math.isinf(tau):
        return 100.0, math.inf
    t2 = (tau / unit) ** 2
    return 100 * t2 / (t2 + s2), (t2 + s2) / s2


def i2_h2(tau2, se, X=None):
    """I^2 (percent) and H^2 for a heterogeneity estimate, as metafor reports them.

    I^2 = 100 tau^2 / (tau^2 + s^2) and H^2 = (tau^2 + s^2) / s^2, with s^2 from
    :func:`typical_within_variance` (Higgins & Thompson 2002, eqs. 9-10 in this form).
    Defined for any k > p, also k = 2. ``tau2 = inf`` gives the limits I^2 = 100, H^2 = inf.

    Examples
    --------
    >>> i2, h2 = i2_h2(1.0, [1.0, 1.0, 1.0])
    >>> float(i2), float(h2)
    (50.0, 2.0)
    """
    if math.isinf(tau2):
        # a posterior mean of tau^2 that does not exist (heavy tail): the limits
        return 100.0, math.inf
    return i2_h2_tau(math.sqrt(tau2), se, X)


@dataclass(frozen=True, eq=False)
class REFit:
    """A fitted random-effects model (metafor ``rma.uni`` output, ``test = "z"``).

    Attributes
    ----------
    method : {"DL", "REML"}
    beta, beta_se, ci_low, ci_high : ndarray, shape (p,)
        Coefficients, standard errors and Wald-z ``level`` confidence limits.
    tau2, tau2_se : float
        Heterogeneity variance (truncated at 0) and its standard error.
    tau : float
        sqrt(tau2), computed in the units of :func:`data_unit` (so finite and exact where
        tau2 itself under- or overflows, for se of 1e-300 or 1e300).
    I2, H2 : float
        Heterogeneity summaries from :func:`i2_h2`.
    Q, Q_df, Q_pvalue : float, int, float
        Cochran's Q (QE) test for (residual) heterogeneity.
    k, p : int
    level : float
    pi_low, pi_high : float
        Prediction interval for the true effect of a new study, mu +/- z sqrt(mu_se^2 + tau2)
        (metafor ``predict()``); NaN when there are moderators.
    """

    method: str
    beta: np.ndarray
    beta_se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tau2: float
    tau2_se: float
    I2: float
    H2: float
    Q: float
    Q_df: int
    Q_pvalue: float
    k: int
    p: int
    level: float
    pi_low: float
    pi_high: float
    tau: float

    @property
    def mu(self):
        """Pooled effect of an intercept-only model."""
        self._require_intercept_only("mu")
        return float(self.beta[0])

    @property
    def mu_se(self):
        """Standard error of the pooled effect of an intercept-only model."""
        self._require_intercept_only("mu_se")
        return float(self.beta_se[0])

    def _require_intercept_only(self, name):
        if self.p != 1:
            raise AttributeError(f"{name} exists only for intercept-only fits (p = {self.p})")


def _finish(method, y, v, X, tau2, tau2_se, level, unit=1.0, fe_se=None):
    """Random-effects weighted least squares at ``tau2`` and the summaries around it.

    ``y``, ``v``, ``tau2`` and ``tau2_se`` are in units of ``unit`` (:func:`data_unit`); the
    fit is reported in the data's own units. ``fe_se`` (data units): the standard error of a
    one-coefficient fit at tau2 = 0 on the limit path (:func:`_fe_se`).
    """
    fit = _Weighted(y, X, 1 / (v + tau2))
    se = np.sqrt(np.diag(fit.cov))
    if fe_se is not None and tau2 == 0 and X.shape[1] == 1:
        se = np.array([fe_se / unit])
    z = stats.norm.ppf(0.5 + level / 2)
    q, df, qp = cochran_q(y, np.sqrt(v), X)
    i2, h2 = i2_h2(tau2, np.sqrt(v), X)
    k, p = X.shape
    intercept_only = p == 1 and np.all(X == 1)
    half = z * math.sqrt(se[0] ** 2 + tau2) if intercept_only else math.nan
    beta, se = fit.beta * unit, se * unit
    return REFit(
        method=method,
        beta=beta,
        beta_se=se,
        ci_low=beta - z * se,
        ci_high=beta + z * se,
        tau2=in_squared_units(float(tau2), unit),
        tau2_se=in_squared_units(float(tau2_se), unit),
        tau=math.sqrt(tau2) * unit,
        I2=float(i2),
        H2=float(h2),
        Q=q,
        Q_df=df,
        Q_pvalue=qp,
        k=k,
        p=p,
        level=level,
        pi_low=float(beta[0] - half * unit),
        pi_high=float(beta[0] + half * unit),
    )


def _check_k(y, X):
    k, p = X.shape
    if k < p + 1:
        raise ValueError(f"{k} studies cannot estimate {p} coefficients and tau^2; need k > p")


def dersimonian_laird(y, se, X=None, level=0.95):
    """DerSimonian-Laird (1986) method-of-moments random-effects fit, as metafor's "DL".

    tau^2 = max(0, (Q - (k - p)) / tr(P)) with fixed-effect weights (Raudenbush 2009 for
    the meta-regression form); SE(tau^2) = sqrt(2(k-p) + 4 tau^2 tr P + 2 tau^4 tr PP) / tr P.

    Examples
    --------
    >>> fit = dersimonian_laird([0.0, 1.0, 3.0], [1.0, 1.0, 1.0])
    >>> round(fit.tau2, 6), round(fit.mu, 6)
    (1.333333, 1.333333)
    """
    y, v, X, unit = _prepare_units(y, se, X)
    _check_k(y, X)
    tau2, tau2_se = dl_tau2(y, v, X)
    fe_se = _fe_se(se, X) if _is_limit(se) and X.shape[1] == 1 else None
    return _finish("DL", y, v, X, tau2, tau2_se, level, unit, fe_se)


def dl_tau2(y, v, X):
    """The DerSimonian-Laird tau^2 and its standard error for validated ``y``, variances
    ``v`` and design ``X`` (the numerics of :func:`dersimonian_laird`)."""
    k, p = X.shape
    fe = _Weighted(y, X, 1 / v)
    tr_p = fe.tr_p
    tau2 = max(0.0, (fe.rss - (k - p)) / tr_p)
    # the same as the root of a sum of three squares, each finite where tr PP (and even
    # tr P^2) would overflow on its own: tr PP / tr P^2 = tpp / tp^2 in the units of c
    tau2_se = math.hypot(
        math.sqrt(2 * (k - p)) / tr_p,
        2 * math.sqrt(tau2 / tr_p),
        math.sqrt(2 * fe.tr_pp_u) * tau2 / fe.tr_p_u,
    )
    return tau2, tau2_se


def _reml_loglik(y, v, X, tau2):
    """Restricted log-likelihood (Viechtbauer 2005, eq. 8; metafor's ``REMLf = TRUE``)."""
    k, p = X.shape
    fit = _Weighted(y, X, 1 / (v + tau2))
    return -0.5 * (
        (k - p) * math.log(2 * math.pi) + np.sum(np.log(v + tau2)) + fit.logdet_xwx() + fit.rss
    )


def _score_sign(y, v, X, tau2):
    """The REML score at ``tau2`` divided by a positive number (c^2 of the weights there)."""
    return _Weighted(y, X, 1 / (v + tau2)).score_u()


def polish_root(f, t, width=1e-5):
    """The root of the decreasing ``f`` within ``width`` (relative) of ``t``, to the last bits
    by Brent's method (scipy ``brentq``); ``t`` itself where f does not change sign there."""
    lo, hi = t * (1 - width), t * (1 + width)
    f_lo, f_hi = f(lo), f(hi)
    if not (f_lo > 0 > f_hi):
        return t
    eps = np.finfo(float).eps
    return float(optimize.brentq(f, lo, hi, xtol=_TINY, rtol=4 * eps, maxiter=200))


def _reml_root(y, v, X, last):
    """The root of the REML score, by Brent's bracketing method (scipy ``brentq``).

    For the rare data where Fisher scoring overshoots and oscillates around the maximum
    (steps of about -0.9 times the previous one; seen once in ~1000 simulated data sets).
    The last iterates straddle the root; if they do not, the bracket grows from them. The
    root is found to the last bit of tau^2 (``xtol`` the smallest float, ``rtol`` 4 eps), so
    the score is zero to rounding, which minimizing the likelihood cannot give: that locates
    the maximum only to about the square root of the machine epsilon.
    """
    lo, hi = min(last), max(last)
    f_lo, f_hi = _score_sign(y, v, X, lo), _score_sign(y, v, X, hi)
    for _ in range(200):
        if f_lo > 0 or lo == 0:
            break
        lo, f_lo = lo / 4, _score_sign(y, v, X, lo / 4)
        if lo < _TINY:
            lo, f_lo = 0.0, _score_sign(y, v, X, 0.0)
    for _ in range(200):
        if f_hi < 0:
            break
        hi = 4 * hi + float(np.max(v))
        f_hi = _score_sign(y, v, X, hi)
    if f_lo <= 0:
        return 0.0  # the score is negative at 0 and on the way up: the maximum is at 0
    if not f_hi < 0:
        raise ValueError(
            "REML did not converge (Fisher scoring oscillated and no bracket of the score's "
            "root was found); use dersimonian_laird"
        )
    return float(
        optimize.brentq(
            lambda t: _score_sign(y, v, X, t),
            lo,
            hi,
            xtol=_TINY,
            rtol=4 * np.finfo(float).eps,
            maxiter=2000,
        )
    )


def _threshold(tol, unit):
    """Step size below which Fisher scoring stops.

    ``tol`` itself (metafor's absolute ``threshold``) for variances of ordinary size, and
    ``tol`` times the variance scale ``unit`` (tau^2 + typical se^2) when that is above 1 or
    below 0.01, so that the fit does not depend on the units of the data (se = 1e-8 or 1e100).
    """
    return tol * (unit if unit > 1 else min(1.0, 100 * unit))


def reml(y, se, X=None, level=0.95, tol=1e-10, max_iter=100):
    """REML random-effects fit by Fisher scoring, as metafor's default ``method = "REML"``.

    Starts from the Hedges (HE) estimate (truncated at 0) and iterates
    tau^2 += (y'PPy - tr P) / tr(PP) (Viechtbauer 2005, eq. 9), halving steps that would go
    below 0, until the change is below ``tol`` (see :func:`_threshold` for data on extreme
    scales). If it oscillates instead, Brent's method finds the root of the score
    y'PPy - tr P to machine precision. Like metafor, it falls back to tau^2 = 0 if the
    restricted likelihood is higher there. SE(tau^2) = sqrt(2 / tr(PP)) (Fisher information).

    Examples
    --------
    >>> fit = reml([0.0, 1.0, 3.0], [1.0, 1.0, 1.0])
    >>> round(fit.tau2, 6)
    1.333333
    """
    y, v, X, unit = _prepare_units(y, se, X)
    _check_k(y, X)
    tau2, tau2_se = reml_tau2(y, v, X, tol=tol, max_iter=max_iter)
    fe_se = _fe_se(se, X) if _is_limit(se) and X.shape[1] == 1 else None
    return _finish("REML", y, v, X, tau2, tau2_se, level, unit, fe_se)


def reml_tau2(y, v, X, tol=1e-10, max_iter=100):
    """The REML estimate of tau^2 and its standard error, for validated ``y``, variances
    ``v`` and design ``X`` (the numerics of :func:`reml`; also used by
    :mod:`hiermodels.numerics.estimators`)."""
    k, p = X.shape
    s2 = (k - p) / _Weighted(y, X, 1 / v).tr_p  # typical within-study variance (for the scale)
    # Hedges' unweighted method-of-moments start: (RSS_ols - tr(P_ols V)) / (k - p)
    ols = _Weighted(y, X, np.ones(k))
    hat = np.einsum("ij,jk,ik->i", X, ols.cov, X)  # leverages of ordinary least squares
    tau2 = max(0.0, (ols.rss - np.sum(v * (1 - hat))) / (k - p))
    last = [tau2]
    for _ in range(max_iter):
        fit = _Weighted(y, X, 1 / (v + tau2))
        adj = fit.score_u() / fit.tr_pp_u
        if tau2 == 0 and adj < 0:
            adj = 0.0  # metafor halves forever here, which ends at a step of 0
        while tau2 + adj < 0:
            adj /= 2
        tau2 += adj
        last = [last[-1], tau2]
        if abs(adj) < _threshold(tol, tau2 + s2):
            break
    else:
        tau2 = _reml_root(y, v, X, last)
    if tau2 > 0 and tol <= 1e-8:
        # Fisher scoring converges linearly, so the stopping step leaves an error of its own
        # order (~tol relative): the root of the score to the last bits makes tau^2 the same
        # in any units (data_unit). Not with a coarse tol (metafor's 1e-5, to reproduce where
        # it stops)
        tau2 = polish_root(lambda t: _score_sign(y, v, X, t), tau2)
    if 0 < tau2 < 1e-6 * s2 and tol <= 1e-8 and _score_sign(y, v, X, 0.0) <= 0:
        # creeping to the boundary (the score is <= 0 at 0, so the maximum is there): where
        # the steps stop would depend on the units of the data, the limit does not
        tau2 = 0.0
    tau2 = max(0.0, tau2)
    if tau2 > 0 and _reml_loglik(y, v, X, 0.0) - _reml_loglik(y, v, X, tau2) > 1.2e-4:
        tau2 = 0.0  # a local maximum: metafor's ll0check (tolerance .Machine$double.eps^0.25)
    at = _Weighted(y, X, 1 / (v + tau2))
    return tau2, math.sqrt(2 / at.tr_pp_u) / at.c
