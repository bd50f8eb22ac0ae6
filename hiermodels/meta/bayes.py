"""The Bayesian answers bayesmeta gives, on a fitted meta-analysis: Bayes factors for mu = 0
and tau = 0, shortest (highest posterior density) intervals and posterior modes, and a prior
sensitivity table.

The numbers come from :mod:`hiermodels.numerics.bayes_extras` and the exact posterior
(:class:`~hiermodels.numerics.exact.ExactPosterior`): exact marginal densities on a fine grid
where the fit has an exact posterior, the draws otherwise. Every function takes a
:class:`~hiermodels.meta.result.MetaAnalysisResult` (``result``), whose methods are the
public entry points.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import integrate

from hiermodels.errors import SpecError
from hiermodels.meta.engines import exact_fit, exact_takes
from hiermodels.meta.spec import default_tau_scale
from hiermodels.numerics import bayes_extras as bx
from hiermodels.numerics.exact import ExactPosterior
from hiermodels.priors import Normal, Prior, resolve_hyperprior

__all__ = [
    "DEFAULT_PRESETS",
    "INTERVALS",
    "bayes_factors",
    "hdi_summary",
    "location_density",
    "prior_sensitivity",
    "tau_density",
]

#: Interval kinds of :meth:`~hiermodels.meta.result.MetaAnalysisResult.summary`.
INTERVALS = ("equal_tailed", "hdi")
#: The tau priors :func:`prior_sensitivity` compares by default (keys of
#: :data:`hiermodels.priors.PRESETS`, each scaled by the data as in the fit).
DEFAULT_PRESETS = ("half_cauchy", "half_normal", "half_t", "exponential", "uniform")
_GRID = 6001  # grid points per density: the HDI limits are then accurate to ~1e-6 of the range
_TAIL = 1e-8  # mass left out beyond the ends of a grid


def _mu_moments(mu_prior):
    if mu_prior is None:
        return None, None
    return float(mu_prior.mu), float(mu_prior.sigma)


def _priors(result, post_tau_prior=None):
    mu_mean, mu_sd = _mu_moments(result.mu_prior)
    tau_prior = result.tau_prior if post_tau_prior is None else post_tau_prior
    return {"tau_logprior": tau_prior.logpdf, "mu_mean": mu_mean, "mu_sd": mu_sd}


def _in_units(d, post, priors):
    """The data, exact posterior and priors in units of the se (the power of two nearest
    their geometric middle), for the functions of :mod:`~hiermodels.numerics.bayes_extras`:
    they square the se and integrate the tau prior by adaptive quadrature, which fails for a
    prior 1e-3 wide as surely as se^2 underflows for se of 1e-300. Densities they return are
    per unit (divide by the unit); Bayes factors are unit-free.
    """
    se = np.asarray(d.se, dtype=float)
    unit = math.ldexp(1.0, round((math.log2(se.min()) + math.log2(se.max())) / 2))
    if unit == 1.0:
        return d.y, d.se, post, priors, 1.0
    logprior, log_unit = priors["tau_logprior"], math.log(unit)
    scaled = {
        "tau_logprior": lambda t: np.asarray(logprior(np.asarray(t) * unit)) + log_unit,
        "mu_mean": None if priors["mu_mean"] is None else priors["mu_mean"] / unit,
        "mu_sd": None if priors["mu_sd"] is None else priors["mu_sd"] / unit,
    }
    return d.y / unit, d.se / unit, post.in_units(unit), scaled, unit


def _bayes_factor(fn, d, post, priors):
    """``fn`` (bayes_factor_mu or _tau) in the posterior's unit; densities back per data unit."""
    y, se, post_u, priors_u, unit = _in_units(d, post, priors)
    bf = fn(y, se, posterior=post_u, **priors_u)
    if unit == 1.0:
        return bf
    return replace(
        bf, posterior_density=bf.posterior_density / unit, prior_density=bf.prior_density / unit
    )


# -- densities on grids -------------------------------------------------------------------


def tau_density(result, grid=None):
    """(grid, p(tau | y)) of the exact posterior; a grid from 0 to beyond all but 1e-8 of
    the mass (fine where the mass is, geometric in the far tail) unless one is given."""
    post, d = result.exact, result.data
    if grid is None:
        q_bulk, q_far = post.quantile_tau([0.999, 1 - _TAIL])
        grid = np.concatenate(
            [np.linspace(0.0, q_bulk, _GRID), np.geomspace(q_bulk, q_far, 800)[1:]]
        )
    if not d.has_moderators:
        y, se, post_u, priors, unit = _in_units(d, post, _priors(result))
        dens = bx.tau_marginal_density(y, se, grid / unit, posterior=post_u, **priors) / unit
    else:
        # p(tau | y) with the coefficients integrated out: the derivative of the exact CDF
        dens = _derivative(post.cdf_tau(grid), grid)
    return np.asarray(grid, dtype=float), dens


