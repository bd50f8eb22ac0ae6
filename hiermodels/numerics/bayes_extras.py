"""What bayesmeta reports beyond the posterior summaries: Bayes factors, shortest intervals, modes.

For the normal-normal random-effects model (``y_i ~ Normal(theta_i, se_i)``,
``theta_i ~ Normal(mu, tau)``, ``mu ~ Normal(mu_mean, mu_sd)`` or flat, tau with log-density
``tau_logprior``), on top of :func:`hiermodels.numerics.exact.exact_posterior`:

- the exact marginal posterior densities of mu and tau and the joint density of (mu, tau):
  given tau, mu is normal (BDA3 eqs. 5.19-5.20), so p(mu | y) is a normal mixture over the
  posterior of tau, integrated on the exact posterior's grid;
- Bayes factors for mu = 0 and tau = 0 by the Savage-Dickey density ratio (Dickey 1971;
  Wagenmakers et al. 2010, Cogn. Psychol. 60:158): BF01 = p(point | y) / p(point), the
  posterior over the prior density at the point; it equals the ratio of marginal likelihoods
  p(y | H0) / p(y | H1) that bayesmeta's ``bayesfactor`` reports (Röver 2020, J. Stat. Softw.
  93(6), §3.4) because mu and tau are independent a priori;
- shortest (highest posterior density) intervals of a 1-D posterior given by a density on a
  grid or by draws (bayesmeta quotes these), and the posterior mode on a grid.

numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, stats

from hiermodels.errors import SpecError
from hiermodels.numerics.exact import exact_posterior
from hiermodels.numerics.tau_marginal import ConditionalModel

__all__ = [
    "EVIDENCE_SCALE",
    "BayesFactor",
    "bayes_factor_mu",
    "bayes_factor_tau",
    "hdi_from_draws",
    "hdi_from_grid",
    "joint_posterior_density",
    "mode_from_grid",
    "mu_marginal_density",
    "tau_marginal_density",
]

#: Verbal scale of a Bayes factor (Jeffreys 1961, App. B, in the wording of Lee & Wagenmakers
#: 2013, Table 7.1): (lower bound of BF, words), for BF >= 1 in favour of one hypothesis.
EVIDENCE_SCALE = (
    (1.0, "anecdotal"),
    (3.0, "moderate"),
    (10.0, "strong"),
    (30.0, "very strong"),
    (100.0, "extreme"),
)


@dataclass(frozen=True)
class BayesFactor:
    """A Bayes factor for a point hypothesis by the Savage-Dickey density ratio.

    Attributes
    ----------
    hypothesis : str
        The point null, e.g. "mu = 0" or "tau = 0".
    bf01 : float
        Evidence for the null over the alternative, p(y | H0) / p(y | H1).
    posterior_density, prior_density : float
        The densities at the point (NaN where the prior density there is not finite and
        positive: the Bayes factor is then the limit of their ratio).
    """

    hypothesis: str
    bf01: float
    posterior_density: float
    prior_density: float

    @property
    def bf10(self):
        """Evidence for the alternative over the null, 1 / bf01."""
        return 1.0 / self.bf01 if self.bf01 > 0 else math.inf

    @property
    def reading(self):
        """The Bayes factor in words (Jeffreys' scale as worded by Lee & Wagenmakers 2013)."""
        for_null = self.bf01 >= 1
        bf = self.bf01 if for_null else self.bf10
        words = "anecdotal"
        for bound, label in EVIDENCE_SCALE:
            if bf >= bound:
                words = label
        favoured = f"{self.hypothesis}" if for_null else f"not {self.hypothesis}"
        return (
            f"Bayes factor BF01 = {self.bf01:.3g} for {self.hypothesis} (BF10 = {self.bf10:.3g}): "
            f"the data are {bf:.3g} times more likely if {favoured} than otherwise, "
            f"{words} evidence for {favoured}. A Bayes factor depends on the prior of the "
            "parameter tested (a wider prior favours the null), so report the prior with it."
        )


def _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior):
    if posterior is not None:
        return posterior
    return exact_posterior(y, se, tau_logprior=tau_logprior, beta_mean=mu_mean, beta_sd=mu_sd)


