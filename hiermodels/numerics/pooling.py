"""No-pooling estimates and the shrinkage measure shared by every result (numpy only)."""

from __future__ import annotations

import numpy as np

from hiermodels.numerics.linear import flat_prior_regression

__all__ = ["no_pooling_design", "no_pooling_fit", "no_pooling_glm", "shrinkage"]


def shrinkage(no_pooling, partial, complete):
    """Fraction of the way each estimate moved from no pooling toward complete pooling.

    ``(no_pooling - partial) / (no_pooling - complete)``: 0 means the group kept its own
    estimate, 1 that it was pulled all the way to the population value. For the normal-normal
    model it equals ``sigma_j^2 / (sigma_j^2 + tau^2)`` at fixed tau (BDA3 eq. 5.17).
    NaN where the group has no estimate of its own or it already equals the population value.

    Examples
    --------
    >>> shrinkage(10.0, 7.0, 4.0)
    0.5
    """
    no_pooling, partial, complete = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (no_pooling, partial, complete))
    )
    gap = no_pooling - complete
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(
            np.abs(gap) > 1e-12 * (1 + np.abs(complete)), (no_pooling - partial) / gap, np.nan
        )
    return float(out) if out.ndim == 0 else out


def no_pooling_design(X_shared, Z, group_idx, n_groups) -> np.ndarray:
    """Design of the no-pooling regression: each column of ``Z`` split into one per group.

    Columns are ordered group-major (group 0's q columns, group 1's, ...), then the columns
    of ``X_shared``, which keep one coefficient for all groups.
    """
    Z = np.asarray(Z, dtype=float)
    n, q = Z.shape
    X_shared = np.asarray(X_shared, dtype=float).reshape(n, -1)
    blocks = np.zeros((n, n_groups * q))
    cols = np.asarray(group_idx)[:, None] * q + np.arange(q)[None, :]
    blocks[np.arange(n)[:, None], cols] = Z
    return np.hstack([blocks, X_shared])


def no_pooling_fit(y, X_shared, Z, group_idx, n_groups, *, se=None):
    """Least squares with a separate coefficient per group for each column of ``Z``.

    The no-pooling model of Gelman & Hill (2007, §12.2) generalised to varying slopes: the
    columns of ``X_shared`` have one coefficient for all groups, those of ``Z`` one per group
    (tau -> infinity). A group's coefficient is NaN where its own rows cannot identify it
    (e.g. a county whose houses all have the same floor has no slope of its own).

    With known standard errors ``se`` of ``y`` (a meta-analysis) it is weighted least squares
    with weights ``1 / se_i^2``, and the standard errors are those of known variances,
    ``sqrt(diag((A' W A)^-1))``, with no residual variance estimated (the fixed-effect
    estimate of each group, Hedges & Olkin 1985; so one row per group gives back ``y_i`` and
    ``se_i``).

    Returns
    -------
    estimates, std_errors : (n_groups, q) arrays (classical standard errors).

    Examples
    --------
    >>> import numpy as np
    >>> est, se = no_pooling_fit(np.array([1.0, 3.0, 5.0]), np.empty((3, 0)), np.ones((3, 1)),
    ...                          np.array([0, 0, 1]), 2, se=np.array([1.0, 2.0, 0.5]))
    >>> est.ravel().round(3).tolist(), se.ravel().round(3).tolist()
    ([1.4, 5.0], [0.894, 0.5])
    """
    y = np.asarray(y, dtype=float)
    q = np.asarray(Z).reshape(len(y), -1).shape[1]
    A = no_pooling_design(X_shared, Z, group_idx, n_groups)
    m = n_groups * q
    if se is None:
        fit = flat_prior_regression(y, A)
        std = np.sqrt(fit.s2 * np.diag(fit.cov_unscaled())[:m])
    else:
        # rows divided by their SE: ordinary least squares on these is WLS with 1/se^2
        w = 1.0 / np.asarray(se, dtype=float)
        fit = flat_prior_regression(w * y, w[:, None] * A)
        std = np.sqrt(np.diag(fit.cov_unscaled())[:m])
    return _per_group(fit.coef[:m], std, fit.estimable[:m], n_groups, q)


def _per_group(coef, se, keep, n_groups, q):
    """The group-major coefficients and SEs as (n_groups, q) tables, NaN where not ``keep``."""
    est = np.where(keep, coef, np.nan).reshape(n_groups, q)
    return est, np.where(keep, se, np.nan).reshape(n_groups, q)


def no_pooling_glm(
    y,
    X_shared,
    Z,
    group_idx,
    n_groups,
    *,
    link: str,
    trials=None,
    offset=None,
    max_iter: int = 60,
    tol: float = 1e-9,
):
    """Maximum likelihood with a separate coefficient per group: the no-pooling logistic
    (``link="logit"``, binomial with ``trials``, 1 if None) or Poisson (``link="log"``)
    regression, by iteratively reweighted least squares (McCullagh & Nelder 1989, §2.5).

    A group's coefficient is NaN where its own rows cannot identify it: a column it cannot
    vary, or separation (all successes or all failures, all-zero counts), where the
    likelihood keeps rising as the coefficient runs off to infinity; such coefficients are
    recognised by a standard error above 100 on the link scale.

    Returns
    -------
    estimates, std_errors : (n_groups, q) arrays on the link scale.
    """
    if link not in ("logit", "log"):
        raise ValueError(f"link must be 'logit' or 'log', got {link!r}")
    y = np.asarray(y, dtype=float)
    n_rows = len(y)
    q = np.asarray(Z).reshape(n_rows, -1).shape[1]
    A = no_pooling_design(X_shared, Z, group_idx, n_groups)
    off = np.zeros(n_rows) if offset is None else np.asarray(offset, dtype=float)
    size = np.ones(n_rows) if trials is None else np.asarray(trials, dtype=float)
    # start from the data, nudged off the boundary (the usual GLM initialisation)
    if link == "logit":
        p0 = (y + 0.5) / (size + 1)
        eta = np.log(p0 / (1 - p0))
    else:
        eta = np.log(y + 0.5)
    coef = None
    for _ in range(max_iter):
        if link == "logit":
            prob = 1 / (1 + np.exp(-eta))
            mean, weight = size * prob, size * prob * (1 - prob)
        else:
            mean = np.exp(eta)
            weight = mean
        weight = np.maximum(weight, 1e-12)
        working = eta - off + (y - mean) / weight
        root = np.sqrt(weight)
        fit = flat_prior_regression(root * working, root[:, None] * A)
        step = np.inf if coef is None else np.max(np.abs(fit.coef - coef)[fit.estimable])
        coef = fit.coef
        eta = np.clip(A @ coef + off, -50, 50)
        if step < tol:
            break
    m = n_groups * q
    se = np.sqrt(np.diag(fit.cov_unscaled())[:m])
    keep = fit.estimable[:m] & (se < 100) & np.isfinite(coef[:m])
    return _per_group(coef[:m], se, keep, n_groups, q)
