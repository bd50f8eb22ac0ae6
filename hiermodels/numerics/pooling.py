"""No-pooling estimates and the two shrinkage measures shared by every result (numpy only):
the pooling factor (the headline, in [0, 1]) and the shrinkage ratio (where stable)."""

from __future__ import annotations

import numpy as np

from hiermodels.numerics.linear import flat_prior_regression

__all__ = [
    "no_pooling_by_group",
    "no_pooling_design",
    "no_pooling_fit",
    "no_pooling_glm",
    "pooling_factor",
    "shrinkage_ratio",
]


def pooling_factor(se, tau_draws) -> np.ndarray:
    """How much each group is pooled toward its population value, in [0, 1]: the headline
    shrinkage number of every result.

    ``E[se_j^2 / (se_j^2 + tau^2) | y]`` over the posterior draws of tau, with ``se_j`` the
    standard error of group j's own (no-pooling) estimate: 0 = the group keeps its own
    estimate, 1 = it is pulled all the way to the population value. For the normal-normal
    model this is exactly the weight BDA3 eq. 5.17 puts on the population mean; for a
    regression term it is the same ratio with the group's own standard error (Gelman &
    Pardoe 2006's pooling factor, per group). NaN where the group has no estimate of its
    own (NaN se).

    Examples
    --------
    >>> float(pooling_factor(1.0, np.array([1.0, 1.0])))
    0.5
    """
    se = np.asarray(se, dtype=float)
    tau2 = np.asarray(tau_draws, dtype=float).reshape(-1, *([1] * se.ndim)) ** 2
    with np.errstate(invalid="ignore"):
        factor = (se**2 / (se**2 + tau2)).mean(axis=0)
    return float(factor) if factor.ndim == 0 else factor


def shrinkage_ratio(no_pooling, partial, population, se):
    """The fraction of the gap between a group's own estimate and its population value that
    partial pooling closed, ``(no_pooling - partial) / (no_pooling - population)``, reported
    only where it is stable: where the gap is at least one standard error of the own
    estimate. Elsewhere (an estimate already near the population value) the ratio divides by
    noise (values like 4.5 or -4.3 for tiny gaps) and is NaN. Use :func:`pooling_factor` as
    the headline number; this ratio shows how far an estimate actually moved.

    Examples
    --------
    >>> float(shrinkage_ratio(10.0, 7.0, 4.0, se=2.0))
    0.5
    >>> bool(np.isnan(shrinkage_ratio(4.5, 4.2, 4.0, se=2.0)))
    True
    """
    own, partial, population, se = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (no_pooling, partial, population, se))
    )
    gap = own - population
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.abs(gap) >= se, (own - partial) / gap, np.nan)
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


def no_pooling_by_group(y, Z, group_idx, n_groups, *, se=None):
    """Each group's own least-squares coefficients on ``Z`` and their standard errors, from
    per-group sums only (O(n q^2) time, O(groups q^2) memory): the no-pooling fit without
    shared columns, for data too large for the dense design of :func:`no_pooling_fit`
    (a million rows in ten thousand groups). The residual SD is pooled over groups; with
    known ``se`` the fit is weighted and the standard errors are those of known variances.

    Returns (n_groups, q) estimates and standard errors, NaN where a group's rows cannot
    identify its coefficients.
    """
    y = np.asarray(y, dtype=float)
    Z = np.asarray(Z, dtype=float).reshape(len(y), -1)
    idx = np.asarray(group_idx)
    q = Z.shape[1]
    w = np.ones(len(y)) if se is None else 1.0 / np.asarray(se, dtype=float) ** 2
    ztz = np.zeros((n_groups, q, q))
    zty = np.zeros((n_groups, q))
    for a in range(q):
        zty[:, a] = np.bincount(idx, weights=w * Z[:, a] * y, minlength=n_groups)
        for b in range(a, q):
            ztz[:, a, b] = ztz[:, b, a] = np.bincount(
                idx, weights=w * Z[:, a] * Z[:, b], minlength=n_groups
            )
    n_j = np.bincount(idx, minlength=n_groups)
    det_ok = np.linalg.matrix_rank(ztz) == q
    safe = np.where(det_ok[:, None, None], ztz, np.eye(q))
    inv = np.linalg.inv(safe)
    est = np.einsum("gab,gb->ga", inv, zty)
    if se is None:
        fitted = np.einsum("na,na->n", Z, est[idx])
        rss = np.sum((y - fitted) ** 2 * det_ok[idx])
        dof = max(int(np.sum(n_j[det_ok])) - q * int(det_ok.sum()), 1)
        s2 = rss / dof
    else:
        s2 = 1.0
    std = np.sqrt(s2 * np.einsum("gaa->ga", inv))
    bad = ~det_ok
    est[bad], std[bad] = np.nan, np.nan
    return est, std


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
