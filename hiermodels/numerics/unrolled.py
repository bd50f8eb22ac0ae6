"""q x q matrix algebra unrolled into elementwise operations, for numpy and PyTensor alike.

The marginal engine (issue 17) needs, for every group, a Cholesky factor, triangular solves
and quadratic forms of small q x q matrices. Written entry by entry over vectors of groups
(one value per group, or per draw and group) they become a few fused elementwise loops in
PyTensor, with no indexing or batched linear algebra, which nutpie's numba compiles fastest;
the same functions draw the group effects afterwards in numpy.

A matrix is a list of rows of entries; an entry is an array, a scalar, or None for a
structural zero (the upper triangle of a Cholesky factor, the off-diagonal of the SDs of
independent terms), which is skipped, never added. Nothing here imports numpy or PyTensor:
functions that need ``sqrt`` or ``log`` take them (or the module ``xp``) as an argument.
"""

from __future__ import annotations

__all__ = [
    "cholesky_unrolled",
    "inverse_lower",
    "logdet_quadratic",
    "precision_factor",
    "product",
    "sandwich",
    "solve_lower",
    "solve_upper",
    "total",
    "transpose_times",
]


def total(terms):
    """The sum of the entries that are not None (None if all are)."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def product(a, b):
    """``a * b``, or None (a structural zero) if either is None."""
    return None if a is None or b is None else a * b


def sandwich(L, G):
    """``L' G L`` for lower-triangular ``L`` and symmetric ``G`` (q x q, unrolled)."""
    q = len(L)
    GL = [
        [total(product(G[i][m], L[m][k]) for m in range(k, q)) for k in range(q)] for i in range(q)
    ]
    H = [[None] * q for _ in range(q)]
    for k in range(q):
        for m in range(k + 1):
            H[k][m] = H[m][k] = total(product(L[i][k], GL[i][m]) for i in range(k, q))
    return H


def cholesky_unrolled(B, sqrt):
    """Lower Cholesky factor of the symmetric positive definite ``B`` (q x q, unrolled)."""
    q = len(B)
    C = [[None] * q for _ in range(q)]
    for j in range(q):
        diag = B[j][j]
        for k in range(j):
            diag = diag - C[j][k] * C[j][k]
        C[j][j] = sqrt(diag)
        for i in range(j + 1, q):
            off = B[i][j]
            for k in range(j):
                off = off - C[i][k] * C[j][k]
            C[i][j] = off / C[j][j]
    return C


def solve_lower(C, b):
    """``C^-1 b`` for lower-triangular ``C`` (forward substitution)."""
    x = []
    for i in range(len(C)):
        value = b[i]
        for k in range(i):
            value = value - C[i][k] * x[k]
        x.append(value / C[i][i])
    return x


def solve_upper(C, b):
    """``C'^-1 b`` for lower-triangular ``C`` (back substitution with its transpose)."""
    q = len(C)
    x = [None] * q
    for i in reversed(range(q)):
        value = b[i]
        for k in range(i + 1, q):
            value = value - C[k][i] * x[k]
        x[i] = value / C[i][i]
    return x


def transpose_times(L, u):
    """``L' u`` for lower-triangular ``L``."""
    return [total(product(L[i][k], u[i]) for i in range(k, len(L))) for k in range(len(L))]


def precision_factor(L, G, s2, sqrt):
    """Cholesky factor of ``B = I + L' G L / sigma^2``, the posterior precision of the
    standardized group effects ``c = L^-1 b``."""
    H = sandwich(L, G)
    q = len(L)
    B = [[0.0 if h is None else h / s2 for h in row] for row in H]
    for k in range(q):
        B[k][k] = B[k][k] + 1.0
    return cholesky_unrolled(B, sqrt)


def inverse_lower(L):
    """``L^-1`` of a lower-triangular ``L`` (q x q scalars, unrolled)."""
    q = len(L)
    inv = [[None] * q for _ in range(q)]
    for i in range(q):
        inv[i][i] = 1.0 / L[i][i]
        for j in range(i):
            entry = total(product(L[i][k], inv[k][j]) for k in range(j, i))
            inv[i][j] = None if entry is None else -entry / L[i][i]
    return inv


def logdet_quadratic(M, u, xp):
    """``log|M_j| / 2`` and ``u_j' M_j^-1 u_j`` for every group: closed form for q <= 2
    (determinant and adjugate), an unrolled Cholesky factor otherwise."""
    q = len(M)
    if q == 1:
        return 0.5 * xp.log(M[0][0]), u[0] * u[0] / M[0][0]
    if q == 2:
        det = M[0][0] * M[1][1] - M[0][1] * M[0][1]
        quad = (M[1][1] * u[0] * u[0] - 2.0 * M[0][1] * u[0] * u[1] + M[0][0] * u[1] * u[1]) / det
        return 0.5 * xp.log(det), quad
    C = cholesky_unrolled(M, xp.sqrt)
    g = solve_lower(C, u)
    return total(xp.log(C[k][k]) for k in range(q)), total(g[k] * g[k] for k in range(q))
