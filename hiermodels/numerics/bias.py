"""Small-study effects and publication bias: Egger's test, the rank test, trim and fill.

Each function follows the R package metafor 3.8 (``regtest``, ``ranktest``, ``trimfill``) so
that its numbers can be checked against it, and returns a frozen result with a ``reading``: a
plain-language paragraph of what the numbers say and what they cannot say.

All three, and PET-PEESE (:mod:`hiermodels.numerics.pet_peese`, which takes the weighted line,
the input checks and the reading's phrases from here), look at the same thing, funnel-plot
asymmetry: smaller studies (larger standard errors) reporting systematically different
effects. Asymmetry can come from publication bias, but also from genuine small-study effects
(smaller trials in other populations, with other doses), from heterogeneity, from the choice
of effect measure or from chance (Sterne et al. 2011, BMJ 343:d4002). None of these methods
proves publication bias, and with fewer than 10 studies they have little power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.numerics.heterogeneity import others_sum, scaled_se
from hiermodels.numerics.inference import RMAFit, fit_random_effects

__all__ = [
    "PREDICTORS",
    "EggerTest",
    "RankTest",
    "TrimAndFill",
    "WLSLine",
    "egger_test",
    "rank_test",
    "trim_and_fill",
]

#: Egger-test predictors (metafor's ``regtest(predictor=)``) whose intercept is the limit
#: estimate: the effect expected from a study of infinite precision.
PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")
_ASYMMETRY_ALPHA = 0.10  # funnel asymmetry tests are read at 10% (Egger et al. 1997; Sterne 2011)
_FEW_STUDIES = 10  # Sterne et al. (2011): below 10 studies the tests have too little power
_CAVEAT = (
    "Asymmetry can come from publication bias, but also from genuine small-study effects, "
    "heterogeneity or chance: this does not prove publication bias."
)


def _p(p):
    """A p-value as a reader expects it: "p = 0.003", "p < 0.001"."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _few(k):
    if k < _FEW_STUDIES:
        return (
            f" With only {k} studies the test has little power, so a non-significant result "
            "says little."
        )
    return ""


def _arrays(y, se):
    y = np.asarray(y, dtype=float).ravel()
    se = np.asarray(se, dtype=float).ravel()
    if y.size != se.size:
        raise ValueError(f"y has {y.size} values but se has {se.size}")
    bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(se) | ~(se > 0))
    if bad.size:
        raise ValueError(
            f"y/se invalid at positions {bad.tolist()}: y must be finite and se finite and > 0"
        )
    if y.size < 3:
        raise ValueError(f"{y.size} studies are too few for a test of funnel asymmetry; need 3")
    return y, se


@dataclass(frozen=True)
class WLSLine:
    """A weighted least-squares line y = intercept + slope * x (weights 1/se^2).

    Classical weighted regression with multiplicative dispersion (R's ``lm(y ~ x,
    weights = 1/se^2)``): the residual variance is estimated, tests and intervals use t(k - 2).
    """

    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    df: int
    level: float

    @property
    def _crit(self):
        return float(stats.t.ppf(0.5 + self.level / 2, self.df))

    @property
    def ci_low(self):
        """Lower ``level`` confidence limit of the intercept."""
        return self.intercept - self._crit * self.intercept_se

    @property
    def ci_high(self):
        """Upper ``level`` confidence limit of the intercept."""
        return self.intercept + self._crit * self.intercept_se

    @property
    def t(self):
        """t statistic of the intercept (H0: intercept = 0)."""
        return self.intercept / self.intercept_se

    @property
    def pvalue(self):
        """Two-sided p-value of the intercept."""
        return float(2 * stats.t.sf(abs(self.t), self.df))


def _wls(y, x, w, level=0.95):
    """Weighted least squares of y on [1, x]: coefficients, their covariance and df.

    By Householder QR of the weighted rows sorted by decreasing weight (Powell & Reid 1969;
    Cox & Higham 1999, stable for weights of any spread), never X'WX: a study with a weight
    1e150 times the others' then fixes the line through its point, the limit, where the
    normal equations overflow and an SVD drops the other direction as rank deficient.
    """
    X = np.column_stack([np.ones_like(x), x])
    order = np.argsort(-w, kind="stable")
    sw = np.sqrt(w[order])
    Xs, ys = X[order] * sw[:, None], y[order] * sw
    q, r = np.linalg.qr(Xs)
    beta = np.linalg.solve(r, q.T @ ys)
    df = y.size - 2
    resid = ys - Xs @ beta
    s2 = float(resid @ resid) / df
    r_inv = np.linalg.inv(r)
    se = np.sqrt(s2 * np.sum(r_inv**2, axis=1))  # diag of s2 (R'R)^-1 = s2 R^-1 R^-T
    return WLSLine(float(beta[0]), float(se[0]), float(beta[1]), float(se[1]), df, level)


