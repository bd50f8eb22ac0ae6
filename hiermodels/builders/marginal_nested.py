"""The marginal likelihood of two nested grouping factors (issue 17): two-level Woodbury.

For classes within schools, ``(1 | school/class)``, each outer group o (a school) with its
inner groups k (classes) has, with effects ``b1_o ~ N(0, Sigma1)`` and ``b2_k ~ N(0, Sigma2)``::

    y_o ~ MvNormal(X_o beta + offset_o, V_o),   V_o = V2_o + Z1_o Sigma1 Z1_o'
    V2_o = blockdiag_k(V2_k),                   V2_k = sigma^2 D_k + Z2_k Sigma2 Z2_k'

(``D = I``, or ``diag(se_i^2)`` with ``sigma = 1`` for known standard errors, or
``diag(se_i^2 + sigma^2)`` with ``sigma = 1`` in the algebra below for known standard errors
with a residual SD). The inner
effects integrate out per inner group, then the outer ones per outer group on the sums the
first step leaves (Harville 1977; Pinheiro & Bates 2000, §2.2, nest the same way). With
``Sigma_l = L_l L_l'``, ``W = D^-1`` and ``r = y - offset - X beta``, per inner group::

    B2_k = I + L2' Z2'WZ2 L2 / sigma^2 = C2_k C2_k'
    e_k  = C2_k^-1 L2' Z2'W r,          E_k = C2_k^-1 L2' Z2'W Z1        (q2 x q1)
    log|V2_k|        = n_k log sigma^2 + sum log d_i + log|B2_k|
    r'V2_k^-1 r      = (r'Wr - e_k'e_k / sigma^2) / sigma^2
    H_k = sigma^2 Z1'V2_k^-1 Z1 = Z1'WZ1 - E_k'E_k / sigma^2
    G_k = sigma^2 Z1'V2_k^-1 r  = Z1'Wr  - E_k'e_k / sigma^2

and per outer group, with ``H_o = sum_{k in o} H_k`` and ``G_o = sum_{k in o} G_k``::

    B1_o = I + L1' H_o L1 / sigma^2 = C1_o C1_o',    f_o = C1_o^-1 L1' G_o
    log|V_o|    = sum_{k in o} log|V2_k| + log|B1_o|
    r'V_o^-1 r  = sum_{k in o} r'V2_k^-1 r - f_o'f_o / sigma^4

(the determinant lemma and the Woodbury identity twice). The data enter through sums per
inner group (``Z1'WZ1``, ``Z1'WZ2``, ``Z2'WZ2``, ``Z1'WX``, ``Z2'WX``, ``Z1'Wy``, ``Z2'Wy``)
and over all rows, so a gradient costs O(groups x q^3), whatever the number of rows
(:class:`NestedStatistics`). With ``se=`` and ``sigma=True`` the weights ``W = diag(1 /
(se_i^2 + sigma^2))`` change with sigma, so the same sums are summed from the rows at every
evaluation, O(rows) per gradient, and fed to the same likelihood
(:class:`NestedRowStatistics`, as :class:`~hiermodels.builders.marginal_stats.RowStatistics`
for one factor). The same algebra, in numpy, draws both levels' effects from their joint
conditional Gaussian (:func:`draw_nested_effects`), the row-weighted sums recomputed per
block of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from hiermodels.builders.marginal_stats import (
    RowStatistics,
    population_entries,
    residual_outcome,
    residual_sum_of_squares,
    row_statistics,
    row_weights,
    segment_sums,
)
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.numerics.unrolled import (
    precision_factor,
    product,
    solve_lower,
    solve_upper,
    transpose_times,
)
from hiermodels.numerics.unrolled import total as _sum

__all__ = [
    "NestedRowStatistics",
    "NestedStatistics",
    "draw_nested_effects",
    "nested_factors",
    "nested_from_gram",
    "nested_loglik",
    "nested_row_statistics",
    "nested_statistics",
]


def nested_factors(data: GroupedData) -> tuple[GroupFactor, GroupFactor] | None:
    """``(outer, inner)`` when the data have two grouping factors and every level of one
    (the inner) lies inside exactly one level of the other, else None (crossed factors).

    Read from the data, not the formula: ``(1 | school) + (1 | class)`` with class labels
    unique across schools is nested too.
    """
    if len(data.factors) != 2:
        return None
    a, b = data.factors
    for outer, inner in ((a, b), (b, a)) if a.n_groups <= b.n_groups else ((b, a), (a, b)):
        if _parents(outer, inner) is not None:
            return outer, inner
    return None


def _parents(outer: GroupFactor, inner: GroupFactor) -> np.ndarray | None:
    """(J2,) the outer level of each inner level, or None if some inner level spans several."""
    if hasattr(inner, "parents"):  # known from aggregates (hiermodels.lazy): no row codes
        return inner.parents(outer)
    parent = np.full(inner.n_groups, -1)
    parent[inner.idx] = outer.idx
    if np.any(parent[inner.idx] != outer.idx):
        return None
    return parent


@dataclass(frozen=True, eq=False)
class NestedStatistics:
    """Sums per inner group and over all rows for two nested factors.

    ``y`` is the outcome less the offset and the least squares ``shift`` (as in
    :class:`~hiermodels.builders.marginal.SufficientStatistics`); every sum is weighted by
    ``1 / se_i^2`` with known standard errors. Index 1 is the outer factor, 2 the inner.

    Attributes
    ----------
    n_obs, XtX, Xty, yty, shift, means, sum_log_var : as for one factor.
    parent : (J2,) the outer group of each inner group.
    n_outer : J1, the number of outer groups.
    Z1Z1 : (J2, q1, q1), Z1Z2 : (J2, q1, q2), Z2Z2 : (J2, q2, q2), Z1X : (J2, q1, p),
    Z2X : (J2, q2, p), Z1y : (J2, q1), Z2y : (J2, q2): sums within each inner group.
    order : the positions of (outer, inner) in ``data.factors``.
    """

    n_obs: int
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    shift: np.ndarray
    means: np.ndarray
    sum_log_var: float
    parent: np.ndarray
    n_outer: int
    Z1Z1: np.ndarray
    Z1Z2: np.ndarray
    Z2Z2: np.ndarray
    Z1X: np.ndarray
    Z2X: np.ndarray
    Z1y: np.ndarray
    Z2y: np.ndarray
    order: tuple[int, int] = (0, 1)

    @property
    def structure(self) -> tuple:
        """What the graph depends on besides the shapes of the sums: the number of outer
        groups (the length the inner sums are added up to) and which factor is the outer."""
        return ("nested", self.n_outer, self.order)

    def entries(self) -> dict:
        """The sums entry by entry, as the graph reads them: scalars and vectors over inner
        groups (see :func:`hiermodels.builders.marginal.stats_entries`); ``parent`` as
        numbers."""

        def split(a):
            return [split(a[:, i]) for i in range(a.shape[1])] if a.ndim > 1 else a

        return {
            **population_entries(self),
            "parent": self.parent.astype(float),
            **{k: split(getattr(self, k)) for k in ("Z1Z1", "Z1Z2", "Z2Z2", "Z1X", "Z2X")},
            "Z1y": split(self.Z1y),
            "Z2y": split(self.Z2y),
        }

    def loglik(self, xp, *, stats: dict, delta: list, sigma, chols: list):
        """:func:`nested_loglik`; ``chols`` are the Cholesky factors of the factors'
        covariances in the model's order of factors."""
        return _loglik(xp, stats, delta, sigma, chols, self.order, self.n_outer)

    def draw_sums(self, sigma: np.ndarray) -> tuple[dict, np.ndarray]:
        """The entries :func:`draw_nested_effects` reads and ``sigma^2`` (s, 1), for s draws."""
        return self.entries(), (sigma**2)[:, None]

    draw_width = 0  # values per draw of the sums draw_sums computes (none: they are fixed)


