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
from dataclasses import replace

import numpy as np

from hiermodels.builders.marginal import (
    SCALARS,
    VECTORS,
    MarginalInputs,
    SufficientStatistics,
    _flat_entries,
    build_marginal,
    marginal_inputs,
    stats_entries,
)
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.defaults import resolve_priors
from hiermodels.engines.marginal import fit_marginal, marginal_supported
from hiermodels.errors import PriorWarning, SpecError
from hiermodels.lazy import AggregatedData, NotCollected, collect, lazy_supported
from hiermodels.names import INTERCEPT, effect_name, sigma_name
from hiermodels.results.hierarchical import HierarchicalResult
from hiermodels.sampling import SamplingOptions
from hiermodels.spec import HierarchicalSpec

__all__ = ["AggregatedResult", "fit_lazy"]


def _moments(data: AggregatedData) -> GroupedData:
    """Two rows with the mean and SD of ``y`` and the SD of each predictor of ``data``.

    :func:`~hiermodels.defaults.resolve_priors` and the marginal model's standardizing read
    the data only through ``data_scales`` (``mean(y)``, ``sd(y)`` with ddof 1, ``sd(x)``
    with ddof 0) and names; two rows ``m -+ s`` give them exactly these numbers without a
    second copy of their rules.
    """
    s = data.sums
    y = s["mean_y"] + s["sd_y"] / np.sqrt(2.0) * np.array([-1.0, 1.0])
    X = np.column_stack(
        [np.ones(2)]
        + [
            m + sd * np.array([-1.0, 1.0])
            for m, sd in zip(s["means"][1:], s["sd_x"][1:], strict=True)
        ]
    )
    f = data.factor
    factor = GroupFactor(f.name, f.columns, f.levels, np.array([0, 1]), f.varying,
                         f.group_level, f.correlated)  # fmt: skip
    return GroupedData(y, data.y_name, X, data.terms, (factor,), (0, 1), data.predictors)


def aggregated_inputs(data: AggregatedData, spec, priors) -> MarginalInputs:
    """:func:`~hiermodels.builders.marginal.marginal_inputs` with the sums of ``data``.

    ``marginal_inputs`` computes the sums from rows; here it runs on :func:`_moments` (for
    the priors' numbers, the structure and the layout) and its sums are replaced by the
    collected ones, entry by entry at the positions its layout names.
    """
    s = data.sums
    stats = SufficientStatistics(
        **{k: s[k] for k in ("n_obs", "XtX", "Xty", "yty", "ZtZ", "ZtX", "Zty", "shift", "means")}
    )
    inputs = marginal_inputs(_moments(data), spec, priors)
    entries = _flat_entries(stats_entries(stats))
    values = {}
    for (name, rows), layout in zip(inputs.values.items(), inputs.layout, strict=True):
        rows = np.array(rows, copy=True)
        for i, key in enumerate(layout):
            if key in entries:
                rows[i] = entries[key]
        values[name] = rows
    assert set(values) == {SCALARS, VECTORS}
    return replace(inputs, values=values, stats=stats)


def fit_lazy(
    ddf, spec: HierarchicalSpec, options: SamplingOptions, *, engine: str
) -> AggregatedResult:
    """Fit the model of ``spec`` to the dask DataFrame ``ddf`` with the marginal engine.

    ``engine`` must be ``"marginal"`` or ``"auto"``: the full engine samples every group
    effect from the rows, which are not collected. Raises :class:`SpecError` for a model
    the marginal engine cannot fit (:func:`hiermodels.lazy.lazy_supported`) and the named
    errors of :func:`hiermodels.lazy.collect` for bad data.
    """
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
    priors = resolve_priors(_moments(data), spec)
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
        posterior means, then each level on its own rows, as
        :func:`~hiermodels.numerics.pooling.no_pooling_by_group` (the pandas path's choice
        for large data; with no such terms it equals the joint least squares fit)."""
        d, f = self.data, self._factor(group)
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
        std = np.sqrt(s2 * np.einsum("jaa->ja", inv))
        est[~ok], std[~ok] = np.nan, np.nan
        return est, std
