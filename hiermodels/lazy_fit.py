"""Fit a dask DataFrame with the marginal engine from its aggregates (issue 17).

:func:`fit_lazy` summarizes the frame where its rows are (:func:`hiermodels.lazy.collect`),
resolves the priors and the marginal model's inputs from the sums, and samples locally: the
same priors, graph, compiled model and seeds as the pandas marginal path, so the draws agree
with a pandas fit of the same rows up to the rounding of the sums. The result is an
:class:`AggregatedResult`: ``summary()``, ``group_effects()`` and ``predict()`` work;
what needs the rows (``log_likelihood()``, LOO, ``ppc()``, ``save()``) raises
:class:`~hiermodels.lazy.RowsNotCollectedError`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from hiermodels.builders.marginal import (
    MarginalInputs,
    SufficientStatistics,
    build_marginal,
    marginal_inputs,
)
from hiermodels.builders.marginal_nested import (
    NestedStatistics,
    nested_factors,
    nested_from_gram,
)
from hiermodels.defaults import resolve_priors
from hiermodels.engines.marginal import fit_marginal, marginal_supported
from hiermodels.errors import PriorWarning, SpecError
from hiermodels.lazy import AggregatedData, NotCollected, collect, lazy_supported
from hiermodels.names import INTERCEPT, effect_name, sigma_name
from hiermodels.results.hierarchical import HierarchicalResult
from hiermodels.sampling import ENGINES, SamplingOptions
from hiermodels.spec import HierarchicalSpec

__all__ = ["AggregatedResult", "aggregated_inputs", "fit_lazy", "nested_aggregates"]


def aggregated_inputs(data: AggregatedData, spec, priors) -> MarginalInputs:
    """:func:`~hiermodels.builders.marginal.marginal_inputs` from the collected sums and
    scales of ``data`` (its rows are not read): one factor's
    :class:`~hiermodels.builders.marginal.SufficientStatistics`, or two nested factors'
    :func:`nested_aggregates`."""
    s = data.sums
    if len(data.factors) == 2:
        stats = nested_aggregates(data)
    else:
        keys = ("n_obs", "XtX", "Xty", "yty", "ZtZ", "ZtX", "Zty", "shift", "means")
        stats = SufficientStatistics(**{k: s[k] for k in keys}, sum_log_var=s["sum_log_var"])
    return marginal_inputs(data, spec, priors, stats=stats, scales=data.scales())


def nested_aggregates(data: AggregatedData) -> NestedStatistics:
    """The :class:`~hiermodels.builders.marginal_nested.NestedStatistics` of two nested
    factors from the per-cell sums :func:`~hiermodels.lazy.collect` gives: each cell's
    ``W W'`` added up per inner group, then
    :func:`~hiermodels.builders.marginal_nested.nested_from_gram`, as for a pandas frame."""
    found = nested_factors(data)
    if found is None:  # collect refuses crossed factors first
        raise SpecError("the grouping factors are crossed; the marginal engine needs nested ones")
    inner = found[1]
    s = data.sums
    gram = np.zeros((inner.n_groups, *s["cell_gram"].shape[1:]))
    np.add.at(gram, inner.cells, s["cell_gram"])
    return nested_from_gram(
        gram,
        data,
        found,
        means=s["means"],
        shift=s["shift"],
        n_obs=s["n_obs"],
        sum_log_var=s["sum_log_var"],
    )


def fit_lazy(
    ddf, spec: HierarchicalSpec, options: SamplingOptions, *, engine: str
) -> AggregatedResult:
    """Fit the model of ``spec`` to the dask DataFrame ``ddf`` with the marginal engine.

    ``engine`` must be ``"marginal"`` or ``"auto"``: the full engine samples every group
    effect from the rows, which are not collected. Raises :class:`SpecError` for a model
    the marginal engine cannot fit (:func:`hiermodels.lazy.lazy_supported`) and the named
    errors of :func:`hiermodels.lazy.collect` for bad data.
    """
    if engine not in ENGINES:
        raise SpecError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine not in ("marginal", "auto"):
        raise SpecError(
            f"engine={engine!r} needs the rows of the data; a dask DataFrame is fitted from "
            "its aggregates by engine='marginal' (or 'auto'), or call .compute() first to fit "
            "a pandas frame that fits in memory"
        )
    ok, reason = lazy_supported(spec)
    if not ok:
        raise SpecError(
            f"a dask DataFrame is fitted by the marginal engine, which cannot fit this model: "
            f"{reason}; call .compute() first to fit a pandas frame with engine='full'"
        )
    clock = time.perf_counter()
    data = collect(ddf, spec)
    collect_s = time.perf_counter() - clock
    priors = resolve_priors(data, spec, scales=data.scales())
    for f, t in data.effects:
        message = priors[sigma_name(t, f.name)].prior.warning(f.n_groups)
        if message:
            warnings.warn(message, PriorWarning, stacklevel=3)
    ok, reason = marginal_supported(data, spec)
    if not ok:
        raise SpecError(f"engine='marginal' does not apply here: {reason}")
    inputs = aggregated_inputs(data, spec, priors)
    idata, messages = fit_marginal(data, spec, priors, options, inputs=inputs)
    idata["posterior"].attrs.update(engine="marginal", marginal_collect_s=round(collect_s, 3))
    idata.attrs["log_likelihood"] = (
        "not stored: the model was fitted from the aggregates of a dask DataFrame, whose rows "
        "were not collected"
    )
    model = build_marginal(data, spec, priors, inputs)
    return AggregatedResult(idata, model, data, spec, priors, messages)


class AggregatedResult(HierarchicalResult):
    """A :class:`~hiermodels.results.hierarchical.HierarchicalResult` fitted from the
    aggregates of a dask DataFrame: the group-level estimates come from the per-group sums;
    row-level results raise :class:`~hiermodels.lazy.RowsNotCollectedError`."""

    def _rows(self, what: str) -> NotCollected:
        return NotCollected(self.data.sums["n_obs"], what)

    def add_log_likelihood(self):
        """Refused: the pointwise log-likelihood is one value per row and draw."""
        self._rows("for the pointwise log-likelihood").__array__()

    def save(self, path):
        """Refused: a fit file holds the rows (:mod:`hiermodels.results.fitfile`); the draws
        alone are saved by ``result.idata.to_netcdf(path)``."""
        self._rows("a fit file stores them").__array__()

    def group_coefficient_draws(self, group: str | None = None):
        """As :meth:`HierarchicalResult.group_coefficient_draws`, with each group-level
        predictor's value per level from the aggregates."""
        f = self._factor(group)
        coef, target = {}, {}
        for t in f.varying:
            base = self._posterior(t).reshape(-1, 1) * np.ones(f.n_groups)
            if t == INTERCEPT:
                for k, term in enumerate(f.group_level):
                    base = base + self._posterior(term).reshape(-1, 1) * f.group_values[:, k]
            dev = self._posterior(effect_name(t, f.name)).reshape(-1, f.n_groups)
            coef[t], target[t] = base + dev, base
        return coef, target

    def no_pooling(self, group: str | None = None):
        """Each level's own least squares coefficients and SEs from the per-group sums: the
        population terms that do not vary (nor are absorbed by a varying intercept) at their
        posterior means, then each level on its own rows (less the offset; weighted by
        ``1 / se^2``, with the SEs of known variances, given standard errors), as
        :func:`~hiermodels.numerics.pooling.no_pooling_by_group` (the pandas path's choice
        for large data; with no such terms it equals the joint least squares fit)."""
        d, f = self.data, self._factor(group)
        if len(d.factors) > 1:  # as HierarchicalResult.no_pooling: one factor only
            nan = np.full((f.n_groups, len(f.varying)), np.nan)
            return nan, nan.copy()
        s, p, q = d.sums, len(d.terms), len(f.varying)
        absorbed = f.group_level if INTERCEPT in f.varying else ()
        shared = [t for t in d.terms if t not in f.varying and t not in absorbed]
        # r = y - sum_shared b_t x_t = W v with W = (X_c, y0): x_t = x_c,t + mean_t
        c = np.zeros(p)
        for t in shared:
            k = d.terms.index(t)
            c[k] = self._posterior(t).mean()
            c[0] += c[k] * s["means"][k]
        v = np.append(s["shift"] - c, 1.0)
        ztr = s["Zty"] + s["ZtX"] @ v[:p]
        rtr = np.einsum("a,jab,b->j", v, s["gram"], v)
        ztz = s["ZtZ"]
        ok = np.linalg.matrix_rank(ztz) == q
        inv = np.linalg.inv(np.where(ok[:, None, None], ztz, np.eye(q)))
        est = np.einsum("jab,jb->ja", inv, ztr)
        rss = np.sum((rtr - np.einsum("ja,ja->j", est, ztr))[ok])
        s2 = rss / max(int(f.n_obs[ok].sum()) - q * int(ok.sum()), 1)
        if d.se is not None:  # the sums are weighted by 1 / se^2: known variances
            s2 = 1.0
        std = np.sqrt(s2 * np.einsum("jaa->ja", inv))
        est[~ok], std[~ok] = np.nan, np.nan
        return est, std