@dataclass(frozen=True, eq=False)
class NestedRowStatistics:
    """Two nested factors with known standard errors and a residual SD (``se=``,
    ``sigma=True``): row i has variance ``se_i^2 + sigma^2``, so the per-inner-group sums of
    :class:`NestedStatistics` are weighted by ``1 / (se_i^2 + sigma^2)`` and summed from the
    rows at every evaluation, then go to the same likelihood (:func:`nested_loglik`) with
    ``sigma = 1``.

    Attributes
    ----------
    rows : :class:`~hiermodels.builders.marginal_stats.RowStatistics`
        The per-row products, grouped by the inner factor, its blocks named as
        :class:`NestedStatistics`' per-inner-group sums (``Z1Z1``, ..., ``Z2y``).
    parent, n_outer, order : as for :class:`NestedStatistics`.
    """

    rows: RowStatistics
    parent: np.ndarray
    n_outer: int
    order: tuple[int, int] = (0, 1)

    @property
    def shift(self) -> np.ndarray:
        return self.rows.shift

    @property
    def structure(self) -> tuple:
        """As :attr:`NestedStatistics.structure`, for sums from the rows."""
        return ("nested-rows", self.n_outer, self.order)

    def entries(self) -> dict:
        """The numbers that do not change with ``sigma`` (``counts``: the inner group axis)."""
        return self.rows.entries() | {"parent": self.parent.astype(float)}

    def row_values(self) -> dict[str, np.ndarray]:
        return self.rows.row_values()

    def loglik(self, xp, *, stats: dict, delta: list, sigma, chols: list):
        """:func:`nested_loglik` of the sums weighted at this ``sigma`` (graph only)."""
        weighted = self.rows.graph_sums(stats, sigma)
        return _loglik(xp, weighted, delta, 1.0, chols, self.order, self.n_outer)

    def draw_sums(self, sigma: np.ndarray) -> tuple[dict, np.ndarray]:
        """The per-inner-group sums weighted at each of s values of ``sigma`` ((s, J2)
        entries), and the ``sigma^2`` of the algebra, 1."""
        return self.rows.group_entries(sigma), np.ones((len(sigma), 1))

    @property
    def draw_width(self) -> int:
        """Values per draw of the sums :meth:`draw_sums` computes from the rows."""
        return self.rows.rows.size


