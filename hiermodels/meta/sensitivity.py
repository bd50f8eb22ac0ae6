"""Sensitivity tables of a meta-analysis: case-deletion influence diagnostics and the
cumulative meta-analysis, as metafor's ``influence()`` and ``cumul()``.

Both are frequentist (:mod:`hiermodels.numerics.influence`, tested against metafor) and do not
depend on the engine; the Bayesian leave-one-out is
:meth:`~hiermodels.meta.result.MetaAnalysisResult.leave_one_out`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiermodels.data import numeric_column, require_columns
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.meta.inference import check_method, check_prob, check_test
from hiermodels.numerics.influence import cumulative, influence

__all__ = ["cumulative_table", "influence_table"]


def influence_table(result, method="REML", test="z") -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.influence`."""
    check_method(method, bayes=False)
    check_test(test)
    d = result.data
    if d.k - 1 <= d.X.shape[1]:
        raise DataError(
            f"leaving one of {d.k} studies out leaves too few to estimate {d.X.shape[1]} "
            "coefficient(s) and tau^2; influence diagnostics need more studies"
        )
    inf = influence(d.y, d.se, d.X if d.has_moderators else None, method=method, test=test)
    table = pd.DataFrame(
        {
            "study": list(d.labels),
            "rstudent": inf.rstudent,
            "dffits": inf.dffits,
            "cook_d": inf.cook_d,
            "cov_r": inf.cov_r,
            "tau2_del": inf.tau2_del,
            "QE_del": inf.QE_del,
            "hat": inf.hat,
            "weight": inf.weight,
            **{f"dfbetas_{n}": inf.dfbetas[:, k] for k, n in enumerate(result.coefficient_names)},
            "is_influential": inf.is_influential,
        }
    )
    table.attrs.update(method=method, test=test)
    return table


def _order(result, order):
    """Sort positions of the studies: by a column of the data, by given keys, or as given."""
    d = result.data
    if order is None:
        return np.arange(d.k), None
    if isinstance(order, str):
        if result.frame is None:
            raise SpecError(
                f"order={order!r} names a column, but this result keeps no data frame; pass "
                "the sort keys as an array"
            )
        require_columns(result.frame, [order])
        keys = result.frame[order]
        if keys.isna().any():
            bad = result.frame.index[keys.isna().to_numpy()]
            raise DataError(
                f"column {order!r} has missing values ({format_rows(bad)}); fill them or pass "
                "the sort keys as an array"
            )
        if pd.api.types.is_numeric_dtype(keys):
            keys = numeric_column(result.frame, order, "order")
        else:
            keys = keys.to_numpy()
        return np.argsort(keys, kind="stable"), order
    keys = np.asarray(order)
    if keys.ndim != 1 or len(keys) != d.k:
        raise SpecError(
            f"order must name a column or hold one sort key per study ({d.k}), got shape "
            f"{keys.shape}"
        )
    return np.argsort(keys, kind="stable"), None


def cumulative_table(result, order=None, method="REML", test="z", prob=0.95):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.cumulative`."""
    check_method(method, bayes=False)
    check_test(test)
    prob = check_prob(prob)
    d = result.data
    idx, column = _order(result, order)
    cu = cumulative(d.y[idx], d.se[idx], method=method, test=test, level=prob)
    table = pd.DataFrame(
        {
            "study": np.asarray(d.labels)[idx],
            "k": np.arange(1, d.k + 1),
            "mu": cu.estimate,
            "mu_se": cu.se,
            "pvalue": cu.pval,
            "ci_low": cu.ci_low,
            "ci_high": cu.ci_high,
            "Q": cu.Q,
            "Q_pvalue": cu.Qp,
            "tau2": cu.tau2,
            "I2": cu.I2,
            "H2": cu.H2,
        }
    )
    if column is not None:
        table.insert(1, column, result.frame[column].to_numpy()[idx])
    table.attrs.update(method=method, test=test, prob=prob)
    return table