def _derivative(values, grid):
    """d values / d grid by central differences, on a grid rescaled to about unit width
    first (spacings of 1e-300 would make the quotients overflow)."""
    s = math.ldexp(1.0, math.frexp(float(np.max(np.abs(grid))))[1])
    return np.maximum(np.gradient(values, grid / s), 0.0) / s


def _cdf_grid(cdf, lo, hi):
    grid = np.linspace(lo, hi, _GRID)
    return grid, _derivative(cdf(grid), grid)


def location_density(result, name):
    """(grid, density) of the posterior of a coefficient (``mu``, ``Intercept``, a
    moderator) or of ``theta_new``, exact: the normal mixture over the tau grid.

    For ``mu`` of a meta-analysis without moderators it is
    :func:`~hiermodels.numerics.bayes_extras.mu_marginal_density`; otherwise the derivative
    of the exact mixture CDF (:meth:`ExactPosterior.cdf_beta`, ``cdf_predictive``), by
    central differences on a fine grid (error O(h^2)).
    """
    post, d = result.exact, result.data
    if name == "theta_new":
        s = post.predictive_summary(prob=1 - 2 * _TAIL)
        return _cdf_grid(post.cdf_predictive, s["lower"], s["upper"])
    index = result.coefficient_names.index(name)
    lo, hi = post.quantile_beta([_TAIL, 1 - _TAIL], index=index)
    if not d.has_moderators:
        grid = np.linspace(lo, hi, _GRID)
        y, se, post_u, priors, unit = _in_units(d, post, _priors(result))
        return grid, bx.mu_marginal_density(y, se, grid / unit, posterior=post_u, **priors) / unit
    return _cdf_grid(lambda x: post.cdf_beta(x, index=index), lo, hi)


# -- shortest intervals and modes ---------------------------------------------------------


def hdi_summary(result, table: pd.DataFrame, prob: float) -> pd.DataFrame:
    """``table`` (the equal-tailed summary) with ``ci_low``/``ci_high`` the shortest ``prob``
    intervals and a ``mode`` column after ``median``.

    Exact (:func:`~hiermodels.numerics.bayes_extras.hdi_from_grid` and ``mode_from_grid`` on
    the exact densities) with an exact posterior; otherwise the shortest interval of the draws
    (:func:`~hiermodels.numerics.bayes_extras.hdi_from_draws`) and no mode (NaN): a mode from
    draws needs a density estimate, biased at tau's boundary 0.
    """
    out = table.copy()
    modes = []
    for name in out.index:
        if result.exact is not None:
            grid, dens = tau_density(result) if name == "tau" else location_density(result, name)
            # on a grid of about unit width: a density of 1e300 (data in units 1e-300) squares
            s = math.ldexp(1.0, math.frexp(float(np.max(np.abs(grid))))[1])
            lo, hi = np.multiply(bx.hdi_from_grid(grid / s, dens * s, prob=prob), s)
            mode = bx.mode_from_grid(grid / s, dens * s) * s
        else:
            lo, hi = bx.hdi_from_draws(result.draws(name).ravel(), prob=prob)
            mode = math.nan
        out.loc[name, ["ci_low", "ci_high"]] = lo, hi
        modes.append(mode)
    out.insert(list(out.columns).index("median") + 1, "mode", modes)
    out.attrs.update(prob=prob, interval="hdi")
    return out


# -- Bayes factors ------------------------------------------------------------------------


def _check_bayes_factor(result, what):
    if result.exact is None:
        raise SpecError(
            f"{what} needs the exact posterior (Savage-Dickey at the exact marginal densities); "
            f"this fit used method={result.method!r}. Refit with method='exact' (a flat or "
            "hm.priors.Normal mu prior): a density estimated from draws at tau = 0, the edge "
            "of tau's support, is too biased to report"
        )
    if result.data.has_moderators:
        raise SpecError(
            f"{what} is computed for the intercept-only model (mu, tau); this fit has "
            f"moderators {list(result.data.terms[1:])}: refit without them"
        )


def _bf_tau(d, post, priors):
    # the tau prior is normalised by quadrature: a divergent integral (an improper prior such
    # as Uniform(0, None)) must stop here, not give a number
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", integrate.IntegrationWarning)
            return _bayes_factor(bx.bayes_factor_tau, d, post, priors)
    except (SpecError, integrate.IntegrationWarning) as error:
        raise SpecError(
            f"no Bayes factor for tau = 0 ({error}): it needs a proper tau prior that reaches "
            "0, e.g. hyperprior='half_normal' or 'half_cauchy'"
        ) from None


