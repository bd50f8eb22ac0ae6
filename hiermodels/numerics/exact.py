"""Exact posterior of the normal-normal random-effects (meta-regression) model.

The model (BDA3 §5.4-5.5, with the population mean replaced by a regression on study
covariates)::

    y_i     ~ Normal(theta_i, se_i)        i = 1..k, se_i known
    theta_i ~ Normal(x_i' beta, tau)
    beta_j  ~ Normal(m_j, s_j), or flat    j = 1..p
    tau     ~ any density on tau > 0, given as a vectorised log-density (may be improper)

Given tau everything else is Gaussian, so beta and the thetas integrate out in closed form
(BDA3 eqs. 5.17-5.21) and only the one-dimensional p(tau | y) is left for numerical
integration. It is integrated on a uniform grid in u = log tau: there the density decays
exponentially at both ends and is analytic in a strip around the real axis, so the
trapezoidal rule converges geometrically (Trefethen & Weideman 2014, SIAM Review 56:385);
Gregory's end corrections make it eighth order where the grid meets a bounded support, and
the tails beyond the grid are added in closed form (they are power laws in tau). The grid
spacing adapts until the log-density changes smoothly from node to node, which gives
8-10 significant digits on the examples in the tests. Everything about beta, the thetas and a
new study is then a mixture over the tau grid of normal distributions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from scipy import special

from hiermodels.numerics.tau_marginal import (
    FLAT_SLOPE,
    ConditionalModel,
    ImproperPosteriorError,
    build_tau_grid,
    linear_predictor,
)

__all__ = ["ExactPosterior", "ImproperPosteriorError", "exact_posterior"]


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


def _mixture_quantile(weights, means, sds, q):
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


class ExactPosterior:
    """Exact posterior of the normal-normal random-effects model; see :func:`exact_posterior`.

    Attributes
    ----------
    tau_grid, tau_density : ndarray
        Nodes of the integration grid and the normalised posterior density of tau there
        (for plotting; the grid is uniform in log tau).
    log_marginal_likelihood : float
        log p(y) = log of the integral of p(y | beta, tau) p(beta) p(tau); NaN if a beta
        prior is flat. Meaningful only if ``tau_logprior`` is normalised.
    k, p : int
        Number of studies and of regression coefficients.
    """

    def __init__(self, model, u, logdens, beta_mean, beta_cov, open_lo, open_hi):
        self._model, self.k, self.p = model, model.k, model.p
        self._u, self._h = u, u[1] - u[0]
        self._open = (open_lo, open_hi)
        tau = np.exp(u)
        self._tau = tau
        f = np.exp(logdens - logdens.max())
        self._qw = _gregory_weights(u.size, self._h)
        # the density of u decays like exp(-rate |u|) beyond the grid (power laws in tau)
        self._rate = (
            (np.log(f[1] / f[0]) / self._h) if open_lo else np.inf,
            (np.log(f[-2] / f[-1]) / self._h) if open_hi else np.inf,
        )
        if not min(self._rate) > FLAT_SLOPE:  # guaranteed by _build_grid; guard against surprises
            raise ImproperPosteriorError(
                f"posterior of tau does not decay beyond the grid ({u[[0, -1]]})"
            )
        tails = [
            f[0] / self._rate[0] if open_lo else 0.0,
            f[-1] / self._rate[1] if open_hi else 0.0,
        ]
        z = self._qw @ f + sum(tails)
        self._f = f / z
        self._tails = (tails[0] / z, tails[1] / z)
        # derivatives of the density through those of its log, which is nearly quadratic and
        # so differentiates accurately by finite differences
        h = self._h
        g1, g2, g3 = _log_derivatives(logdens, h)
        self._df = g1 * self._f
        d3f = (g3 + 3 * g1 * g2 + g1**3) * self._f
        # CDF at the nodes: Euler-Maclaurin formula on each cell up to its h^4 term, error
        # O(h^6) overall; ``_corr`` is the h^4 term, spread smoothly over a cell in ``_cell``
        self._corr = h**4 / 720 * np.diff(d3f)
        inc = h / 2 * (self._f[:-1] + self._f[1:]) + h**2 / 12 * np.diff(-self._df) + self._corr
        cum = np.maximum.accumulate(np.concatenate([[0.0], np.cumsum(inc)]))
        # rescale so that the lower tail + grid + upper tail add up to exactly 1
        self._cdf_scale = (1 - self._tails[0] - self._tails[1]) / cum[-1]
        self._cdf = self._tails[0] + self._cdf_scale * cum
        self._mix_w = self._qw * self._f
        self._mix_w[[0, -1]] += self._tails
        self._mix_w /= self._mix_w.sum()
        self._bmean, self._bcov = beta_mean, beta_cov
        self.tau_grid = tau
        self.tau_density = self._f / tau
        self.log_marginal_likelihood = (
            float(model.log_const + logdens.max() + math.log(z)) if model.proper else math.nan
        )

    # -- integration over tau -------------------------------------------------------------

    def _expect(self, values, growth=0.0):
        """E[values(tau) | y]; ``values`` is (G, ...) on the grid and grows like tau^growth."""
        v = np.asarray(values, dtype=float)
        fv = v * self._f.reshape((-1,) + (1,) * (v.ndim - 1))
        total = np.tensordot(self._qw, fv, axes=(0, 0))
        if self._open[0]:
            total = total + fv[0] / self._rate[0]
        if self._open[1]:
            rate = self._rate[1] - growth
            with np.errstate(divide="ignore", invalid="ignore"):
                tail = np.where(
                    fv[-1] == 0, 0.0, fv[-1] / rate if rate > FLAT_SLOPE else np.inf * fv[-1]
                )
            total = total + tail
        return total

    def _cell(self, j, s):
        """Integral of the density over [u_j, u_j + s h] and the density at its end.

        Cubic Hermite interpolation of the density (values and slopes at both nodes) plus the
        cell's h^4 Euler-Maclaurin term spread as s^2 (3 - 2 s), so that s = 1 reproduces the
        node CDF exactly.
        """
        h = self._h
        f0, f1, d0, d1 = self._f[j], self._f[j + 1], h * self._df[j], h * self._df[j + 1]
        corr = self._corr[j] / h
        s2, s3 = s * s, s**3
        s4 = s2 * s2
        part = f0 * (s - s3 + s4 / 2) + d0 * (s2 / 2 - 2 * s3 / 3 + s4 / 4)
        part = part + f1 * (s3 - s4 / 2) + d1 * (s4 / 4 - s3 / 3) + corr * (3 * s2 - 2 * s3)
        dens = f0 * (1 - 3 * s2 + 2 * s3) + d0 * (s - 2 * s2 + s3) + f1 * (3 * s2 - 2 * s3)
        dens = dens + d1 * (s3 - s2) + corr * 6 * s * (1 - s)
        return h * self._cdf_scale * part, h * self._cdf_scale * dens

    def _u_quantile(self, q):
        """Quantiles of u = log tau, inverting the interpolated CDF by safeguarded Newton."""
        q = np.asarray(q, dtype=float)
        if ((q <= 0) | (q >= 1)).any():
            raise ValueError("quantile levels must lie strictly between 0 and 1")
        c, h = self._cdf, self._h
        j = np.clip(np.searchsorted(c, q, side="right") - 1, 0, c.size - 2)
        target = q - c[j]
        s = np.clip(target / np.maximum(c[j + 1] - c[j], 1e-300), 0.0, 1.0)
        lo, hi = np.zeros_like(s), np.ones_like(s)
        for _ in range(60):
            integral, dens = self._cell(j, s)
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
        u = self._u[j] + s * h
        with np.errstate(divide="ignore"):
            if self._open[0]:
                low = q < c[0]
                u = np.where(low, self._u[0] + np.log(q / max(c[0], 1e-300)) / self._rate[0], u)
            if self._open[1]:
                high = q > c[-1]
                rest = (1 - q) / max(self._tails[1], 1e-300)
                u = np.where(high, self._u[-1] - np.log(rest) / self._rate[1], u)
        return u

    # -- tau ------------------------------------------------------------------------------

    def quantile_tau(self, q):
        """Posterior quantile(s) of tau.

        Examples
        --------
        >>> post = exact_posterior([0.0, 1.0, 3.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> float(post.quantile_tau(0.5)) < float(post.quantile_tau(0.9))
        True
        """
        out = np.exp(self._u_quantile(q))
        return float(out) if out.ndim == 0 else out

    def cdf_tau(self, t):
        """Posterior probability that tau <= t (Hermite-interpolated between grid nodes).

        Examples
        --------
        >>> post = exact_posterior([0.0, 1.0, 3.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> round(post.cdf_tau(post.quantile_tau(0.3)), 9)
        0.3
        """
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            u = np.log(np.maximum(t, 0.0))
        j = np.clip(np.searchsorted(self._u, u, side="right") - 1, 0, self._u.size - 2)
        s = np.clip((u - self._u[j]) / self._h, 0.0, 1.0)
        out = self._cdf[j] + self._cell(j, s)[0]
        with np.errstate(divide="ignore", over="ignore"):
            if self._open[0]:
                out = np.where(
                    u < self._u[0], self._cdf[0] * np.exp(self._rate[0] * (u - self._u[0])), out
                )
            if self._open[1]:
                rest = self._tails[1] * np.exp(-self._rate[1] * (u - self._u[-1]))
                out = np.where(u > self._u[-1], 1 - rest, out)
        out = np.clip(out, 0.0, 1.0)
        return float(out) if out.ndim == 0 else out

    def tau_summary(self, prob=0.95):
        """Posterior mean, sd, median and equal-tailed ``prob`` interval of tau.

        Returns
        -------
        dict
            ``{"mean", "sd", "median", "lower", "upper"}`` as floats; a moment that does not
            exist (heavy posterior tail) is ``inf``.

        Examples
        --------
        >>> post = exact_posterior([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16],
        ...                        [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6],
        ...                        tau_logprior=lambda t: -np.log1p((t / 25) ** 2),
        ...                        beta_mean=0, beta_sd=50)
        >>> round(post.tau_summary()["mean"], 3)
        5.885
        """
        mean = float(self._expect(self._tau, growth=1))
        sd = math.inf if math.isinf(mean) else math.sqrt(self._expect((self._tau - mean) ** 2, 2))
        lower, median, upper = map(float, self.quantile_tau([(1 - prob) / 2, 0.5, (1 + prob) / 2]))
        return {"mean": mean, "sd": sd, "median": median, "lower": lower, "upper": upper}

    # -- beta -----------------------------------------------------------------------------

    def beta_moments(self):
        """Posterior mean (p,) and covariance (p, p) of beta, as ``{"mean", "cov"}``.

        Law of total covariance over tau: Cov = E[Cov(beta | tau)] + Cov(E[beta | tau]).
        Entries are inf when a flat-prior coefficient has no posterior variance (heavy tail).

        Examples
        --------
        >>> post = exact_posterior([0.1, 0.3, 0.2, 0.5], [0.1, 0.2, 0.15, 0.2],
        ...                        X=[[1, 0], [1, 1], [1, 0], [1, 1]],
        ...                        tau_logprior=lambda t: -0.5 * (t / 0.5) ** 2)
        >>> post.beta_moments()["cov"].shape
        (2, 2)
        """
        growth = 2.0 if (self._model.prec0 == 0).any() else 0.0
        mean = self._expect(self._bmean)
        dev = self._bmean - mean
        cov = self._expect(self._bcov + dev[:, :, None] * dev[:, None, :], growth)
        return {"mean": mean, "cov": cov}

    def quantile_beta(self, q, index=0):
        """Posterior quantile(s) of coefficient ``index`` (a normal mixture over tau).

        Examples
        --------
        >>> post = exact_posterior([0.1, 0.3, 0.2, 0.5], [0.1, 0.2, 0.15, 0.2],
        ...                        tau_logprior=lambda t: -0.5 * (t / 0.5) ** 2)
        >>> lo, hi = post.quantile_beta([0.05, 0.95])
        >>> bool(lo < post.beta_summary()["mean"][0] < hi)
        True
        """
        sd = np.sqrt(self._bcov[:, index, index])
        out = _mixture_quantile(self._mix_w, self._bmean[:, [index]], sd[:, None], np.ravel(q))
        return float(out[0, 0]) if np.ndim(q) == 0 else out[:, 0].reshape(np.shape(q))

    def beta_summary(self, prob=0.95):
        """Posterior mean, sd, median and equal-tailed ``prob`` interval of each coefficient.

        Returns
        -------
        dict
            ``{"mean", "sd", "median", "lower", "upper"}``, each an array of shape (p,).

        Examples
        --------
        >>> post = exact_posterior([0.1, 0.3, 0.2, 0.5], [0.1, 0.2, 0.15, 0.2],
        ...                        tau_logprior=lambda t: -0.5 * (t / 0.5) ** 2)
        >>> s = post.beta_summary()
        >>> bool(s["lower"][0] < s["median"][0] < s["upper"][0])
        True
        """
        mom = self.beta_moments()
        sds = np.sqrt(np.diagonal(self._bcov, axis1=1, axis2=2))
        qs = _mixture_quantile(self._mix_w, self._bmean, sds, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
        return {
            "mean": mom["mean"],
            "sd": np.sqrt(np.diag(mom["cov"])),
            "median": qs[1],
            "lower": qs[0],
            "upper": qs[2],
        }

    # -- study effects and a new study ----------------------------------------------------

    def _theta_given_tau(self):
        """Mean and variance (G, k) of theta_i | tau, y with beta integrated out.

        theta_i | beta, tau, y ~ Normal((1 - B_i) y_i + B_i x_i'beta, se_i^2 (1 - B_i)) with
        B_i = se_i^2 / (se_i^2 + tau^2) (BDA3 eqs. 5.16-5.17); beta | tau, y adds
        B_i^2 x_i' Cov x_i to the variance.
        """
        m = self._model
        B = m.se2[None, :] / (m.se2[None, :] + self._tau[:, None] ** 2)
        # y + B (x'beta - y), not (1 - B) y + B x'beta: a study with a tiny se (B ~ 0) keeps
        # its estimate exactly, so its theta does not pick up rounding noise of size eps |y|
        mean = m.y + B * (linear_predictor(self._bmean, m.X) - m.y)
        xvx = sum(  # x_i' Cov x_i for every tau
            self._bcov[:, i, j : j + 1] * (m.X[:, i] * m.X[:, j])
            for i in range(self.p)
            for j in range(self.p)
        )
        return mean, m.se2 * (1 - B) + B**2 * xvx, B

    def theta_moments(self):
        """Posterior mean and sd of each study effect theta_i, and its shrinkage factor.

        Returns
        -------
        dict
            ``{"mean", "sd", "shrinkage"}``, arrays of shape (k,); ``shrinkage`` is
            E[se_i^2 / (se_i^2 + tau^2) | y] (BDA3 eq. 5.17: 0 = no pooling, 1 = complete).

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0], [1.0, 1.0], tau_logprior=lambda t: -t,
        ...                        beta_mean=0, beta_sd=10)
        >>> m = post.theta_moments()
        >>> bool(m["mean"][0] > 0.0 and m["mean"][1] < 2.0)
        True
        """
        mean_t, var_t, B = self._theta_given_tau()
        mean = self._expect(mean_t)
        var = self._expect(var_t + (mean_t - mean) ** 2)
        return {"mean": mean, "sd": np.sqrt(var), "shrinkage": self._expect(B)}

    def theta_summary(self, prob=0.95):
        """Like :meth:`theta_moments` plus the median and equal-tailed ``prob`` interval.

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0], [1.0, 1.0], tau_logprior=lambda t: -t,
        ...                        beta_mean=0, beta_sd=10)
        >>> sorted(post.theta_summary())
        ['lower', 'mean', 'median', 'sd', 'shrinkage', 'upper']
        """
        mean_t, var_t, _ = self._theta_given_tau()
        out = self.theta_moments()
        qs = _mixture_quantile(
            self._mix_w, mean_t, np.sqrt(var_t), [(1 - prob) / 2, 0.5, (1 + prob) / 2]
        )
        out.update(median=qs[1], lower=qs[0], upper=qs[2])
        return out

    def _x_new(self, x_new):
        x = self._model.X.mean(axis=0) if x_new is None else np.atleast_1d(np.asarray(x_new, float))
        if x.shape != (self.p,):
            raise ValueError(
                f"x_new must have {self.p} entries (one per column of X), got {x.shape}"
            )
        return x

    def _predictive_given_tau(self, x_new):
        x = self._x_new(x_new)
        mean = self._bmean @ x
        return mean, self._tau**2 + np.einsum("i,gij,j->g", x, self._bcov, x)

    def predictive_moments(self, x_new=None):
        """Mean and sd of theta_new ~ Normal(x_new' beta, tau) for a new study.

        ``x_new`` defaults to the column means of X (``[1]`` for an intercept-only model).
        Returns ``{"mean", "sd"}`` as floats (``sd`` is inf if the tail of tau is too heavy).

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0, 1.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> pm = post.predictive_moments([1.0])
        >>> bool(pm["sd"] > post.beta_summary()["sd"][0])
        True
        """
        mean_t, var_t = self._predictive_given_tau(x_new)
        mean = float(self._expect(mean_t))
        return {"mean": mean, "sd": math.sqrt(self._expect(var_t + (mean_t - mean) ** 2, 2))}

    def predictive_summary(self, x_new=None, prob=0.95):
        """:meth:`predictive_moments` plus the median and equal-tailed ``prob`` interval.

        This is the Bayesian counterpart of a prediction interval (Higgins et al. 2009).

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0, 1.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> s = post.predictive_summary()
        >>> bool(s["lower"] < s["median"] < s["upper"])
        True
        """
        mean_t, var_t = self._predictive_given_tau(x_new)
        qs = _mixture_quantile(
            self._mix_w,
            mean_t[:, None],
            np.sqrt(var_t)[:, None],
            [(1 - prob) / 2, 0.5, (1 + prob) / 2],
        )[:, 0]
        out = self.predictive_moments(x_new)
        out.update(median=float(qs[1]), lower=float(qs[0]), upper=float(qs[2]))
        return out

    def predictive_logpdf(self, y_new, se_new, x_new=None):
        """log p(y_new | y): density of a new study's estimate with standard error ``se_new``.

        ``y_new ~ Normal(x_new' beta, sqrt(tau^2 + se_new^2))`` with beta and tau integrated
        over their posterior; left-out studies scored this way give the exact
        leave-one-study-out predictive density.
        """
        mean_t, var_t = self._predictive_given_tau(x_new)
        sd = np.sqrt(var_t + float(se_new) ** 2)
        density = np.exp(-0.5 * ((y_new - mean_t) / sd) ** 2) / sd
        return float(np.log(self._expect(density)) - 0.5 * math.log(2 * math.pi))

    # -- probabilities and linear combinations -------------------------------------------

    def expect_tau(self, fun, growth=0.0):
        """E[fun(tau) | y] for a vectorised ``fun`` that grows at most like tau^growth.

        Integrated over the same grid (and closed-form tails) as the other moments, e.g.
        ``expect_tau(lambda t: t**2, growth=2)`` is E[tau^2 | y].

        Examples
        --------
        >>> post = exact_posterior([0.0, 1.0, 3.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> m = post.tau_summary()
        >>> bool(abs(post.expect_tau(lambda t: t) - m["mean"]) < 1e-12)
        True
        """
        return float(self._expect(np.asarray(fun(self._tau), dtype=float), growth))

    @staticmethod
    def _mixture_cdf(weights, means, sds, x):
        """sum_g weights[g] Phi((x - means[g]) / sds[g]) for every x."""
        x = np.asarray(x, dtype=float)
        z = (x.reshape(1, -1) - means[:, None]) / np.maximum(sds, 1e-300)[:, None]
        out = weights @ special.ndtr(z)
        return float(out[0]) if x.ndim == 0 else out.reshape(x.shape)

    def cdf_beta(self, x, index=0):
        """Posterior probability that coefficient ``index`` is <= x (a normal mixture over
        tau, so exact up to the integration over tau).

        Examples
        --------
        >>> post = exact_posterior([0.1, 0.3, 0.2, 0.5], [0.1, 0.2, 0.15, 0.2],
        ...                        tau_logprior=lambda t: -0.5 * (t / 0.5) ** 2)
        >>> round(post.cdf_beta(post.quantile_beta(0.3)), 9)
        0.3
        """
        sd = np.sqrt(self._bcov[:, index, index])
        return self._mixture_cdf(self._mix_w, self._bmean[:, index], sd, x)

    def _linear_given_tau(self, x):
        x = self._x_new(x)
        return self._bmean @ x, np.einsum("i,gij,j->g", x, self._bcov, x)

    def cdf_predictive(self, t, x_new=None):
        """Posterior predictive probability that theta_new <= t (the effect in a new study
        with covariates ``x_new``, default the column means of X).

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0, 1.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> round(post.cdf_predictive(post.predictive_summary()["median"]), 9)
        0.5
        """
        mean_t, var_t = self._predictive_given_tau(x_new)
        return self._mixture_cdf(self._mix_w, mean_t, np.sqrt(var_t), t)

    def linear_summary(self, x, prob=0.95):
        """Posterior mean, sd, median and equal-tailed ``prob`` interval of x' beta, the
        average effect at covariates ``x`` (one entry per column of X).

        Examples
        --------
        >>> post = exact_posterior([0.1, 0.3, 0.2, 0.5], [0.1, 0.2, 0.15, 0.2],
        ...                        tau_logprior=lambda t: -0.5 * (t / 0.5) ** 2)
        >>> s = post.linear_summary([1.0])
        >>> bool(abs(s["mean"] - post.beta_summary()["mean"][0]) < 1e-12)
        True
        """
        mean_t, var_t = self._linear_given_tau(x)
        mean = float(self._expect(mean_t))
        growth = 2.0 if (self._model.prec0 == 0).any() else 0.0
        sd = math.sqrt(self._expect(var_t + (mean_t - mean) ** 2, growth))
        qs = _mixture_quantile(
            self._mix_w,
            mean_t[:, None],
            np.sqrt(var_t)[:, None],
            [(1 - prob) / 2, 0.5, (1 + prob) / 2],
        )[:, 0]
        return {
            "mean": mean,
            "sd": sd,
            "median": float(qs[1]),
            "lower": float(qs[0]),
            "upper": float(qs[2]),
        }

    # -- draws ----------------------------------------------------------------------------

    def draw(self, n, rng=None, *, x_new=None):
        """Independent draws from the exact joint posterior.

        tau by inverting its CDF (interpolated between grid nodes), then beta | tau, y and
        theta | beta, tau, y from their Gaussian conditionals (BDA3 §5.4, steps 1-3), and
        theta_new ~ Normal(x_new' beta, tau).

        Returns
        -------
        dict
            ``"tau"`` (n,), ``"beta"`` (n, p), ``"theta"`` (n, k), ``"theta_new"`` (n,).

        Examples
        --------
        >>> post = exact_posterior([0.0, 2.0, 1.0], [1.0, 1.0, 1.0],
        ...                        tau_logprior=lambda t: -0.5 * t**2)
        >>> d = post.draw(100, np.random.default_rng(1))
        >>> d["theta"].shape, d["beta"].shape
        ((100, 3), (100, 1))
        """
        rng = np.random.default_rng(rng)
        m, x = self._model, self._x_new(x_new)
        tau = np.exp(self._u_quantile(rng.uniform(size=n)))
        _, bmean, bcov = m.conditional(tau, loglik=False)
        z = rng.standard_normal((n, self.p))
        beta = bmean + np.einsum("nij,nj->ni", np.linalg.cholesky(bcov), z)
        theta = np.empty((n, self.k))
        step = max(1, 2**18 // self.k)  # blocks of rows that stay in cache
        for s in range(0, n, step):
            rows = slice(s, s + step)
            B = m.se2 / (m.se2 + tau[rows, None] ** 2)
            theta[rows] = m.y + B * (linear_predictor(beta[rows], m.X) - m.y)
            theta[rows] += np.sqrt(m.se2 * (1 - B)) * rng.standard_normal(B.shape)
        theta_new = beta @ x + tau * rng.standard_normal(n)
        return {"tau": tau, "beta": beta, "theta": theta, "theta_new": theta_new}


def exact_posterior(
    y,
    se,
    *,
    tau_logprior: Callable[[np.ndarray], np.ndarray],
    X=None,
    beta_mean=None,
    beta_sd=None,
    n_grid: int | None = None,
) -> ExactPosterior:
    """Exact posterior of the normal-normal random-effects (meta-regression) model.

    ``y_i ~ Normal(theta_i, se_i)``, ``theta_i ~ Normal(x_i' beta, tau)``, ``beta_j`` flat or
    ``Normal(beta_mean_j, beta_sd_j)``, tau with log-density ``tau_logprior``. beta and theta
    are integrated out analytically given tau (BDA3 eqs. 5.17-5.21), tau numerically.

    Parameters
    ----------
    y, se : array_like, shape (k,)
        Study estimates and their (known, positive) standard errors.
    tau_logprior : callable
        Vectorised log prior density of tau at tau > 0, up to a constant; may be improper
        (``lambda t: np.zeros_like(t)`` is flat) and ``-inf`` outside an interval support.
        A prior on tau^2 must be transformed to tau by the caller (add ``log(2 tau)``).
    X : array_like, shape (k, p), optional
        Design matrix; None means intercept only (p = 1, beta = mu).
    beta_mean, beta_sd : array_like, optional
        Independent normal priors on beta (scalars broadcast to p). ``beta_sd`` None gives a
        flat prior; an ``inf`` entry makes that coefficient flat. ``beta_mean`` defaults to 0.
    n_grid : int, optional
        Lay exactly this many nodes over the region the coarse scan found (ends carrying
        less than e^-40 of the mass are then dropped) instead of refining the spacing until
        the density is resolved; for experiments, the default is accurate to ~1e-8.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ImproperPosteriorError
        If the posterior cannot be normalised (e.g. flat prior on tau with k - p < 2, or a
        flat prior on coefficients that X does not identify).

    Examples
    --------
    Eight schools (Rubin 1981) with bayesmeta's ``schools.example.1`` priors:

    >>> import numpy as np
    >>> y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]
    >>> se = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]
    >>> post = exact_posterior(y, se, tau_logprior=lambda t: -np.log1p((t / 25) ** 2),
    ...                        beta_mean=0.0, beta_sd=50.0)
    >>> s = post.beta_summary()
    >>> round(float(s["mean"][0]), 2), round(float(s["sd"][0]), 2)
    (7.99, 5.0)
    """
    if n_grid is not None and int(n_grid) < 8:
        raise ValueError(f"n_grid must be at least 8, got {n_grid}")
    model = ConditionalModel(y, se, X, beta_mean, beta_sd)
    grid = build_tau_grid(model, tau_logprior, None if n_grid is None else int(n_grid))
    return ExactPosterior(model, *grid)