def _loglik(xp, stats, delta, sigma, chols, order, n_outer):
    """:func:`nested_loglik` with ``chols`` in the model's order of factors, the inner sums
    added up to outer ones over ``stats["parent"]``."""
    L1, L2 = chols[order[0]], chols[order[1]]
    if xp is np:
        parent = np.asarray(stats["parent"]).astype(np.int64)

        def segment_sum(v):
            return np.bincount(parent, weights=v, minlength=n_outer)
    else:
        parent = pt.cast(stats["parent"], "int64")

        def segment_sum(v):
            return pt.inc_subtensor(pt.zeros(n_outer)[parent], v)

    return nested_loglik(
        xp, stats=stats, delta=delta, sigma=sigma, L1=L1, L2=L2, segment_sum=segment_sum
    )


def nested_statistics(data: GroupedData) -> NestedStatistics:
    """:class:`NestedStatistics` of ``data`` (two nested factors: :func:`nested_factors`).

    One pass over the rows, O(n p^2): each inner group's sums of ``w W W'``, ``W = (X_c,
    y0)``, ``np.bincount`` over the inner factor's codes, then :func:`nested_from_gram`.
    """
    found = nested_factors(data)
    if found is None:
        raise ValueError("nested_statistics needs two nested grouping factors")
    outer, inner = found
    w, sum_log_var = row_weights(data)
    Xc, means, y0, shift = residual_outcome(data, w)
    W = np.column_stack([Xc, y0])
    k = W.shape[1]
    products = ((W * w[:, None])[:, :, None] * W[:, None, :]).reshape(len(y0), k * k)
    gram = segment_sums(products, inner.idx, inner.n_groups).reshape(-1, k, k)
    return nested_from_gram(
        gram,
        data,
        (outer, inner),
        means=means,
        shift=shift,
        n_obs=len(y0),
        sum_log_var=sum_log_var,
    )


