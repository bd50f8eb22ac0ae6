"""Results of a hierarchical fit: summaries and shrunken group estimates."""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import stats

from hiermodels.builders.effects import effect_name
from hiermodels.builders.hierarchical import RESIDUAL_SIGMA, ResolvedPrior, sigma_name
from hiermodels.data import INTERCEPT, GroupedData
from hiermodels.numerics.pooling import no_pooling_fit, shrinkage
from hiermodels.spec import HierarchicalSpec

__all__ = ["HierarchicalResult", "summarize_draws"]


def summarize_draws(draws: dict[str, np.ndarray], prob: float = 0.95) -> pd.DataFrame:
    """Summary table of scalar quantities given as (chain, draw) arrays.

    Columns: mean, sd, median, ci_low, ci_high (equal-tailed ``prob`` interval), ess_bulk,
    ess_tail, r_hat (rank-normalized, Vehtari et al. 2021, via ArviZ).
    """
    ds = xr.Dataset({k: (("chain", "draw"), np.asarray(v)) for k, v in draws.items()})
    tail = (1 - prob) / 2
    flat = {k: np.asarray(v).reshape(-1) for k, v in draws.items()}
    table = pd.DataFrame(
        {
            "mean": {k: v.mean() for k, v in flat.items()},
            "sd": {k: v.std(ddof=1) for k, v in flat.items()},
            "median": {k: np.median(v) for k, v in flat.items()},
            "ci_low": {k: np.quantile(v, tail) for k, v in flat.items()},
            "ci_high": {k: np.quantile(v, 1 - tail) for k, v in flat.items()},
        }
    )
    table["ess_bulk"] = pd.Series({k: float(v) for k, v in az.ess(ds, method="bulk").items()})
    table["ess_tail"] = pd.Series({k: float(v) for k, v in az.ess(ds, method="tail").items()})
    if ds.sizes["chain"] > 1:
        table["r_hat"] = pd.Series({k: float(v) for k, v in az.rhat(ds).items()})
    else:
        table["r_hat"] = np.nan
    table.index.name = "parameter"
    table.attrs["prob"] = prob
    return table


