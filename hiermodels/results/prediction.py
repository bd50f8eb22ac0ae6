"""Predictions for new rows, including rows of groups the model has never seen.

For a known group the posterior draws of its deviations are used. For a new group, each
posterior draw gets a fresh deviation from the population distribution,
``b_new ~ MvNormal(0, S R S)`` with that draw's SDs and correlations (Gelman & Hill 2007,
§12.8; BDA3 §5.3's posterior predictive for a new group), one per new group label, shared by
that group's rows. This is what makes an interval for a new group wider than for a
well-measured known one. With several grouping factors this is done factor by factor: a new
class in a known school keeps its school's deviation and gets a fresh class deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from hiermodels.columns import numeric_column, require_columns, require_finite
from hiermodels.data import factor_labels, se_column
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.frames import to_pandas
from hiermodels.names import corr_name, effect_name, sigma_name
from hiermodels.results.draws import linear_predictor_draws

__all__ = ["NEW_GROUPS", "Prediction", "predict"]

NEW_GROUPS = ("population", "zero", "error")
KINDS = ("mean", "response")


@dataclass(frozen=True, eq=False)
class Prediction:
    """Draws and summary of predictions for new rows.

    Attributes
    ----------
    draws : xarray.DataArray
        Dims ``(chain, draw, row)``; ``row`` is the index of the new DataFrame.
    kind : "mean" (expected outcome) or "response" (a new observation).
    groups : DataFrame with each row's level of every grouping factor (one column each).
    new_levels : DataFrame of bools, whether that level was not seen in fitting.
    new_group : (n_rows,) bool, whether any of the row's levels was not seen in fitting.
    """

    draws: xr.DataArray
    kind: str
    groups: pd.DataFrame
    new_levels: pd.DataFrame

    @property
    def new_group(self) -> np.ndarray:
        return self.new_levels.any(axis=1).to_numpy()

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per new row: the level of each grouping factor, new_group (any level
        unseen), mean, sd, median, ci_low, ci_high."""
        values = np.asarray(self.draws).reshape(-1, self.draws.sizes["row"])
        tail = (1 - prob) / 2
        table = pd.DataFrame(
            {
                **{name: self.groups[name].to_numpy() for name in self.groups.columns},
                "new_group": self.new_group,
                "mean": values.mean(axis=0),
                "sd": values.std(axis=0, ddof=1),
                "median": np.median(values, axis=0),
                "ci_low": np.quantile(values, tail, axis=0),
                "ci_high": np.quantile(values, 1 - tail, axis=0),
            },
            index=self.groups.index,
        )
        table.attrs["prob"] = prob
        return table


def predict(
    result,
    data: pd.DataFrame,
    *,
    kind: str = "mean",
    new_groups: str = "population",
    random_seed=None,
) -> Prediction:
    """See :meth:`hiermodels.HierarchicalResult.predict`."""
    if kind not in KINDS:
        raise SpecError(f"kind must be one of {KINDS}, got {kind!r}")
    if new_groups not in NEW_GROUPS:
        raise SpecError(f"new_groups must be one of {NEW_GROUPS}, got {new_groups!r}")
    data = to_pandas(data, what="the new rows")
    d, family = result.data, result.family
    columns = list(dict.fromkeys(c for f in d.factors for c in f.columns))
    needed = list(dict.fromkeys([*columns, *d.design.columns]))
    if d.offset_name:
        needed.append(d.offset_name)
    if family.needs_trials:
        needed.append(d.trials_name)
    if kind == "response" and d.se_name is not None and d.se_name not in data.columns:
        raise DataError(
            f"kind='response' simulates new observations, whose spread is their known standard "
            f"error: the standard error column {d.se_name!r} (the model's se) is not in the new "
            "rows; add each new row's standard error, or use kind='mean' for the expected "
            "outcome, which needs none"
        )
    require_columns(data, needed)
    require_finite(data, needed)
    # formulae re-encodes the rows as in fitting: the training levels of categorical terms,
    # the training mean and SD of scale(x), np.log of the new values
    X = d.design.encode(data)
    labels = pd.DataFrame(
        {f.name: factor_labels(data, f.columns) for f in d.factors}, index=data.index
    )
    # each row's level code per factor, as in fitting; -1 for a level not seen there
    codes = {f.name: pd.Index(f.levels).get_indexer(labels[f.name]) for f in d.factors}
    new_levels = pd.DataFrame({name: c < 0 for name, c in codes.items()}, index=data.index)
    if new_levels.to_numpy().any() and new_groups == "error":
        unseen = "; ".join(
            f"grouping factor {f.name!r} has level(s) not seen in fitting: "
            f"{sorted(labels[f.name][new_levels[f.name]].unique())} "
            f"({format_rows(data.index[new_levels[f.name].to_numpy()])})"
            for f in d.factors
            if new_levels[f.name].any()
        )
        raise DataError(
            f"{unseen}; use "
            "new_groups='population' to draw their effects from the population distribution "
            "or 'zero' to predict at the population mean"
        )
    rng = np.random.default_rng(random_seed)
    post = result.idata["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    # deviations per (factor, term): posterior draws for known levels, fresh population
    # draws (one per new level, shared by its rows) for new ones
    dev = np.zeros((chains, draws, len(data), len(d.effects)))
    start = 0
    for f in d.factors:
        block = slice(start, start + len(f.varying))
        start = block.stop
        is_new = codes[f.name] < 0
        old_rows = np.flatnonzero(~is_new)
        for q, t in enumerate(f.varying):
            effect = np.asarray(post[effect_name(t, f.name)])
            dev[:, :, old_rows, block.start + q] = effect[..., codes[f.name][old_rows]]
        if is_new.any() and new_groups == "population":
            rows = np.flatnonzero(is_new)
            # one fresh draw per new level (sorted labels), shared by that level's rows
            new_labels, picked = np.unique(labels[f.name].to_numpy()[rows], return_inverse=True)
            fresh = _population_draws(post, f, len(new_labels), rng)  # (chain, draw, n_new, q)
            dev[:, :, rows, block] = fresh[:, :, picked, :]
    offset = numeric_column(data, d.offset_name, "offset") if d.offset_name else None
    eta = linear_predictor_draws(post, d, X, dev, offset)
    trials = numeric_column(data, d.trials_name, "trials") if family.needs_trials else None
    if kind == "mean":
        values = family.mean(eta, trials)
    else:
        aux = {a.name: np.asarray(post[a.name])[..., None] for a in result.spec.aux}
        se = se_column(data, d.se_name) if d.se_name is not None else None
        values = family.sample(eta, family.observation_aux(aux, se), trials, rng).astype(float)
    draws_da = xr.DataArray(
        values,
        dims=("chain", "draw", "row"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "row": data.index},
        name=f"{d.y_name}_{kind}",
    )
    return Prediction(draws_da, kind, labels, new_levels)


def _population_draws(post, f, n_new: int, rng) -> np.ndarray:
    """(chain, draw, n_new, q) deviations of new levels of factor ``f``, drawn from each
    posterior draw's population distribution."""
    sds = np.stack([np.asarray(post[sigma_name(t, f.name)]) for t in f.varying], axis=-1)
    chains, draws, q = sds.shape
    z = rng.standard_normal((chains, draws, n_new, q))
    corr = corr_name(f.name)
    if q > 1 and corr in post:
        chol = np.linalg.cholesky(np.asarray(post[corr]))  # (chain, draw, q, q)
        z = np.einsum("cdij,cdnj->cdni", chol, z)
    return z * sds[:, :, None, :]
