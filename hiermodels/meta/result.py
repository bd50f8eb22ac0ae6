"""Results of a meta-analysis: the fitted model's public methods, one per table or figure.

The methods carry the documentation and little else: the numbers come from
:mod:`hiermodels.meta.tables` (posterior tables), :mod:`~hiermodels.meta.inference`,
:mod:`~hiermodels.meta.sensitivity`, :mod:`~hiermodels.meta.subgroups` (classical tables),
:mod:`~hiermodels.meta.bias`, :mod:`~hiermodels.meta.bayes` and :mod:`~hiermodels.meta.figures`.
No PyMC, ArviZ or matplotlib at import: the modules for draws and drawing load when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import hiermodels.meta.bayes as bayes
import hiermodels.meta.bias as bias
import hiermodels.meta.figures as figures
import hiermodels.meta.inference as inference
import hiermodels.meta.sensitivity as sensitivity
import hiermodels.meta.subgroups as subgroups
import hiermodels.meta.tables as tables
from hiermodels.meta.data import StudyData, coefficient_names
from hiermodels.meta.engines import EngineFit, EngineResult
from hiermodels.meta.spec import MetaSpec
from hiermodels.priors import Prior

if TYPE_CHECKING:
    pass

__all__ = ["MetaAnalysisResult"]


@dataclass(frozen=True, eq=False)
class MetaAnalysisResult(EngineResult):
    """A fitted random-effects meta-analysis (from :func:`hiermodels.meta_analysis`).

    Attributes
    ----------
    data : StudyData
        The validated study data.
    spec : MetaSpec
        What was asked for (columns, priors, method, sampling options).
    tau_prior : Prior
        The prior on tau, resolved from ``spec.hyperprior`` and the standard errors.
    fit : EngineFit
        What the engine returned: draws, and the exact posterior or the PyMC model.
    idata : xarray.DataTree
        Draws of the coefficients (``mu`` or ``Intercept`` and moderators), ``tau``,
        ``theta`` (dims: the study column) and ``theta_new``, for either method.
    exact : ExactPosterior or None
        The exact posterior (``method="exact"``); the summaries are then exact.
    model : pymc.Model or None
        The PyMC model (``method="mcmc"``).
    frame : pandas.DataFrame or None
        A copy of the study table, for the analyses that read other columns (subgroups,
        cumulative order, categorical moderators in :meth:`predict`).
    """

    data: StudyData
    spec: MetaSpec
    tau_prior: Prior
    fit: EngineFit
    frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def coefficient_names(self) -> list[str]:
        return coefficient_names(self.data)

    def draws(self, name: str) -> np.ndarray:
        """The (chain, draw) array of the posterior draws of ``name`` (``mu``, ``tau``, ...)."""
        return np.asarray(self.idata["posterior"][name])

    # -- summaries ------------------------------------------------------------------------
    def summary(
        self, prob: float = 0.95, *, transform=None, interval: str = "equal_tailed"
    ) -> pd.DataFrame:
        """Posterior of the coefficients (``mu``), ``tau`` and ``theta_new`` (a new study).

        Columns mean, sd, median, ci_low, ci_high (equal-tailed ``prob`` interval). With an
        exact posterior (``method="exact"``) the numbers are exact (numerical integration,
        not draws); otherwise they come from the draws, with ess_bulk, ess_tail and r_hat.

        ``interval="hdi"``: ci_low, ci_high are the shortest ``prob`` intervals (highest
        posterior density, as bayesmeta quotes them; for tau they start at 0 when its mode is
        there) and a ``mode`` column follows the median; exact from the exact posterior's
        densities, or the shortest interval of the draws (mode NaN) otherwise. See
        :func:`hiermodels.meta.bayes.hdi_summary`. With ``transform`` the limits still hold
        ``prob`` but are shortest on the analysis scale only.

        ``transform`` (metafor's ``transf=``: "exp" for log ratios, "tanh" for Fisher's z,
        "expit" for logits, or an increasing function) back-transforms the location rows
        (coefficients and ``theta_new``; ``tau`` is a scale and is left out): their median
        and interval limits are transformed, which is exact for posterior quantiles; the
        mean and sd are dropped, as the mean of exp(mu) is not exp of the mean.

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
        >>> rr = meta.summary(transform="exp")  # risk ratios
        >>> bool(rr.loc["mu", "ci_high"] < 1)
        True
        """
        return tables.summary(self, prob, transform=transform, interval=interval)

    def heterogeneity(
        self,
        methods: str | Sequence[str] = ("bayes", "REML", "DL"),
        *,
        test: str = "z",
        prob: float = 0.95,
        transform=None,
    ) -> pd.DataFrame:
        """Pooled effect and heterogeneity by several methods, one row each.

        ``methods``: ``"bayes"`` (this fit's posterior) and any of metafor's tau^2 estimators
        "EE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML" (rows in the order given).
        The classical rows are metafor's ``rma(yi, vi, method=, test=, level=)``: ``mu``,
        ``mu_se``, ``ci_low``, ``ci_high`` (z, or Knapp-Hartung t under ``test="knha"``),
        ``tau2``, ``tau``, ``tau2_se``, ``I2`` (percent), ``H2``, ``Q``, ``Q_df``,
        ``Q_pvalue`` (Cochran's test, the same in every row) and the prediction interval
        ``pi_low``, ``pi_high`` for a new study; ``tau2_ci_low``, ``tau2_ci_high`` are the
        Q-profile interval (Viechtbauer 2007; metafor's ``confint``), ``I2_ci_*`` and
        ``H2_ci_*`` follow from it (NaN for "EE").

        The ``bayes`` row: posterior mean (``mu``), sd (``mu_se``) and equal-tailed ``prob``
        interval of mu; ``tau2`` = E[tau^2 | y] and ``I2``, ``H2`` at it (so that
        I2 = 100 tau2 / (tau2 + s^2) in every row, s^2 metafor's typical within-study
        variance); ``tau2_ci_*``, ``I2_ci_*``, ``H2_ci_*`` the equal-tailed posterior
        intervals of tau^2, I^2 and H^2 computed per draw (exact quantiles with the exact
        engine); ``pi_*`` the interval of theta_new.

        With moderators, ``mu`` is the intercept, Q the test of residual heterogeneity (QE),
        each moderator's coefficient and standard error follow as ``{name}`` and ``{name}_se``
        (see :meth:`coefficients` for the full table), ``R2`` is the percent of tau^2 the
        moderators account for, ``max(0, 1 - tau2 / tau2_without_moderators)`` by the same
        method (metafor's R^2; NaN for ``bayes`` and "EE"), and the classical prediction
        interval is NaN (see :meth:`predict`).

        ``transform`` back-transforms ``mu`` and the ci/pi limits (metafor's ``transf=``) and
        drops ``mu_se``; the ``bayes`` row's ``mu`` is then the transformed posterior median.

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
        >>> table = meta.heterogeneity(["REML", "DL", "PM"])
        >>> round(float(table.loc["DL", "tau2"]), 4)  # metafor: rma(yi, vi, method="DL")
        0.3088
        """
        return inference.heterogeneity_table(self, methods, test, prob, transform)

    def study_effects(self, prob: float = 0.95, *, transform=None) -> pd.DataFrame:
        """Per study: observed estimate and se, shrunken effect theta, and how far it moved.

        Columns ``study``, ``estimate``, ``se``, ``mean``, ``sd``, ``ci_low``, ``ci_high``
        (posterior of theta_i), ``pooling_factor`` (E[se^2/(se^2 + tau^2) | y], BDA3 eq. 5.17),
        ``shrinkage_ratio`` (the fraction of the gap between the estimate and the population
        mean that was closed, where the gap is at least one se; see
        :func:`hiermodels.numerics.pooling.shrinkage_ratio`) and ``weight`` (percent weight of the
        study in the REML pooled estimate, as metafor reports it).

        ``transform`` back-transforms ``estimate``, the posterior ``median`` (added) and the
        interval limits, and drops ``se``, ``mean`` and ``sd`` (see :meth:`summary`).
        """
        return tables.study_effects(self, prob, transform=transform)

    # -- meta-regression --------------------------------------------------------------------
    def coefficients(
        self, method: str = "REML", *, test: str = "z", prob: float = 0.95
    ) -> pd.DataFrame:
        """The coefficient table (``mu``, or ``Intercept`` and each moderator), one row each.

        A classical ``method`` (a tau^2 estimator: "REML", "DL", ...) gives metafor's
        ``rma(yi, vi, mods, method=, test=)`` table: ``estimate``, ``se``, ``stat`` (z, or t
        with k - p df under ``test="knha"``), ``pvalue``, ``ci_low``, ``ci_high``.
        ``method="bayes"`` gives the posterior: ``estimate`` (mean), ``se`` (sd), the
        equal-tailed ``prob`` interval and the posterior probabilities of the sign,
        ``prob_positive`` = P(beta > 0 | y) and ``prob_negative`` (exact with the exact engine).

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", moderators="ablat")
        >>> round(float(meta.coefficients().loc["ablat", "estimate"]), 4)  # metafor
        -0.0291
        """
        return inference.coefficient_table(self, method, test, prob)

    def moderator_test(self, method: str = "REML", *, test: str = "z") -> pd.Series:
        """Omnibus test that all moderator coefficients are 0 (metafor's QM) and the test of
        residual heterogeneity (QE).

        ``QM``, ``df``, ``pvalue`` (chi^2 test); under ``test="knha"`` QM is metafor's F
        statistic with ``df1``, ``df2`` (= m, k - p). Then ``QE``, ``QE_df``, ``QE_pvalue``.
        :class:`~hiermodels.errors.SpecError` without moderators.
        """
        return inference.moderator_test(self, method, test)

    def predict(
        self,
        new_moderators: pd.DataFrame | None = None,
        *,
        method: str = "REML",
        test: str = "z",
        prob: float = 0.95,
        transform=None,
    ) -> pd.DataFrame:
        """The average effect, and the effect in a new study, at given moderator values.

        ``new_moderators`` is a DataFrame (or dict) with one column per moderator (categories
        as in the data); None gives the pooled effect (no moderators) or each study's fitted
        value. A classical ``method`` gives metafor's ``predict(res, newmods=)``: ``mean``,
        ``se``, the confidence interval ``ci_low``, ``ci_high`` of the average effect and the
        prediction interval ``pi_low``, ``pi_high`` (z or t, sqrt(se^2 + tau^2)).
        ``method="bayes"``: posterior ``mean``, ``sd``, ``median`` and interval of x' beta,
        and the predictive interval of theta_new ~ Normal(x' beta, tau) in ``pi_*`` (exact
        mixtures with the exact engine, draws otherwise). ``transform`` back-transforms the
        location and the limits and drops the scale columns (see :meth:`summary`).

        Examples
        --------
        >>> import pandas as pd, hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", moderators="ablat")
        >>> pred = meta.predict(pd.DataFrame({"ablat": [10, 50]}))
        >>> [round(float(x), 4) for x in pred["mean"]]  # metafor: predict(res, newmods=c(10, 50))
        [-0.0395, -1.2036]
        """
        return inference.prediction_table(self, new_moderators, method, test, prob, transform)

    # -- posterior probabilities --------------------------------------------------------------
    def probability(self, statement: str) -> float:
        """Posterior probability of ``"<name> <op> <number>"``, e.g. ``meta.probability("mu < 0")``.

        ``name`` is ``mu`` (the intercept of a meta-regression), ``theta_new`` (the effect in a
        new study), ``tau`` or a coefficient name; ``op`` one of ``<``, ``<=``, ``>``, ``>=``.
        Exact with the exact engine (mixture CDFs over the tau grid), the fraction of draws
        otherwise.

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi")
        >>> meta.probability("mu < 0") > 0.99
        True
        """
        return inference.probability(self, statement)

    def prob_above(self, x: float, *, of: str = "mu") -> float:
        """Posterior probability that ``of`` (mu, theta_new, tau or a coefficient) exceeds ``x``."""
        return inference.prob_above(self, x, of)

    # -- subgroups ------------------------------------------------------------------------
    def subgroup_analysis(
        self,
        column: str | None = None,
        *,
        common_tau: bool = False,
        method: str = "REML",
        test: str = "z",
        prob: float = 0.95,
    ) -> subgroups.SubgroupAnalysis:
        """Split the studies by the levels of ``column`` (default the ``subgroup=`` column of
        :func:`~hiermodels.meta_analysis`).

        Returns a :class:`~hiermodels.meta.subgroups.SubgroupAnalysis`: ``.estimates()`` per
        level (k, mu, mu_se, CI, tau2, Q, I2, and with the exact engine a Bayesian summary from
        a separate exact fit per level) and ``.test()`` (the between-subgroup Q of the
        per-level estimates, and metafor's QM for ``mods = ~ factor(column)``). Moderators of
        this fit are not used: each subgroup is intercept-only.

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
        >>> sub = meta.subgroup_analysis("alloc")
        >>> list(sub.estimates().index)
        ['alternate', 'random', 'systematic']
        >>> round(float(sub.test().loc["QM", "Q"]), 4)  # metafor, mods = ~ factor(alloc)
        1.7675
        """
        return subgroups.subgroup_analysis(
            self, column, common_tau=common_tau, method=method, test=test, prob=prob
        )

    # -- sensitivity ----------------------------------------------------------------------
    def leave_one_out(self, prob: float = 0.95) -> pd.DataFrame:
        """The pooled effect and tau with each study left out in turn (exact engine).

        The subsets are refitted with the exact engine under the same priors whatever the
        method of this fit (k MCMC refits would take minutes), so the mu prior must be one
        it takes (flat or normal); otherwise :class:`~hiermodels.errors.SpecError`.

        One row per left-out study: the exact posterior mean, sd and ``prob`` interval of mu
        (the intercept with moderators), the posterior mean and median of tau, and REML's mu
        and tau2 and I2 for comparison (metafor's ``leave1out``). With moderators, each
        moderator's coefficient follows: posterior mean ``{name}``, sd ``{name}_sd`` and
        REML's ``{name}_reml``. The REML columns are NaN where the studies left cannot
        estimate the coefficients and tau^2 (k - 1 <= p, e.g. one study left of two); the
        Bayesian ones stay defined there, since the prior on tau is proper.
        """
        return tables.leave_one_out(self, prob)

    def influence(self, method: str = "REML", *, test: str = "z") -> pd.DataFrame:
        """Case-deletion diagnostics per study, as metafor's ``influence(rma(...))``.

        ``study``, ``rstudent`` (externally standardized residual), ``dffits``, ``cook_d``,
        ``cov_r``, ``tau2_del`` and ``QE_del`` (without the study), ``hat``, ``weight``
        (percent), ``dfbetas_{coefficient}`` and ``is_influential`` (metafor's flag). Each
        study is left out and the model (moderators included) refitted with ``method``.
        """
        return sensitivity.influence_table(self, method, test)

    def cumulative(
        self, order=None, *, method: str = "REML", test: str = "z", prob: float = 0.95
    ) -> pd.DataFrame:
        """Cumulative meta-analysis (metafor's ``cumul``): studies added one at a time.

        ``order`` names a column of the data (e.g. ``"year"``) or gives one sort key per
        study; ties keep the data's order. Per step: ``study`` (the one added), the order
        column, ``k``, ``mu``, ``mu_se``, ``pvalue``, ``ci_low``, ``ci_high``, ``Q``,
        ``Q_pvalue``, ``tau2``, ``I2``, ``H2`` of the intercept-only model on the studies so
        far (moderators are not used).
        """
        return sensitivity.cumulative_table(self, order, method, test, prob)

    # -- small-study effects (hiermodels.meta.bias) ------------------------------------------
    def egger_test(
        self,
        *,
        model: str = "rma",
        predictor: str = "sei",
        ni=None,
        method: str = "REML",
        test: str = "z",
        prob: float = 0.95,
    ):
        """Egger's regression test for funnel-plot asymmetry (metafor's ``regtest``).

        ``model="rma"`` adds the ``predictor`` ("sei", "vi", "ninv", "sqrtninv"; the last two
        need ``ni``, a column of total sample sizes or one number per study) to a
        random-effects meta-regression (tau^2 by ``method``); ``model="lm"`` is Egger et al.'s
        (1997) weighted regression. Returns an :class:`~hiermodels.meta.bias.EggerResult`:
        ``stat``, ``pvalue``, ``limit_estimate`` with ``limit_ci_low``/``limit_ci_high`` (the
        effect of a study of infinite precision), ``reading``, ``to_series()``. Defined for a
        meta-regression too: the predictor joins the moderators (no limit estimate then).

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
        >>> round(meta.egger_test().stat, 4)  # metafor: regtest(rma(yi, vi, data=dat.bcg))
        -0.8033
        """
        return bias.egger_test(
            self, model=model, predictor=predictor, ni=ni, method=method, test=test, prob=prob
        )

    def rank_test(self):
        """Begg & Mazumdar's rank correlation test (metafor's ``ranktest``): ``tau``
        (Kendall's), ``pvalue``, ``reading``. Not for a meta-regression (SpecError)."""
        return bias.rank_test(self)

    def trim_and_fill(
        self,
        *,
        estimator: str = "L0",
        side: str | None = None,
        method: str = "REML",
        test: str = "z",
        prob: float = 0.95,
    ):
        """Duval & Tweedie's trim and fill (metafor's ``trimfill``; ``method="EE"`` is their
        original). Returns a :class:`~hiermodels.meta.bias.TrimAndFillResult`: ``k0``,
        ``side``, ``se_k0``, the pooled ``mu`` with ``ci_low``/``ci_high`` of the observed and
        filled studies, the filled studies as a DataFrame (``filled``) and ``reading``. Not
        for a meta-regression: it mirrors studies about one pooled effect (SpecError).

        Examples
        --------
        >>> import hiermodels as hm
        >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
        ...                       ci="cpos", di="cneg")
        >>> meta = hm.meta_analysis(bcg, estimate="yi", vi="vi", study="trial")
        >>> tf = meta.trim_and_fill(method="EE")  # metafor: 4 filled on the right
        >>> tf.k0, tf.side, len(tf.filled)
        (4, 'right', 4)
        """
        return bias.trim_and_fill(
            self, estimator=estimator, side=side, method=method, test=test, prob=prob
        )

    def pet_peese(self, *, direction: str | None = None, alpha: float = 0.05, prob=0.95):
        """PET-PEESE (Stanley & Doucouliagos 2014): ``estimate``, ``ci_low``, ``ci_high`` of
        the line the conditional rule picks (``use``), both lines (``pet``, ``peese``) and
        ``reading``. Not for a meta-regression (SpecError)."""
        return bias.pet_peese(self, direction=direction, alpha=alpha, prob=prob)

    # -- what bayesmeta reports (hiermodels.meta.bayes) -------------------------------------
    def bayes_factors(self, which=("mu", "tau")) -> pd.DataFrame:
        """Bayes factors for mu = 0 and tau = 0, by the Savage-Dickey density ratio at the
        exact marginal densities (bayesmeta's ``bayesfactor``).

        One row per hypothesis (``"mu = 0"``, ``"tau = 0"``): ``bf01`` (evidence for the
        null), ``bf10``, the posterior and prior densities at the point and a ``reading``.
        Needs the exact engine and no moderators; the mu test needs a proper normal prior on
        mu (``mu_prior=hm.priors.Normal(0, s)``), the tau test a proper tau prior; otherwise
        :class:`~hiermodels.errors.SpecError` naming the fix. For an MCMC fit this is a
        SpecError, not a density estimate from the draws: at tau = 0, the edge of tau's
        support, a kernel estimate is biased. ``which="tau"`` asks for the tau test alone.

        Examples
        --------
        >>> import hiermodels as hm
        >>> schools = hm.datasets.load("eight_schools")
        >>> meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school",
        ...                         mu_prior=hm.priors.Normal(0, 50),
        ...                         hyperprior=hm.priors.HalfCauchy(25))
        >>> round(float(meta.bayes_factors().loc["tau = 0", "bf01"]), 2)  # rounded data
        4.43
        """
        return bayes.bayes_factors(self, which)

    def prior_sensitivity(self, presets=None, *, prob: float = 0.95) -> pd.DataFrame:
        """The posterior under several tau priors, one row each (exact refits: milliseconds).

        ``presets``: keys of :data:`hiermodels.priors.PRESETS` (scaled by the data as in
        :func:`~hiermodels.meta_analysis`) or prior objects; default
        :data:`hiermodels.meta.bayes.DEFAULT_PRESETS` ("half_cauchy", "half_normal",
        "half_t", "exponential", "uniform"). Columns ``prior``, ``mu_mean``,
        ``mu_median``, ``mu_ci_low``, ``mu_ci_high`` (the intercept with moderators),
        ``tau_median``, ``tau_ci_low``, ``tau_ci_high``, ``theta_new_ci_low``,
        ``theta_new_ci_high`` (equal-tailed ``prob``) and ``bf01_mu``, ``bf01_tau`` (NaN
        where not defined: flat mu prior, improper tau prior, moderators). The mu prior is
        this fit's; it must be flat or normal.
        """
        presets = bayes.DEFAULT_PRESETS if presets is None else presets
        return bayes.prior_sensitivity(self, presets, inference.check_prob(prob))

    # -- plots (hiermodels.meta.figures) ------------------------------------------------------
    def plot_forest(
        self,
        path=None,
        *,
        prob: float = 0.95,
        ax=None,
        transform=None,
        sort=None,
        shrunken: bool = False,
        method: str = "bayes",
        subgroup: str | None = None,
        xlabel: str | None = None,
    ):
        """Forest plot: per study its label, interval (estimate +/- z se) and square (area by
        weight), "estimate [CI]" on the ``transform``-ed scale and the weight in percent
        (REML, or ``method``'s); a line at no effect, the pooled diamond and the prediction
        interval; a footer with the heterogeneity statistics.

        ``method="bayes"`` (default): the diamond is the posterior mean of mu with its
        equal-tailed ``prob`` interval, the bar theta_new's interval, the footer tau's
        posterior median and interval and Cochran's Q; a tau^2 estimator ("REML", "DL", ...)
        gives metafor's frequentist forest (Q, df, p, I^2, tau^2). ``shrunken=True`` adds
        each study's posterior interval (coloured, below the observed one); ``sort`` is None,
        "estimate" or "weight"; ``subgroup`` (default the ``subgroup=`` of
        :func:`~hiermodels.meta_analysis`) draws one block and diamond per level and the test
        for subgroup differences. A meta-regression shows each study's fitted value and no
        pooled diamond. Saves to ``path`` if given; returns the matplotlib Figure.
        """
        return figures.plot_forest(
            self,
            path,
            prob=prob,
            ax=ax,
            transform=transform,
            sort=sort,
            shrunken=shrunken,
            method=method,
            subgroup=subgroup,
            xlabel=xlabel,
        )

    def plot_funnel(
        self,
        path=None,
        *,
        contours=True,
        trim_and_fill: bool = False,
        egger: bool = False,
        transform=None,
        ax=None,
    ):
        """Contour-enhanced funnel plot (Peters et al. 2008): estimates against standard
        errors, regions where a study would be significant at 10%, 5%, 1% (``contours``:
        True, False or levels), the REML estimate and its pseudo 95% funnel;
        ``trim_and_fill=True`` adds the filled studies (hollow), ``egger=True`` Egger's line.
        For a meta-regression the residuals are shown (as metafor's ``funnel``). Saves to
        ``path`` if given; returns the matplotlib Figure."""
        return figures.plot_funnel(
            self,
            path,
            contours=contours,
            trim_and_fill=trim_and_fill,
            egger=egger,
            transform=transform,
            ax=ax,
        )

    def plot_moderator(
        self,
        moderator: str,
        path=None,
        *,
        prob: float = 0.95,
        method: str = "REML",
        transform=None,
        ax=None,
    ):
        """Bubble plot of a meta-regression (metafor's ``regplot``): estimates against
        ``moderator`` (area by random-effects weight), the ``method`` fit with its confidence
        and prediction bands (other moderators at their means). Returns the Figure."""
        return figures.plot_moderator(
            self, moderator, path, prob=prob, method=method, transform=transform, ax=ax
        )

    def plot_tau(self, path=None, *, prob: float = 0.95, ax=None):
        """Posterior density of tau (exact, or a kernel density of the draws) with its prior
        (dashed) and the equal-tailed ``prob`` interval shaded. Returns the Figure."""
        return figures.plot_tau(self, path, prob=prob, ax=ax)

    def plot_joint(self, path=None, *, ax=None):
        """Joint posterior density of (mu, tau) with its 50/90/95/99% highest-density regions
        (exact for an exact fit without moderators, a kernel density of the draws otherwise).
        Returns the Figure."""
        return figures.plot_joint(self, path, ax=ax)

    def plot_cumulative(
        self, path=None, *, order=None, method: str = "REML", prob: float = 0.95, ax=None
    ):
        """Cumulative forest plot of :meth:`cumulative`. Saves to ``path`` if given; returns
        the matplotlib Figure."""
        return figures.plot_cumulative(self, path, order=order, method=method, prob=prob, ax=ax)

    def save(self, path):
        """Write the draws, the study table, the spec and the priors to a netCDF file
        (:mod:`hiermodels.meta.fitfile`); :func:`hiermodels.load` reads it back with every
        table identical. Returns the path."""
        from hiermodels.meta import fitfile

        return fitfile.save(self, path)

    def __repr__(self) -> str:
        d = self.data
        mods = f" + moderators {list(d.terms[1:])}" if d.has_moderators else ""
        return (
            f"<MetaAnalysisResult {d.k} studies{mods}; method={self.method}, "
            f"tau ~ {self.tau_prior}, mu ~ {self.mu_prior or 'flat'}>"
        )