def _interval_columns(samples: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    """mean, sd, ci_low, ci_high over the leading (sample) axis."""
    tail = (1 - prob) / 2
    return {
        "mean": samples.mean(axis=0),
        "sd": samples.std(axis=0, ddof=1),
        "ci_low": np.quantile(samples, tail, axis=0),
        "ci_high": np.quantile(samples, 1 - tail, axis=0),
    }


@dataclass(frozen=True, eq=False)
class HierarchicalResult:
    """A fitted hierarchical model.

    Attributes
    ----------
    idata : xarray.DataTree
        Posterior draws and sampler statistics (ArviZ 1.x).
    model : pymc.Model
        The model that was sampled.
    data, spec, priors
        The encoded data, the specification and every prior used.
    diagnostics : list of str
        Convergence warnings given after sampling (empty when all checks passed).
    """

    idata: xr.DataTree
    model: pm.Model
    data: GroupedData
    spec: HierarchicalSpec
    priors: dict[str, ResolvedPrior]
    diagnostics: tuple[str, ...] = ()

    # -- draws -------------------------------------------------------------------------
    def _posterior(self, name: str) -> np.ndarray:
        return np.asarray(self.idata["posterior"][name])

    def population_names(self) -> list[str]:
        """Names of the population-level parameters, in model order."""
        d = self.data
        names = [*d.terms, RESIDUAL_SIGMA, *(sigma_name(t, d.group) for t in d.varying)]
        return names

    def _population_draws(self) -> dict[str, np.ndarray]:
        draws = {name: self._posterior(name) for name in self.population_names()}
        corr_name = f"{self.data.group}_corr"
        if corr_name in self.idata["posterior"]:
            corr = self._posterior(corr_name)
            terms = self.data.varying
            for i in range(len(terms)):
                for j in range(i):
                    draws[f"{corr_name}[{terms[i]}, {terms[j]}]"] = corr[..., i, j]
        return draws

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Population-level parameters: coefficients, ``sigma``, group SDs and correlations.

        Returns a DataFrame indexed by parameter name with columns mean, sd, median, ci_low,
        ci_high (equal-tailed ``prob`` interval), ess_bulk, ess_tail and r_hat.
        """
        return summarize_draws(self._population_draws(), prob)

    def linear_predictor(self) -> np.ndarray:
        """Draws of each row's expected outcome, shape (chain, draw, n_obs).

        ``X_i beta + Z_i b_{g[i]}``: population coefficients plus the row's group deviations.
        """
        d = self.data
        eta = 0.0
        for t in d.terms:
            coef = self._posterior(t)[..., None]
            eta = eta + (coef if t == INTERCEPT else coef * d.column(t))
        for t in d.varying:
            dev = self._posterior(effect_name(t, d.group))[..., d.group_idx]
            eta = eta + (dev if t == INTERCEPT else dev * d.column(t))
        return eta

    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood draws (chain, draw, n_obs), e.g. for PSIS-LOO."""
        sigma = self._posterior(RESIDUAL_SIGMA)[..., None]
        return stats.norm.logpdf(self.data.y, self.linear_predictor(), sigma)

    # -- group-level estimates -----------------------------------------------------------
    def group_coefficient_draws(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Draws of each group's coefficient and of its population value, per varying term.

        A group's coefficient is the population coefficient plus its deviation; for the
        intercept the population value also includes the group-level predictors
        (Gelman & Hill 2007, §12.6). Arrays have shape (n_samples, n_groups).
        """
        d = self.data
        first_rows = np.array([np.flatnonzero(d.group_idx == j)[0] for j in range(d.n_groups)])
        coef, target = {}, {}
        for t in d.varying:
            base = self._posterior(t).reshape(-1, 1) * np.ones(d.n_groups)
            if t == INTERCEPT:
                for k in d.group_level:
                    base = base + self._posterior(k).reshape(-1, 1) * d.column(k)[first_rows]
            dev = self._posterior(effect_name(t, d.group)).reshape(-1, d.n_groups)
            coef[t], target[t] = base + dev, base
        return coef, target

    def no_pooling(self) -> tuple[np.ndarray, np.ndarray]:
        """Each group's own least-squares coefficients (n_groups, n_varying) and their SEs."""
        d = self.data
        shared = [t for t in d.terms if t not in d.varying and t not in d.group_level]
        X_shared = np.column_stack([d.column(t) for t in shared]) if shared else None
        return no_pooling_fit(
            d.y,
            X_shared if X_shared is not None else np.empty((len(d.y), 0)),
            d.Z,
            d.group_idx,
            d.n_groups,
        )

    def group_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Shrunken group estimates: one row per group x varying term.

        Columns: ``group``, ``term``, ``mean``, ``sd``, ``ci_low``, ``ci_high`` (the group's
        coefficient, population value plus deviation), ``deviation`` (posterior mean of
        ``{term}|{group}``), ``n_obs``, ``no_pooling`` (the group's own least-squares
        estimate, NaN where its rows cannot identify it), ``population`` (posterior mean of
        the value it is shrunk toward) and ``shrinkage`` (0 = kept its own estimate,
        1 = pulled all the way to the population value; see
        :func:`hiermodels.numerics.pooling.shrinkage`).
        """
        d = self.data
        coef, target = self.group_coefficient_draws()
        own, _ = self.no_pooling()
        frames = []
        for k, t in enumerate(d.varying):
            cols = _interval_columns(coef[t], prob)
            population = target[t].mean(axis=0)
            frames.append(
                pd.DataFrame(
                    {
                        "group": list(d.levels),
                        "term": t,
                        **cols,
                        "deviation": (coef[t] - target[t]).mean(axis=0),
                        "n_obs": d.n_obs,
                        "no_pooling": own[:, k],
                        "population": population,
                        "shrinkage": shrinkage(own[:, k], cols["mean"], population),
                    }
                )
            )
        table = pd.concat(frames, ignore_index=True)
        table.attrs["prob"] = prob
        return table

    def __repr__(self) -> str:
        d = self.data
        n_draws = self.idata["posterior"].sizes
        return (
            f"<HierarchicalResult {d.y_name} ~ {' + '.join(d.terms[1:]) or '1'} "
            f"+ ({' + '.join(d.varying)} | {d.group}); {d.n_groups} groups, {len(d.y)} rows, "
            f"{n_draws['chain']} chains x {n_draws['draw']} draws>"
        )
