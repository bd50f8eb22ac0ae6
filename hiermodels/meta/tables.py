"""The posterior tables of a meta-analysis: summary, study effects and leave-one-out.

Each function takes a :class:`~hiermodels.meta.result.MetaAnalysisResult` (``result``), whose
methods of the same names are the public entry points and carry the documentation. With an
exact posterior the numbers are exact (mixtures over the tau grid, no Monte Carlo error);
otherwise they come from the draws. The classical tables (heterogeneity, coefficients,
predictions, influence, cumulative, subgroups) are in :mod:`hiermodels.meta.inference`,
:mod:`~hiermodels.meta.sensitivity` and :mod:`~hiermodels.meta.subgroups`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import hiermodels.meta.inference as inference
from hiermodels.errors import SpecError
from hiermodels.meta.data import StudyData
from hiermodels.meta.engines import exact_fit, exact_takes
from hiermodels.numerics import heterogeneity as het
from hiermodels.numerics.inference import percent_weights
from hiermodels.numerics.pooling import shrinkage_ratio

__all__ = ["leave_one_out", "study_effects", "summary"]


def summary(result, prob=0.95, *, transform=None, interval="equal_tailed") -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.summary`."""
    prob = inference.check_prob(prob)
    if interval not in ("equal_tailed", "hdi"):
        raise SpecError(f"interval must be 'equal_tailed' or 'hdi', got {interval!r}")
    table = _posterior_summary(result, prob)
    if interval == "hdi":
        from hiermodels.meta.bayes import hdi_summary

        table = hdi_summary(result, table, prob)
    f = inference.resolve_transform(transform)
    if f is None:
        return table
    table = table.drop(index="tau")[["median", "ci_low", "ci_high"]]
    return inference.transformed(table, f, ("median", "ci_low", "ci_high"))


def _posterior_summary(result, prob: float) -> pd.DataFrame:
    names = [*result.coefficient_names, "tau", "theta_new"]
    if result.exact is None:
        from hiermodels.results.draws import summarize_draws  # ArviZ, for ess and r_hat

        return summarize_draws({n: result.draws(n) for n in names}, prob)
    beta = result.exact.beta_summary(prob)
    rows = {
        name: {key: float(beta[key][k]) for key in beta}
        for k, name in enumerate(result.coefficient_names)
    }
    rows["tau"] = result.exact.tau_summary(prob)
    predictive = result.exact.predictive_summary(prob=prob)
    rows["theta_new"] = {k: predictive[k] for k in ("mean", "sd", "median", "lower", "upper")}
    table = pd.DataFrame(rows).T.rename(columns={"lower": "ci_low", "upper": "ci_high"})
    table = table[["mean", "sd", "median", "ci_low", "ci_high"]].astype(float)
    table.index.name = "parameter"
    table.attrs["prob"] = prob
    return table


def study_effects(result, prob=0.95, *, transform=None) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.study_effects`."""
    table = _study_effects(result, inference.check_prob(prob))
    f = inference.resolve_transform(transform)
    columns = ("estimate", "median", "ci_low", "ci_high")
    return inference.transformed(table, f, columns, drop=("se", "mean", "sd"))


def _study_effects(result, prob: float) -> pd.DataFrame:
    d = result.data
    if result.exact is not None:
        # exact mixtures over tau, not draws (Monte Carlo error free)
        theta = result.exact.theta_summary(prob)
        cols = {k: theta[k] for k in ("mean", "sd", "median", "lower", "upper")}
        pooling = theta["shrinkage"]
        beta_mean = result.exact.beta_moments()["mean"]
    else:
        draws = result.draws("theta").reshape(-1, d.k)
        tail = (1 - prob) / 2
        tau2 = result.draws("tau").reshape(-1, 1) ** 2
        cols = {
            "mean": draws.mean(axis=0),
            "sd": draws.std(axis=0, ddof=1),
            "median": np.median(draws, axis=0),
            "lower": np.quantile(draws, tail, axis=0),
            "upper": np.quantile(draws, 1 - tail, axis=0),
        }
        # se^2 / (se^2 + tau^2) as 1 / (1 + (tau / se)^2): no square of a tiny or huge se
        pooling = (1 / (1 + (np.sqrt(tau2) / d.se) ** 2)).mean(axis=0)
        beta_mean = np.array([result.draws(n).mean() for n in result.coefficient_names])
    fit = het.reml(d.y, d.se, d.X if d.has_moderators else None)
    unit = het.data_unit(d.se)  # weights in units of the se: no under- or overflow
    # from the se as given, not RMAFit.v: an se beyond the limit path's bounds keeps weight 0
    weights = percent_weights((d.se / unit) ** 2, (fit.tau / unit) ** 2)
    return pd.DataFrame(
        {
            "study": list(d.labels),
            "estimate": d.y,
            "se": d.se,
            "mean": cols["mean"],
            "sd": cols["sd"],
            "ci_low": cols["lower"],
            "ci_high": cols["upper"],
            "median": cols["median"],
            "pooling_factor": pooling,
            "shrinkage_ratio": shrinkage_ratio(d.y, cols["mean"], d.X @ beta_mean, d.se),
            "weight": weights,
        }
    )


def leave_one_out(result, prob=0.95) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.leave_one_out`."""
    if not exact_takes(result.mu_prior):
        raise SpecError(
            f"leave_one_out refits each subset with the exact engine, which takes a flat or "
            f"hm.priors.Normal prior on mu, not {result.mu_prior}; for a sensitivity analysis "
            "under this prior, refit with method='mcmc' on the data without each study"
        )
    d = result.data
    rows = []
    for i, label in enumerate(d.labels):
        sub = d.without(i)
        post = exact_fit(sub, mu_prior=result.mu_prior, tau_prior=result.tau_prior)
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
                    for k, name in enumerate(result.coefficient_names[1:], start=1)
                    for column, value in (
                        (name, float(beta["mean"][k])),
                        (f"{name}_sd", float(beta["sd"][k])),
                        (f"{name}_reml", float(fit.beta[k]) if fit else np.nan),
                    )
                },
            }
        )
    return pd.DataFrame(rows)


def _reml_or_none(data: StudyData) -> het.REFit | None:
    """REML fit of ``data``, or None if it has too few studies for one (k <= p)."""
    if data.k <= data.X.shape[1]:
        return None
    return het.reml(data.y, data.se, data.X if data.has_moderators else None)