def _u_weights(tau):
    """Trapezoid weights in u = log tau for the exact posterior's uniform log-tau grid."""
    u = np.log(tau)
    w = np.empty_like(u)
    w[1:-1] = (u[2:] - u[:-2]) / 2
    w[0], w[-1] = (u[1] - u[0]) / 2, (u[-1] - u[-2]) / 2
    return w


def _normal_pdf(x, mean, sd):
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def mu_marginal_density(
    y, se, at, *, tau_logprior, mu_mean=None, mu_sd=None, posterior=None
) -> np.ndarray:
    """Posterior density p(mu | y) at the points ``at``.

    p(mu | y) = integral of Normal(mu | m(tau), s(tau)) p(tau | y) dtau, with m, s the
    conditional posterior mean and sd of mu given tau (BDA3 eqs. 5.19-5.20), integrated by the
    trapezoidal rule in log tau on the exact posterior's grid (geometric convergence where the
    grid's ends are open; second order at a bounded end of the prior's support).

    Parameters
    ----------
    y, se : array_like, shape (k,)
    at : array_like
        Values of mu.
    tau_logprior, mu_mean, mu_sd
        As :func:`~hiermodels.numerics.exact.exact_posterior` (``beta_mean``, ``beta_sd``).
    posterior : ExactPosterior, optional
        The exact posterior of the same data and priors, if already computed.

    Examples
    --------
    >>> d = mu_marginal_density([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [1.0],
    ...                         tau_logprior=lambda t: -t, mu_mean=0, mu_sd=10)
    >>> bool(d[0] > 0)
    True
    """
    post = _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior)
    model = ConditionalModel(y, se, None, mu_mean, mu_sd)
    tau = post.tau_grid
    _, mean, cov = model.conditional(tau, loglik=False)
    weights = _u_weights(tau) * post.tau_density * tau
    weights = weights / weights.sum()
    at = np.asarray(at, dtype=float)
    flat = at.reshape(-1, 1)
    dens = _normal_pdf(flat, mean[:, 0], np.sqrt(cov[:, 0, 0])) @ weights
    return dens.reshape(at.shape)


def _tau_density_fn(y, se, tau_logprior, mu_mean, mu_sd, post):
    """A function tau -> p(tau | y) (exact posterior's normalisation) and the model."""
    model = ConditionalModel(y, se, None, mu_mean, mu_sd)
    j = int(np.argmax(post.tau_density * post.tau_grid))
    t_ref = post.tau_grid[j : j + 1]
    log_ref = float(model.conditional(t_ref)[0][0] + np.asarray(tau_logprior(t_ref))[0])
    log_dens_ref = math.log(post.tau_density[j])

    def density(t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.asarray(tau_logprior(t), dtype=float) * np.ones_like(t)
        ll = model.conditional(t)[0]
        out = np.exp(lp + ll - log_ref + log_dens_ref)
        return np.where(np.isfinite(lp) & (t >= 0), out, 0.0)

    return density, model, log_ref - log_dens_ref


def tau_marginal_density(
    y, se, at, *, tau_logprior, mu_mean=None, mu_sd=None, posterior=None
) -> np.ndarray:
    """Posterior density p(tau | y) at the points ``at`` (tau >= 0; 0 outside the support).

    p(tau | y) is proportional to p(tau) p(y | tau), with mu integrated out in closed form
    (BDA3 eq. 5.21); the normalising constant is the exact posterior's.

    Examples
    --------
    >>> d = tau_marginal_density([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [0.0, 1.0],
    ...                          tau_logprior=lambda t: -t, mu_mean=0, mu_sd=10)
    >>> bool(d[0] > 0 and d[1] > 0)
    True
    """
    post = _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior)
    density = _tau_density_fn(y, se, tau_logprior, mu_mean, mu_sd, post)[0]
    at = np.asarray(at, dtype=float)
    return density(at.ravel()).reshape(at.shape)