@dataclass(frozen=True)
class EggerTest:
    """Regression test for funnel-plot asymmetry (Egger et al. 1997; metafor's ``regtest``).

    Attributes
    ----------
    model, predictor, method, test : str
        As passed to :func:`egger_test` (``method``/``test`` only matter for ``model="rma"``).
    stat, pvalue : float
        z (or t) statistic of the predictor's coefficient and its two-sided p-value.
    df : int or None
        Degrees of freedom of a t statistic (``model="lm"`` or ``test="knha"``), else None.
    intercept, slope : float
        The fitted line y = intercept + slope * predictor (for a funnel plot's Egger line with
        ``predictor="sei"``).
    limit_estimate, limit_ci_low, limit_ci_high : float
        The intercept and its ``level`` interval: the effect expected as the predictor goes to
        0, i.e. for a study of infinite precision (metafor's "limit estimate").
    k : int
    level : float
    fit : RMAFit or None
        The meta-regression (``model="rma"``).
    """

    model: str
    predictor: str
    method: str
    test: str
    stat: float
    pvalue: float
    df: int | None
    intercept: float
    slope: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    k: int
    level: float
    fit: RMAFit | None = None

    @property
    def reading(self):
        """What the test says, in one paragraph of plain language."""
        name = "t" if self.df is not None else "z"
        stat = f"{name} = {self.stat:.2f}" + (f", df = {self.df}" if self.df is not None else "")
        if self.pvalue < _ASYMMETRY_ALPHA:
            side = "larger" if self.slope > 0 else "smaller"
            what = (
                f"Evidence of funnel-plot asymmetry ({stat}, {_p(self.pvalue)}): less precise "
                f"studies tend to report {side} effects than precise ones."
            )
        else:
            what = (
                f"No clear evidence of funnel-plot asymmetry ({stat}, {_p(self.pvalue)}; "
                f"read at the {_ASYMMETRY_ALPHA:.0%} level)."
            )
        limit = (
            f" The effect expected for a study of infinite precision (the limit estimate) is "
            f"{self.limit_estimate:.3g} ({self.level:.0%} CI {self.limit_ci_low:.3g} to "
            f"{self.limit_ci_high:.3g})."
        )
        return what + limit + _few(self.k) + " " + _CAVEAT


def _predictor(se, predictor, ni):
    if predictor == "sei":
        return se
    if predictor == "vi":
        return se**2
    if ni is None:
        raise SpecError(f"predictor={predictor!r} needs the sample sizes: pass ni=")
    ni = np.asarray(ni, dtype=float).ravel()
    if ni.size != se.size or not (np.isfinite(ni) & (ni > 0)).all():
        raise ValueError(f"ni must hold {se.size} finite positive sample sizes")
    return 1 / ni if predictor == "ninv" else 1 / np.sqrt(ni)


