"""Integrals over the posterior of tau, on the uniform log-tau grid it was evaluated on.

:func:`~hiermodels.numerics.tau_marginal.build_tau_grid` gives log p(tau | y) at the nodes of a
uniform grid in u = log tau; :class:`TauQuadrature` turns that into a normalised density and
integrates against it: expectations (trapezoid weights with Gregory's end corrections, eighth
order; Trefethen & Weideman 2014, SIAM Review 56:385, for the geometric convergence of the
trapezoid rule in u), the CDF and its inverse (Hermite interpolation between the nodes, with
the cell's Euler-Maclaurin term), and the tails beyond the grid in closed form (they decay like
exp(-rate |u|), power laws in tau). Quantities that are normal given tau (beta, theta, a new
study) are mixtures of normals over the nodes: :func:`mixture_quantile`, :func:`mixture_cdf`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from hiermodels.numerics.tau_marginal import FLAT_SLOPE, ImproperPosteriorError

__all__ = ["TauQuadrature", "mixture_cdf", "mixture_quantile"]


_STENCIL = 7  # points per finite-difference stencil (sixth order for the first derivative)
_GREGORY = 8  # end-corrected nodes per side: the weights below are exact to degree 7


@functools.lru_cache(maxsize=64)
def _fd_weights(offsets, order):
    """Weights w with sum_j w_j f(x + offsets_j h) ~ h^order f^(order)(x) (Taylor matching)."""
    m = np.arange(len(offsets))
    taylor = np.asarray(offsets, dtype=float)[None, :] ** m[:, None] / special.factorial(m)[:, None]
    return np.linalg.solve(taylor, (m == order).astype(float))


def _log_derivatives(g, h):
    """First three derivatives of ``g`` on a uniform grid, from 7-point stencils.

    Centred in the interior and one-sided near the ends, so a bounded support keeps the
    same order of accuracy at its edge.
    """
    n, half = g.size, _STENCIL // 2
    out = []
    for order in (1, 2, 3):
        d = np.empty(n)
        w = _fd_weights(tuple(range(-half, half + 1)), order)
        d[half : n - half] = np.convolve(g, w[::-1], mode="valid")
        for i in (*range(half), *range(n - half, n)):
            start = min(max(i - half, 0), n - _STENCIL)
            offsets = tuple(range(start - i, start - i + _STENCIL))
            d[i] = _fd_weights(offsets, order) @ g[start : start + _STENCIL]
        out.append(d / h**order)
    return out


def _gregory_weights(n, h):
    """Trapezoid weights with Gregory end corrections exact for polynomials of degree < 8.

    The trapezoid error at an end is sum_i B_2i / (2i)! h^2i f^(2i-1) (Euler-Maclaurin); the
    corrections c_j on the first nodes reproduce it for x^m: sum_j c_j j^m = B_(m+1) / (m+1)
    for odd m, 0 for even m (Gregory's rule; the 3-node case is the classic 3/8, 7/6, 23/24).
    """
    m = np.arange(_GREGORY)
    rhs = np.where(
        m % 2 == 1, special.bernoulli(_GREGORY)[np.minimum(m + 1, _GREGORY)] / (m + 1), 0
    )
    c = np.linalg.solve(m[None, :].astype(float) ** m[:, None], rhs)
    w = np.full(n, h)
    w[[0, -1]] = h / 2
    w[:_GREGORY] += h * c
    w[n - _GREGORY :] += h * c[::-1]
    return w


def mixture_quantile(weights, means, sds, q):
    """Quantiles of sum_g weights[g] Normal(means[g], sds[g]) for every column of means.

    Safeguarded Newton on the mixture CDF; ``weights`` (G,), ``means``/``sds`` (G, m),
    ``q`` (nq,) -> (nq, m).
    """
    q = np.atleast_1d(np.asarray(q, dtype=float))
    if ((q <= 0) | (q >= 1)).any():
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {q}")
    big = weights > 1e-14 * weights.max()
    w, mu, sd = weights[big], means[big][:, None, :], np.maximum(sds[big], 1e-300)[:, None, :]
    w = w / w.sum()
    z = special.ndtri(q)[None, :, None]
    lo, hi = np.min(mu + sd * z, axis=0), np.max(mu + sd * z, axis=0)  # exact bracket
    m1 = np.einsum("g,gqm->qm", w, mu)
    s1 = np.sqrt(np.einsum("g,gqm->qm", w, sd**2 + (mu - m1) ** 2))
    x = np.clip(m1 + s1 * z[0], lo, hi)
    qq = q[:, None]
    for _ in range(100):
        t = (x - mu) / sd
        resid = np.einsum("g,gqm->qm", w, special.ndtr(t)) - qq
        dens = np.einsum("g,gqm->qm", w, np.exp(-0.5 * t**2) / sd) / math.sqrt(2 * math.pi)
        lo, hi = np.where(resid < 0, x, lo), np.where(resid >= 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = x - resid / dens
        new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
        hit = np.abs(resid) < 1e-15
        done = hit | (np.abs(new - x) <= 1e-15 * (np.abs(x) + s1))
        x = np.where(hit, x, new)
        if done.all():
            break
    return x


def mixture_cdf(weights, means, sds, x):
    """sum_g weights[g] Phi((x - means[g]) / sds[g]) for every x."""
    x = np.asarray(x, dtype=float)
    z = (x.reshape(1, -1) - means[:, None]) / np.maximum(sds, 1e-300)[:, None]
    out = weights @ special.ndtr(z)
    return float(out[0]) if x.ndim == 0 else out.reshape(x.shape)


class TauQuadrature:
    """The normalised posterior density of u = log tau on a uniform grid, and its integrals.

    Parameters
    ----------
    u : ndarray
        The uniform grid in log tau.
    logdens : ndarray
        log p(tau | y) on the u scale at the nodes, up to a constant.
    open_lo, open_hi : bool
        Whether the density has mass below / above the grid (False where the support of the
        prior ends there); that mass is added in closed form.

    Attributes
    ----------
    tau : ndarray
        The nodes on the tau scale.
    f : ndarray
        The normalised density of u at the nodes.
    mix_w : ndarray
        The nodes' weights as a discrete mixture (tails lumped into the end nodes), for the
        normal mixtures over tau.
    log_max, log_z : float
        The log of the normalising constant of exp(logdens) is ``log_max + log_z``.
    """

    def __init__(self, u, logdens, open_lo, open_hi):
        self.u, self.h = u, u[1] - u[0]
        self.open = (open_lo, open_hi)
        self.tau = np.exp(u)
        f = np.exp(logdens - logdens.max())
        self.weights = _gregory_weights(u.size, self.h)
        # the density of u decays like exp(-rate |u|) beyond the grid (power laws in tau)
        self.rate = (
            (np.log(f[1] / f[0]) / self.h) if open_lo else np.inf,
            (np.log(f[-2] / f[-1]) / self.h) if open_hi else np.inf,
        )
        if not min(self.rate) > FLAT_SLOPE:  # guaranteed by build_tau_grid; guard against surprises
            raise ImproperPosteriorError(
                f"posterior of tau does not decay beyond the grid ({u[[0, -1]]})"
            )
        tails = [
            f[0] / self.rate[0] if open_lo else 0.0,
            f[-1] / self.rate[1] if open_hi else 0.0,
        ]
        z = self.weights @ f + sum(tails)
        self.f = f / z
        self.tails = (tails[0] / z, tails[1] / z)
        self.log_max, self.log_z = logdens.max(), math.log(z)
        # derivatives of the density through those of its log, which is nearly quadratic and
        # so differentiates accurately by finite differences
        h = self.h
        g1, g2, g3 = _log_derivatives(logdens, h)
        self.df = g1 * self.f
        d3f = (g3 + 3 * g1 * g2 + g1**3) * self.f
        # CDF at the nodes: Euler-Maclaurin formula on each cell up to its h^4 term, error
        # O(h^6) overall; ``corr`` is the h^4 term, spread smoothly over a cell in ``cell``
        self.corr = h**4 / 720 * np.diff(d3f)
        inc = h / 2 * (self.f[:-1] + self.f[1:]) + h**2 / 12 * np.diff(-self.df) + self.corr
        cum = np.maximum.accumulate(np.concatenate([[0.0], np.cumsum(inc)]))
        # rescale so that the lower tail + grid + upper tail add up to exactly 1
        self.cdf_scale = (1 - self.tails[0] - self.tails[1]) / cum[-1]
        self.cdf_nodes = self.tails[0] + self.cdf_scale * cum
        self.mix_w = self.weights * self.f
        self.mix_w[[0, -1]] += self.tails
        self.mix_w /= self.mix_w.sum()

    def expect(self, values, growth=0.0):
        """E[values(tau) | y]; ``values`` is (G, ...) on the grid and grows like tau^growth."""
        v = np.asarray(values, dtype=float)
        fv = v * self.f.reshape((-1,) + (1,) * (v.ndim - 1))
        total = np.tensordot(self.weights, fv, axes=(0, 0))
        if self.open[0]:
            total = total + fv[0] / self.rate[0]
        if self.open[1]:
            rate = self.rate[1] - growth
            with np.errstate(divide="ignore", invalid="ignore"):
                tail = np.where(
                    fv[-1] == 0, 0.0, fv[-1] / rate if rate > FLAT_SLOPE else np.inf * fv[-1]
                )
            total = total + tail
        return total

    def cell(self, j, s):
        """Integral of the density over [u_j, u_j + s h] and the density at its end.

        Cubic Hermite interpolation of the density (values and slopes at both nodes) plus the
        cell's h^4 Euler-Maclaurin term spread as s^2 (3 - 2 s), so that s = 1 reproduces the
        node CDF exactly.
        """
        h = self.h
        f0, f1, d0, d1 = self.f[j], self.f[j + 1], h * self.df[j], h * self.df[j + 1]
        corr = self.corr[j] / h
        s2, s3 = s * s, s**3
        s4 = s2 * s2
        part = f0 * (s - s3 + s4 / 2) + d0 * (s2 / 2 - 2 * s3 / 3 + s4 / 4)
        part = part + f1 * (s3 - s4 / 2) + d1 * (s4 / 4 - s3 / 3) + corr * (3 * s2 - 2 * s3)
        dens = f0 * (1 - 3 * s2 + 2 * s3) + d0 * (s - 2 * s2 + s3) + f1 * (3 * s2 - 2 * s3)
        dens = dens + d1 * (s3 - s2) + corr * 6 * s * (1 - s)
        return h * self.cdf_scale * part, h * self.cdf_scale * dens

    def u_quantile(self, q):
        """Quantiles of u = log tau, inverting the interpolated CDF by safeguarded Newton."""
        q = np.asarray(q, dtype=float)
        if ((q <= 0) | (q >= 1)).any():
            raise ValueError("quantile levels must lie strictly between 0 and 1")
        c, h = self.cdf_nodes, self.h
        j = np.clip(np.searchsorted(c, q, side="right") - 1, 0, c.size - 2)
        target = q - c[j]
        s = np.clip(target / np.maximum(c[j + 1] - c[j], 1e-300), 0.0, 1.0)
        lo, hi = np.zeros_like(s), np.ones_like(s)
        for _ in range(60):
            integral, dens = self.cell(j, s)
            resid = integral - target
            lo, hi = np.where(resid < 0, s, lo), np.where(resid >= 0, s, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                new = s - resid / dens
            new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
            hit = resid == 0
            done = hit | (np.abs(new - s) < 1e-14)
            s = np.where(hit, s, new)
            if done.all():
                break
        u = self.u[j] + s * h
        with np.errstate(divide="ignore"):
            if self.open[0]:
                low = q < c[0]
                u = np.where(low, self.u[0] + np.log(q / max(c[0], 1e-300)) / self.rate[0], u)
            if self.open[1]:
                high = q > c[-1]
                rest = (1 - q) / max(self.tails[1], 1e-300)
                u = np.where(high, self.u[-1] - np.log(rest) / self.rate[1], u)
        return u

    def cdf(self, t):
        """P(tau <= t | y) as an array (Hermite-interpolated between grid nodes)."""
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            u = np.log(np.maximum(t, 0.0))
        j = np.clip(np.searchsorted(self.u, u, side="right") - 1, 0, self.u.size - 2)
        s = np.clip((u - self.u[j]) / self.h, 0.0, 1.0)
        out = self.cdf_nodes[j] + self.cell(j, s)[0]
        with np.errstate(divide="ignore", over="ignore"):
            if self.open[0]:
                out = np.where(
                    u < self.u[0], self.cdf_nodes[0] * np.exp(self.rate[0] * (u - self.u[0])), out
                )
            if self.open[1]:
                rest = self.tails[1] * np.exp(-self.rate[1] * (u - self.u[-1]))
                out = np.where(u > self.u[-1], 1 - rest, out)
        return np.clip(out, 0.0, 1.0)