def joint_posterior_density(
    y, se, mu_grid, tau_grid, *, tau_logprior, mu_mean=None, mu_sd=None, posterior=None
) -> np.ndarray:
    """Joint posterior density p(mu, tau | y) on a grid, shape (len(tau_grid), len(mu_grid)).

    p(mu, tau | y) = p(tau | y) Normal(mu | m(tau), s(tau)) (BDA3 §5.4).

    Examples
    --------
    >>> d = joint_posterior_density([0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [0.0, 1.0], [0.5],
    ...                             tau_logprior=lambda t: -t, mu_mean=0, mu_sd=10)
    >>> d.shape
    (1, 2)
    """
    post = _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior)
    density, model, _ = _tau_density_fn(y, se, tau_logprior, mu_mean, mu_sd, post)
    tau = np.asarray(tau_grid, dtype=float).ravel()
    mu = np.asarray(mu_grid, dtype=float).ravel()
    _, mean, cov = model.conditional(tau, loglik=False)
    cond = _normal_pdf(mu[None, :], mean[:, :1], np.sqrt(cov[:, 0, :1]))
    return density(tau)[:, None] * cond


def bayes_factor_mu(
    y, se, *, tau_logprior, mu_mean, mu_sd, null=0.0, posterior=None
) -> BayesFactor:
    """Bayes factor for mu = ``null`` against mu ~ Normal(mu_mean, mu_sd), by Savage-Dickey.

    BF01 = p(mu = null | y) / p(mu = null), the exact marginal posterior density of mu
    (:func:`mu_marginal_density`) over the normal prior density. Equal to bayesmeta's
    ``bayesfactor["actual", "mu=0"]`` = p(y | mu = 0) / p(y).

    Conditions: the prior on mu must be proper (a finite ``mu_sd``: under a flat prior the
    Bayes factor is undefined, and as mu_sd grows it favours the null without bound, Lindley's
    paradox). The prior on tau must give a proper posterior; it need not be normalised, as the
    same tau prior enters both hypotheses.

    Examples
    --------
    >>> bf = bayes_factor_mu([2.0, 2.5, 3.0], [1.0, 1.0, 1.0], tau_logprior=lambda t: -t,
    ...                      mu_mean=0, mu_sd=5)
    >>> bool(bf.bf01 < 1)
    True
    """
    if mu_sd is None or not np.isfinite(mu_sd) or not mu_sd > 0:
        raise SpecError(
            f"a Bayes factor for mu needs a proper normal prior on mu (finite mu_sd > 0), "
            f"got mu_sd={mu_sd!r}; under a flat prior it is undefined"
        )
    post = _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior)
    dens = float(
        mu_marginal_density(
            y, se, [null], tau_logprior=tau_logprior, mu_mean=mu_mean, mu_sd=mu_sd, posterior=post
        )[0]
    )
    prior = float(stats.norm.pdf(null, mu_mean, mu_sd))
    return BayesFactor(f"mu = {null:g}", dens / prior, dens, prior)


def _log_prior_normaliser(tau_logprior):
    """log of the integral of exp(tau_logprior) over tau > 0 (scipy's adaptive quad)."""

    def f(t):
        with np.errstate(divide="ignore"):
            return float(np.exp(np.asarray(tau_logprior(np.array([t])), dtype=float)[0]))

    total, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=500)
    if not (np.isfinite(total) and total > 0):
        raise SpecError(
            "the tau prior must be proper (its density must integrate to a finite value) for a "
            "Bayes factor for tau = 0"
        )
    return math.log(total)