def _bf_mu(d, post, priors, mu_prior):
    if not isinstance(mu_prior, Normal):
        raise SpecError(
            f"a Bayes factor for mu = 0 needs a proper normal prior on mu, got "
            f"{mu_prior or 'a flat prior'} (under a flat prior it is undefined, Lindley's "
            "paradox); refit with mu_prior=hm.priors.Normal(0, s), s a plausible effect size "
            "(e.g. 4 on the log odds ratio scale), or ask for bayes_factors(which='tau')"
        )
    return _bayes_factor(bx.bayes_factor_mu, d, post, priors)


def bayes_factors(result, which: str | Sequence[str] = ("mu", "tau")) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.bayes_factors`."""
    which = (which,) if isinstance(which, str) else tuple(which)
    unknown = [w for w in which if w not in ("mu", "tau")]
    if unknown or not which:
        raise SpecError(f"which must name 'mu' and/or 'tau', got {which!r}")
    _check_bayes_factor(result, "a Bayes factor")
    d, post, priors = result.data, result.exact, _priors(result)
    rows = {}
    for name in which:
        bf = _bf_mu(d, post, priors, result.mu_prior) if name == "mu" else _bf_tau(d, post, priors)
        rows[bf.hypothesis] = {
            "bf01": bf.bf01,
            "bf10": bf.bf10,
            "posterior_density": bf.posterior_density,
            "prior_density": bf.prior_density,
            "reading": bf.reading,
        }
    table = pd.DataFrame(rows).T
    table = table.astype({c: float for c in table.columns if c != "reading"})
    table.index.name = "hypothesis"
    return table


# -- prior sensitivity --------------------------------------------------------------------


def _preset_prior(preset, scale):
    if isinstance(preset, Prior):
        return str(preset), preset
    if not isinstance(preset, str):
        raise SpecError(f"presets must hold preset names or prior objects, got {preset!r}")
    return preset, resolve_hyperprior(preset, scale=scale)


def _bf_or_nan(fn):
    try:
        return fn().bf01
    except SpecError:
        return math.nan


def _row(result, post: ExactPosterior, tau_prior, prob):
    d = result.data
    beta = post.beta_summary(prob)
    tau = post.tau_summary(prob)
    new = post.predictive_summary(prob=prob)
    row = {
        "prior": str(tau_prior),
        "mu_mean": float(beta["mean"][0]),
        "mu_median": float(beta["median"][0]),
        "mu_ci_low": float(beta["lower"][0]),
        "mu_ci_high": float(beta["upper"][0]),
        "tau_median": tau["median"],
        "tau_ci_low": tau["lower"],
        "tau_ci_high": tau["upper"],
        "theta_new_ci_low": new["lower"],
        "theta_new_ci_high": new["upper"],
        "bf01_mu": math.nan,
        "bf01_tau": math.nan,
    }
    if not d.has_moderators:
        mu_mean, mu_sd = _mu_moments(result.mu_prior)
        priors = {"tau_logprior": tau_prior.logpdf, "mu_mean": mu_mean, "mu_sd": mu_sd}
        if result.mu_prior is not None:
            row["bf01_mu"] = _bf_or_nan(lambda: _bayes_factor(bx.bayes_factor_mu, d, post, priors))
        row["bf01_tau"] = _bf_or_nan(lambda: _bf_tau(d, post, priors))
    return row


def prior_sensitivity(result, presets=DEFAULT_PRESETS, prob=0.95) -> pd.DataFrame:
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.prior_sensitivity`."""
    if not exact_takes(result.mu_prior):
        raise SpecError(
            f"prior_sensitivity refits with the exact engine, which takes a flat or "
            f"hm.priors.Normal prior on mu, not {result.mu_prior}; refit with method='mcmc' "
            "under each tau prior instead"
        )
    presets = (presets,) if isinstance(presets, (str, Prior)) else tuple(presets)
    if not presets:
        raise SpecError("give at least one preset, e.g. presets=('half_cauchy', 'half_normal')")
    scale = default_tau_scale(result.data.se)
    rows = {}
    for preset in presets:
        label, tau_prior = _preset_prior(preset, scale)
        post = exact_fit(result.data, mu_prior=result.mu_prior, tau_prior=tau_prior)
        rows[label] = _row(result, post, tau_prior, prob)
    table = pd.DataFrame(rows).T
    table = table.astype({c: float for c in table.columns if c != "prior"})
    table.index.name = "tau_prior"
    table.attrs.update(prob=prob)
    return table