def egger_test(
    y, se, *, model="rma", predictor="sei", ni=None, method="REML", test="z", level=0.95
):
    """Egger's regression test for funnel-plot asymmetry, as metafor's ``regtest``.

    ``model="rma"`` (metafor's default): the random-effects meta-regression
    y_i ~ Normal(b0 + b1 x_i, se_i^2 + tau^2) with the predictor x as moderator, tau^2 by
    ``method``, Wald z (or Knapp-Hartung t with ``test="knha"``) for b1.
    ``model="lm"``: the classical test of Egger et al. (1997, BMJ 315:629), a weighted
    regression y_i = b0 + b1 x_i + e_i with weights 1/se_i^2 and a multiplicative dispersion
    estimated from the residuals, t(k - 2) for b1. (Egger's original regression of y/se on
    1/se is the same fit with the roles of intercept and slope swapped.)

    Parameters
    ----------
    y, se : array_like, shape (k,)
        Estimates and their standard errors.
    model : {"rma", "lm"}
    predictor : {"sei", "vi", "ninv", "sqrtninv"}
        The standard error, the sampling variance, 1/n or 1/sqrt(n) (Peters et al. 2006 use
        1/n; these need ``ni``, the total sample size of each study).
    ni : array_like, optional
    method, test : str
        tau^2 estimator and "z"/"knha" of the meta-regression (``model="rma"`` only).
    level : float
        Confidence level of the limit estimate's interval.

    Returns
    -------
    EggerTest

    Examples
    --------
    >>> res = egger_test([0.1, 0.3, 0.5, 0.9, 1.2], [0.1, 0.2, 0.3, 0.4, 0.5], model="lm")
    >>> res.slope > 0, res.df
    (True, 3)
    """
    if model not in ("rma", "lm"):
        raise SpecError(f"model must be 'rma' or 'lm', got {model!r}")
    if predictor not in PREDICTORS:
        raise SpecError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
    y, se = _arrays(y, se)
    # computed in the units of the fits (scaled_se) so that se^2 neither under- nor
    # overflows; the intercept is in units of y, the slope in units of y / predictor
    su, unit = scaled_se(se)
    x = _predictor(su, predictor, ni)
    slope_unit = {"sei": 1.0, "vi": 1 / unit}.get(predictor, unit)
    if model == "lm":
        line = _wls(y / unit, x, 1 / su**2, level)
        line = WLSLine(
            line.intercept * unit,
            line.intercept_se * unit,
            line.slope * slope_unit,
            line.slope_se * slope_unit,
            line.df,
            line.level,
        )
        stat = line.slope / line.slope_se
        return EggerTest(
            model=model,
            predictor=predictor,
            method="FE",
            test="t",
            stat=float(stat),
            pvalue=float(2 * stats.t.sf(abs(stat), line.df)),
            df=line.df,
            intercept=line.intercept,
            slope=line.slope,
            limit_estimate=line.intercept,
            limit_ci_low=line.ci_low,
            limit_ci_high=line.ci_high,
            k=y.size,
            level=level,
        )
    X = np.column_stack([np.ones_like(x), x])
    # the fit is in the units of y, with the predictor column in units of the se
    fit = fit_random_effects(y, se, X, method=method, test=test, level=level)
    return EggerTest(
        model=model,
        predictor=predictor,
        method=method,
        test=test,
        stat=float(fit.stat[1]),
        pvalue=float(fit.pval[1]),
        df=fit.ddf,
        intercept=float(fit.beta[0]),
        slope=float(fit.beta[1]) / unit * slope_unit,
        limit_estimate=float(fit.beta[0]),
        limit_ci_low=float(fit.ci_low[0]),
        limit_ci_high=float(fit.ci_high[0]),
        k=y.size,
        level=level,
        fit=fit,
    )


@dataclass(frozen=True)
class RankTest:
    """Begg & Mazumdar's (1994) rank correlation test (metafor's ``ranktest``).

    ``tau`` is Kendall's tau-b between the standardized deviates and the variances;
    ``exact`` says whether the p-value is the exact permutation one (no ties) or the normal
    approximation with the tie-corrected variance (as R's ``cor.test``).
    """

    tau: float
    pvalue: float
    exact: bool
    k: int

    @property
    def reading(self):
        """What the test says, in one paragraph of plain language."""
        if self.pvalue < _ASYMMETRY_ALPHA:
            side = "larger" if self.tau > 0 else "smaller"
            what = (
                f"Evidence of funnel-plot asymmetry (Kendall's tau = {self.tau:.2f}, "
                f"{_p(self.pvalue)}): less precise studies tend to report {side} effects."
            )
        else:
            what = (
                f"No clear evidence of funnel-plot asymmetry (Kendall's tau = {self.tau:.2f}, "
                f"{_p(self.pvalue)}; read at the {_ASYMMETRY_ALPHA:.0%} level). The rank test "
                "has less power than Egger's test."
            )
        return what + _few(self.k) + " " + _CAVEAT