def bayes_factor_tau(
    y, se, *, tau_logprior, mu_mean=None, mu_sd=None, posterior=None
) -> BayesFactor:
    """Bayes factor for tau = 0 (equal effects) against the tau prior, by Savage-Dickey.

    BF01 = p(tau = 0 | y) / p(tau = 0). The ratio p(tau | y) / p(tau) = p(y | tau) / p(y) is
    continuous in tau, so BF01 = p(y | tau = 0) / p(y), which is bayesmeta's
    ``bayesfactor["actual", "tau=0"]``; it is computed in this form from the exact
    posterior's normalising constant.

    Conditions: the tau prior must be proper (``tau_logprior`` may be unnormalised: it is
    normalised here by adaptive quadrature, accurate for smooth densities) and its support
    must reach down to tau = 0. The densities at 0 are reported when the prior density there
    is finite and positive (half-normal, half-Cauchy, exponential, ...); otherwise they are NaN
    and BF01 is the limit of their ratio. mu may have a flat prior (it is common to both
    hypotheses); bayesmeta reports NA then.

    Examples
    --------
    >>> from scipy import stats
    >>> bf = bayes_factor_tau([0.0, 0.1, -0.1], [1.0, 1.0, 1.0],
    ...                       tau_logprior=stats.halfnorm(scale=1).logpdf, mu_mean=0, mu_sd=5)
    >>> bool(bf.bf01 > 1)
    True
    """
    post = _posterior(y, se, tau_logprior, mu_mean, mu_sd, posterior)
    _, model, log_z = _tau_density_fn(y, se, tau_logprior, mu_mean, mu_sd, post)
    tiny = np.array([post.tau_grid[0] * 1e-6])
    with np.errstate(divide="ignore"):
        lp0 = float(np.asarray(tau_logprior(np.array([0.0])), dtype=float)[0])
        lp_tiny = float(np.asarray(tau_logprior(tiny), dtype=float)[0])
    if not (np.isfinite(lp0) or np.isfinite(lp_tiny)):
        raise SpecError("the tau prior excludes tau = 0 (its density is 0 there and near it)")
    log_norm = _log_prior_normaliser(tau_logprior)
    ll0 = float(model.conditional(np.array([0.0]))[0][0])
    # p(y | tau = 0) / p(y) with p(y) = integral of p(y | tau) p(tau), p(tau) = exp(lp) / Z_p:
    # the exact posterior's normaliser is log_z = log of the integral of exp(lp + ll)
    bf01 = math.exp(ll0 - log_z + log_norm)
    if np.isfinite(lp0):
        prior = math.exp(lp0 - log_norm)
        return BayesFactor("tau = 0", bf01, bf01 * prior, prior)
    return BayesFactor("tau = 0", bf01, math.nan, math.nan)


# -- shortest intervals and modes -------------------------------------------------------


def _grid_cdf(grid, density):
    x = np.asarray(grid, dtype=float).ravel()
    f = np.asarray(density, dtype=float).ravel()
    if x.size != f.size or x.size < 3:
        raise ValueError(f"grid and density need the same length >= 3, got {x.size}, {f.size}")
    if not (np.all(np.diff(x) > 0) and np.all(np.isfinite(f)) and np.all(f >= 0)):
        raise ValueError("grid must increase strictly and density be finite and >= 0")
    cells = np.diff(x) * (f[:-1] + f[1:]) / 2
    total = cells.sum()
    if not total > 0:
        raise ValueError("density integrates to 0 on the grid")
    f = f / total
    return x, f, np.concatenate([[0.0], np.cumsum(cells / total)])


