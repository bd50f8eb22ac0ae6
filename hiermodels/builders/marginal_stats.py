"""Sufficient statistics of the marginal Gaussian model and its log-likelihood on them.

The numpy half of :mod:`hiermodels.builders.marginal` (which builds the PyMC graph): the
per-group and global sums a fit needs (:class:`SufficientStatistics`, computed once), the
per-row products for known standard errors with a residual SD (:class:`RowStatistics`, whose
weights change with sigma), and :func:`marginal_loglik`, written for numpy or PyTensor
(``xp``) with the q x q algebra unrolled (:mod:`hiermodels.numerics.unrolled`). The formulas
are in :mod:`hiermodels.builders.marginal`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from hiermodels.data import GroupedData, GroupFactor
from hiermodels.names import INTERCEPT
from hiermodels.numerics.unrolled import (
    inverse_lower,
    logdet_quadratic,
)
from hiermodels.numerics.unrolled import product as _mul
from hiermodels.numerics.unrolled import total as _sum

__all__ = [
    "ROWS",
    "ROW_GROUP",
    "RowStatistics",
    "SufficientStatistics",
    "centred_design",
    "marginal_loglik",
    "population_entries",
    "residual_outcome",
    "residual_sum_of_squares",
    "row_statistics",
    "row_weights",
    "segment_sums",
    "split_blocks",
    "stats_entries",
    "sufficient_statistics",
]

ROWS, ROW_GROUP = "marginal::rows", "marginal::row_group"  # RowStatistics' per-row data


# -- sufficient statistics (numpy) -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SufficientStatistics:
    """Per-group and global sums for the marginal likelihood of one grouping factor.

    ``y`` here is ``y - offset - X_c shift``: the outcome less the offset and a least squares
    fit ``shift`` on the centred design ``X_c`` (the columns ``Intercept, x_k - mean(x_k)``,
    as :mod:`hiermodels.builders.hierarchical` centres them). The likelihood is unchanged when
    ``beta`` is replaced by ``delta = beta_c - shift``, and the sums of squares then hold
    residuals, so they do not cancel when ``y`` has a large mean. ``Z`` holds the raw
    (uncentred) columns of the varying terms, as the full model multiplies the deviations.

    Attributes
    ----------
    n_obs : number of rows.
    XtX : (p, p), Xty : (p,), yty : float, sums over all rows of the centred design.
    ZtZ : (J, q, q), ZtX : (J, q, p), Zty : (J, q), sums within each group.
    shift : (p,) the least squares fit subtracted from y.
    means : (p,) the column means subtracted from X (0 for the intercept).
    sum_log_var : sum over rows of ``log v_i``.

    With known standard errors (``se=``, no residual SD) row i has the known variance
    ``v_i = se_i^2`` instead of ``sigma^2``: every sum is then weighted by ``1 / v_i``
    (``X'WX``, ``Z_j'WZ_j``, ..., ``W = diag(1 / v_i)``) and the likelihood below holds with
    ``sigma = 1`` and ``log|V|`` raised by ``sum_log_var`` (:func:`row_weights`).
    """

    n_obs: int
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    ZtZ: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    shift: np.ndarray
    means: np.ndarray
    sum_log_var: float = 0.0

    def entries(self) -> dict:
        """:func:`stats_entries` of these sums."""
        return stats_entries(self)

    def loglik(self, xp, *, stats: dict, delta: list, sigma, chols: list):
        """:func:`marginal_loglik` (``chols``: the one factor's Cholesky factor, in a list)."""
        return marginal_loglik(xp, stats=stats, delta=delta, sigma=sigma, chol=chols[0])

    structure = ()  # what the graph depends on besides the shapes of the sums


@dataclass(frozen=True, eq=False)
class RowStatistics:
    """Known standard errors with a residual SD: row i has variance ``v_i = se_i^2 +
    sigma^2``, which changes with ``sigma``, so the weighted sums of
    :class:`SufficientStatistics` (weights ``1 / v_i``) are summed from the rows at every
    evaluation: O(n (p + q)^2) per gradient, the likelihood then that of the weighted sums
    with ``sigma = 1``. ``rows`` (n, k) holds each row's products, in the order of
    :meth:`weighted` (the global sums, then ``blocks``), then ``se_i^2``; ``group`` (n,) each
    row's group. ``blocks`` name the per-group sums and their shapes: ``ZtZ``, ``ZtX``,
    ``Zty`` for one factor; nested factors sum theirs per inner group
    (:class:`hiermodels.builders.marginal_nested.NestedRowStatistics`).
    """

    rows: np.ndarray
    group: np.ndarray
    counts: np.ndarray
    p: int
    blocks: tuple[tuple[str, tuple[int, ...]], ...]
    shift: np.ndarray
    means: np.ndarray
    structure = ("rows",)

    @property
    def n_groups(self) -> int:
        return len(self.counts)

    def entries(self) -> dict:
        """The numbers that do not change with ``sigma`` (``counts`` gives the group axis)."""
        return {
            "n_obs": float(len(self.group)),
            "shift": list(self.shift),
            "means": list(self.means),
            "counts": self.counts.astype(float),
        }

    def row_values(self) -> dict[str, np.ndarray]:
        return {ROWS: self.rows, ROW_GROUP: self.group}

    def weighted(self, xp, rows, sums, sigma) -> dict:
        """:func:`stats_entries` of the sums weighted by ``1 / (se_i^2 + sigma^2)`` (the
        per-group ones named by ``blocks``); ``sums(values)`` sums ``values`` (n, k) within
        groups to (J, k)."""
        p = self.p
        var = rows[:, -1] + sigma * sigma
        weighted = rows[:, :-1] / var[:, None]
        total = xp.sum(weighted[:, : 1 + p + p * p], axis=0)
        return {
            "sum_log_var": xp.sum(xp.log(var)),
            "yty": total[0],
            "Xty": [total[1 + m] for m in range(p)],
            "XtX": [[total[1 + p + m * p + k] for k in range(p)] for m in range(p)],
            **split_blocks(sums(weighted[:, 1 + p + p * p :]), self.blocks),
        }

    def graph_sums(self, stats: dict, sigma) -> dict:
        """``stats`` (the graph's entries, with ``ROWS`` and ``ROW_GROUP``) and the sums
        weighted at this ``sigma`` (a tensor), per group over as many groups as ``counts``."""

        def sums(values):
            zeros = pt.zeros((stats["counts"].shape[0], values.shape[1]))
            return pt.inc_subtensor(zeros[stats[ROW_GROUP]], values)

        return stats | self.weighted(pt, stats[ROWS], sums, sigma)

    def loglik(self, xp, *, stats: dict, delta: list, sigma, chols: list):
        """:func:`marginal_loglik` of the sums weighted at this ``sigma`` (graph only)."""
        weighted = self.graph_sums(stats, sigma)
        return marginal_loglik(xp, stats=weighted, delta=delta, sigma=1.0, chol=chols[0])

    def _per_draw(self, sigma: np.ndarray) -> np.ndarray:
        """(S, J, k) the per-group products weighted at each of S values of ``sigma``."""
        p, J, S = self.p, self.n_groups, len(sigma)
        products = self.rows[:, 1 + p + p * p : -1]
        w = 1.0 / (self.rows[:, -1][None, :] + sigma[:, None] ** 2)  # (S, n)
        k = products.shape[1]
        flat = (w.T[:, :, None] * products[:, None, :]).reshape(len(self.group), S * k)
        return np.moveaxis(segment_sums(flat, self.group, J).reshape(J, S, k), 1, 0)

    def group_sums(self, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
        """The ``blocks`` per draw and group, (S, J, *shape) each (for one factor ``(Z'WZ,
        Z'WX, Z'Wy)``), for S values of ``sigma`` (numpy; the conditional draws of the group
        effects)."""
        per_group, out, start = self._per_draw(sigma), [], 0
        for _, shape in self.blocks:
            size = int(np.prod(shape))
            out.append(per_group[..., start : start + size].reshape(*per_group.shape[:2], *shape))
            start += size
        return tuple(out)

    def group_entries(self, sigma: np.ndarray) -> dict:
        """The ``blocks`` per draw and group as entries (nested lists of (S, J) arrays, as
        :func:`split_blocks` gives them), for S values of ``sigma``."""
        return split_blocks(self._per_draw(sigma), self.blocks)


def split_blocks(values, blocks) -> dict:
    """The columns of ``values`` (..., k) as entries: name -> a list (a vector block, shape
    ``(a,)``) or a list of rows (shape ``(a, b)``, row-major) of ``values[..., column]``."""
    out, start = {}, 0
    for name, shape in blocks:
        if len(shape) == 1:
            out[name] = [values[..., start + i] for i in range(shape[0])]
        else:
            a, b = shape
            out[name] = [[values[..., start + i * b + j] for j in range(b)] for i in range(a)]
        start += int(np.prod(shape))
    return out


def row_statistics(data: GroupedData, *, group: GroupFactor | None = None, blocks=None):
    """:class:`RowStatistics` of ``data`` (``se=`` with a residual SD).

    By default one grouping factor's sums ``ZtZ``, ``ZtX``, ``Zty``. ``blocks(Xc, y0)``
    gives others, name -> ``(A, B)``: the per-group sum of ``w_i A_i B_i'`` (``A`` (n, a),
    ``B`` (n, b), or (n,) for a vector block), the rows grouped by ``group``.
    """
    f = data.factor if group is None else group
    Xc, means, y0, shift = residual_outcome(data, row_weights(data)[0])
    if blocks is None:
        Z = data.X[:, [data.terms.index(t) for t in f.varying]]
        products = {"ZtZ": (Z, Z), "ZtX": (Z, Xc), "Zty": (Z, y0)}
    else:
        products = blocks(Xc, y0)
    n, p = len(y0), Xc.shape[1]

    def outer(A, B):
        return A * B[:, None] if B.ndim == 1 else (A[:, :, None] * B[:, None, :]).reshape(n, -1)

    layout = tuple(
        (name, (A.shape[1],) if B.ndim == 1 else (A.shape[1], B.shape[1]))
        for name, (A, B) in products.items()
    )
    rows = np.concatenate(
        [
            (y0 * y0)[:, None],
            Xc * y0[:, None],
            outer(Xc, Xc),
            *(outer(A, B) for A, B in products.values()),
            (data.se**2)[:, None],
        ],
        axis=1,
    )
    counts = np.bincount(f.idx, minlength=f.n_groups)
    return RowStatistics(rows, np.asarray(f.idx, dtype=np.int64), counts, p, layout, shift, means)


def row_weights(data: GroupedData) -> tuple[np.ndarray, float]:
    """``(1 / v_i, sum_i log v_i)``: the weight and the log variance (up to the residual
    variance) of each row. ``v_i = se_i^2`` with known standard errors and no residual SD
    (``y_i ~ Normal(eta_i, se_i)``, as ``Family.observation_aux`` scores it), else 1, the
    residual variance ``sigma^2`` being a parameter of the likelihood."""
    if data.se is None:
        return np.ones(len(data.y)), 0.0
    variance = data.se**2
    return 1.0 / variance, float(np.sum(np.log(variance)))


def centred_design(data: GroupedData) -> tuple[np.ndarray, np.ndarray]:
    """The design with every column but the intercept centred, and the means subtracted."""
    means = np.array(
        [0.0 if t == INTERCEPT else float(np.mean(data.column(t))) for t in data.terms]
    )
    return data.X - means, means


def segment_sums(values: np.ndarray, idx: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, k) sums of the rows of ``values`` (n, k) within each group: O(n k)."""
    out = np.empty((n_groups, values.shape[1]))
    for k in range(values.shape[1]):
        out[:, k] = np.bincount(idx, weights=values[:, k], minlength=n_groups)
    return out


def sufficient_statistics(data: GroupedData, factor: GroupFactor | None = None):
    """:class:`SufficientStatistics` of ``data`` for ``factor`` (default: the one factor).

    One pass over the rows per product column: O(n p q), no per-group Python loop. With
    known standard errors the sums are weighted (:func:`row_weights`).
    """
    f = data.factor if factor is None else factor
    w, sum_log_var = row_weights(data)
    Xc, means, y0, shift = residual_outcome(data, w)
    Z = data.X[:, [data.terms.index(t) for t in f.varying]]
    q, p = Z.shape[1], Xc.shape[1]
    Zw = Z * w[:, None]
    products = np.concatenate(
        [
            (Zw[:, :, None] * Z[:, None, :]).reshape(len(y0), q * q),
            (Zw[:, :, None] * Xc[:, None, :]).reshape(len(y0), q * p),
            Zw * y0[:, None],
        ],
        axis=1,
    )
    sums = segment_sums(products, f.idx, f.n_groups)
    J = f.n_groups
    return SufficientStatistics(
        n_obs=len(y0),
        XtX=Xc.T @ (Xc * w[:, None]),
        Xty=Xc.T @ (w * y0),
        yty=float(y0 @ (w * y0)),
        ZtZ=sums[:, : q * q].reshape(J, q, q),
        ZtX=sums[:, q * q : q * q + q * p].reshape(J, q, p),
        Zty=sums[:, q * q + q * p :],
        shift=shift,
        means=means,
        sum_log_var=sum_log_var,
    )


def residual_outcome(data: GroupedData, w: np.ndarray):
    """``(X_c, means, y0, shift)``: the centred design, its column means, and the outcome less
    the offset and its weighted least squares fit ``shift`` on ``X_c``."""
    Xc, means = centred_design(data)
    y = data.y if data.offset is None else data.y - data.offset
    root = np.sqrt(w)
    shift = np.linalg.lstsq(Xc * root[:, None], y * root, rcond=None)[0]
    return Xc, means, y - Xc @ shift, shift


def population_entries(stats) -> dict:
    """The sums over all rows, entry by entry as the graph reads them (the same for one
    factor's and for nested sums): ``n_obs``, ``sum_log_var``, ``yty``, ``Xty[m]``,
    ``XtX[m][n]``, ``shift[m]``, ``means[m]``."""
    return {
        "n_obs": float(stats.n_obs),
        "sum_log_var": stats.sum_log_var,
        "yty": stats.yty,
        "Xty": list(stats.Xty),
        "XtX": [list(row) for row in stats.XtX],
        "shift": list(stats.shift),
        "means": list(stats.means),
    }


def stats_entries(stats: SufficientStatistics) -> dict:
    """The sums as the graph reads them, entry by entry: scalars (``n_obs``, ``yty``,
    ``Xty[m]``, ``XtX[m][n]``, ``shift[m]``, ``means[m]``) and vectors over groups
    (``Zty[k]``, ``ZtX[k][m]``, ``ZtZ[i][j]``, upper triangle filled by symmetry). Entries
    rather than arrays keep the graph to fused elementwise loops, with no indexing or matrix
    products, which nutpie's numba compiles several times faster."""
    q, p = stats.ZtX.shape[1:]
    return {
        **population_entries(stats),
        "Zty": [stats.Zty[:, k] for k in range(q)],
        "ZtX": [[stats.ZtX[:, k, m] for m in range(p)] for k in range(q)],
        "ZtZ": [[stats.ZtZ[:, i, j] for j in range(q)] for i in range(q)],
    }


def residual_sum_of_squares(stats: dict, delta: list):
    """``|y - X delta|^2`` from the global sums ``yty``, ``Xty``, ``XtX`` (numbers or tensors;
    weighted sums give the weighted sum of squares)."""
    p = len(delta)
    XtX, Xty = stats["XtX"], stats["Xty"]
    quadratic = _sum(
        delta[m] * delta[k] * (XtX[m][k] if m == k else 2.0 * XtX[m][k])
        for m in range(p)
        for k in range(m + 1)
    )
    return stats["yty"] - 2.0 * _sum(Xty[m] * delta[m] for m in range(p)) + quadratic


def marginal_loglik(xp, *, stats: dict, delta: list, sigma, chol: list):
    """``log p(y | beta, sigma, Sigma)`` with the group effects integrated out.

    ``xp`` is ``numpy`` or ``pytensor.tensor`` (``sqrt``, ``log``, ``sum``); ``stats`` the
    entries of :func:`stats_entries` (numbers or tensors), ``delta`` the p centred
    coefficients less ``shift`` (numbers or scalar tensors), ``chol`` the lower Cholesky
    factor ``L`` of ``Sigma`` as q x q nested lists (None for structural zeros).

    Per group the q x q matrix is ``M_j = Z_j'Z_j + sigma^2 Sigma^-1`` (``= sigma^2 L^-T B_j
    L^-1``), so that the per-group work is a few additions and, for q = 2, a determinant
    and an adjugate; ``Sigma^-1`` and ``log|Sigma|`` are computed once per evaluation::

        log|V_j|        = (n_j - q) log sigma^2 + log|Sigma| + log|M_j|
        r_j' V_j^-1 r_j = (r_j'r_j - u_j' M_j^-1 u_j) / sigma^2,    u_j = Z_j' r_j

    The logarithms of ``|Sigma|`` and ``|M_j|`` grow apart as a group SD goes to zero but
    their sum does not; in double precision that is exact enough for any SD above ~1e-100.
    With known standard errors the sums are weighted and ``sigma`` is 1 (see
    :class:`SufficientStatistics`).
    """
    q, p = len(chol), len(delta)
    s2 = sigma * sigma
    rss = residual_sum_of_squares(stats, delta)
    ZtX, Zty, ZtZ = stats["ZtX"], stats["Zty"], stats["ZtZ"]
    u = [Zty[k] - _sum(ZtX[k][m] * delta[m] for m in range(p)) for k in range(q)]
    inv = inverse_lower(chol)
    precision = [  # sigma^2 Sigma^-1 = sigma^2 L^-T L^-1
        [_mul(s2, _sum(_mul(inv[k][i], inv[k][j]) for k in range(max(i, j), q))) for j in range(q)]
        for i in range(q)
    ]
    M = [[_sum([ZtZ[i][j], precision[i][j]]) for j in range(q)] for i in range(q)]
    half_logdet, quad = logdet_quadratic(M, u, xp)
    log_sigma = xp.log(sigma)
    half_logdet_sigma = _sum(xp.log(chol[k][k]) for k in range(q))  # log|Sigma| / 2
    n = stats["n_obs"]
    n_groups = xp.sum(xp.ones_like(Zty[0]))
    return (
        -0.5 * n * np.log(2 * np.pi)
        - 0.5 * stats.get("sum_log_var", 0.0)
        - (n - q * n_groups) * log_sigma
        - n_groups * half_logdet_sigma
        - 0.5 * rss / s2
        - xp.sum(half_logdet - quad / (2.0 * s2))
    )