def rank_test(y, se):
    """Begg & Mazumdar (1994, Biometrics 50:1088) rank correlation test, as metafor's ``ranktest``.

    The deviates from the equal-effects estimate b = sum(w y) / sum(w), w = 1/se^2, are
    standardized by their variances v_i - 1/sum(w): y*_i = (y_i - b) / sqrt(v_i - 1/sum w),
    and Kendall's tau between y* and v_i is tested: exactly (the permutation distribution)
    without ties, by the normal approximation with tie-corrected variance otherwise, as R's
    ``cor.test(method="kendall", exact=TRUE)`` does for metafor.

    Examples
    --------
    >>> res = rank_test([0.1, 0.3, 0.5, 0.9, 1.2], [0.1, 0.2, 0.3, 0.4, 0.5])
    >>> round(res.tau, 6), res.exact
    (1.0, True)
    """
    y, se = _arrays(y, se)
    se, unit = scaled_se(se)  # Kendall's tau and its test do not change with the units
    y = y / unit
    v = se**2
    w = 1 / v
    # y_i - b = sum_{j != i} w_j (y_i - y_j) / S and v_i - 1/S = v_i A_i / S with S = sum w
    # and A_i = S - w_i: written with leave-one-out sums they never cancel, so a study whose
    # weight dwarfs the others' keeps its (finite) limit sum_j w_j (y_i - y_j) / sqrt(A_i S)
    total, loo = float(np.sum(w)), others_sum(w)
    ystar = (y * loo - others_sum(w * y)) / np.sqrt(v * loo * total)
    ties = np.unique(ystar).size < y.size or np.unique(v).size < y.size
    method = "asymptotic" if ties else "exact"
    res = stats.kendalltau(ystar, v, method=method)
    return RankTest(tau=float(res.statistic), pvalue=float(res.pvalue), exact=not ties, k=y.size)


@dataclass(frozen=True)
class TrimAndFill:
    """Duval & Tweedie's trim and fill (metafor's ``trimfill``).

    Attributes
    ----------
    k0 : int
        Estimated number of missing studies; ``se_k0`` its standard error.
    side : {"left", "right"}
        The side of the funnel on which studies are imputed.
    estimator, method : str
    p_k0 : float
        For R0, the probability of a rightmost run this long when no study is missing
        (0.5^(k0 + 1)); NaN for L0.
    estimate, se, ci_low, ci_high, pvalue, tau2 : float
        The pooled effect of the observed plus filled studies (``fit``).
    filled_y, filled_se : ndarray, shape (k0,)
        The imputed studies: mirror images of the k0 most extreme ones about the trimmed
        estimate, with their standard errors.
    fit : RMAFit
    k : int
        Number of observed studies.
    """

    k0: int
    side: str
    se_k0: float
    estimator: str
    method: str
    p_k0: float
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    tau2: float
    filled_y: np.ndarray
    filled_se: np.ndarray
    fit: RMAFit
    k: int

    @property
    def reading(self):
        """What trim and fill says, in one paragraph of plain language."""
        lvl = f"{self.fit.level:.0%} CI"
        adjusted = (
            f"{self.estimate:.3g} ({lvl} {self.ci_low:.3g} to {self.ci_high:.3g}, "
            f"{_p(self.pvalue)})"
        )
        if self.k0 == 0:
            what = (
                f"Trim and fill ({self.estimator}) imputes no missing studies: the funnel plot "
                f"looks symmetric to this method, and the estimate stays {adjusted}."
            )
        else:
            what = (
                f"Trim and fill ({self.estimator}) estimates {self.k0} missing "
                f"{'study' if self.k0 == 1 else 'studies'} (SE {self.se_k0:.2f}) on the "
                f"{self.side} side of the funnel; with {'it' if self.k0 == 1 else 'them'} "
                f"filled in the pooled estimate becomes {adjusted}. This is a sensitivity "
                "analysis, not a corrected estimate: the method assumes the asymmetry is "
                "caused by suppressed studies and performs poorly under heterogeneity "
                "(Terrin et al. 2003)."
            )
        return what + " " + _CAVEAT


def _l0(signed, k):
    """L0 (Duval & Tweedie 2000, Biometrics 56:455) and its standard error (metafor)."""
    sr = float(np.sum(signed[signed > 0]))
    k0 = (4 * sr - k * (k + 1)) / (2 * k - 1)
    var_sr = (
        k * (k + 1) * (2 * k + 1)
        + 10 * k0**3
        + 27 * k0**2
        + 17 * k0
        - 18 * k * k0**2
        - 18 * k * k0
        + 6 * k**2 * k0
    ) / 24
    return k0, 4 * math.sqrt(max(var_sr, 0.0)) / (2 * k - 1)


