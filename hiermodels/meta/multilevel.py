"""Results of a three-level (multilevel) meta-analysis: effect sizes nested in clusters.

:class:`MultilevelMetaResult` reports the posterior of :func:`hiermodels.meta_analysis` with
``levels=`` (or ``cluster=``): summaries of the coefficients, the SD of each level and a new
effect; heterogeneity beside metafor's ``rma.mv`` REML/ML fits
(:mod:`hiermodels.numerics.multilevel`); shrunken effect sizes and cluster effects;
cluster-robust tests (:mod:`hiermodels.numerics.robust`, clubSandwich's CR2) and a forest
plot grouped by cluster. No PyMC, ArviZ or matplotlib at import: an exact fit reports from
its exact posterior, and the modules for draws and plots are imported when they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.meta.data import MultilevelData, coefficient_names
from hiermodels.meta.engines import EngineFit, EngineResult
from hiermodels.meta.inference import BAYES, check_prob, resolve_transform, transformed
from hiermodels.meta.spec import MetaSpec
from hiermodels.numerics.heterogeneity import typical_within_variance
from hiermodels.numerics.multilevel import (
    METHODS,
    TESTS,
    MarginalCovariance,
    MultilevelFit,
    fit_multilevel,
    prepare,
)
from hiermodels.numerics.robust import SMALL_SAMPLE, robust_se
from hiermodels.priors import Prior

if TYPE_CHECKING:
    pass

__all__ = ["MultilevelMetaResult"]


@dataclass(frozen=True, eq=False)
class MultilevelMetaResult(EngineResult):
    """A fitted three-level meta-analysis (from :func:`hiermodels.meta_analysis` with
    ``levels=`` or ``cluster=``).

    The model, for effect size i in cluster c(i) (Konstantopoulos 2011, Res. Synth. Methods
    2:61-76)::

        y_i ~ Normal(theta_i, se_i),  theta_i = x_i' beta + u_c(i) + w_i,
        u_c ~ Normal(0, tau_{cluster}),  w_i ~ Normal(0, tau_{effect})

    Attributes
    ----------
    data : MultilevelData
        The validated effect sizes, their clusters and the level names.
    spec : MetaSpec
        What was asked for (columns, levels, priors, method, sampling options).
    tau_priors : tuple of Prior
        The priors on the SD of each level (clusters, then effect sizes).
    fit : EngineFit
        What the engine returned: draws, and the exact posterior or the PyMC model.
    frame : pandas.DataFrame or None
        A copy of the data.

    Examples
    --------
    >>> import hiermodels as hm
    >>> kon = hm.datasets.load("konstantopoulos2011")
    >>> meta = hm.meta_analysis(kon, estimate="yi", vi="vi", levels=["district", "study"])
    >>> list(meta.summary().index)
    ['mu', 'tau_district', 'tau_study', 'theta_new']
    >>> round(float(meta.heterogeneity(["REML"]).loc["REML", "mu"]), 4)  # metafor rma.mv
    0.1847
    """

    data: MultilevelData
    spec: MetaSpec
    tau_priors: tuple[Prior, Prior]
    fit: EngineFit
    frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def levels(self) -> tuple[str, str]:
        """The level names, outermost first: the clusters, the effect sizes."""
        return self.data.levels

    @property
    def coefficient_names(self) -> list[str]:
        return coefficient_names(self.data.studies)

    def draws(self, name: str) -> np.ndarray:
        """The (chain, draw, ...) array of the posterior draws of ``name``."""
        return np.asarray(self.idata["posterior"][name])

    # -- summaries ------------------------------------------------------------------------
    def summary(self, prob: float = 0.95, *, transform=None) -> pd.DataFrame:
        """Posterior of the coefficients (``mu``), the SD of each level (``tau_{cluster}``,
        ``tau_{effect}``) and ``theta_new`` (a new effect size in a new cluster).

        Columns mean, sd, median, ci_low, ci_high (equal-tailed ``prob`` interval): exact
        (numerical integration) with ``method="exact"``, from the draws otherwise (with
        ess_bulk, ess_tail and r_hat). ``transform`` back-transforms the location rows as
        :meth:`MetaAnalysisResult.summary <hiermodels.meta.result.MetaAnalysisResult.summary>`
        does (the tau rows are dropped).
        """
        prob = check_prob(prob)
        tau_b, tau_w = self.data.tau_names
        names = [*self.coefficient_names, tau_b, tau_w, "theta_new"]
        if self.exact is None:
            from hiermodels.results.draws import summarize_draws  # ArviZ, for ess and r_hat

            table = summarize_draws({n: self.draws(n) for n in names}, prob)
        else:
            beta = self.exact.beta_summary(prob)
            rows = {
                name: {key: float(beta[key][k]) for key in beta}
                for k, name in enumerate(self.coefficient_names)
            }
            taus = self.exact.tau_summary(prob)
            rows[tau_b], rows[tau_w] = taus["between"], taus["within"]
            x_bar = self.data.studies.X.mean(axis=0)
            rows["theta_new"] = self.exact.linear_summary(x_bar, prob, new=True)
            table = pd.DataFrame(rows).T.rename(columns={"lower": "ci_low", "upper": "ci_high"})
            table = table.loc[names, ["mean", "sd", "median", "ci_low", "ci_high"]].astype(float)
            table.index.name = "parameter"
            table.attrs["prob"] = prob
        f = resolve_transform(transform)
        if f is None:
            return table
        table = table.drop(index=[tau_b, tau_w])[["median", "ci_low", "ci_high"]]
        return transformed(table, f, ("median", "ci_low", "ci_high"))

    def classical(
        self, method: str = "REML", *, test: str = "z", prob: float = 0.95
    ) -> MultilevelFit:
        """metafor's ``rma.mv(yi, vi, mods, random = ~ 1 | cluster/effect, method=, test=,
        level=)`` on these data: a :class:`~hiermodels.numerics.multilevel.MultilevelFit`."""
        if method not in METHODS:
            raise SpecError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if test not in TESTS:
            raise SpecError(f"unknown test {test!r}; use 'z' (Wald) or 't' (t with k - p df)")
        d = self.data.studies
        X = d.X if d.has_moderators else None
        return fit_multilevel(
            d.y, d.se**2, self.data.cluster, X, method=method, level=check_prob(prob), test=test
        )

    def heterogeneity(
        self,
        methods: str | Sequence[str] = (BAYES, "REML", "ML"),
        *,
        test: str = "z",
        prob: float = 0.95,
    ) -> pd.DataFrame:
        """Average effect and the variance of each level by several methods, one row each.

        ``methods``: ``"bayes"`` (this fit's posterior), ``"REML"`` and ``"ML"`` (metafor's
        ``rma.mv``, :meth:`classical`). Columns: ``mu`` (the intercept with moderators),
        ``mu_se``, ``ci_low``, ``ci_high``; ``tau2_{cluster}`` and ``tau2_{effect}`` (the
        variance components, metafor's ``sigma2``); ``pi_low``, ``pi_high`` (the interval of
        the true effect of a new effect size in a new cluster; NaN for the classical rows
        with moderators); ``icc`` = tau2_{cluster} / (tau2_{cluster} + tau2_{effect}) (the
        correlation of two true effects in one cluster); ``I2_{cluster}``, ``I2_{effect}``
        and ``I2`` (their sum): percent of the total variance at each level,
        100 tau2_l / (tau2_{cluster} + tau2_{effect} + vt), vt the typical within-study
        variance (Cheung 2014, Psychol. Methods 19:211-229; the metafor FAQ); ``Q``,
        ``Q_df``, ``Q_pvalue`` (the test of residual heterogeneity, the same in every row).

        The ``bayes`` row: posterior mean, sd and equal-tailed ``prob`` interval of mu; the
        variances are posterior means E[tau^2 | y], with icc and I^2 at them; ``pi_*`` the
        interval of theta_new.

        Examples
        --------
        >>> import hiermodels as hm
        >>> kon = hm.datasets.load("konstantopoulos2011")
        >>> meta = hm.meta_analysis(kon, estimate="yi", vi="vi", cluster="district")
        >>> table = meta.heterogeneity(["REML"])
        >>> round(float(table.loc["REML", "tau2_district"]), 4)  # metafor rma.mv sigma2[1]
        0.0651
        """
        methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in (BAYES, *METHODS)]
        if unknown or not methods:
            raise SpecError(
                f"unknown method(s) {unknown or methods}; use any of {BAYES!r}, 'REML', 'ML'"
            )
        prob = check_prob(prob)
        d = self.data.studies
        vt = typical_within_variance(d.se, d.X)
        (b, w), rows = self.levels, {}
        for method in methods:
            fit = self.classical(method if method != BAYES else "REML", test=test, prob=prob)
            if method == BAYES:
                row = self._bayes_row(prob)
            else:
                row = {
                    "mu": fit.beta[0],
                    "mu_se": fit.se[0],
                    "ci_low": fit.ci_low[0],
                    "ci_high": fit.ci_high[0],
                    "tau2": tuple(fit.sigma2),
                    "pi_low": fit.pi_low,
                    "pi_high": fit.pi_high,
                }
            s_b, s_w = row.pop("tau2")
            total = s_b + s_w
            row |= {
                f"tau2_{b}": s_b,
                f"tau2_{w}": s_w,
                "icc": s_b / total if total > 0 else np.nan,
                f"I2_{b}": 100 * s_b / (total + vt),
                f"I2_{w}": 100 * s_w / (total + vt),
                "I2": 100 * total / (total + vt),
                "Q": fit.QE,
                "Q_df": fit.QE_df,
                "Q_pvalue": fit.QE_p,
            }
            rows[method] = row
        table = pd.DataFrame(rows).T.astype(float)
        table["Q_df"] = table["Q_df"].astype(int)
        table.index.name = "method"
        table.attrs["prob"] = prob
        return table

    def _bayes_row(self, prob: float) -> dict:
        name = self.coefficient_names[0]
        summary = self.summary(prob)
        if self.exact is not None:
            tau2 = self.exact.tau2_means()
        else:
            tau2 = tuple(float(np.mean(self.draws(n) ** 2)) for n in self.data.tau_names)
        return {
            "mu": summary.loc[name, "mean"],
            "mu_se": summary.loc[name, "sd"],
            "ci_low": summary.loc[name, "ci_low"],
            "ci_high": summary.loc[name, "ci_high"],
            "tau2": tau2,
            "pi_low": summary.loc["theta_new", "ci_low"],
            "pi_high": summary.loc["theta_new", "ci_high"],
        }

    def _effect_tables(self, prob: float) -> tuple[dict, dict]:
        """Per cluster (u_c) and per effect size (theta_i): mean, sd, median, lower, upper,
        pooling (exact mixtures, or the draws)."""
        if self.exact is not None:
            return self.exact.effect_summaries(prob)
        d, data = self.data.studies, self.data
        tail = (1 - prob) / 2
        tau_b, tau_w = (self.draws(n).reshape(-1, 1) for n in data.tau_names)
        v = d.se**2
        a = 1 / (v + tau_w**2)
        A = np.stack([a[:, data.cluster == c].sum(axis=1) for c in range(data.n_clusters)], 1)
        out = []
        for name, pooling in (
            (data.cluster_effect_name, 1 / (1 + tau_b**2 * A)),
            ("theta", v * a),
        ):
            x = self.draws(name)
            x = x.reshape(-1, x.shape[-1])
            out.append(
                {
                    "mean": x.mean(axis=0),
                    "sd": x.std(axis=0, ddof=1),
                    "median": np.median(x, axis=0),
                    "lower": np.quantile(x, tail, axis=0),
                    "upper": np.quantile(x, 1 - tail, axis=0),
                    "shrinkage": pooling.mean(axis=0),
                }
            )
        return out[0], out[1]

    def study_effects(self, prob: float = 0.95, *, transform=None) -> pd.DataFrame:
        """Per effect size: its labels, observed estimate and se, and the shrunken true effect.

        Columns: the effect-size level (label), the cluster level, ``estimate``, ``se``,
        ``mean``, ``sd``, ``median``, ``ci_low``, ``ci_high`` (posterior of theta_i =
        x_i'beta + u_c + w_i, exact mixtures with the exact engine), ``pooling_factor``
        (E[se_i^2 / (se_i^2 + tau_{effect}^2) | y]: how far the effect is pooled toward its
        cluster) and ``weight`` (percent; the diagonal of the inverse marginal covariance at
        the REML estimates, metafor's ``weights(res)`` for ``rma.mv``). ``transform``
        back-transforms as in :meth:`summary`.
        """
        prob = check_prob(prob)
        data, d = self.data, self.data.studies
        theta = self._effect_tables(prob)[1]
        fit = self.classical("REML")
        _, v, _, groups = prepare(d.y, d.se**2, data.cluster)
        diag = MarginalCovariance(groups, v, *fit.sigma2).diag_inv()[groups.unorder]
        table = pd.DataFrame(
            {
                data.effect_name: list(d.labels),
                data.cluster_name: [data.cluster_labels[c] for c in data.cluster],
                "estimate": d.y,
                "se": d.se,
                "mean": theta["mean"],
                "sd": theta["sd"],
                "median": theta["median"],
                "ci_low": theta["lower"],
                "ci_high": theta["upper"],
                "pooling_factor": theta["shrinkage"],
                "weight": 100 * diag / diag.sum(),
            }
        )
        f = resolve_transform(transform)
        columns = ("estimate", "median", "ci_low", "ci_high")
        return transformed(table, f, columns, drop=("se", "mean", "sd"))

    def cluster_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Per cluster: ``k`` (its effect sizes) and the posterior of its effect u_c, the
        cluster's deviation from the average effect x'beta: ``mean``, ``sd``, ``median``,
        ``ci_low``, ``ci_high`` and ``pooling_factor`` (E[1 / (1 + tau_{cluster}^2 A_c) | y],
        A_c = sum of 1 / (se_i^2 + tau_{effect}^2) over the cluster: 0 = the cluster's own
        mean, 1 = pooled completely). Clusters in order of first appearance in the data."""
        u = self._effect_tables(check_prob(prob))[0]
        data = self.data
        return pd.DataFrame(
            {
                data.cluster_name: list(data.cluster_labels),
                "k": data.counts,
                "mean": u["mean"],
                "sd": u["sd"],
                "median": u["median"],
                "ci_low": u["lower"],
                "ci_high": u["upper"],
                "pooling_factor": u["shrinkage"],
            }
        )

    # -- robust inference -------------------------------------------------------------------
    def robust(
        self,
        cluster: str | None = None,
        *,
        small_sample: str = "CR2",
        method: str = "REML",
        prob: float = 0.95,
    ) -> pd.DataFrame:
        """Cluster-robust (sandwich) tests of the coefficients, one row each.

        The working model is the ``method`` fit of :meth:`classical`; its coefficients are
        kept and their standard errors replaced by the sandwich over the clusters, which
        stays valid when the working model's covariance is wrong (Hedges, Tipton & Johnson
        2010). ``small_sample``: ``"CR2"`` (Bell-McCaffrey with Satterthwaite df,
        clubSandwich's ``coef_test(res, vcov = "CR2")``), ``"CR1"`` (metafor's
        ``robust(res, cluster)``, t with n_clusters - p df) or ``"CR0"``. ``cluster`` must be
        the model's cluster level (the default).

        Columns ``estimate``, ``se``, ``stat`` (t), ``df``, ``pvalue``, ``ci_low``, ``ci_high``.

        Examples
        --------
        >>> import hiermodels as hm
        >>> kon = hm.datasets.load("konstantopoulos2011")
        >>> meta = hm.meta_analysis(kon, estimate="yi", vi="vi", cluster="district")
        >>> round(float(meta.robust(small_sample="CR1").loc["mu", "se"]), 4)  # metafor robust
        0.0845
        """
        if cluster is not None and cluster != self.data.cluster_name:
            raise SpecError(
                f"robust(cluster={cluster!r}): the sandwich is taken over the model's clusters "
                f"{self.data.cluster_name!r} (the working model's variance between them must "
                "match the clustering); refit with levels=[...] to cluster otherwise"
            )
        if small_sample not in SMALL_SAMPLE:
            raise SpecError(
                f"unknown small_sample {small_sample!r}; use one of {', '.join(SMALL_SAMPLE)}"
            )
        fit = self.classical(method, prob=prob)
        d = self.data.studies
        table = robust_se(
            d.y,
            d.se**2,
            self.data.cluster,
            d.X if d.has_moderators else None,
            sigma2=tuple(fit.sigma2),
            small_sample=small_sample,
            level=check_prob(prob),
        )
        out = pd.DataFrame(
            {
                "estimate": table.estimate,
                "se": table.se,
                "stat": table.stat,
                "df": table.df,
                "pvalue": table.pval,
                "ci_low": table.ci_low,
                "ci_high": table.ci_high,
            },
            index=pd.Index(self.coefficient_names, name="coefficient"),
        )
        out.attrs.update(small_sample=small_sample, n_clusters=table.n_clusters, prob=prob)
        return out

    # -- plots ----------------------------------------------------------------------------
    def plot_forest(self, path=None, *, prob: float = 0.95, transform=None):
        """Forest plot grouped by cluster: per effect size the observed estimate with its
        ``prob`` interval (squares sized by the REML weight) and the shrunken true effect
        (blue); per cluster a diamond for mu + u_c (without moderators); the pooled effect
        and the interval of a new effect in a new cluster. Saves to ``path`` if given;
        returns the matplotlib Figure (:func:`hiermodels.plots_meta.forest_plot`)."""
        from hiermodels.plots_meta import forest_plot

        prob = check_prob(prob)
        data, d = self.data, self.data.studies
        table = self.study_effects(prob).rename(
            columns={"ci_low": "theta_low", "ci_high": "theta_high"}
        )
        z = stats.norm.ppf(0.5 + prob / 2)
        table["ci_low"], table["ci_high"] = d.y - z * d.se, d.y + z * d.se
        summary = self.summary(prob)
        pooled = subtotals = None
        if not d.has_moderators:
            pooled = tuple(summary.loc["mu", ["mean", "ci_low", "ci_high"]])
            cluster_mean = self.draws("mu")[..., None] + self.draws(data.cluster_effect_name)
            flat = cluster_mean.reshape(-1, data.n_clusters)
            tail = (1 - prob) / 2
            subtotals = {
                label: (
                    float(flat[:, c].mean()),
                    float(np.quantile(flat[:, c], tail)),
                    float(np.quantile(flat[:, c], 1 - tail)),
                )
                for c, label in enumerate(data.cluster_labels)
            }
        tau_b, tau_w = data.tau_names
        footer = (
            f"{tau_b} = {summary.loc[tau_b, 'median']:.3g}, {tau_w} = "
            f"{summary.loc[tau_w, 'median']:.3g} (posterior medians); "
            f"{data.n_clusters} clusters, {data.k} effect sizes"
        )
        return forest_plot(
            table,
            label=data.effect_name,
            shrunken=("mean", "theta_low", "theta_high"),
            subgroup=data.cluster_name,
            subgroup_pooled=subtotals,
            pooled=pooled,
            prediction=tuple(summary.loc["theta_new", ["ci_low", "ci_high"]]),
            footer=footer,
            transform=transform,
            xlabel=d.estimate,
            level=prob,
            path=path,
        )

    def __repr__(self) -> str:
        d, data = self.data.studies, self.data
        mods = f" + moderators {list(d.terms[1:])}" if d.has_moderators else ""
        priors = ", ".join(
            f"{n} ~ {p}" for n, p in zip(data.tau_names, self.tau_priors, strict=True)
        )
        return (
            f"<MultilevelMetaResult {data.k} effect sizes in {data.n_clusters} "
            f"{data.cluster_name} clusters{mods}; method={self.method}, {priors}, "
            f"mu ~ {self.mu_prior or 'flat'}>"
        )
