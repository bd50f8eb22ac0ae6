"""Summaries of posterior draws and the linear predictor per draw (numpy, xarray, ArviZ)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hiermodels.data import GroupedData

__all__ = ["interval_columns", "linear_predictor_draws", "summarize_draws"]


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


def linear_predictor_draws(posterior, data: GroupedData, X, deviations, offset=None):
    """``offset + X beta + sum_(f, t) deviations_(f, t) * X_t`` per draw: (chain, draw, n).

    ``X`` has the columns ``data.terms``; ``deviations`` (chain, draw, n, len(data.effects))
    the deviation of each row's level for each (factor, varying term) pair of
    ``data.effects``. Shared by fitted rows and predictions.
    """
    eta = 0.0 if offset is None else offset
    for k, t in enumerate(data.terms):
        eta = eta + np.asarray(posterior[t])[..., None] * X[:, k]
    for e, (_, t) in enumerate(data.effects):
        eta = eta + deviations[..., e] * X[:, data.terms.index(t)]
    return eta


def interval_columns(samples: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    """mean, sd, ci_low, ci_high over the leading (sample) axis."""
    tail = (1 - prob) / 2
    return {
        "mean": samples.mean(axis=0),
        "sd": samples.std(axis=0, ddof=1),
        "ci_low": np.quantile(samples, tail, axis=0),
        "ci_high": np.quantile(samples, 1 - tail, axis=0),
    }