def nested_from_gram(
    gram: np.ndarray,
    data: GroupedData,
    factors: tuple[GroupFactor, GroupFactor],
    *,
    means: np.ndarray,
    shift: np.ndarray,
    n_obs: int,
    sum_log_var: float,
) -> NestedStatistics:
    """:class:`NestedStatistics` from ``gram`` (J2, p + 1, p + 1), each inner group's sums
    of ``w W W'`` with ``W = (X_c, y0)``: the pandas path's (:func:`nested_statistics`) and
    a dask frame's (:mod:`hiermodels.lazy_fit`). ``factors`` is ``(outer, inner)``
    (:func:`nested_factors` of ``data``), ``means`` the columns' means, ``shift`` the least
    squares fit in ``y0 = y - offset - X_c shift``. The raw design is ``X = X_c T`` with
    ``T = I + e_0 means'`` (the intercept column of ``X_c`` is 1), so ``Z_l = X_c T_l`` (the
    varying terms' columns of ``T``) and ``Z_l'WZ_m = T_l' (X_c'WX_c) T_m``."""
    outer, inner = factors
    p = len(means)
    T = np.eye(p)
    T[0] += means
    T1 = T[:, [data.terms.index(t) for t in outer.varying]]
    T2 = T[:, [data.terms.index(t) for t in inner.varying]]
    XX, Xy = gram[:, :p, :p], gram[:, :p, p]
    total = gram.sum(axis=0)
    return NestedStatistics(
        n_obs=n_obs,
        XtX=total[:p, :p],
        Xty=total[:p, p],
        yty=float(total[p, p]),
        shift=shift,
        means=means,
        sum_log_var=sum_log_var,
        parent=_parents(outer, inner),
        n_outer=outer.n_groups,
        order=(data.factors.index(outer), data.factors.index(inner)),
        Z1Z1=T1.T @ XX @ T1,
        Z1Z2=T1.T @ XX @ T2,
        Z2Z2=T2.T @ XX @ T2,
        Z1X=T1.T @ XX,
        Z2X=T2.T @ XX,
        Z1y=Xy @ T1,
        Z2y=Xy @ T2,
    )


def nested_row_statistics(data: GroupedData) -> NestedRowStatistics:
    """:class:`NestedRowStatistics` of ``data`` (two nested factors, ``se=`` with a residual
    SD): each row's products for :class:`NestedStatistics`' per-inner-group sums."""
    found = nested_factors(data)
    if found is None:
        raise ValueError("nested_row_statistics needs two nested grouping factors")
    outer, inner = found
    Z1 = data.X[:, [data.terms.index(t) for t in outer.varying]]
    Z2 = data.X[:, [data.terms.index(t) for t in inner.varying]]

    def blocks(Xc, y0):
        return {
            "Z1Z1": (Z1, Z1),
            "Z1Z2": (Z1, Z2),
            "Z2Z2": (Z2, Z2),
            "Z1X": (Z1, Xc),
            "Z2X": (Z2, Xc),
            "Z1y": (Z1, y0),
            "Z2y": (Z2, y0),
        }

    return NestedRowStatistics(
        rows=row_statistics(data, group=inner, blocks=blocks),
        parent=_parents(outer, inner),
        n_outer=outer.n_groups,
        order=(data.factors.index(outer), data.factors.index(inner)),
    )


