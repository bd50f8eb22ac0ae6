"""Results of a meta-analysis: summaries, heterogeneity, study effects, plots, leave-one-out.

No PyMC, ArviZ or matplotlib at import: an exact fit reports from its exact posterior, and
the modules for draws and plots are imported when they are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hiermodels.errors import SpecError
from hiermodels.meta.data import StudyData, coefficient_names
from hiermodels.meta.engines import EngineFit, exact_fit, exact_takes
from hiermodels.meta.spec import MetaSpec
from hiermodels.numerics import heterogeneity as het
from hiermodels.numerics.exact import ExactPosterior
from hiermodels.numerics.pooling import shrinkage
from hiermodels.priors import Prior

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MetaAnalysisResult"]


@dataclass(frozen=True, eq=False)
class MetaAnalysisResult:
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
    """

    data: StudyData
    spec: MetaSpec
    tau_prior: Prior
    fit: EngineFit

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def mu_prior(self) -> Prior | None:
        return self.spec.mu_prior

    @property
    def exact(self) -> ExactPosterior | None:
        return self.fit.exact

    @property
    def model(self):
        return self.fit.model

    @property
    def diagnostics(self) -> tuple[str, ...]:
        return self.fit.diagnostics

    @property
    def idata(self) -> xr.DataTree:
        """The draws as an ArviZ DataTree (exact draws are made on first access)."""
        return self.fit.idata

    @property
    def coefficient_names(self) -> list[str]:
        return coefficient_names(self.data)

    def _draws(self, name: str) -> np.ndarray:
        return np.asarray(self.idata["posterior"][name])

    # -- summaries ------------------------------------------------------------------------
    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior of the coefficients (``mu``), ``tau`` and ``theta_new`` (a new study).

        Columns mean, sd, median, ci_low, ci_high (equal-tailed ``prob`` interval). With an
        exact posterior (``method="exact"``) the numbers are exact (numerical integration,
        not draws); otherwise they come from the draws, with ess_bulk, ess_tail and r_hat.
        """
        names = [*self.coefficient_names, "tau", "theta_new"]
        if self.exact is None:
            from hiermodels.results.draws import summarize_draws  # ArviZ, for ess and r_hat

            return summarize_draws({n: self._draws(n) for n in names}, prob)
        beta = self.exact.beta_summary(prob)
        rows = {
            name: {key: float(beta[key][k]) for key in beta}
            for k, name in enumerate(self.coefficient_names)
        }
        rows["tau"] = self.exact.tau_summary(prob)
        predictive = self.exact.predictive_summary(prob=prob)
        rows["theta_new"] = {k: predictive[k] for k in ("mean", "sd", "median", "lower", "upper")}
        table = pd.DataFrame(rows).T.rename(columns={"lower": "ci_low", "upper": "ci_high"})
        table = table[["mean", "sd", "median", "ci_low", "ci_high"]].astype(float)
        table.index.name = "parameter"
        table.attrs["prob"] = prob
        return table

    def heterogeneity(self, prob: float = 0.95) -> pd.DataFrame:
        """Pooled effect and heterogeneity by three methods, one row each.

        ``bayes`` (posterior means and sd, equal-tailed ``prob`` interval, tau2 = E[tau^2|y]),
        ``REML`` and ``DL`` (DerSimonian & Laird 1986), as metafor's ``rma`` reports them:
        mu, mu_se, ci_low, ci_high, tau2, tau, I2 (percent), H2, Q, Q_df, Q_pvalue and the
        prediction interval pi_low, pi_high for a new study. With moderators, mu is the
        intercept, Q the test of residual heterogeneity (QE), each moderator's coefficient
        and standard error follow as ``{name}`` and ``{name}_se`` (posterior mean and sd for
        ``bayes``), and ``R2`` is the percent of tau^2 the moderators account for,
        ``max(0, 1 - tau2 / tau2_without_moderators)`` by the same method (metafor's R^2;
        NaN for ``bayes``).
        """
        d = self.data
        X = d.X if d.has_moderators else None
        moderators = self.coefficient_names[1:]
        rows = {}
        fits = (het.reml(d.y, d.se, X, level=prob), het.dersimonian_laird(d.y, d.se, X, prob))
        for fit in fits:
            extra = {}
            for k, name in enumerate(moderators, start=1):
                extra[name], extra[f"{name}_se"] = fit.beta[k], fit.beta_se[k]
            if moderators:
                plain = (het.reml if fit.method == "REML" else het.dersimonian_laird)(d.y, d.se)
                extra["R2"] = 100 * max(0.0, 1 - fit.tau2 / plain.tau2) if plain.tau2 > 0 else 0.0
            rows[fit.method] = {
                "mu": fit.beta[0],
                "mu_se": fit.beta_se[0],
                "ci_low": fit.ci_low[0],
                "ci_high": fit.ci_high[0],
                "tau2": fit.tau2,
                "tau": fit.tau,
                "I2": fit.I2,
                "H2": fit.H2,
                "Q": fit.Q,
                "Q_df": fit.Q_df,
                "Q_pvalue": fit.Q_pvalue,
                "pi_low": fit.pi_low,
                "pi_high": fit.pi_high,
                **extra,
            }
        summary = self.summary(prob)
        mu = summary.loc[self.coefficient_names[0]]
        tau2 = (
            float(np.mean(self._draws("tau") ** 2))
            if self.exact is None
            else summary.loc["tau", "mean"] ** 2 + summary.loc["tau", "sd"] ** 2
        )
        I2, H2 = het.i2_h2(tau2, d.se, X)
        rows = {
            "bayes": {
                **rows["REML"],
                "mu": mu["mean"],
                "mu_se": mu["sd"],
                "ci_low": mu["ci_low"],
                "ci_high": mu["ci_high"],
                "tau2": tau2,
                "tau": summary.loc["tau", "mean"],
                "I2": I2,
                "H2": H2,
                "pi_low": summary.loc["theta_new", "ci_low"],
                "pi_high": summary.loc["theta_new", "ci_high"],
                **{name: summary.loc[name, "mean"] for name in moderators},
                **{f"{name}_se": summary.loc[name, "sd"] for name in moderators},
                **({"R2": np.nan} if moderators else {}),
            },
            **rows,
        }
        table = pd.DataFrame(rows).T
        table.index.name = "method"
        return table.astype(float).astype({"Q_df": int})

    def study_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Per study: observed estimate and se, shrunken effect theta, and how far it moved.

        Columns ``study``, ``estimate``, ``se``, ``mean``, ``sd``, ``ci_low``, ``ci_high``
        (posterior of theta_i), ``pooling_factor`` (E[se^2/(se^2 + tau^2) | y], BDA3 eq. 5.17),
        ``shrinkage`` (fraction of the way from the estimate to the population mean, see
        :func:`hiermodels.numerics.pooling.shrinkage`) and ``weight`` (percent weight of the
        study in the REML pooled estimate, as metafor reports it).
        """
        d = self.data
        if self.exact is not None:
            # exact mixtures over tau, not draws (Monte Carlo error free)
            theta = self.exact.theta_summary(prob)
            cols = {k: theta[k] for k in ("mean", "sd", "lower", "upper")}
            pooling = theta["shrinkage"]
            beta_mean = self.exact.beta_moments()["mean"]
        else:
            draws = self._draws("theta").reshape(-1, d.k)
            tail = (1 - prob) / 2
            tau2 = self._draws("tau").reshape(-1, 1) ** 2
            cols = {
                "mean": draws.mean(axis=0),
                "sd": draws.std(axis=0, ddof=1),
                "lower": np.quantile(draws, tail, axis=0),
                "upper": np.quantile(draws, 1 - tail, axis=0),
            }
            pooling = (d.se**2 / (d.se**2 + tau2)).mean(axis=0)
            beta_mean = np.array([self._draws(n).mean() for n in self.coefficient_names])
        fit = het.reml(d.y, d.se, d.X if d.has_moderators else None)
        w = 1.0 / (d.se**2 + fit.tau2)
        return pd.DataFrame(
            {
                "study": list(d.labels),
                "estimate": d.y,
                "se": d.se,
                "mean": cols["mean"],
                "sd": cols["sd"],
                "ci_low": cols["lower"],
                "ci_high": cols["upper"],
                "pooling_factor": pooling,
                "shrinkage": shrinkage(d.y, cols["mean"], d.X @ beta_mean),
                "weight": 100 * w / w.sum(),
            }
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
        if not exact_takes(self.mu_prior):
            raise SpecError(
                f"leave_one_out refits each subset with the exact engine, which takes a flat or "
                f"hm.priors.Normal prior on mu, not {self.mu_prior}; for a sensitivity analysis "
                "under this prior, refit with method='mcmc' on the data without each study"
            )
        d = self.data
        rows = []
        for i, label in enumerate(d.labels):
            sub = d.without(i)
            post = exact_fit(sub, mu_prior=self.mu_prior, tau_prior=self.tau_prior)
            beta, tau = post.beta_summary(prob), post.tau_summary(prob)
            fit = _reml_or_none(sub)
            rows.append(
                {
                    "left_out": label,
                    "mu": float(beta["mean"][0]),
                    "mu_sd": float(beta["sd"][0]),
                    "ci_low": float(beta["lower"][0]),
                    "ci_high": float(beta["upper"][0]),
                    "tau_mean": tau["mean"],
                    "tau_median": tau["median"],
                    "mu_reml": float(fit.beta[0]) if fit else np.nan,
                    "tau2_reml": fit.tau2 if fit else np.nan,
                    "I2_reml": fit.I2 if fit else np.nan,
                    **{
                        column: value
                        for k, name in enumerate(self.coefficient_names[1:], start=1)
                        for column, value in (
                            (name, float(beta["mean"][k])),
                            (f"{name}_sd", float(beta["sd"][k])),
                            (f"{name}_reml", float(fit.beta[k]) if fit else np.nan),
                        )
                    },
                }
            )
        return pd.DataFrame(rows)

    # -- plots ----------------------------------------------------------------------------
    def plot_forest(self, path=None, *, prob: float = 0.95, ax=None):
        """Forest plot: observed and shrunken estimates per study, pooled effect, prediction
        interval. Saves to ``path`` if given; returns the matplotlib Figure."""
        from hiermodels.plots import forest

        return forest(self, path=path, prob=prob, ax=ax)

    def plot_funnel(self, path=None, *, ax=None):
        """Funnel plot: estimates against standard errors with the pooled effect and its
        pseudo 95% region. Saves to ``path`` if given; returns the matplotlib Figure."""
        from hiermodels.plots import funnel

        return funnel(self, path=path, ax=ax)

    def __repr__(self) -> str:
        d = self.data
        mods = f" + moderators {list(d.terms[1:])}" if d.has_moderators else ""
        return (
            f"<MetaAnalysisResult {d.k} studies{mods}; method={self.method}, "
            f"tau ~ {self.tau_prior}, mu ~ {self.mu_prior or 'flat'}>"
        )


def _reml_or_none(data: StudyData) -> het.REFit | None:
    """REML fit of ``data``, or None if it has too few studies for one (k <= p)."""
    if data.k <= data.X.shape[1]:
        return None
    return het.reml(data.y, data.se, data.X if data.has_moderators else None)
