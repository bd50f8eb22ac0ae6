"""Random-effects meta-analysis and meta-regression inference, as metafor's ``rma.uni``.

:func:`fit_random_effects` estimates tau^2 by any estimator of
:data:`~hiermodels.numerics.estimators.ESTIMATORS` and returns an :class:`RMAFit` with
metafor's printed output: the coefficient table (estimate, se, z or t, p, CI), the omnibus
test of the moderators QM, the test for residual heterogeneity QE, I^2 and H^2. Around it:
:func:`predict` (metafor's ``predict``, with ``newmods``), :func:`confint_tau2` (the Q-profile
interval of ``confint``) and :func:`fit_stats` (``fitstats``: logLik, deviance, AIC, BIC,
AICc).

``test="knha"`` is the Knapp & Hartung (2003) method as metafor implements it: the covariance
of beta-hat is multiplied by s2w = y'Py / (k - p) (P at the random-effects weights; not
truncated at 1), and tests and intervals use t(k - p) for coefficients and F(m, k - p) for QM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.estimators import (
    ESTIMATORS,
    _root_decreasing,
    generalized_q,
    loglik_ml,
    loglik_reml,
)
from hiermodels.numerics.heterogeneity import (
    _fe_se,
    _is_limit,
    _prepare_units,
    _Weighted,
    cochran_q,
    in_squared_units,
    typical_within_variance,
)

__all__ = [
    "TESTS",
    "FitStats",
    "HeterogeneityCI",
    "Prediction",
    "RMAFit",
    "coefficients",
    "confint_tau2",
    "fit_random_effects",
    "fit_stats",
    "percent_weights",
    "predict",
]

TESTS = ("z", "knha")


@dataclass(frozen=True, eq=False)
class RMAFit:
    """A fitted random-effects (meta-regression) model: metafor's ``rma.uni`` object.

    Attributes
    ----------
    method, test : str
        The tau^2 estimator (key of ``ESTIMATORS``) and "z" or "knha".
    beta, se, stat, pval, ci_low, ci_high : ndarray, shape (p,)
        The coefficient table; ``stat`` is z (test="z") or t (test="knha").
    vb : ndarray, shape (p, p)
        Covariance of beta-hat (times s2w under knha).
    tau2, tau2_se : float
    I2, H2, vt : float
        I^2 (percent), H^2 and the typical within-study variance s^2 they use (for "EE",
        metafor's I^2 = (QE - df) / QE and H^2 = QE / df).
    QE, QE_df, QE_p : float, int, float
        Test for (residual) heterogeneity.
    QM, QM_df, QM_p : float, tuple, float
        Omnibus test of the coefficients ``btt``: chi^2(m) under "z", ``QM_df = (m,)``; F(m,
        k - p) under "knha" (QM divided by m), ``QM_df = (m, k - p)``.
    btt : tuple of int
        Coefficients tested by QM (0-based): all but a leading intercept column by default.
    s2w : float
        Knapp-Hartung scale (1 under "z").
    ddf : int or None
        Degrees of freedom of the t tests (k - p under "knha").
    k, p, level : int, int, float
    y, v, X : ndarray
        The data (v the sampling variances) in units of ``unit``, kept for :func:`predict`
        and :func:`confint_tau2`.
    unit : float
        The unit the fit was computed in (:func:`~hiermodels.numerics.heterogeneity.data_unit`,
        1 for data of ordinary size); every other attribute is in the data's own units.
    tau2_u, vb_u : float, ndarray
        tau2 and vb in units of ``unit`` (finite where tau2 and vb under- or overflow, for se
        of 1e-300 or 1e300).
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
    tau2: float
    tau2_se: float
    I2: float
    H2: float
    vt: float
    QE: float
    QE_df: int
    QE_p: float
    QM: float
    QM_df: tuple
    QM_p: float
    btt: tuple
    s2w: float
    ddf: int | None
    k: int
    p: int
    level: float
    y: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    unit: float = 1.0
    tau2_u: float = math.nan
    vb_u: np.ndarray | None = field(default=None, repr=False)

    @property
    def tau(self):
        """sqrt(tau2), exact where tau2 itself under- or overflows."""
        return math.sqrt(self.tau2_u) * self.unit

    @property
    def has_intercept(self):
        """Whether the first column of X is a column of ones (metafor's ``intercept``)."""
        return bool(np.all(self.X[:, 0] == 1))

    @property
    def crit(self):
        """Critical value of the ``level`` intervals: z or t(k - p)."""
        return _crit(self.test, self.level, self.ddf)

    @property
    def weights(self):
        """Percent weight of each study, 100 w_i / sum w (metafor's ``weights()``)."""
        return percent_weights(self.v, self.tau2_u)


def percent_weights(v, tau2) -> np.ndarray:
    """Percent random-effects weight of each study, 100 w_i / sum w with w_i = 1 / (v_i + tau2).

    metafor's ``weights()`` of an ``rma.uni`` fit (inverse-variance weights, Borenstein et al.
    2009, ch. 12). Give ``v`` and ``tau2`` in one unit (e.g. of
    :func:`~hiermodels.numerics.heterogeneity.data_unit`): the percentages do not depend on it.

    Parameters
    ----------
    v : array_like, shape (k,)
        Sampling variances se_i^2.
    tau2 : float
        Between-study variance.

    Returns
    -------
    ndarray, shape (k,)
        Weights in percent, summing to 100.

    Examples
    --------
    >>> percent_weights([1.0, 1.0, 2.0], 1.0)
    array([37.5, 37.5, 25. ])
    """
    if not tau2 >= 0:
        raise ValueError(f"tau2 must be >= 0, got {tau2}")
    w = 1 / (np.asarray(v, dtype=float) + tau2)
    return 100 * w / np.sum(w)


def _crit(test, level, ddf):
    q = 0.5 + level / 2
    if test == "knha":
        return float(stats.t.ppf(q, ddf)) if ddf > 0 else math.nan
    return float(stats.norm.ppf(q))


def _default_btt(X):
    p = X.shape[1]
    return tuple(range(1, p)) if p > 1 and np.all(X[:, 0] == 1) else tuple(range(p))


def fit_random_effects(y, se, X=None, *, method="REML", test="z", level=0.95, btt=None):
    """Fit y_i ~ Normal(x_i' beta, se_i^2 + tau^2) as metafor's ``rma(yi, vi, mods, method, test)``.

    Parameters
    ----------
    y, se : array_like, shape (k,)
        Estimates and their standard errors (metafor's ``vi = se**2``).
    X : array_like, shape (k, p), optional
        The full design matrix, intercept column included; default intercept only.
    method : str
        A key of :data:`~hiermodels.numerics.estimators.ESTIMATORS`: "EE", "DL", "HE",
        "HS", "SJ", "PM", "EB", "ML", "REML".
    test : {"z", "knha"}
        Wald-z inference, or Knapp & Hartung (2003) t/F inference.
    level : float
        Confidence level of the intervals, in (0, 1).
    btt : sequence of int, optional
        Coefficients (0-based) QM tests; default all but a leading intercept column.

    With k = 1 (one study, intercept only) tau^2 is 0, QE = 0, I^2 = 0, H^2 = 1 and the test
    is "z", as in metafor.

    Examples
    --------
    >>> fit = fit_random_effects([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], method="DL")
    >>> round(fit.tau2, 6), round(float(fit.beta[0]), 6)
    (1.333333, 1.333333)
    """
    if method not in ESTIMATORS:
        raise SpecError(f"unknown method {method!r}; choose one of {sorted(ESTIMATORS)}")
    if test not in TESTS:
        raise SpecError(f"test must be one of {TESTS}, got {test!r}")
    if not 0 < level < 1:
        raise SpecError(f"level must be in (0, 1), got {level!r}")
    y, v, X, unit = _prepare_units(y, se, X)  # computed in units of the data's se
    k, p = X.shape
    if k < p + 1 and not (k == 1 and p == 1):
        raise ValueError(f"{k} studies cannot estimate {p} coefficients and tau^2; need k > p")
    if k == 1:
        tau2, tau2_se = 0.0, math.nan  # metafor's "k1" case
        test = "z"  # metafor: 'Setting argument test="z" since k=1.'
    else:
        tau2, tau2_se = ESTIMATORS[method].estimate(y, v, X)
    fe_se = _fe_se(se, X) if p == 1 and _is_limit(se) else None
    return _fit_at(y, v, X, method, test, level, tau2, tau2_se, btt, unit, fe_se)


def _fit_at(y, v, X, method, test, level, tau2, tau2_se, btt=None, unit=1.0, fe_se=None):
    """The weighted least squares fit at ``tau2`` and everything metafor reports around it.

    ``y``, ``v``, ``tau2`` and ``tau2_se`` are in units of ``unit``; the fit reports in the
    data's own units (locations and scales times unit, variances times unit^2).
    ``fe_se``: the standard error of a one-coefficient fit at tau2 = 0 on the limit path of
    :func:`~hiermodels.numerics.heterogeneity._prepare_units`, from the se as given.
    """
    k, p = X.shape
    fit = _Weighted(y, X, 1 / (v + tau2))
    s2w, ddf = 1.0, None
    if test == "knha":
        rss = fit.rss
        s2w = rss / (k - p) if rss > np.finfo(float).eps else 0.0  # metafor's RSS.knha rule
        ddf = k - p
    vb = s2w * fit.cov
    se = np.sqrt(np.diag(vb))
    if fe_se is not None and tau2 == 0:
        se = np.array([math.sqrt(s2w) * fe_se / unit])  # vb may underflow: se^2 of 1e-300
        vb = se[:, None] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = fit.beta / se
    crit = _crit(test, level, ddf)
    if test == "knha":
        pval = 2 * stats.t.sf(np.abs(stat), ddf) if ddf > 0 else np.full(p, math.nan)
    else:
        pval = 2 * stats.norm.sf(np.abs(stat))
    btt = _default_btt(X) if btt is None else tuple(int(j) for j in btt)
    b, cov = fit.beta[list(btt)], vb[np.ix_(btt, btt)]
    m = len(btt)
    try:
        qm = float(b @ np.linalg.solve(cov, b))
    except np.linalg.LinAlgError:
        qm = math.nan
    if test == "knha":
        qm /= m
        qm_df = (m, k - p)
        qm_p = float(stats.f.sf(qm, m, k - p)) if k > p else math.nan
    else:
        qm_df = (m,)
        qm_p = float(stats.chi2.sf(qm, m))
    if k > p:
        qe, qe_df, qe_p = cochran_q(y, np.sqrt(v), X)
        vt = typical_within_variance(np.sqrt(v), X)
        if method == "EE":
            i2, h2 = max(0.0, 100 * (qe - qe_df) / qe), qe / qe_df
        else:
            i2, h2 = 100 * tau2 / (vt + tau2), tau2 / vt + 1
    else:
        qe, qe_df, qe_p, vt, i2, h2 = 0.0, 0, 1.0, 0.0, 0.0, 1.0
    beta, se_out = fit.beta * unit, se * unit
    return RMAFit(
        method=method,
        test=test,
        beta=beta,
        se=se_out,
        stat=stat,
        pval=pval,
        ci_low=beta - crit * se_out,
        ci_high=beta + crit * se_out,
        vb=in_squared_units(vb, unit),
        tau2=in_squared_units(float(tau2), unit),
        tau2_se=in_squared_units(float(tau2_se), unit),
        I2=float(i2),
        H2=float(h2),
        vt=in_squared_units(float(vt), unit),
        QE=float(qe),
        QE_df=int(qe_df),
        QE_p=float(qe_p),
        QM=qm,
        QM_df=qm_df,
        QM_p=qm_p,
        btt=btt,
        s2w=float(s2w),
        ddf=ddf,
        k=k,
        p=p,
        level=level,
        y=y,
        v=v,
        X=X,
        unit=unit,
        tau2_u=float(tau2),
        vb_u=vb,
    )


def coefficients(fit):
    """metafor's coefficient table as a dict of arrays (keys as metafor prints them).

    Examples
    --------
    >>> fit = fit_random_effects([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], method="DL")
    >>> sorted(coefficients(fit))
    ['ci.lb', 'ci.ub', 'estimate', 'pval', 'se', 'zval']
    """
    name = "tval" if fit.test == "knha" else "zval"
    return {
        "estimate": fit.beta,
        "se": fit.se,
        name: fit.stat,
        "pval": fit.pval,
        "ci.lb": fit.ci_low,
        "ci.ub": fit.ci_high,
    }


@dataclass(frozen=True)
class Prediction:
    """Predicted (average true) effects with confidence and prediction intervals.

    ``pi_low``/``pi_high`` are pred -/+ crit sqrt(se^2 + tau^2): where the true effect of a new
    study with these moderator values is expected to lie (Riley et al. 2011).
    """

    pred: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    pi_low: np.ndarray
    pi_high: np.ndarray


def predict(fit, newmods=None, *, level=None):
    """Predicted values as metafor's ``predict(res, newmods=...)``.

    Parameters
    ----------
    fit : RMAFit
    newmods : array_like, shape (n, q), optional
        Moderator values of the new studies, without the intercept column when the model has
        one (as metafor's ``newmods``): q = p - 1 then, else q = p. A 1-d array is one
        moderator (n values) if q = 1, else one new study. Default: the pooled effect for an
        intercept-only model, the fitted values of the studies otherwise.
    level : float, optional
        Default the fit's.

    Returns
    -------
    Prediction
        Critical values z, or t(k - p) under ``test="knha"`` (metafor's default
        ``pi.type``).

    Examples
    --------
    >>> fit = fit_random_effects([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], method="DL")
    >>> pr = predict(fit)
    >>> round(float(pr.pred[0]), 6)
    1.333333
    """
    level = fit.level if level is None else level
    if newmods is None:
        X_new = fit.X[:1] if fit.p == 1 and fit.has_intercept else fit.X
    else:
        q = fit.p - int(fit.has_intercept)
        new = np.asarray(newmods, dtype=float)
        if q == 0:
            raise SpecError("the model has no moderators; call predict(fit) without newmods")
        if new.ndim == 1:
            new = new[:, None] if q == 1 else new[None, :]
        if new.ndim != 2 or new.shape[1] != q or not np.isfinite(new).all():
            raise SpecError(
                f"newmods must be finite with {q} column(s) (the moderators"
                f"{', without the intercept' if fit.has_intercept else ''}); got shape {new.shape}"
            )
        X_new = np.column_stack([np.ones(len(new)), new]) if fit.has_intercept else new
    pred = X_new @ fit.beta
    if fit.p == 1:  # from se, not vb: se of 1e-300 squares to 0
        se_u = np.abs(X_new[:, 0]) * (fit.se[0] / fit.unit)
    else:
        se_u = np.sqrt(np.einsum("ij,jk,ik->i", X_new, fit.vb_u, X_new))  # in units of fit.unit
    crit = _crit(fit.test, level, fit.ddf)
    half_pi = crit * np.sqrt(se_u**2 + fit.tau2_u) * fit.unit
    se = se_u * fit.unit
    return Prediction(pred, se, pred - crit * se, pred + crit * se, pred - half_pi, pred + half_pi)


@dataclass(frozen=True)
class HeterogeneityCI:
    """Estimates and confidence limits of tau^2, tau, I^2 (percent) and H^2.

    Each attribute is a tuple (estimate, ci_low, ci_high).
    """

    tau2: tuple
    tau: tuple
    I2: tuple
    H2: tuple
    level: float


def confint_tau2(fit, *, level=None):
    """Q-profile confidence interval for tau^2 and the I^2, H^2 intervals derived from it.

    The limits solve y'P(tau^2)y = chi^2_{1-a/2}(k-p) (lower) and chi^2_{a/2}(k-p) (upper)
    (Viechtbauer 2007, Stat. Med. 26:37-52; metafor's ``confint(res)``, type "QP"); a limit is
    0 where the generalized Q at tau^2 = 0 is already below its quantile. I^2 and H^2 limits
    are 100 t / (t + s^2) and t / s^2 + 1 at the tau^2 limits t, with the fit's s^2.
    metafor searches tau^2 in [0, max(100, 10 tau^2)] and reports the end ("> 100") beyond;
    this grows the bracket instead, and finds the roots to the last bits (metafor's
    ``uniroot`` stops at about 1e-4).

    Examples
    --------
    >>> fit = fit_random_effects([0.0, 1.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5], method="REML")
    >>> ci = confint_tau2(fit)
    >>> ci.tau2[1] < fit.tau2 < ci.tau2[2]
    True
    """
    if fit.method == "EE":
        raise SpecError("an equal-effects model has no tau^2; fit a random-effects method")
    if fit.k <= fit.p:
        raise SpecError("confint_tau2 needs k > p")
    level = fit.level if level is None else level
    y, v, X = fit.y, fit.v, fit.X
    df = fit.k - fit.p
    alpha = 1 - level
    hi_q, lo_q = stats.chi2.isf(alpha / 2, df), stats.chi2.ppf(alpha / 2, df)
    q0 = generalized_q(y, v, X, 0.0)
    start = max(100.0, 10 * fit.tau2_u)  # tau^2 in units of fit.unit, as y and v

    def limit(target):
        if q0 <= target:
            return 0.0
        return _root_decreasing(lambda t: generalized_q(y, v, X, t) - target, start)

    lo, hi = limit(hi_q), limit(lo_q)
    vt, u = typical_within_variance(np.sqrt(v), X), fit.unit  # s^2 in the units of v
    return HeterogeneityCI(
        tau2=(fit.tau2, in_squared_units(lo, u), in_squared_units(hi, u)),
        tau=(fit.tau, math.sqrt(lo) * u, math.sqrt(hi) * u),
        I2=(fit.I2, 100 * lo / (vt + lo), 100 * hi / (vt + hi)),
        H2=(fit.H2, lo / vt + 1, hi / vt + 1),
        level=level,
    )


@dataclass(frozen=True)
class FitStats:
    """metafor's ``fitstats``: log-likelihood, deviance, AIC, BIC and AICc."""

    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    likelihood: str


def fit_stats(fit, *, likelihood=None):
    """Fit statistics as metafor's ``fitstats(res)`` (also ``logLik``, ``deviance``, ``AIC``).

    ``likelihood="REML"`` (default for REML fits) uses the restricted log-likelihood, its
    deviance -2 ll, BIC with log(k - p) and AICc with k - p; ``"ML"`` (default otherwise, as
    metafor) the full one, the deviance against the saturated model
    -2 (ll - sum log N(y_i | y_i, v_i)), log(k) and k. Parameters: p, plus 1 unless "EE".

    Examples
    --------
    >>> fit = fit_random_effects([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], method="ML")
    >>> round(fit_stats(fit).loglik, 6)
    -4.919565
    """
    likelihood = likelihood or ("REML" if fit.method == "REML" else "ML")
    if likelihood not in ("ML", "REML"):
        raise SpecError(f"likelihood must be 'ML' or 'REML', got {likelihood!r}")
    y, v, X, k, p = fit.y, fit.v, fit.X, fit.k, fit.p
    parms = p + (0 if fit.method == "EE" else 1)
    # y and v are in units of fit.unit: the densities of y in its own units are 1/unit^n of
    # theirs (n = k, or k - p for the restricted likelihood); the deviance does not change
    log_unit = math.log(fit.unit)
    if likelihood == "ML":
        ll = loglik_ml(y, v, X, fit.tau2_u)
        saturated = -0.5 * float(np.sum(np.log(2 * math.pi * v)))
        dev = -2 * (ll - saturated) if k > p else 0.0
        n = k
    else:
        ll = loglik_reml(y, v, X, fit.tau2_u)
        dev = -2 * ll
        n = k - p
    ll -= n * log_unit
    if likelihood == "REML":
        dev = -2 * ll
    big = max(n, parms + 2)
    return FitStats(
        loglik=ll,
        deviance=dev,
        AIC=-2 * ll + 2 * parms,
        BIC=-2 * ll + parms * math.log(n),
        AICc=-2 * ll + 2 * parms * big / (big - parms - 1),
        likelihood=likelihood,
    )