def _residual_sums(Zy, ZX, delta):
    """``Z'W r`` per group, ``r = y0 - X_c delta``, entry by entry."""
    p = len(delta)
    return [Zy[k] - _sum(ZX[k][m] * delta[m] for m in range(p)) for k in range(len(Zy))]


def _inner_terms(stats, delta, s2, L2, sqrt):
    """Per inner group: the Cholesky factor ``C2`` of ``B2``, ``e = C2^-1 L2' Z2'Wr``, the
    outer level's sums ``H`` (q1 x q1) and ``G`` (q1), and ``Z2'Wr`` (see the module)."""
    Z1Z1, Z1Z2 = stats["Z1Z1"], stats["Z1Z2"]
    q1 = len(Z1Z1)
    u1 = _residual_sums(stats["Z1y"], stats["Z1X"], delta)
    u2 = _residual_sums(stats["Z2y"], stats["Z2X"], delta)
    C2 = precision_factor(L2, stats["Z2Z2"], s2, sqrt)
    e = solve_lower(C2, transpose_times(L2, u2))
    E = [solve_lower(C2, transpose_times(L2, Z1Z2[m])) for m in range(q1)]  # columns of E_k

    def dot(a, b):
        return _sum(x * y for x, y in zip(a, b, strict=True))

    H = [[Z1Z1[m][n] - dot(E[m], E[n]) / s2 for n in range(q1)] for m in range(q1)]
    G = [u1[m] - dot(E[m], e) / s2 for m in range(q1)]
    return C2, e, H, G, u2


def nested_loglik(xp, *, stats: dict, delta: list, sigma, L1: list, L2: list, segment_sum):
    """``log p(y | beta, sigma, Sigma1, Sigma2)`` with both levels' effects integrated out.

    ``xp`` is ``numpy`` or ``pytensor.tensor``; ``stats`` the entries of
    :meth:`NestedStatistics.entries` (numbers or tensors); ``delta`` the centred
    coefficients less ``shift``; ``L1``, ``L2`` the lower Cholesky factors of the outer and
    inner covariances as nested lists (None for structural zeros); ``segment_sum`` adds a
    vector over inner groups up to one over outer groups. See the module for the algebra.
    """
    q1, q2 = len(L1), len(L2)
    s2 = sigma * sigma
    rss = residual_sum_of_squares(stats, delta)
    C2, e, H, G, _ = _inner_terms(stats, delta, s2, L2, xp.sqrt)
    H_o = [[None] * q1 for _ in range(q1)]
    for m in range(q1):
        for k in range(m + 1):
            H_o[m][k] = H_o[k][m] = segment_sum(H[m][k])
    G_o = [segment_sum(G[m]) for m in range(q1)]
    C1 = precision_factor(L1, H_o, s2, xp.sqrt)
    f = solve_lower(C1, transpose_times(L1, G_o))
    half_logdet = xp.sum(_sum(xp.log(C2[k][k]) for k in range(q2))) + xp.sum(
        _sum(xp.log(C1[k][k]) for k in range(q1))
    )
    inner_quad = xp.sum(_sum(e[k] * e[k] for k in range(q2)))
    outer_quad = xp.sum(_sum(f[k] * f[k] for k in range(q1)))
    n = stats["n_obs"]
    return (
        -0.5 * n * np.log(2 * np.pi)
        - 0.5 * stats["sum_log_var"]
        - n * xp.log(sigma)
        - half_logdet
        - 0.5 * (rss - inner_quad / s2) / s2
        + 0.5 * outer_quad / (s2 * s2)
    )


