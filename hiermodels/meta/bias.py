"""Small-study effects and publication bias on a fitted meta-analysis: Egger's test, the rank
test, trim and fill and PET-PEESE, with a plain-language ``reading`` each.

The numbers come from :mod:`hiermodels.numerics.bias` (metafor 3.8's ``regtest``,
``ranktest``, ``trimfill``, tested against it) and :mod:`hiermodels.numerics.pet_peese`;
this module feeds them the studies of a :class:`~hiermodels.meta.result.MetaAnalysisResult`
and says which tests a meta-regression admits. Like metafor, all four are frequentist and do
not depend on the engine of the fit.

With moderators (a meta-regression):

- Egger's test is defined: the predictor (the standard error, ...) is added to the moderators
  and its coefficient tested (metafor's ``regtest`` on an ``rma`` with ``mods``); there is no
  limit estimate, since the intercept is then the effect at moderators 0.
- the rank test, trim and fill and PET-PEESE look at the funnel of the raw estimates and
  cannot allow for moderators: :class:`~hiermodels.errors.SpecError` (metafor's ``trimfill``
  refuses too; its ``ranktest`` silently ignores the moderators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.meta.inference import check_method, check_prob, check_test
from hiermodels.numerics import bias
from hiermodels.numerics.inference import fit_random_effects
from hiermodels.numerics.linear import flat_prior_regression
from hiermodels.numerics.pet_peese import PetPeese
from hiermodels.numerics.pet_peese import pet_peese as fit_pet_peese

__all__ = ["EggerResult", "TrimAndFillResult", "egger_test", "pet_peese", "rank_test"]


@dataclass(frozen=True)
class EggerResult:
    """Egger's regression test on a meta-analysis (from
    :meth:`~hiermodels.meta.result.MetaAnalysisResult.egger_test`).

    Attributes
    ----------
    stat, pvalue : float
        z (or t with ``df``) of the predictor's coefficient and its two-sided p-value.
    df : int or None
        Degrees of freedom of a t statistic (``model="lm"`` or ``test="knha"``).
    slope : float
        The predictor's coefficient (negative: less precise studies report smaller effects).
    limit_estimate, limit_ci_low, limit_ci_high : float
        The effect expected for a study of infinite precision (the intercept) and its
        interval; NaN for a meta-regression.
    model, predictor, method, test : str
    moderators : tuple of str
        The moderators the test allowed for (empty for a plain meta-analysis).
    k : int
    level : float
    reading : str
        What the numbers say, in plain language.
    """

    stat: float
    pvalue: float
    df: int | None
    slope: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    model: str
    predictor: str
    method: str
    test: str
    moderators: tuple[str, ...]
    k: int
    level: float
    reading: str

    def to_series(self) -> pd.Series:
        """The numbers as a Series (``stat``, ``pvalue``, ``df``, ``slope``, ``limit_*``)."""
        keys = ("stat", "pvalue", "df", "slope", "limit_estimate", "limit_ci_low", "limit_ci_high")
        df = math.nan if self.df is None else self.df
        return pd.Series(
            {key: (df if key == "df" else getattr(self, key)) for key in keys}, name="egger"
        )


@dataclass(frozen=True, eq=False)
class TrimAndFillResult:
    """Trim and fill on a meta-analysis (from
    :meth:`~hiermodels.meta.result.MetaAnalysisResult.trim_and_fill`).

    Attributes
    ----------
    k0, side, se_k0, p_k0
        Estimated number of missing studies, the side of the funnel they are imputed on,
        the standard error of k0 and (R0 only) the probability of so long a run.
    mu, se, ci_low, ci_high, pvalue, tau2 : float
        The pooled effect of the observed and filled studies (``method``).
    filled : pandas.DataFrame
        The imputed studies, one row each: ``study`` ("filled 1", ...), ``estimate``, ``se``.
    estimator, method : str
    k : int
        Number of observed studies.
    reading : str
    """

    k0: int
    side: str
    se_k0: float
    p_k0: float
    mu: float
    se: float
    ci_low: float
    ci_high: float
    pvalue: float
    tau2: float
    filled: pd.DataFrame
    estimator: str
    method: str
    k: int
    reading: str

    def to_series(self) -> pd.Series:
        keys = ("k0", "side", "se_k0", "p_k0", "mu", "se", "ci_low", "ci_high", "pvalue", "tau2")
        return pd.Series({key: getattr(self, key) for key in keys}, name="trim_and_fill")


def _sample_sizes(result, ni):
    """``ni`` as an array: a column of the study table or one number per study."""
    if ni is None or not isinstance(ni, str):
        return ni
    frame = result.frame
    if frame is None or ni not in frame.columns:
        available = [] if frame is None else list(map(str, frame.columns))
        raise SpecError(f"ni={ni!r} is not a column of the data; available: {available}")
    return frame[ni].to_numpy(dtype=float)


def _no_moderators(result, what: str, why: str):
    if result.data.has_moderators:
        raise SpecError(
            f"{what} is not defined for a meta-regression (moderators "
            f"{list(result.data.terms[1:])}): {why}. Use egger_test(), which adds the "
            "predictor to the moderators, or refit without moderators."
        )


def egger_test(
    result, *, model="rma", predictor="sei", ni=None, method="REML", test="z", prob=0.95
) -> EggerResult:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.egger_test`."""
    check_method(method, bayes=False)
    check_test(test)
    prob = check_prob(prob)
    d = result.data
    ni = _sample_sizes(result, ni)
    if not d.has_moderators:
        res = bias.egger_test(
            d.y,
            d.se,
            model=model,
            predictor=predictor,
            ni=ni,
            method=method,
            test=test,
            level=prob,
        )
        return EggerResult(
            stat=res.stat,
            pvalue=res.pvalue,
            df=res.df,
            slope=res.slope,
            limit_estimate=res.limit_estimate,
            limit_ci_low=res.limit_ci_low,
            limit_ci_high=res.limit_ci_high,
            model=res.model,
            predictor=predictor,
            method=res.method,
            test=res.test,
            moderators=(),
            k=d.k,
            level=prob,
            reading=res.reading,
        )
    return _egger_with_moderators(result, model, predictor, ni, method, test, prob)