def _r0(signed, k):
    """R0: the length of the rightmost run of positive ranks, minus 1 (Duval & Tweedie 2000)."""
    negative = -signed[signed < 0]
    k0 = k - (float(negative.max()) if negative.size else 0.0) - 1
    return k0, math.sqrt(2 * max(0.0, k0) + 2)


#: k0 estimators by name: (signed ranks, k) -> (k0 before rounding, its standard error)
_K0 = {"L0": _l0, "R0": _r0}


def trim_and_fill(y, se, *, estimator="L0", side=None, method="REML", test="z", level=0.95):
    """Trim and fill (Duval & Tweedie 2000), as metafor's ``trimfill(rma(y, se^2, method))``.

    1. Side: if None, the one the funnel is missing studies on, by metafor's rule: regress y
       on se (meta-regression with ``method``); a negative slope means studies are missing on
       the right, otherwise on the left.
    2. Iterate (on y flipped so that the missing side is the left): pool the k - k0 least
       extreme studies with ``method``, rank |y_i - b| over all studies, and estimate k0 from
       the signed ranks by ``estimator`` (L0 or R0), rounded, until k0 stops changing.
    3. Fill: mirror the k0 most extreme studies about the last trimmed estimate b
       (y -> 2b - y, same se) and pool the observed and filled studies with ``method``.

    Parameters
    ----------
    y, se : array_like, shape (k,)
    estimator : {"L0", "R0"}
    side : {"left", "right"}, optional
        The side of the funnel on which studies are missing (and imputed).
    method, test, level
        As :func:`~hiermodels.numerics.inference.fit_random_effects`; metafor's default
        ``rma`` is REML. Duval & Tweedie's original is ``method="EE"`` (equal effects).

    Returns
    -------
    TrimAndFill

    Examples
    --------
    >>> res = trim_and_fill([0.1, 0.3, 0.5, 0.9, 1.2], [0.1, 0.2, 0.3, 0.4, 0.5], method="EE")
    >>> res.side, res.k0 >= 0
    ('left', True)
    """
    if estimator not in _K0:
        raise SpecError(f"estimator must be one of {sorted(_K0)}, got {estimator!r}")
    if side not in (None, "left", "right"):
        raise SpecError(f"side must be 'left', 'right' or None, got {side!r}")
    y, se = _arrays(y, se)
    k = y.size
    if side is None:
        # the sign of the slope on se / unit is that on se: the same side in any units
        su = scaled_se(se)[0]
        reg = fit_random_effects(y, se, np.column_stack([np.ones(k), su]), method=method)
        side = "right" if reg.beta[1] < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y, kind="stable")
    ys, ses = sign * y[order], se[order]
    k0, previous, beta, se_k0 = 0, -1, math.nan, math.nan
    for _ in range(100):
        if k0 == previous:
            break
        previous = k0
        beta = float(fit_random_effects(ys[: k - k0], ses[: k - k0], method=method).beta[0])
        centred = ys - beta
        ranks = stats.rankdata(np.abs(centred), method="ordinal")  # R's ties.method="first"
        k0_raw, se_k0 = _K0[estimator](np.sign(centred) * ranks, k)
        k0, se_k0 = max(0, round(k0_raw)), max(0.0, se_k0)
    else:  # pragma: no cover - metafor stops the same way
        raise RuntimeError("trim and fill did not converge in 100 iterations")
    # filled studies: the k0 most extreme mirrored about beta, back on the original scale
    filled_y = sign * (2 * beta - ys[k - k0 :])
    filled_se = ses[k - k0 :]
    fit = fit_random_effects(
        np.concatenate([y, filled_y]),
        np.concatenate([se, filled_se]),
        method=method,
        test=test,
        level=level,
    )
    return TrimAndFill(
        k0=int(k0),
        side=side,
        se_k0=float(se_k0),
        estimator=estimator,
        method=method,
        p_k0=0.5 ** (k0 + 1) if estimator == "R0" else math.nan,
        estimate=float(fit.beta[0]),
        se=float(fit.se[0]),
        ci_low=float(fit.ci_low[0]),
        ci_high=float(fit.ci_high[0]),
        pvalue=float(fit.pval[0]),
        tau2=fit.tau2,
        filled_y=filled_y,
        filled_se=filled_se,
        fit=fit,
        k=k,
    )
