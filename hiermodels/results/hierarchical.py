"""Results of a hierarchical fit: summaries and shrunken group estimates."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from hiermodels.data import GroupedData, GroupFactor
from hiermodels.defaults import ResolvedPrior
from hiermodels.errors import SpecError
from hiermodels.families import Family, get_family
from hiermodels.names import INTERCEPT, corr_name, effect_name, sigma_name
from hiermodels.results import fitfile, prediction
from hiermodels.results import idata as groups
from hiermodels.results.draws import interval_columns, linear_predictor_draws, summarize_draws
from hiermodels.spec import HierarchicalSpec

__all__ = ["HierarchicalResult"]

# elements of the dense no-pooling design (160 MB) above which group_effects() uses per-group
# sums (hiermodels.parameterization makes the same switch)
DENSE_LIMIT = 20_000_000


@dataclass(frozen=True, eq=False)
class HierarchicalResult:
    """A fitted hierarchical model.

    Attributes
    ----------
    idata : xarray.DataTree
        Posterior draws and sampler statistics (ArviZ 1.x).
    model : pymc.Model
        The model that was sampled; after the marginal engine (``fit``'s default for a
        Gaussian model with one or two nested grouping factors) the full model with every
        group effect, built on first use (the constructor takes the model or a function of
        no arguments that builds it).
    data, spec, priors
        The encoded data, the specification and every prior used.
    diagnostics : list of str
        Convergence warnings given after sampling (empty when all checks passed).
    """

    idata: xr.DataTree
    _model: pm.Model | Callable[[], pm.Model]
    data: GroupedData
    spec: HierarchicalSpec
    priors: dict[str, ResolvedPrior]
    diagnostics: tuple[str, ...] = ()

    @property
    def model(self) -> pm.Model:
        """The PyMC model (see the class docstring); built once when given as a function."""
        if not isinstance(self._model, pm.Model):
            object.__setattr__(self, "_model", self._model())  # frozen: a one-time cache
        return self._model

    @property
    def parameterization(self) -> pd.DataFrame:
        """How each varying term of each grouping factor was sampled, and why.

        One row per (term, factor): ``choice`` (``"centered"`` or ``"noncentered"``),
        ``ratio`` (median over groups of a group's own standard error over a quick estimate of
        the between-group SD, for ``parameterization="auto"``; NaN when given) and
        ``reason``. Read from ``idata.attrs["parameterization"]`` (a JSON list, kept by
        ``save``); a fit without it lists the spec's parameterization as given.
        """
        columns = ["term", "factor", "choice", "ratio", "reason"]
        stored = self.idata.attrs.get("parameterization")
        if stored is not None:
            rows = [{k: row.get(k) for k in columns} for row in json.loads(stored)]
        else:
            rows = [
                {
                    "term": t,
                    "factor": f.name,
                    "choice": self.spec.parameterization_of(t, f.name),
                    "ratio": None,
                    "reason": "given",
                }
                for f, t in self.data.effects
            ]
        table = pd.DataFrame(rows, columns=columns)
        table["ratio"] = table["ratio"].astype(float)
        return table

    # -- draws -------------------------------------------------------------------------
    def _posterior(self, name: str) -> np.ndarray:
        return np.asarray(self.idata["posterior"][name])

    def population_names(self) -> list[str]:
        """Names of the population-level parameters, in model order."""
        d = self.data
        aux = [a.name for a in self.spec.aux]
        return [*d.terms, *aux, *(sigma_name(t, f.name) for f, t in d.effects)]

    @property
    def family(self) -> Family:
        return get_family(self.spec.family)

    def _population_draws(self) -> dict[str, np.ndarray]:
        draws = {name: self._posterior(name) for name in self.population_names()}
        for f in self.data.factors:
            name = corr_name(f.name)
            if name in self.idata["posterior"]:
                corr = self._posterior(name)
                terms = f.varying
                for i in range(len(terms)):
                    for j in range(i):
                        draws[f"{name}[{terms[i]}, {terms[j]}]"] = corr[..., i, j]
        return draws

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Population-level parameters: coefficients, ``sigma`` (none with known standard
        errors, unless ``sigma=True``), group SDs and correlations.

        Returns a DataFrame indexed by parameter name with columns mean, sd, median, ci_low,
        ci_high (equal-tailed ``prob`` interval), ess_bulk, ess_tail and r_hat.
        """
        return summarize_draws(self._population_draws(), prob)

    def linear_predictor(self) -> np.ndarray:
        """Draws of each row's linear predictor, shape (chain, draw, n_obs).

        ``X_i beta + Z_i b_{g[i]} + offset_i``: population coefficients plus the row's group
        deviations, on the link scale (the expected outcome for the gaussian family).
        """
        d = self.data
        post = self.idata["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"], len(d.y))
        deviations = np.stack(
            [np.asarray(post[effect_name(t, f.name)])[..., f.idx] for f, t in d.effects]
            or [np.zeros(shape)],  # no grouping factor: one column of zeros, never read
            axis=-1,
        )
        return linear_predictor_draws(post, d, d.X, deviations, d.offset)

    def _aux_draws(self) -> dict[str, np.ndarray]:
        """What scores and simulates each fitted row: the auxiliary parameters' draws, with
        known standard errors the residual SD as each row's total SD."""
        aux = {a.name: self._posterior(a.name)[..., None] for a in self.spec.aux}
        return self.family.observation_aux(aux, self.data.se)

    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood draws (chain, draw, n_obs), e.g. for PSIS-LOO."""
        d = self.data
        return self.family.logpdf(d.y, self.linear_predictor(), self._aux_draws(), d.trials)

    # -- group-level estimates -----------------------------------------------------------
    def _factor(self, group: str | None) -> GroupFactor:
        d = self.data
        if group is None and not d.factors:
            raise SpecError("the model has no grouping factor, so no group-level estimates")
        return d.factors[0] if group is None else d.factor_named(group)

    def group_coefficient_draws(
        self, group: str | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Draws of each level's coefficient and of its population value, per varying term
        of one grouping factor (``group``; default the first).

        A level's coefficient is the population coefficient plus its deviation; for the
        intercept the population value also includes the predictors that are constant
        within the factor's levels (Gelman & Hill 2007, §12.6). Arrays have shape
        (n_samples, n_levels).
        """
        d, f = self.data, self._factor(group)
        first_rows = f.first_rows
        coef, target = {}, {}
        for t in f.varying:
            base = self._posterior(t).reshape(-1, 1) * np.ones(f.n_groups)
            if t == INTERCEPT:
                for k in f.group_level:
                    base = base + self._posterior(k).reshape(-1, 1) * d.column(k)[first_rows]
            dev = self._posterior(effect_name(t, f.name)).reshape(-1, f.n_groups)
            coef[t], target[t] = base + dev, base
        return coef, target

    def no_pooling(self, group: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each level's own coefficients (n_levels, n_varying) and their SEs, on the link
        scale: least squares for identity links (weighted by ``1 / se_i^2`` with known
        standard errors), maximum likelihood (IRLS) for logit and log links (the Poisson
        fit's point estimates for the negative binomial).

        Defined for a single grouping factor (with crossed factors a level's "own" estimate
        depends on the other factors): NaN otherwise, and NaN where a level's rows cannot
        identify its coefficient (a county whose houses all have the same floor has no floor
        slope; a group with all-zero outcomes has no logit or log intercept).
        """
        # imported here, as in hiermodels.parameterization: it imports scipy.stats (~0.9 s)
        from hiermodels.numerics.pooling import no_pooling_by_group, no_pooling_fit, no_pooling_glm

        d, f = self.data, self._factor(group)
        if len(d.factors) > 1:
            nan = np.full((f.n_groups, len(f.varying)), np.nan)
            return nan, nan.copy()
        # a varying intercept absorbs the predictors constant within levels; without one
        # ((0 + x | g)) they stay shared with the population intercept
        absorbed = f.group_level if INTERCEPT in f.varying else ()
        shared = [t for t in d.terms if t not in f.varying and t not in absorbed]
        X_shared = (
            np.column_stack([d.column(t) for t in shared]) if shared else np.empty((len(d.y), 0))
        )
        if self.family.link == "identity":
            # the offset is part of the model's mean (y_i = offset_i + X_i beta + ...), so each
            # group's own fit is of y - offset, as in the model and the dask path
            y = d.y if d.offset is None else d.y - d.offset
            if len(d.y) * (f.n_groups * len(f.varying) + len(shared)) > DENSE_LIMIT:
                # too large for the dense no-pooling design (a million rows in 1e4 groups):
                # the shared terms at their posterior means, then each level on its own rows
                # from per-group sums
                fixed = sum(
                    (self._posterior(t).mean() * d.column(t) for t in shared), np.zeros(len(d.y))
                )
                return no_pooling_by_group(y - fixed, d.Z, f.idx, f.n_groups, se=d.se)
            return no_pooling_fit(y, X_shared, d.Z, f.idx, f.n_groups, se=d.se)
        return no_pooling_glm(
            d.y,
            X_shared,
            d.Z,
            f.idx,
            f.n_groups,
            link=self.family.link,
            trials=d.trials,
            offset=d.offset,
        )

    def group_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Shrunken group estimates: one row per grouping factor x level x varying term.

        Columns: ``factor`` (the grouping factor), ``group`` (the level), ``term``,
        ``mean``, ``sd``, ``ci_low``, ``ci_high`` (the level's coefficient, population value
        plus deviation), ``deviation`` (posterior mean of ``{term}|{factor}``), ``n_obs``,
        ``no_pooling`` (the level's own estimate on the link scale: least squares (weighted
        by ``1 / se_i^2`` with known standard errors), or
        maximum likelihood for logit and log links; NaN where its rows cannot
        identify it or where it is not defined, see :meth:`no_pooling`), ``population``
        (posterior mean of the value it is shrunk toward), ``pooling_factor`` (the headline
        shrinkage number, in [0, 1]: E[se^2 / (se^2 + tau^2)] with se the standard error of
        the level's own estimate and tau the term's group SD; 0 = kept its own estimate,
        1 = pulled all the way to the population value; see
        :func:`hiermodels.numerics.pooling.pooling_factor`) and ``shrinkage_ratio`` (how
        far the estimate actually moved, as a fraction of its gap to the population value;
        NaN where that gap is under one standard error and the ratio would be noise).
        """
        from hiermodels.numerics.pooling import pooling_factor, shrinkage_ratio

        frames = []
        for f in self.data.factors:
            coef, target = self.group_coefficient_draws(f.name)
            own, own_se = self.no_pooling(f.name)
            for k, t in enumerate(f.varying):
                cols = interval_columns(coef[t], prob)
                population = target[t].mean(axis=0)
                frames.append(
                    pd.DataFrame(
                        {
                            "factor": f.name,
                            "group": list(f.levels),
                            "term": t,
                            **cols,
                            "deviation": (coef[t] - target[t]).mean(axis=0),
                            "n_obs": f.n_obs,
                            "no_pooling": own[:, k],
                            "population": population,
                            "pooling_factor": pooling_factor(
                                own_se[:, k], self._posterior(sigma_name(t, f.name))
                            ),
                            "shrinkage_ratio": shrinkage_ratio(
                                own[:, k], cols["mean"], population, own_se[:, k]
                            ),
                        }
                    )
                )
        columns = ["factor", "group", "term", "mean", "sd", "ci_low", "ci_high", "deviation"]
        columns += ["n_obs", "no_pooling", "population", "pooling_factor", "shrinkage_ratio"]
        # no grouping factor (y ~ x): the same table, empty
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        table.attrs["prob"] = prob
        return table

    # -- prediction -----------------------------------------------------------------------
    def predict(
        self,
        data: pd.DataFrame,
        *,
        kind: str = "mean",
        new_groups: str = "population",
        random_seed=None,
    ):
        """Predictions for the rows of ``data``, one per posterior draw.

        Parameters
        ----------
        data : pandas.DataFrame
            The predictor columns, the group column (and the offset / trials columns if the
            model has them). Categorical predictors must use categories seen in fitting.
            With known standard errors (``se=``), ``kind="response"`` also needs the se
            column: each new row's own standard error.
        kind : {"mean", "response"}
            ``"mean"``: the expected outcome (inverse link of the linear predictor, times the
            trials for the binomial); ``"response"``: a simulated new observation (with known
            standard errors: ``Normal(mean, se_i)``, or ``sqrt(se_i^2 + sigma^2)`` with
            ``sigma=True``).
        new_groups : {"population", "zero", "error"}
            For a group label not seen in fitting: draw a fresh effect from the population
            distribution per posterior draw, independently per new group (default); use the
            population mean (effect 0); or raise.
        random_seed : int, optional
            Seeds fresh group effects and simulated responses.

        Returns
        -------
        Prediction
            ``.draws`` (xarray, dims chain, draw, row) and ``.summary(prob)``.
        """
        return prediction.predict(
            self, data, kind=kind, new_groups=new_groups, random_seed=random_seed
        )

    # -- posterior predictive checks -------------------------------------------------------
    def ppc(self, random_seed=None) -> xr.DataArray:
        """Posterior predictive draws of the outcome for the fitted rows, dims
        (chain, draw, obs): one replicated data set per posterior draw (BDA3 §6.3).

        Also stored as the ``posterior_predictive`` group of :attr:`idata`, so
        ``az.plot_ppc(result.idata)`` works.
        """
        d = self.data
        rng = np.random.default_rng(random_seed)
        values = self.family.sample(self.linear_predictor(), self._aux_draws(), d.trials, rng)
        groups.add_posterior_predictive(self, values)
        return self.idata["posterior_predictive"].to_dataset()[d.y_name]

    def prior_predictive(self, draws: int = 500, *, random_seed=None) -> xr.DataTree:
        """Draws from the prior and the prior predictive distribution of the fitted model,
        added to :attr:`idata` as the ``prior`` and ``prior_predictive`` groups (so
        ``az.plot_prior_posterior(result.idata)`` works); returns :attr:`idata`."""
        with self.model:
            prior = pm.sample_prior_predictive(draws=draws, random_seed=random_seed)
        groups.add_prior_groups(self, prior)
        return self.idata

    def add_log_likelihood(self) -> xr.DataTree:
        """Store the pointwise log-likelihood in :attr:`idata` even when it exceeds the
        size a fit stores without being asked (see :mod:`hiermodels.results.idata`)."""
        groups.add_fit_groups(self, log_likelihood=True)
        return self.idata

    def plot_ppc(self, path=None, *, n_draws: int = 50, random_seed=None, ax=None):
        """Observed outcome against replicated data sets: densities for continuous outcomes,
        frequencies with 90% intervals for counts and binary outcomes. Saves to ``path`` if
        given; returns the matplotlib Figure."""
        from hiermodels.plots import ppc_overlay

        return ppc_overlay(self, path=path, n_draws=n_draws, random_seed=random_seed, ax=ax)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path):
        """Write draws, spec, encoding, priors and version to a netCDF file (see
        :mod:`hiermodels.results.fitfile`); :func:`hiermodels.load` reads it back. Returns
        the path."""
        return fitfile.save(self, path)

    def __repr__(self) -> str:
        d = self.data
        n_draws = self.idata["posterior"].sizes
        groups = "".join(
            f" + ({'' if INTERCEPT in f.varying else '0 + '}{' + '.join(f.varying)} "
            f"{'|' if f.correlated else '||'} {f.name})"
            for f in d.factors
        )
        levels = "".join(f"{f.n_groups} {f.name} groups, " for f in d.factors)
        se = (
            ""
            if d.se_name is None
            else f" | se({d.se_name}{', sigma' if self.spec.se_sigma else ''})"
        )
        return (
            f"<HierarchicalResult {d.y_name}{se} ~ {' + '.join(d.terms[1:]) or '1'}{groups}; "
            f"{levels}{len(d.y)} rows, "
            f"{n_draws['chain']} chains x {n_draws['draw']} draws>"
        )