def _egger_with_moderators(result, model, predictor, ni, method, test, prob):
    """metafor's ``regtest`` on ``rma(yi, vi, mods)``: the predictor joins the moderators."""
    if model not in ("rma", "lm"):
        raise SpecError(f"model must be 'rma' or 'lm', got {model!r}")
    if predictor not in bias.PREDICTORS:
        raise SpecError(f"predictor must be one of {bias.PREDICTORS}, got {predictor!r}")
    d = result.data
    x = bias._predictor(d.se, predictor, ni)
    X = np.column_stack([d.X, x])
    if model == "rma":
        fit = fit_random_effects(d.y, d.se, X, method=method, test=test, level=prob)
        stat, pvalue, df, slope = fit.stat[-1], fit.pval[-1], fit.ddf, fit.beta[-1]
    else:
        # lm(yi ~ X + predictor, weights = 1/vi): weighted least squares with a dispersion
        # estimated from the residuals, t(k - p - 1) (Egger et al. 1997)
        root_w = 1 / d.se  # square roots of the weights 1/se^2
        reg = flat_prior_regression(d.y * root_w, X * root_w[:, None])
        se_slope = math.sqrt(reg.s2 * reg.cov_unscaled()[-1, -1])
        slope, df, method, test = float(reg.coef[-1]), reg.dof, "FE", "t"
        stat = slope / se_slope
        pvalue = float(2 * stats.t.sf(abs(stat), df))
    name = "t" if df is not None else "z"
    evidence = "Evidence" if pvalue < bias._ASYMMETRY_ALPHA else "No clear evidence"
    reading = (
        f"{evidence} of funnel-plot asymmetry given the moderators "
        f"{list(d.terms[1:])} ({name} = {stat:.2f}{f', df = {df}' if df is not None else ''}, "
        f"{bias._p(pvalue)}; read at the {bias._ASYMMETRY_ALPHA:.0%} level). With moderators "
        "there is no limit estimate: the intercept is the effect at moderators 0."
        f"{bias._few(d.k)} {bias._CAVEAT}"
    )
    return EggerResult(
        stat=float(stat),
        pvalue=float(pvalue),
        df=df,
        slope=float(slope),
        limit_estimate=math.nan,
        limit_ci_low=math.nan,
        limit_ci_high=math.nan,
        model=model,
        predictor=predictor,
        method=method,
        test=test,
        moderators=tuple(d.terms[1:]),
        k=d.k,
        level=prob,
        reading=reading,
    )


def rank_test(result) -> bias.RankTest:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.rank_test`."""
    _no_moderators(
        result,
        "the rank test",
        "it ranks the raw estimates and cannot allow for moderators (metafor's ranktest "
        "silently ignores them)",
    )
    return bias.rank_test(result.data.y, result.data.se)


def trim_and_fill(result, *, estimator="L0", side=None, method="REML", test="z", prob=0.95):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.trim_and_fill`."""
    _no_moderators(
        result,
        "trim and fill",
        "it mirrors studies about a single pooled effect, which a meta-regression does not "
        "have (metafor's trimfill refuses too)",
    )
    check_method(method, bayes=False)
    check_test(test)
    prob = check_prob(prob)
    d = result.data
    res = bias.trim_and_fill(
        d.y, d.se, estimator=estimator, side=side, method=method, test=test, level=prob
    )
    filled = pd.DataFrame(
        {
            "study": [f"filled {i + 1}" for i in range(res.k0)],
            "estimate": res.filled_y,
            "se": res.filled_se,
        }
    )
    return TrimAndFillResult(
        k0=res.k0,
        side=res.side,
        se_k0=res.se_k0,
        p_k0=res.p_k0,
        mu=res.estimate,
        se=res.se,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        pvalue=res.pvalue,
        tau2=res.tau2,
        filled=filled,
        estimator=res.estimator,
        method=res.method,
        k=res.k,
        reading=res.reading,
    )


def pet_peese(result, *, direction=None, alpha=0.05, prob=0.95) -> PetPeese:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.pet_peese`."""
    _no_moderators(
        result,
        "PET-PEESE",
        "its intercept is the effect of a study of infinite precision with no other covariates",
    )
    prob = check_prob(prob)
    d = result.data
    return fit_pet_peese(d.y, d.se, direction=direction, alpha=alpha, level=prob)