def _grid_quantile(x, f, cdf, q):
    """Quantiles of the piecewise-linear density: the CDF is quadratic on each cell."""
    q = np.clip(np.asarray(q, dtype=float), 0.0, 1.0)
    j = np.clip(np.searchsorted(cdf, q, side="right") - 1, 0, x.size - 2)
    h = x[j + 1] - x[j]
    f0, f1 = f[j], f[j + 1]
    c = (q - cdf[j]) / h
    # solve (f1 - f0)/2 s^2 + f0 s = c for s in [0, 1], in the form that cannot cancel
    disc = np.sqrt(np.maximum(f0**2 + 2 * (f1 - f0) * c, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(f0 + disc > 0, 2 * c / (f0 + disc), 0.0)
    return x[j] + np.clip(s, 0.0, 1.0) * h


def hdi_from_grid(grid, density, *, prob=0.95) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of a 1-D density given on a grid.

    The density is taken as piecewise linear between the grid points (normalised to
    integrate to 1 over the grid, so the grid must cover the distribution); among the
    intervals [Q(a), Q(a + prob)] the shortest is found by a scan over a and a bounded
    refinement. For a unimodal density this is the highest-density interval (Box & Tiao 1973,
    §2.8), and it ends at a grid boundary when the mode is there (as for tau with its mode at
    0, where bayesmeta's shortest interval starts at 0).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-8, 8, 4001)
    >>> lo, hi = hdi_from_grid(x, np.exp(-x**2 / 2))
    >>> round(lo, 3), round(hi, 3)
    (-1.96, 1.96)
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    x, f, cdf = _grid_cdf(grid, density)

    def width(a):
        return _grid_quantile(x, f, cdf, np.asarray(a) + prob) - _grid_quantile(x, f, cdf, a)

    starts = np.linspace(0.0, 1.0 - prob, 4001)
    i = int(np.argmin(width(starts)))
    lo_a, hi_a = starts[max(i - 1, 0)], starts[min(i + 1, starts.size - 1)]
    best = optimize.minimize_scalar(
        lambda a: float(width(a)), bounds=(lo_a, hi_a), method="bounded", options={"xatol": 1e-13}
    )
    a = min((starts[i], best.x), key=lambda s: float(width(s)))
    lo, hi = _grid_quantile(x, f, cdf, [a, a + prob])
    return float(lo), float(hi)


def hdi_from_draws(draws, *, prob=0.95) -> tuple[float, float]:
    """Shortest interval holding ceil(prob n) of n draws (Chen & Shao 1999, J. Comput.
    Graph. Stat. 8:69; ArviZ's ``hdi``): a consistent estimate of the highest-density
    interval of a unimodal posterior.

    Examples
    --------
    >>> hdi_from_draws([0.0, 1.0, 2.0, 3.0, 10.0], prob=0.6)
    (0.0, 2.0)
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    if x.size < 2 or not np.isfinite(x).all():
        raise ValueError("draws must be at least 2 finite values")
    m = math.ceil(prob * x.size)  # draws inside the interval
    widths = x[m - 1 :] - x[: x.size - m + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + m - 1])


def mode_from_grid(grid, density) -> float:
    """Posterior mode of a density on a grid: the largest value refined by the parabola
    through it and its two neighbours (a grid end when the maximum is there).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 10, 11)
    >>> round(mode_from_grid(x, np.exp(-(x - 3.3) ** 2)), 6)
    3.3
    """
    x = np.asarray(grid, dtype=float).ravel()
    f = np.asarray(density, dtype=float).ravel()
    if x.size != f.size or x.size < 3:
        raise ValueError("grid and density need the same length >= 3")
    i = int(np.argmax(f))
    if i in (0, x.size - 1):
        return float(x[i])
    # vertex of the parabola through three points (log density: exact for a Gaussian peak)
    with np.errstate(divide="ignore"):
        g = np.log(f[i - 1 : i + 2])
    x0, x1, x2 = x[i - 1 : i + 2]
    g0, g1, g2 = g
    if not np.isfinite(g).all():
        return float(x1)
    num = (x1 - x0) ** 2 * (g1 - g2) - (x1 - x2) ** 2 * (g1 - g0)
    den = (x1 - x0) * (g1 - g2) - (x1 - x2) * (g1 - g0)
    return float(x1 - 0.5 * num / den) if den != 0 else float(x1)
