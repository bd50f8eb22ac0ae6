"""What the workers run for :func:`hiermodels.lazy.collect`: one partition of a dask
DataFrame in, one small frame of sums out (numpy and pandas only, so a worker needs no PyMC).

The sums are those of :func:`hiermodels.builders.marginal.sufficient_statistics` (issue 17);
each partition's are added up by dask (``sum``, or a group-by on the grouping columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiermodels.columns import level_labels

__all__ = [
    "centred",
    "encoded_partition",
    "gram_partition",
    "group_partition",
    "outcome_and_weights",
]


def encoded_partition(part: pd.DataFrame, keep: list[str], dummies) -> pd.DataFrame:
    """``part``'s columns ``keep`` and a 0/1 column ``k[b]`` per ``(name, column, level)`` of
    ``dummies``, labelled as :func:`~hiermodels.columns.level_labels` labels (by distinct
    value, so the text of each row is not rebuilt)."""
    out = part[keep].copy()
    labels = {}
    for name, col, level in dummies:
        if col not in labels:
            codes, uniques = pd.factorize(part[col])
            labels[col] = (codes, level_labels(pd.Series(uniques, dtype=part[col].dtype)))
        codes, text = labels[col]
        out[name] = (text.to_numpy() == level)[codes].astype(float)
    return out


def centred(part: pd.DataFrame, columns, means) -> np.ndarray:
    """The centred design ``X_c`` of a partition's rows: ``1, x_k - mean(x_k)``."""
    x = [part[c].to_numpy(dtype=float) - m for c, m in zip(columns, means[1:], strict=True)]
    return np.column_stack([np.ones(len(part)), *x])


def outcome_and_weights(part, outcome) -> tuple[np.ndarray, np.ndarray]:
    """``(y - offset, w)`` of a partition's rows, ``w = 1 / se^2`` with known standard errors
    (``row_weights`` of :mod:`hiermodels.builders.marginal`), else 1. ``outcome`` is the
    column names ``(y, offset, se)``, None for an absent one."""
    y, offset, se = outcome
    t = part[y].to_numpy(dtype=float)
    if offset is not None:
        t = t - part[offset].to_numpy(dtype=float)
    w = np.ones(len(part)) if se is None else part[se].to_numpy(dtype=float) ** -2.0
    return t, w


def gram_partition(part, outcome, columns, means, centre) -> pd.DataFrame:
    """One partition's weighted sums of ``(X_c, t_c)(X_c, t_c)'`` (``t_c = y - offset -
    centre[1]``), then unweighted the sums of ``X_c**2``, of ``(y - centre[0])**2`` and of
    ``log se**2``, flattened into one row."""
    Xc = centred(part, columns, means)
    t, w = outcome_and_weights(part, outcome)
    W = np.column_stack([Xc, t - centre[1]])
    y = part[outcome[0]].to_numpy(dtype=float) - centre[0]
    log_var = -np.sum(np.log(w))
    row = np.concatenate(
        [((W * w[:, None]).T @ W).ravel(), np.sum(Xc**2, axis=0), [y @ y, log_var]]
    )
    return pd.DataFrame(row.reshape(1, -1))


def group_partition(part, outcome, cells, columns, means, shift, varying) -> pd.DataFrame:
    """One partition's weighted sums of ``Z Z'``, ``Z X_c'``, ``Z y0`` and ``W W'`` (the
    products of ``sufficient_statistics``) per distinct combination of the grouping columns
    ``cells`` (no varying terms: ``W W'`` only)."""
    Xc = centred(part, columns, means)
    t, w = outcome_and_weights(part, outcome)
    y0 = t - Xc @ shift
    raw = np.column_stack([np.ones(len(part)), *(part[c].to_numpy(dtype=float) for c in columns)])
    Z = raw[:, varying]
    W = np.column_stack([Xc, y0])
    Zw, Ww = Z * w[:, None], W * w[:, None]
    n, q, p = len(part), Z.shape[1], Xc.shape[1]
    products = np.concatenate(
        [
            (Zw[:, :, None] * Z[:, None, :]).reshape(n, q * q),
            (Zw[:, :, None] * Xc[:, None, :]).reshape(n, q * p),
            Zw * y0[:, None],
            (Ww[:, :, None] * W[:, None, :]).reshape(n, (p + 1) ** 2),
        ],
        axis=1,
    )
    frame = pd.DataFrame(products, columns=[f"s{k}" for k in range(products.shape[1])])
    for c in cells:
        frame[c] = part[c].to_numpy()
    return frame.groupby(cells, observed=True, sort=False).sum().reset_index()
