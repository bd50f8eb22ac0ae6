"""Marginal posterior of tau in the normal-normal random-effects model, on an adaptive grid.

Two steps behind :func:`hiermodels.numerics.exact.exact_posterior`:

1. :class:`ConditionalModel` integrates beta (and the thetas) out given tau in closed form,
   giving log p(y | tau) and the Gaussian beta | tau, y (BDA3 eqs. 5.19-5.21, generalised to a
   regression with optional normal priors on the coefficients).
2. :func:`build_tau_grid` finds where p(tau | y) lives and lays a uniform grid in u = log tau
   over it, fine enough that the log density changes smoothly from node to node, and checks
   that the posterior is proper (the density must decay at both ends).
"""

from __future__ import annotations

import math

import numpy as np

from hiermodels.numerics.heterogeneity import others_sum

__all__ = [
    "FLAT_SLOPE",
    "ConditionalModel",
    "ImproperPosteriorError",
    "build_tau_grid",
    "linear_predictor",
]

_NEGLIGIBLE = 40.0  # log-density drop below the maximum treated as no mass (e^-40 = 4e-18)
_SCAN = (-100.0, 60.0, 0.5)  # coarse scan of log(tau / data scale): from 4e-44 to 1e26 scales
_H_MAX = 0.1  # coarsest spacing of the fine grid on the log-tau scale
_D2_TARGET = 1.0 / 64.0  # largest 2nd difference of the log density per step (= h = sd/8)
_MIN_GRID, _MAX_GRID = 33, 50_000
FLAT_SLOPE = 1e-6  # a log-density slope (per unit log tau) below this counts as "does not decay"
_CHUNK = 2_000_000  # grid points x studies per block, to bound memory
_TAU_MAX = 1e153  # tau^2 and sums of a few of them stay finite below this


class ImproperPosteriorError(ValueError):
    """The posterior does not integrate to a finite value, so no summary of it exists."""


def _as_float_array(value, name, shape=None):
    arr = np.asarray(value, dtype=float)
    if shape is not None:
        try:
            arr = np.broadcast_to(arr, shape).copy()
        except ValueError:
            raise ValueError(f"{name} has shape {np.shape(value)}, expected {shape}") from None
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at positions {np.flatnonzero(np.isnan(arr))}")
    return arr


def linear_predictor(coef, X):
    """``coef @ X.T`` for coef (G, p) and X (k, p), column by column.

    BLAS is slow for a product whose inner dimension p is tiny (a handful of moderators), and
    this sum of p outer products is not.
    """
    out = coef[:, :1] * X[:, 0]
    for j in range(1, X.shape[1]):
        out += coef[:, j : j + 1] * X[:, j]
    return out