def draw_nested_effects(
    stats: NestedStatistics | NestedRowStatistics,
    delta: np.ndarray,
    sigma: np.ndarray,
    L1: np.ndarray,
    L2: np.ndarray,
    rng: np.random.Generator | None,
    block: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """(S, J1, q1) outer and (S, J2, q2) inner effects, drawn jointly given S draws of the
    population parameters (``delta`` (S, p), ``sigma`` (S,), ``L1`` (S, q1, q1), ``L2``
    (S, q2, q2)); with ``rng=None`` their conditional means.

    The joint conditional Gaussian, drawn by composition: each outer group's effects with
    the inner ones integrated out, ``c1 = L1^-1 b1 ~ N(B1^-1 L1'G_o / sigma^2, B1^-1)``;
    then each inner group's given its outer group's, as for one factor on the residual
    ``r - Z1 b1`` (BDA3 §15.4). With :class:`NestedRowStatistics` the sums are weighted by
    ``1 / (se_i^2 + sigma^2)`` per draw and the algebra runs with sigma 1. ``block`` bounds
    the draws x groups x q^2 (and draws x rows, for sums from the rows) temporaries.
    """
    S, J2 = len(sigma), len(stats.parent)
    J1, q1, q2 = stats.n_outer, L1.shape[-1], L2.shape[-1]
    outer_draws, inner_draws = np.empty((S, J1, q1)), np.empty((S, J2, q2))
    order = np.argsort(stats.parent, kind="stable")
    starts = np.searchsorted(stats.parent[order], np.arange(J1))

    def segment_sum(v):  # (s, J2) -> (s, J1); every outer group has an inner group
        return np.add.reduceat(v[:, order], starts, axis=1)

    step = max(1, block // (J2 * (q1 + q2) ** 2 + stats.draw_width))
    for lo in range(0, S, step):
        hi = min(S, lo + step)
        d = [delta[lo:hi, m][:, None] for m in range(delta.shape[1])]
        entries, s2 = stats.draw_sums(sigma[lo:hi])
        l1, l2 = (_entries(L[lo:hi]) for L in (L1, L2))
        _, _, H, G, u2 = _inner_terms(entries, d, s2, l2, np.sqrt)
        H_o = [[segment_sum(np.broadcast_to(h, (hi - lo, J2))) for h in row] for row in H]
        G_o = [segment_sum(np.broadcast_to(g, (hi - lo, J2))) for g in G]
        b1 = _conditional(l1, H_o, G_o, s2, rng)
        for k in range(q1):
            outer_draws[lo:hi, :, k] = b1[k]
        # the inner groups' residual sums given their outer group's effects
        Z1Z2 = entries["Z1Z2"]
        u2 = [
            u2[k] - _sum(Z1Z2[m][k] * b1[m][:, stats.parent] for m in range(q1)) for k in range(q2)
        ]
        b2 = _conditional(l2, entries["Z2Z2"], u2, s2, rng)
        for k in range(q2):
            inner_draws[lo:hi, :, k] = b2[k]
    return outer_draws, inner_draws


def _entries(L: np.ndarray) -> list:
    """(s, q, q) lower-triangular factors as nested lists of (s, 1) columns."""
    q = L.shape[-1]
    return [[L[:, i, j][:, None] if j <= i else None for j in range(q)] for i in range(q)]


def _conditional(L, ZWZ, u, s2, rng):
    """Draws (or with ``rng=None`` the means) of ``b = L c``, ``c ~ N(B^-1 L'u / sigma^2,
    B^-1)``, ``B = I + L' ZWZ L / sigma^2``: the effects of groups with sums ``ZWZ`` and
    ``u = Z'W r`` (entries over draws x groups)."""
    q = len(L)
    C = precision_factor(L, ZWZ, s2, np.sqrt)
    c = solve_upper(C, solve_lower(C, transpose_times(L, [u[k] / s2 for k in range(q)])))
    if rng is not None:
        shape = np.broadcast_shapes(*(np.shape(x) for x in c))
        noise = solve_upper(C, list(rng.standard_normal((q, *shape))))
        c = [c[k] + noise[k] for k in range(q)]
    return [_sum(product(L[k][m], c[m]) for m in range(k + 1)) for k in range(q)]
