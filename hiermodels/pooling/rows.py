"""No, complete and partial pooling of row-level data: exact no/complete pooling under the
reference prior, beside the sampled hierarchical model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.data import GroupedData
from hiermodels.errors import DataError
from hiermodels.names import INTERCEPT
from hiermodels.numerics.linear import flat_prior_regression
from hiermodels.numerics.pooling import no_pooling_design
from hiermodels.pooling.comparison import (
    EXACT_DRAWS,
    PooledFit,
    PoolingComparison,
    Summary,
)

__all__ = ["check_no_pooling_identified", "compare_rows"]


# -- row-level data ---------------------------------------------------------------------------
def _no_pooling_design_of(d: GroupedData) -> np.ndarray:
    """The no-pooling design: varying terms per group, the other terms shared."""
    shared = [t for t in d.terms if t not in d.varying and t not in d.group_level]
    X_shared = np.column_stack([d.column(t) for t in shared]) if shared else np.empty((len(d.y), 0))
    return no_pooling_design(X_shared, d.Z, d.group_idx, d.n_groups)


def check_no_pooling_identified(d: GroupedData) -> None:
    """No pooling needs residual degrees of freedom for sigma (one row per group has none)."""
    design = _no_pooling_design_of(d)
    rank = np.linalg.matrix_rank(design)
    if len(d.y) - rank < 1:
        raise DataError(
            f"no pooling fits {', '.join(d.varying)} separately for each of the {d.n_groups} "
            f"{d.group!r} groups: {rank} coefficients from {len(d.y)} rows leave no residual "
            "degrees of freedom for sigma (groups have too few rows, e.g. one each); "
            "compare_pooling needs some groups with more rows than varying terms, or use "
            "fit_hierarchical for the partial-pooling fit alone"
        )


def compare_rows(partial, *, rng, chains) -> PoolingComparison:
    d: GroupedData = partial.data
    J, q = d.n_groups, len(d.varying)
    n = EXACT_DRAWS // chains
    none_design = _no_pooling_design_of(d)
    none = flat_prior_regression(d.y, none_design)
    complete = flat_prior_regression(d.y, d.X)
    # contrasts: group j's coefficient of each varying term, as c' beta
    none_c, complete_c = {}, {}
    first_rows = d.first_rows
    for k, t in enumerate(d.varying):
        c = np.zeros((J, none_design.shape[1]))
        c[np.arange(J), np.arange(J) * q + k] = 1.0
        none_c[t] = c
        c = np.zeros((J, d.X.shape[1]))
        c[:, d.terms.index(t)] = 1.0
        if t == INTERCEPT:  # the population value includes the group-level predictors
            for g in d.group_level:
                c[:, d.terms.index(g)] = d.column(g)[first_rows]
        complete_c[t] = c

    def regression_fit(reg, design, contrasts):
        beta, sigma = reg.draw(n * chains, rng)
        mean = beta @ design.T
        ll = stats.norm.logpdf(d.y, mean, sigma[:, None]).reshape(chains, n, -1)
        return PooledFit(
            summarize=lambda prob: {t: reg.summary(prob, c) for t, c in contrasts.items()},
            log_likelihood=ll,
            reff=1.0,
            result=reg,
        )

    fits = {
        "none": regression_fit(none, none_design, none_c),
        "complete": regression_fit(complete, d.X, complete_c),
        "partial": PooledFit(
            summarize=lambda prob: _partial_row_summary(partial, prob),
            log_likelihood=partial.log_likelihood(),
            result=partial,
        ),
    }
    return PoolingComparison(
        kind="rows",
        group=d.group,
        labels=tuple(d.levels),
        terms=tuple(d.varying),
        precision=pd.DataFrame({"n_obs": d.n_obs}),
        fits=fits,
    )


def _partial_row_summary(result, prob) -> Summary:
    effects = result.group_effects(prob)
    out = {}
    for t, rows in effects.groupby("term", sort=False):
        out[t] = {
            "mean": rows["mean"].to_numpy(),
            "sd": rows["sd"].to_numpy(),
            "lower": rows["ci_low"].to_numpy(),
            "upper": rows["ci_high"].to_numpy(),
        }
    return out
