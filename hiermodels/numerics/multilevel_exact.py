"""Exact posterior of the three-level meta-analysis model, on a 2-D grid of (tau_b, tau_w).

The model of :mod:`hiermodels.numerics.multilevel` with priors::

    y_i  ~ Normal(x_i' beta + u_c(i) + w_i, v_i),   u_c ~ Normal(0, tau_b),  w_i ~ Normal(0, tau_w)
    beta ~ flat, or Normal(m, s) per coefficient;   tau_b, tau_w ~ any densities (or fixed)

Given (tau_b, tau_w) everything else is Gaussian, so beta, u and w integrate out in closed
form (BDA3 eqs. 5.17-5.21 with V block diagonal; Sherman-Morrison per cluster) and only the
2-D posterior of the two standard deviations is left to numerical integration. It is
integrated by the trapezoidal rule on a uniform product grid in (log tau_b, log tau_w), where
the density is smooth and decays at both ends, so the rule converges geometrically
(Trefethen & Weideman 2014, SIAM Review 56:385). The range grows until the density on every
edge is below 1e-10 of its maximum, and the spacing halves until the integral and the means
agree with those of the grid of every other node to ``rtol``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import interpolate, optimize

from hiermodels.numerics.multilevel import prepare
from hiermodels.numerics.tau_marginal import ImproperPosteriorError, _eval_prior
from hiermodels.numerics.tau_quadrature import mixture_quantile

__all__ = ["MultilevelLikelihood", "MultilevelPosterior", "multilevel_posterior"]

_EDGE = math.log(1e10)  # the density at a grid edge must be below 1e-10 of its maximum
_TRIM = 25.0  # nodes whose whole row is e^-25 below the maximum are dropped
_CHUNK = 2_000_000  # grid points x clusters x coefficients per block, to bound memory
_MAX_NODES = 1025  # per axis


class MultilevelLikelihood:
    """log p(y | tau_b, tau_w) with beta integrated out, vectorised over (tau_b, tau_w) pairs.

    With a flat prior on beta this is the restricted likelihood up to a constant,
    -1/2 [log|V| + log|X'V^-1X| + y'Py]; a normal prior enters as p pseudo-observations:
    -1/2 [log|V| + log|A| + Q] - 1/2 (k - p_flat) log 2 pi - sum log s, A = X'V^-1X + S^-1,
    Q = (y - Xb)'V^-1(y - Xb) + (b - m)'S^-1(b - m), b = E[beta | tau, y] (BDA3 eq. 5.21).
    Per distinct tau_w the within-cluster parts are computed once (a = 1/(v + tau_w^2),
    a-weighted cluster means and centred sums), and each tau_b only rescales the cluster
    means by A_c / (1 + tau_b^2 A_c): O(k p^2) per tau_w plus O(n_clusters p^2) per pair.

    Examples
    --------
    >>> lik = MultilevelLikelihood([0.1, 0.4, 0.3], [0.02, 0.03, 0.02], [1, 1, 2])
    >>> lik.logml([0.1, 0.2], [0.05, 0.0]).shape
    (2,)
    """

    def __init__(self, y, v, cluster, X=None, beta_mean=None, beta_sd=None):
        self.y, self.v, self.X, self.g = prepare(y, v, cluster, X)
        k, p = self.X.shape
        self.k, self.p, self.n_clusters = k, p, self.g.n
        sd = np.full(p, np.inf) if beta_sd is None else np.broadcast_to(beta_sd, (p,)).astype(float)
        m0 = np.zeros(p) if beta_mean is None else np.broadcast_to(beta_mean, (p,)).astype(float)
        if np.any(~(sd > 0)) or not np.isfinite(m0).all():
            raise ValueError("beta prior: sd must be > 0 (inf = flat) and mean finite")
        self.prec0 = np.where(np.isfinite(sd), 1 / sd**2, 0.0)
        self.proper = bool(np.isfinite(sd).all())
        self.log_const = -0.5 * (k - np.sum(~np.isfinite(sd))) * math.log(2 * math.pi) - float(
            np.sum(np.log(sd[np.isfinite(sd)]))
        )
        A0 = self.X.T @ (self.X / self.v[:, None]) + np.diag(self.prec0)
        d = np.sqrt(np.diag(A0))
        if np.linalg.eigvalsh(A0 / np.outer(d, d))[0] < 1e-12:
            raise ImproperPosteriorError(
                f"X ({k} x {p}) does not identify every coefficient with a flat prior; drop a "
                "column or give those coefficients a normal prior"
            )
        # shift y by a weighted least squares fit: y'Py does not change, and the sums below
        # then do not cancel when y has a large mean
        self.b0 = np.linalg.solve(A0, self.X.T @ (self.y / self.v) + self.prec0 * m0)
        self.yc, self.m0c = self.y - self.X @ self.b0, m0 - self.b0
        self.scale = math.sqrt(float(np.mean(self.v) + np.var(self.y)))

    def _within(self, s_w):
        g, X, yc = self.g, self.X, self.yc
        a = 1 / (self.v[None, :] + s_w[:, None])  # (n, k)
        A = g.sum(a, axis=1)
        xbar = g.sum(a[:, :, None] * X[None], axis=1) / A[:, :, None]
        ybar = g.sum(a * yc, axis=1) / A
        xc = X[None] - g.expand(xbar, axis=1)
        ycc = yc[None] - g.expand(ybar, axis=1)
        wxx = np.einsum("nk,nkp,nkq->npq", a, xc, xc)
        wxy = np.einsum("nk,nkp,nk->np", a, xc, ycc)
        wyy = np.einsum("nk,nk->n", a, ycc**2)
        sld = np.sum(np.log(self.v[None, :] + s_w[:, None]), axis=1)
        return A, xbar, ybar, wxx, wxy, wyy, sld

    def conditional(self, tau_b, tau_w):
        """log p(y | tau) (without ``log_const``), E[beta | tau, y] (m, p), Cov (m, p, p)."""
        tau_b, tau_w = np.broadcast_arrays(
            np.atleast_1d(np.asarray(tau_b, float)), np.atleast_1d(np.asarray(tau_w, float))
        )
        tau_b, tau_w = tau_b.ravel(), tau_w.ravel()
        m, p = tau_b.size, self.p
        ll, mean, cov = np.empty(m), np.empty((m, p)), np.empty((m, p, p))
        step = max(1, _CHUNK // (self.n_clusters * p * p + self.k))
        for s in range(0, m, step):
            sl = slice(s, s + step)
            ll[sl], mean[sl], cov[sl] = self._block(tau_b[sl] ** 2, tau_w[sl] ** 2)
        return ll, mean, cov

    def logml(self, tau_b, tau_w):
        """log p(y | tau_b, tau_w), beta integrated out, for arrays of pairs (shape (m,))."""
        return self.conditional(tau_b, tau_w)[0] + self.log_const

    def _block(self, s_b, s_w):
        p = self.p
        uw, j = np.unique(s_w, return_inverse=True)
        A, xbar, ybar, wxx, wxy, wyy, sld = self._within(uw)
        A, xbar, ybar = A[j], xbar[j], ybar[j]
        f = A / (1 + s_b[:, None] * A)  # 1' V_c^-1 1
        H = wxx[j] + np.einsum("gc,gcp,gcq->gpq", f, xbar, xbar)
        H[:, np.arange(p), np.arange(p)] += self.prec0
        b = wxy[j] + np.einsum("gc,gcp,gc->gp", f, xbar, ybar) + self.prec0 * self.m0c
        yy = wyy[j] + np.einsum("gc,gc->g", f, ybar**2) + np.sum(self.prec0 * self.m0c**2)
        d = np.sqrt(np.diagonal(H, axis1=1, axis2=2))
        dd = d[:, :, None] * d[:, None, :]
        chol = np.linalg.cholesky(H / dd)
        cov = np.linalg.inv(H / dd) / dd
        mean = np.einsum("gij,gj->gi", cov, b)
        logdet = 2 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)) + np.log(d), axis=1)
        Q = np.maximum(yy - np.einsum("gi,gi->g", b, mean), 0.0)
        logdet_v = sld[j] + np.sum(np.log1p(s_b[:, None] * A), axis=1)
        return -0.5 * (logdet_v + logdet + Q), mean + self.b0, cov

    def effects(self, tau_b, tau_w, mean, cov):
        """Moments of the cluster effects u_c and true effects theta_i given tau, y.

        Given beta: u_c ~ Normal(s_b sum_c a r / D_c, s_b / D_c) with r = y - X beta,
        a = 1/(v + s_w), D_c = 1 + s_b A_c; then w_i | u_c ~ Normal(s_w a_i (r_i - u_c),
        s_w v_i a_i), so theta_i = x_i'beta + u_c + w_i has mean x_i'beta + v_i a_i u_c-mean
        + s_w a_i r_i and variance (v_i a_i)^2 s_b / D_c + s_w v_i a_i. Integrating beta over
        Normal(mean, cov) adds l'cov l for the coefficient l of beta in each mean.
        Returns u mean/var (m, C), theta mean/var (m, k) (sorted by cluster) and the
        shrinkage factors 1 / D_c (m, C) and v / (v + s_w) (m, k).
        """
        g, X, y, v = self.g, self.X, self.y, self.v
        s_b, s_w = (
            (np.asarray(tau_b, float) ** 2)[:, None],
            (np.asarray(tau_w, float) ** 2)[:, None],
        )
        a = 1 / (v + s_w)
        A = g.sum(a, axis=1)
        D = 1 + s_b * A
        r = y - mean @ X.T
        um = s_b * g.sum(a * r, axis=1) / D
        h = g.sum(a[:, :, None] * X, axis=1) / D[:, :, None]  # coefficient of beta: -s_b h
        uv = s_b / D + s_b**2 * np.einsum("gcp,gpq,gcq->gc", h, cov, h)
        va = v * a
        tm = mean @ X.T + va * g.expand(um, axis=1) + s_w * a * r
        lcoef = va[:, :, None] * (X - s_b[:, :, None] * g.expand(h, axis=1))
        tv = va**2 * g.expand(s_b / D, axis=1) + s_w * va
        tv = tv + np.einsum("gkp,gpq,gkq->gk", lcoef, cov, lcoef)
        return um, uv, tm, tv, 1 / D, va


class _Axis:
    """One axis of the grid: free (uniform in u = log tau) or fixed at one value of tau."""

    def __init__(self, logprior, fixed=None, lo=None, hi=None, n=None):
        self.logprior, self.fixed = logprior, fixed
        if fixed is not None:
            self.u, self.tau, self.w = None, np.array([fixed]), np.array([1.0])
        else:
            self.u = np.linspace(lo, hi, n)
            self.tau = np.exp(self.u)
            h = self.u[1] - self.u[0]
            self.w = np.full(n, h)
            self.w[[0, -1]] = h / 2

    @property
    def free(self):
        return self.fixed is None

    def log_weight(self):
        """log prior of tau plus the Jacobian log tau of u = log tau (0 for a fixed axis)."""
        if not self.free:
            return np.zeros(1)
        return _eval_prior(self.logprior, self.tau) + self.u


def _evaluate(lik, axes):
    """log density of (u_b, u_w) on the product grid, (n_b, n_w), and E, Cov of beta there."""
    lb, lw = axes[0].log_weight(), axes[1].log_weight()
    tb, tw = np.meshgrid(axes[0].tau, axes[1].tau, indexing="ij")
    L = np.full(tb.shape, -np.inf)
    ok = np.isfinite(lb)[:, None] & np.isfinite(lw)[None, :]
    if ok.any():
        L[ok] = lik.conditional(tb[ok], tw[ok])[0] + (lb[:, None] + lw[None, :])[ok]
    return L


def _profiles(L):
    return np.max(L, axis=1), np.max(L, axis=0)


def _summaries(L, axes, stride):
    """Integral and means of u and tau on the grid of every ``stride``-th node."""
    sub = [slice(None, None, stride if ax.free else 1) for ax in axes]
    Ls = L[sub[0], sub[1]]
    w = []
    for ax, s in zip(axes, sub, strict=True):
        if ax.free:
            u = ax.u[s]
            h = u[1] - u[0]
            wi = np.full(u.size, h)
            wi[[0, -1]] = h / 2
        else:
            wi = np.ones(1)
        w.append(wi)
    f = w[0][:, None] * w[1][None, :] * np.exp(Ls - L.max())
    z = f.sum()
    out = [z]
    for i, ax in enumerate(axes):
        if ax.free:
            marg = f.sum(axis=1 - i) / z
            out += [marg @ ax.u[sub[i]], marg @ ax.tau[sub[i]]]
    return np.array(out)


def _build_grid(lik, logpriors, fixed, grid_size, rtol):
    c = math.log(lik.scale)
    lo, hi = [c - 25.0, c - 25.0], [c + 10.0, c + 10.0]
    step = 0.5
    for _ in range(100):  # coarse scan: grow the range until the edges carry no mass
        axes = [
            _Axis(logpriors[i], fixed[i], lo[i], hi[i], round((hi[i] - lo[i]) / step) + 1)
            for i in range(2)
        ]
        L = _evaluate(lik, axes)
        if not np.isfinite(L).any():
            raise ValueError("the tau priors are -inf everywhere on the grid")
        M = L.max()
        prof = _profiles(L)
        grown = False
        for i in range(2):
            if fixed[i] is not None:
                continue
            if prof[i][0] > M - _EDGE:
                if lo[i] < c - 300:
                    raise ImproperPosteriorError(
                        f"the posterior of tau_{'bw'[i]} does not decay as tau -> 0; its prior "
                        "must not grow like 1/tau there"
                    )
                lo[i], grown = lo[i] - 10, True
            if prof[i][-1] > M - _EDGE:
                if hi[i] > min(c + 300, math.log(1e150)):
                    raise ImproperPosteriorError(
                        f"the posterior of tau_{'bw'[i]} does not decay as tau -> infinity; "
                        "use a proper prior on it"
                    )
                hi[i], grown = hi[i] + 10, True
        if not grown:
            break
    for i in range(2):  # trim what carries no mass
        if fixed[i] is None:
            keep = np.flatnonzero(prof[i] > M - _TRIM)
            u = axes[i].u
            lo[i], hi[i] = u[max(keep[0] - 1, 0)], u[min(keep[-1] + 1, u.size - 1)]
    n = [grid_size or 65, grid_size or 65]
    converged = False
    for _ in range(12):
        axes = [_Axis(logpriors[i], fixed[i], lo[i], hi[i], n[i]) for i in range(2)]
        L = _evaluate(lik, axes)
        M = L.max()
        prof = _profiles(L)
        grown = False
        for i in range(2):
            if fixed[i] is None:
                width = hi[i] - lo[i]
                if prof[i][0] > M - _EDGE:
                    lo[i], grown = lo[i] - 0.25 * width, True
                if prof[i][-1] > M - _EDGE:
                    hi[i], grown = hi[i] + 0.25 * width, True
        if grown:
            continue
        if grid_size:
            converged = True
            break
        full, half = _summaries(L, axes, 1), _summaries(L, axes, 2)
        ok_int = abs(half[0] / full[0] - 1) < rtol and np.all(
            np.abs(full[1:] - half[1:]) < rtol * (np.abs(full[1:]) + 1)
        )
        rough = [_rough(L, i) if fixed[i] is None else 0.0 for i in range(2)]
        if ok_int and max(rough) <= 1 / 16:
            converged = True
            break
        refine = [fixed[i] is None and (not ok_int or rough[i] > 1 / 16) for i in range(2)]
        if not any(refine) or all(n[i] >= _MAX_NODES for i in range(2) if refine[i]):
            break
        n = [min(2 * n[i] - 1, _MAX_NODES) if refine[i] else n[i] for i in range(2)]
    return axes, L, converged


def _rough(L, axis):
    """Largest second difference of the log density along ``axis`` where the density is
    above e^-20 of its maximum: at most 1/16 means a Gaussian peak gets 4 nodes per sd."""
    Lm = np.moveaxis(L, axis, 0)
    with np.errstate(invalid="ignore"):
        d2 = np.abs(Lm[:-2] - 2 * Lm[1:-1] + Lm[2:])
    mask = np.isfinite(d2) & (Lm[1:-1] > L.max() - 20)
    return float(np.max(d2[mask], initial=0.0))


class MultilevelPosterior:
    """Exact posterior of the three-level model; see :func:`multilevel_posterior`.

    Attributes
    ----------
    tau_b_grid, tau_w_grid : ndarray
        Grid nodes (a single node for a fixed component).
    density : ndarray, shape (n_b, n_w)
        Normalised posterior density of (tau_b, tau_w) at the nodes (of the free component
        alone if the other is fixed).
    log_marginal_likelihood : float
        log p(y); meaningful only when the beta prior and both tau priors are proper and
        normalised (NaN for a flat beta prior).
    converged : bool
        Whether the grid met ``rtol`` within the node limit.
    k, p, n_clusters : int
    cluster_labels : ndarray
    """

    def __init__(self, lik, axes, L, converged):
        self._lik, self._axes = lik, axes
        self.k, self.p, self.n_clusters = lik.k, lik.p, lik.n_clusters
        self.cluster_labels = lik.g.labels
        self.converged = converged
        self.tau_b_grid, self.tau_w_grid = axes[0].tau, axes[1].tau
        M = L.max()
        f = axes[0].w[:, None] * axes[1].w[None, :] * np.exp(L - M)
        z = f.sum()
        self._f2 = f / z  # quadrature weight x density of u at each node, sums to 1
        jac = np.outer(
            axes[0].tau if axes[0].free else np.ones(1), axes[1].tau if axes[1].free else 1.0
        )
        self.density = np.exp(L - M) / z / jac
        self.log_marginal_likelihood = (
            float(M + math.log(z) + lik.log_const) if lik.proper else math.nan
        )
        tb, tw = np.meshgrid(axes[0].tau, axes[1].tau, indexing="ij")
        keep = self._f2.ravel() > 1e-15 * self._f2.max()
        self._tb, self._tw = tb.ravel()[keep], tw.ravel()[keep]
        self._idx = np.flatnonzero(keep)
        w = self._f2.ravel()[keep]
        self._w = w / w.sum()
        _, self._bmean, self._bcov = lik.conditional(self._tb, self._tw)
        self._cdf = [self._marginal_cdf(i) if axes[i].free else None for i in range(2)]

    def _marginal_cdf(self, i):
        marg = self._f2.sum(axis=1 - i) / self._axes[i].w  # density of u_i at the nodes
        spline = interpolate.CubicSpline(self._axes[i].u, marg).antiderivative()
        return spline, float(spline(self._axes[i].u[-1]))

    def _component(self, which):
        i = {"between": 0, "within": 1}.get(which)
        if i is None:
            raise ValueError(f"which must be 'between' or 'within', got {which!r}")
        return i

    def quantile_tau(self, q, which="between"):
        """Posterior quantile(s) of tau_b (``which="between"``) or tau_w ("within").

        The marginal density of log tau is interpolated by a cubic spline between nodes.
        """
        i = self._component(which)
        q = np.atleast_1d(np.asarray(q, dtype=float))
        if ((q <= 0) | (q >= 1)).any():
            raise ValueError("quantile levels must lie strictly between 0 and 1")
        if not self._axes[i].free:
            return np.full(q.shape, self._axes[i].fixed)
        spline, total = self._cdf[i]
        u = self._axes[i].u
        out = [optimize.brentq(lambda x, t=t: spline(x) / total - t, u[0], u[-1]) for t in q]
        return np.exp(np.array(out))

    def tau_summary(self, prob=0.95):
        """Mean, sd, median and equal-tailed ``prob`` interval of tau_b and tau_w.

        Returns ``{"between": {...}, "within": {...}}`` with keys mean, sd, median, lower,
        upper.
        """
        out = {}
        for i, name in enumerate(("between", "within")):
            tau = self._tb if i == 0 else self._tw
            mean = float(self._w @ tau)
            sd = math.sqrt(max(float(self._w @ (tau - mean) ** 2), 0.0))
            lo, med, hi = self.quantile_tau([(1 - prob) / 2, 0.5, (1 + prob) / 2], name)
            out[name] = {"mean": mean, "sd": sd, "median": med, "lower": lo, "upper": hi}
        return out

    def beta_moments(self):
        """Posterior mean (p,) and covariance (p, p) of beta (law of total covariance)."""
        mean = self._w @ self._bmean
        dev = self._bmean - mean
        cov = np.einsum("g,gij->ij", self._w, self._bcov + dev[:, :, None] * dev[:, None, :])
        return {"mean": mean, "cov": cov}

    def beta_summary(self, prob=0.95):
        """Mean, sd, median and equal-tailed ``prob`` interval of each coefficient (p,)."""
        mom = self.beta_moments()
        sds = np.sqrt(np.diagonal(self._bcov, axis1=1, axis2=2))
        qs = mixture_quantile(self._w, self._bmean, sds, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
        return {
            "mean": mom["mean"],
            "sd": np.sqrt(np.diag(mom["cov"])),
            "median": qs[1],
            "lower": qs[0],
            "upper": qs[2],
        }

    def _effect_moments(self):
        lik, C, k = self._lik, self.n_clusters, self.k
        acc = [np.zeros(C), np.zeros(C), np.zeros(C), np.zeros(k), np.zeros(k), np.zeros(k)]
        step = max(1, _CHUNK // (k * self.p + C))
        for s in range(0, self._w.size, step):
            sl = slice(s, s + step)
            um, uv, tm, tv, bc, bi = lik.effects(
                self._tb[sl], self._tw[sl], self._bmean[sl], self._bcov[sl]
            )
            w = self._w[sl]
            acc[0] += w @ um
            acc[1] += w @ (uv + um**2)
            acc[2] += w @ bc
            acc[3] += w @ tm
            acc[4] += w @ (tv + tm**2)
            acc[5] += w @ bi
        return acc

    def cluster_moments(self):
        """Posterior mean and sd of each cluster effect u_c, and its shrinkage.

        ``shrinkage`` is E[1 / (1 + tau_b^2 A_c) | y], A_c = sum of 1 / (v_i + tau_w^2) over
        the cluster: 0 = the cluster's own mean, 1 = pooled completely (as BDA3 eq. 5.17).
        Returns ``{"mean", "sd", "shrinkage"}``, arrays in the order of ``cluster_labels``.
        """
        m, s2, sh = self._effect_moments()[:3]
        return {"mean": m, "sd": np.sqrt(np.maximum(s2 - m**2, 0.0)), "shrinkage": sh}

    def theta_moments(self):
        """Posterior mean and sd of each true effect theta_i = x_i'beta + u_c + w_i, and the
        effect-level shrinkage E[v_i / (v_i + tau_w^2) | y] (towards its cluster's mean).

        Returns ``{"mean", "sd", "shrinkage"}``, arrays of shape (k,) in the input order.
        """
        m, s2, sh = self._effect_moments()[3:]
        un = self._lik.g.unorder
        sd = np.sqrt(np.maximum(s2 - m**2, 0.0))
        return {"mean": m[un], "sd": sd[un], "shrinkage": sh[un]}

    def draw(self, n, rng=None):
        """Independent draws from the joint posterior.

        A grid node by its posterior weight, moved uniformly within its cell in log tau (so
        tau is continuous; this smooths the grid's distribution by a variance of h^2/12 in
        log tau), then beta | tau, y, the cluster effects u | beta, tau, y and the effect-level
        deviations w | u, beta, tau, y from their Gaussian conditionals.

        Returns
        -------
        dict
            ``"tau_b"``, ``"tau_w"`` (n,), ``"beta"`` (n, p), ``"u"`` (n, n_clusters) in the
            order of ``cluster_labels``, ``"theta"`` (n, k) in the input order.
        """
        rng = np.random.default_rng(rng)
        lik, g = self._lik, self._lik.g
        node = rng.choice(self._w.size, size=n, p=self._w)
        taus = []
        for i, tau in enumerate((self._tb[node], self._tw[node])):
            ax = self._axes[i]
            if ax.free:
                h = ax.u[1] - ax.u[0]
                tau = tau * np.exp(h * (rng.uniform(size=n) - 0.5))
            taus.append(tau)
        tb, tw = taus
        _, bm, bc = lik.conditional(tb, tw)
        beta = bm + np.einsum("nij,nj->ni", np.linalg.cholesky(bc), rng.standard_normal(bm.shape))
        s_b, s_w = tb[:, None] ** 2, tw[:, None] ** 2
        a = 1 / (lik.v + s_w)
        D = 1 + s_b * g.sum(a, axis=1)
        r = lik.y - beta @ lik.X.T
        u = s_b * g.sum(a * r, axis=1) / D + np.sqrt(s_b / D) * rng.standard_normal(D.shape)
        ue = g.expand(u, axis=1)
        w = s_w * a * (r - ue) + np.sqrt(s_w * lik.v * a) * rng.standard_normal(r.shape)
        theta = beta @ lik.X.T + ue + w
        return {"tau_b": tb, "tau_w": tw, "beta": beta, "u": u, "theta": theta[:, g.unorder]}


def multilevel_posterior(
    y,
    v,
    cluster,
    X=None,
    *,
    tau_priors: tuple[Callable | float, Callable | float],
    beta_prior=None,
    grid_size: int | None = None,
    rtol: float = 1e-8,
) -> MultilevelPosterior:
    """Exact posterior of the three-level meta-analysis model.

    ``y_i ~ Normal(x_i'beta + u_c(i) + w_i, v_i)``, ``u_c ~ Normal(0, tau_b)``,
    ``w_i ~ Normal(0, tau_w)``, beta flat or normal, tau_b and tau_w independent a priori.

    Parameters
    ----------
    y, v, cluster : array_like, shape (k,)
        Effect sizes, sampling variances and clusters.
    X : array_like, shape (k, p), optional
        Full design matrix; default intercept only.
    tau_priors : (prior_b, prior_w)
        Each a vectorised log-density of tau > 0 (up to a constant; -inf outside its
        support), or a number >= 0 that fixes that standard deviation (0 drops the level).
    beta_prior : (mean, sd), optional
        Independent normal priors on the coefficients (broadcast to p; sd = inf is flat);
        None is flat on all.
    grid_size : int, optional
        Nodes per free axis, fixed (no refinement); default adaptive.
    rtol : float
        Target agreement of the integral and the means of log tau and tau between the grid
        and its every-other-node subgrid.

    Returns
    -------
    MultilevelPosterior

    Examples
    --------
    >>> hn = lambda t: -0.5 * (t / 0.5) ** 2
    >>> post = multilevel_posterior([0.1, 0.4, 0.3, 0.8], [0.02] * 4, [1, 1, 2, 2],
    ...                             tau_priors=(hn, hn), beta_prior=(0.0, 1.0))
    >>> post.density.shape == (post.tau_b_grid.size, post.tau_w_grid.size)
    True
    """
    fixed = []
    for prior in tau_priors:
        if callable(prior):
            fixed.append(None)
        elif np.isscalar(prior) and float(prior) >= 0:
            fixed.append(float(prior))
        else:
            raise ValueError("each tau prior must be a callable log-density or a number >= 0")
    if grid_size is not None and (int(grid_size) < 9 or int(grid_size) % 2 == 0):
        raise ValueError(f"grid_size must be odd and >= 9, got {grid_size}")
    mean, sd = (None, None) if beta_prior is None else beta_prior
    lik = MultilevelLikelihood(y, v, cluster, X, beta_mean=mean, beta_sd=sd)
    axes, L, converged = _build_grid(lik, list(tau_priors), fixed, grid_size, rtol)
    return MultilevelPosterior(lik, axes, L, converged)
