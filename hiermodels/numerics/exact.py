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

This module holds the model's summaries; the grid is laid out by
:mod:`hiermodels.numerics.tau_marginal` and integrated over by
:mod:`hiermodels.numerics.tau_quadrature`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np

from hiermodels.numerics.heterogeneity import data_unit, in_squared_units
from hiermodels.numerics.tau_marginal import (
    ConditionalModel,
    ImproperPosteriorError,
    build_tau_grid,
    linear_predictor,
)
from hiermodels.numerics.tau_quadrature import TauQuadrature, mixture_cdf, mixture_quantile

__all__ = ["ExactPosterior", "ImproperPosteriorError", "exact_posterior"]


def _levels(prob):
    """Quantile levels of the lower limit, the median and the upper limit of a ``prob`` interval."""
    return [(1 - prob) / 2, 0.5, (1 + prob) / 2]


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
    unit : float
        The unit everything is computed in (:func:`~hiermodels.numerics.heterogeneity.data_unit`
        of the se; 1 for data of ordinary size). Every method takes and returns numbers in the
        data's own units; inside, y, se, tau, beta and theta are divided by ``unit``, so that
        se of 1e-300 or 1e300 give exactly the scaled answers of the same data in ordinary
        units.
    """

    def __init__(self, model, u, logdens, beta_mean, beta_cov, open_lo, open_hi, unit=1.0):
        self._model, self.k, self.p = model, model.k, model.p
        self._grid = grid = TauQuadrature(u, logdens, open_lo, open_hi)
        self._tau, self._mix_w = grid.tau, grid.mix_w
        self._bmean, self._bcov = beta_mean, beta_cov
        self._set_unit(unit)

    def _set_unit(self, unit):
        grid, model = self._grid, self._model
        self.unit = unit
        self.tau_grid = grid.tau * unit
        self.tau_density = grid.f / grid.tau / unit
        # p(y) of the data in their own units is p(y / unit) / unit^k
        self.log_marginal_likelihood = (
            float(model.log_const + grid.log_max + grid.log_z) - model.k * math.log(unit)
            if model.proper
            else math.nan
        )

    def in_units(self, unit=None):
        """This posterior for the data divided by ``unit`` (default :attr:`unit`; itself when
        that changes nothing): for code that takes the study data alongside the posterior and
        squares the se. Best a power of two, which divides without rounding."""
        view_unit = 1.0 if unit is None else self.unit / unit
        if view_unit == self.unit:
            return self
        out = copy.copy(self)
        out._set_unit(view_unit)
        return out

    def _expect(self, values, growth=0.0):
        """E[values(tau) | y]; ``values`` is (G, ...) on the grid and grows like tau^growth."""
        return self._grid.expect(values, growth)

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
        out = np.exp(self._grid.u_quantile(q)) * self.unit
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
        out = self._grid.cdf(np.asarray(t, dtype=float) / self.unit)
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
        lower, median, upper = map(float, self.quantile_tau(_levels(prob)))
        u = self.unit
        return {"mean": mean * u, "sd": sd * u, "median": median, "lower": lower, "upper": upper}

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
        mean, cov = self._beta_moments_units()
        return {"mean": mean * self.unit, "cov": in_squared_units(cov, self.unit)}

    def _beta_moments_units(self):
        growth = 2.0 if (self._model.prec0 == 0).any() else 0.0
        mean = self._expect(self._bmean)
        dev = self._bmean - mean
        cov = self._expect(self._bcov + dev[:, :, None] * dev[:, None, :], growth)
        return mean, cov

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
        out = mixture_quantile(self._mix_w, self._bmean[:, [index]], sd[:, None], np.ravel(q))
        out = out * self.unit
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
        mean, cov = self._beta_moments_units()
        sds = np.sqrt(np.diagonal(self._bcov, axis1=1, axis2=2))
        qs = mixture_quantile(self._mix_w, self._bmean, sds, _levels(prob)) * self.unit
        return {
            "mean": mean * self.unit,
            "sd": np.sqrt(np.diag(cov)) * self.unit,
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
        u = self.unit
        return {"mean": mean * u, "sd": np.sqrt(var) * u, "shrinkage": self._expect(B)}

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
        qs = mixture_quantile(self._mix_w, mean_t, np.sqrt(var_t), _levels(prob)) * self.unit
        out.update(median=qs[1], lower=qs[0], upper=qs[2])
        return out

    def _x_new(self, x_new):
        x = self._model.X.mean(axis=0) if x_new is None else np.atleast_1d(np.asarray(x_new, float))
        if x.shape != (self.p,):
            raise ValueError(
                f"x_new must have {self.p} entries (one per column of X), got {x.shape}"
            )
        return x

    def _linear_given_tau(self, x):
        """Mean and variance (G,) of x' beta | tau, y."""
        x = self._x_new(x)
        return self._bmean @ x, np.einsum("i,gij,j->g", x, self._bcov, x)

    def _predictive_given_tau(self, x_new):
        """Mean and variance (G,) of theta_new | tau, y: x' beta's plus tau^2."""
        mean, var = self._linear_given_tau(x_new)
        return mean, self._tau**2 + var

    def _interval(self, mean_t, var_t, prob):
        """Median and equal-tailed ``prob`` interval of the normal mixture over tau."""
        qs = mixture_quantile(self._mix_w, mean_t[:, None], np.sqrt(var_t)[:, None], _levels(prob))
        qs = qs * self.unit
        return {"median": float(qs[1, 0]), "lower": float(qs[0, 0]), "upper": float(qs[2, 0])}

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
        sd = math.sqrt(self._expect(var_t + (mean_t - mean) ** 2, 2))
        return {"mean": mean * self.unit, "sd": sd * self.unit}

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
        out = self.predictive_moments(x_new)
        out.update(self._interval(*self._predictive_given_tau(x_new), prob))
        return out

    def predictive_logpdf(self, y_new, se_new, x_new=None):
        """log p(y_new | y): density of a new study's estimate with standard error ``se_new``.

        ``y_new ~ Normal(x_new' beta, sqrt(tau^2 + se_new^2))`` with beta and tau integrated
        over their posterior; left-out studies scored this way give the exact
        leave-one-study-out predictive density.
        """
        mean_t, var_t = self._predictive_given_tau(x_new)
        y_new, se_new = float(y_new) / self.unit, float(se_new) / self.unit
        sd = np.sqrt(var_t + se_new**2)
        density = np.exp(-0.5 * ((y_new - mean_t) / sd) ** 2) / sd
        log_unit = math.log(self.unit)  # a density of y in its own units
        return float(np.log(self._expect(density)) - 0.5 * math.log(2 * math.pi) - log_unit)

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
        return float(self._expect(np.asarray(fun(self._tau * self.unit), dtype=float), growth))

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
        return mixture_cdf(self._mix_w, self._bmean[:, index], sd, np.asarray(x) / self.unit)

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
        return mixture_cdf(self._mix_w, mean_t, np.sqrt(var_t), np.asarray(t) / self.unit)

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
        u = self.unit
        return {"mean": mean * u, "sd": sd * u, **self._interval(mean_t, var_t, prob)}

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
        tau = np.exp(self._grid.u_quantile(rng.uniform(size=n)))
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
        u = self.unit
        return {"tau": tau * u, "beta": beta * u, "theta": theta * u, "theta_new": theta_new * u}


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
    unit = _unit(se)
    if unit != 1.0:
        # computed for y / unit and se / unit (tau and beta in the same units): the prior on
        # tau becomes that of tau / unit, log p(unit t) + log unit (normalised as it was)
        y = np.asarray(y, dtype=float) / unit
        se = np.asarray(se, dtype=float) / unit
        beta_mean = None if beta_mean is None else np.asarray(beta_mean, dtype=float) / unit
        beta_sd = None if beta_sd is None else np.asarray(beta_sd, dtype=float) / unit
        scaled_logprior = tau_logprior

        def tau_logprior(t):
            return np.asarray(scaled_logprior(t * unit), dtype=float) + math.log(unit)

    model = ConditionalModel(y, se, X, beta_mean, beta_sd)
    grid = build_tau_grid(model, tau_logprior, None if n_grid is None else int(n_grid))
    return ExactPosterior(model, *grid, unit=unit)


def _unit(se):
    """:func:`~hiermodels.numerics.heterogeneity.data_unit` of valid se, else 1 (so that
    :class:`ConditionalModel` reports what is wrong with them)."""
    se = np.asarray(se, dtype=float).ravel()
    if se.size == 0 or not (np.isfinite(se) & (se > 0)).all():
        return 1.0
    return data_unit(se)