class ConditionalModel:
    """Data and beta prior; computes what is conditional on tau (BDA3 eqs. 5.17-5.21).

    Examples
    --------
    >>> model = ConditionalModel([0.0, 2.0], [1.0, 1.0], None, None, None)
    >>> loglik, mean, cov = model.conditional([0.0])
    >>> float(mean[0, 0]), float(cov[0, 0, 0])
    (1.0, 0.5)
    """

    def __init__(self, y, se, X, beta_mean, beta_sd):
        self.y = _as_float_array(y, "y").ravel()
        k = self.y.size
        if k == 0:
            raise ValueError("y is empty; at least one study is needed")
        se = _as_float_array(se, "se").ravel()
        if se.size != k:
            raise ValueError(f"y has {k} values but se has {se.size}")
        bad = np.flatnonzero(~(np.isfinite(se) & (se > 0)) | ~np.isfinite(self.y))
        if bad.size:
            raise ValueError(
                f"y/se invalid at positions {bad.tolist()}: y must be finite and se finite and > 0"
            )
        self.se2 = se**2
        X = np.ones((k, 1)) if X is None else _as_float_array(X, "X")
        X = X.reshape(k, -1) if X.ndim == 1 else X
        if X.shape[0] != k or not np.isfinite(X).all():
            raise ValueError(f"X must be a finite ({k}, p) array, got shape {X.shape}")
        self.X = X
        self.k, self.p = k, X.shape[1]
        p = self.p
        sd = np.full(p, np.inf) if beta_sd is None else _as_float_array(beta_sd, "beta_sd", (p,))
        if (sd <= 0).any():
            raise ValueError("beta_sd must be > 0 (use np.inf or None for a flat prior)")
        self.m0 = (
            np.zeros(p) if beta_mean is None else _as_float_array(beta_mean, "beta_mean", (p,))
        )
        if not np.isfinite(self.m0).all():
            raise ValueError("beta_mean must be finite")
        self.prec0 = np.where(np.isfinite(sd), 1.0 / sd**2, 0.0)
        self.proper = bool(np.isfinite(sd).all())
        # log p(y | tau) constant: only the proper components of the beta prior are normalised
        self.log_const = -0.5 * (k - np.sum(~np.isfinite(sd))) * math.log(2 * math.pi) - np.sum(
            np.log(sd[np.isfinite(sd)])
        )
        self.XX = (X[:, :, None] * X[:, None, :]).reshape(k, p * p)
        self.Xy = X * self.y[:, None]
        self.scale = math.sqrt(np.mean(self.se2) + np.var(self.y))
        # the smallest scale on which the likelihood changes: the scan starts below it, so a
        # study with a huge se (which inflates ``scale``) cannot hide where tau lives
        self.low_scale = min(self.scale, float(np.min(se)))
        # a flat prior on a direction of beta that the data cannot see is improper for any tau
        A0 = X.T @ (X / self.se2[:, None]) + np.diag(self.prec0)
        d = np.sqrt(np.diag(A0))
        if np.any(d == 0) or np.linalg.eigvalsh(A0 / np.outer(d, d))[0] < 1e-12:
            raise ImproperPosteriorError(
                f"the design X ({k} x {p}) does not identify every coefficient that has a flat "
                "prior (X is rank deficient); drop a column or give those coefficients a "
                "normal prior via beta_mean/beta_sd"
            )

    def conditional(self, tau, loglik=True):
        """Return log p(y | tau) (up to ``log_const``), E[beta | tau, y] and Cov[beta | tau, y].

        beta | tau, y is Gaussian with precision A = X'WX + P0 and mean A^-1 (X'Wy + P0 m),
        W = diag(1 / (se^2 + tau^2)) (BDA3 eqs. 5.19-5.20 for a regression, the prior entering
        as p extra observations). Integrating beta out of N(y | X beta, W^-1) N(beta | m, P0^-1)
        leaves log p(y | tau) = -1/2 [sum log(se^2 + tau^2) + log|A| + Q] + const with
        Q = (y - X b)'W(y - X b) + (b - m)'P0(b - m) (BDA3 eq. 5.21 generalised).
        """
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        n, p = tau.size, self.p
        ll, mean, cov = np.full(n, np.nan), np.empty((n, p)), np.empty((n, p, p))
        step = max(1, _CHUNK // self.k)
        for s in range(0, n, step):
            sl = slice(s, s + step)
            ll[sl], mean[sl], cov[sl] = self._conditional_block(tau[sl], loglik)
        return ll, mean, cov

    def _conditional_block(self, tau, loglik):
        p = self.p
        v = self.se2[None, :] + (tau**2)[:, None]
        w = 1.0 / v
        if p == 1:
            return self._conditional_one(v, w, loglik)
        A = (w @ self.XX).reshape(-1, p, p)
        A[:, np.arange(p), np.arange(p)] += self.prec0
        b = w @ self.Xy + self.prec0 * self.m0
        if p == 1:
            a = A[:, 0, 0]
            cov, mean = (1.0 / a)[:, None, None], (b[:, 0] / a)[:, None]
            logdet = np.log(a) if loglik else None
        else:
            # scale to unit diagonal first: covariates on very different scales stay accurate
            d = np.sqrt(np.diagonal(A, axis1=1, axis2=2))
            dd = d[:, :, None] * d[:, None, :]
            cov = np.linalg.inv(A / dd) / dd
            mean = np.einsum("gij,gj->gi", cov, b)
            if loglik:
                chol = np.diagonal(np.linalg.cholesky(A / dd), axis1=1, axis2=2)
                logdet = 2 * np.sum(np.log(chol) + np.log(d), axis=1)
        if not loglik:
            return np.nan, mean, cov
        resid = self.y - linear_predictor(mean, self.X)
        Q = np.sum(w * resid**2, axis=1) + np.sum(self.prec0 * (mean - self.m0) ** 2, axis=1)
        return -0.5 * (np.sum(np.log(v), axis=1) + logdet + Q), mean, cov

    def _conditional_one(self, v, w, loglik):
        """:meth:`_conditional_block` for one coefficient, exact when one study dominates.

        The weights are scaled by their largest value c (the prior precision counts as one
        more observation m0 of weight prec0), and each residual is (y_i A_i - x_i S_i) / a
        with A_i, S_i the sums over the other studies and the prior: y_i - x_i b directly
        loses all digits when study i has a weight 1e16 or more times the others (BDA3
        eq. 5.21 in a form that never subtracts nearly equal numbers).
        """
        x, y, prec0, m0 = self.X[:, 0], self.y, self.prec0[0], self.m0[0]
        c = np.maximum(w.max(axis=1), prec0)[:, None]
        u, u0 = w / c, prec0 / c
        ux2, uxy = u * x * x, u * x * y
        a = np.sum(ux2, axis=1, keepdims=True) + u0
        b = np.sum(uxy, axis=1, keepdims=True) + u0 * m0
        mean = b / a
        cov = (1.0 / (a * c))[:, :, None]
        if not loglik:
            return np.nan, mean, cov
        resid = (y * (others_sum(ux2) + u0) - x * (others_sum(uxy) + u0 * m0)) / a
        Q = c[:, 0] * (np.sum(u * resid**2, axis=1) + u0[:, 0] * (mean[:, 0] - m0) ** 2)
        logdet = np.log(a[:, 0]) + np.log(c[:, 0])
        return -0.5 * (np.sum(np.log(v), axis=1) + logdet + Q), mean, cov


def _eval_prior(tau_logprior, tau):
    with np.errstate(all="ignore"):
        lp = np.asarray(tau_logprior(tau), dtype=float)
    try:
        lp = np.broadcast_to(lp, tau.shape)
    except ValueError:
        raise ValueError(
            f"tau_logprior must be vectorised: given {tau.shape[0]} values it returned shape "
            f"{lp.shape}"
        ) from None
    bad = np.isnan(lp) | (lp == np.inf)
    if bad.any():
        raise ValueError(
            f"tau_logprior returned {lp[bad][0]} at tau = {tau[bad][0]:.6g}; it must return a "
            "finite log-density, or -inf outside its support"
        )
    return lp


def _log_density_u(model, tau_logprior, u):
    """log p(tau | y) + log tau (the density of u = log tau) up to a constant, and beta | tau.

    Returns the log density (-inf outside the prior's support) and the mean and covariance
    of beta | tau, y (NaN outside the support).
    """
    tau = np.exp(u)
    lp = _eval_prior(tau_logprior, tau)
    out = np.full(u.shape, -np.inf)
    mean = np.full((u.size, model.p), np.nan)
    cov = np.full((u.size, model.p, model.p), np.nan)
    ok = lp > -np.inf
    if ok.any():
        loglik, mean[ok], cov[ok] = model.conditional(tau[ok])
        out[ok] = lp[ok] + loglik + u[ok]
    return out, mean, cov


def _support_edge(tau_logprior, inside, outside):
    """Last point (on the log-tau scale) where the prior is finite, by vectorised bisection."""
    for _ in range(8):
        pts = np.linspace(inside, outside, 33)
        finite = np.isfinite(_eval_prior(tau_logprior, np.exp(pts)))
        first_out = int(np.argmin(finite))  # finite[0] is True, so this is the first False
        inside, outside = pts[first_out - 1], pts[first_out]
        if abs(outside - inside) < 1e-13 * max(1.0, abs(inside)):
            break
    return inside


def _improper(side, slope, model):
    flat = int(np.sum(model.prec0 == 0))
    hint = (
        "With a flat prior on tau the posterior is proper only if k - p_flat >= 2, where "
        f"p_flat counts the coefficients with a flat prior (here k = {model.k}, p_flat = {flat})."
        if side == "infinity"
        else "The prior density of tau must not grow like 1/tau (or faster) as tau -> 0."
    )
    return ImproperPosteriorError(
        f"the posterior of tau is improper: its density does not decay as tau -> {side} "
        f"(log-density slope {slope:.3g} per unit log tau). {hint} Use a proper prior on "
        "tau, e.g. a half-normal or half-Cauchy density."
    )


def _roughness(g):
    """Largest second difference of the log density, relative to what the grid may allow.

    A Gaussian peak sampled at sd/8 has second differences 1/64 (``_D2_TARGET``); far from
    the peak, where the density is e^-m of its maximum, e^(m/4) times more is allowed since
    the error there is weighted by the density (keeps one-sided steep tails cheap).
    """
    d2 = np.abs(g[:-2] - 2 * g[1:-1] + g[2:])
    drop = g.max() - g[1:-1]
    ok = np.isfinite(d2) & (drop < _NEGLIGIBLE)
    return float(np.max(d2[ok] / (_D2_TARGET * np.exp(drop[ok] / 4)), initial=0.0))


def build_tau_grid(model, tau_logprior, n_grid):
    """Uniform grid in log tau covering all but e^-40 of the posterior mass.

    Returns the grid u, the log density of u there, the mean (G, p) and covariance (G, p, p)
    of beta | tau, y at its nodes, and whether the lower and upper ends are open (the
    density continues beyond them) rather than edges of the prior's support.

    Examples
    --------
    >>> model = ConditionalModel([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], None, None, None)
    >>> u, logdens, mean, cov, open_lo, open_hi = build_tau_grid(model, lambda t: -t, None)
    >>> bool(np.all(np.diff(u) > 0)), open_lo, open_hi
    (True, True, True)
    """
    lo, hi, step = _SCAN
    top = min(math.log(model.scale) + hi, math.log(_TAU_MAX))
    u = np.arange(math.log(model.low_scale) + lo, top + step / 2, step)
    g = _log_density_u(model, tau_logprior, u)[0]
    finite = np.isfinite(g)
    if not finite.any():
        raise ValueError(
            f"tau_logprior is -inf for every tau tried ({np.exp(u[0]):.3g} to "
            f"{np.exp(u[-1]):.3g}); its support is empty or too narrow"
        )
    i0, i1 = np.flatnonzero(finite)[[0, -1]]
    if not finite[i0 : i1 + 1].all():
        raise ValueError("the support of tau_logprior must be a single interval")
    edge_lo = _support_edge(tau_logprior, u[i0], u[i0 - 1]) if i0 > 0 else None
    edge_hi = _support_edge(tau_logprior, u[i1], u[i1 + 1]) if i1 < u.size - 1 else None
    # as tau -> 0 the likelihood tends to its value at tau = 0 (every se > 0), so the prior
    # alone decides whether the density of u decays there; its slope is the one to check, as
    # a likelihood that is e^-1e299 of its maximum there would round the total slope to 0
    lp_u = _eval_prior(tau_logprior, np.exp(u[:2])) + u[:2]
    if edge_lo is None and not (lp_u[1] - lp_u[0]) / step > FLAT_SLOPE:
        raise _improper("0", (lp_u[1] - lp_u[0]) / step, model)
    if edge_hi is None and not (g[-2] - g[-1]) / step > FLAT_SLOPE:
        raise _improper("infinity", (g[-2] - g[-1]) / step, model)
    keep = np.flatnonzero(g > g[finite].max() - _NEGLIGIBLE - 10)
    a = max(u[keep[0]] - step, u[0] if edge_lo is None else edge_lo)
    b = min(u[keep[-1]] + step, u[-1] if edge_hi is None else edge_hi)
    # second differences are exact for a quadratic, so they size the grid even if the peak
    # is narrower than the scan step; the loop below checks the result on the fine grid
    # a support edge is integrated to high but finite order (not geometrically): go finer
    h_max = _H_MAX if edge_lo is None and edge_hi is None else _H_MAX / 2
    h = min(h_max, step / math.sqrt(max(_roughness(g[i0 : i1 + 1]), 1e-300)))
    for _ in range(8):
        n = n_grid or int(np.clip(math.ceil((b - a) / h) + 1, _MIN_GRID, _MAX_GRID))
        uu = np.linspace(a, b, n)
        h = uu[1] - uu[0]
        gg, mean, cov = _log_density_u(model, tau_logprior, uu)
        keep = np.flatnonzero(gg > gg.max() - _NEGLIGIBLE)
        k0, k1 = max(keep[0] - 1, 0), min(keep[-1] + 1, n - 1)
        rough = _roughness(gg)
        if n_grid or rough <= 2.25 or (n == _MAX_GRID and k1 - k0 + 1 == n):
            break  # smooth enough, or as fine as allowed over a range that cannot shrink
        # refine (and drop what turned out to be negligible) and try again
        h = min(h_max, h / math.sqrt(rough))
        a, b = uu[k0], uu[k1]
    if not n_grid and k1 - k0 + 1 < _MIN_GRID:
        k0, k1 = 0, n - 1  # too few nodes left after trimming: keep the whole (fine) grid
    open_lo = k0 > 0 or edge_lo is None or a > edge_lo
    open_hi = k1 < n - 1 or edge_hi is None or b < edge_hi
    keep = slice(k0, k1 + 1)
    return uu[keep], gg[keep], mean[keep], cov[keep], bool(open_lo), bool(open_hi)
