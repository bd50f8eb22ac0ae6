"""Bayes factors, shortest intervals and modes of the exact random-effects posterior.

Bayes factors are checked against the marginal likelihoods of both hypotheses by direct
adaptive quadrature (scipy.integrate.quad over mu and tau, no part of the exact engine);
shortest intervals and modes against bayesmeta's published eight-schools analysis (Röver
2020, J. Stat. Softw. 93(6); the package vignette "An introduction to meta-analysis using
the bayesmeta package", ``schools.example.1``: Rubin1981 data, mu ~ Normal(0, 50),
tau ~ half-Cauchy(25)), whose print-out quotes shortest 95% intervals
tau [0, 15.165894], mu [-1.823353, 17.824562] and marginal modes tau 0, mu 7.929503.
bayesmeta's tau numbers are exact integrals; its mu numbers come from the DIRECT mixture
approximation (Röver & Friede 2017, J. Comput. Graph. Stat. 26:823), accurate to ~1e-3 of
mu's scale (its posterior mean 7.985729 against the exact 7.986042), so mu is compared at
that tolerance and tau tightly.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from hiermodels.errors import SpecError
from hiermodels.numerics.bayes_extras import (
    bayes_factor_mu,
    bayes_factor_tau,
    hdi_from_draws,
    hdi_from_grid,
    joint_posterior_density,
    mode_from_grid,
    mu_marginal_density,
    tau_marginal_density,
)
from hiermodels.numerics.effect_sizes import escalc
from hiermodels.numerics.exact import exact_posterior

from .conftest import DATA


def _half_cauchy(scale):
    return lambda t: math.log(2 / (math.pi * scale)) - np.log1p((np.asarray(t) / scale) ** 2)


SCHOOLS_PRIOR = {"tau_logprior": _half_cauchy(25.0), "mu_mean": 0.0, "mu_sd": 50.0}
# bayesmeta's Crins et al. (2014) analysis (Röver 2020, §2): log OR of acute rejection,
# mu ~ Normal(0, 4), tau ~ half-normal(0.5)
CRINS_PRIOR = {"tau_logprior": stats.halfnorm(scale=0.5).logpdf, "mu_mean": 0.0, "mu_sd": 4.0}


@pytest.fixture(scope="module")
def schools():
    """bayesmeta's Rubin1981: unrounded eight-schools effects and standard errors."""
    d = pd.read_csv(DATA / "rubin1981.csv")
    return d["effect"].to_numpy(float), d["stderr"].to_numpy(float)


@pytest.fixture(scope="module")
def crins():
    """escalc("OR", ai=exp.AR.events, n1i=exp.total, ci=cont.AR.events, n2i=cont.total,
    data=CrinsEtAl2014): yi, sei."""
    d = pd.read_csv(DATA / "crins2014.csv")
    yi, vi = escalc(
        "OR",
        ai=d["exp.AR.events"],
        n1i=d["exp.total"],
        ci=d["cont.AR.events"],
        n2i=d["cont.total"],
    )
    return yi, np.sqrt(vi)


def _quadrature_bayes_factors(y, se, tau_logprior, mu_mean, mu_sd):
    """BF01 for mu = 0 and tau = 0 as ratios of marginal likelihoods, by adaptive quadrature."""

    v = se**2
    log_norm = -0.5 * len(y) * math.log(2 * math.pi)

    def lik(mu, t):
        var = v + t * t
        return math.exp(log_norm - 0.5 * float(np.sum(np.log(var) + (y - mu) ** 2 / var)))

    def prior_mu(m):
        return math.exp(-0.5 * ((m - mu_mean) / mu_sd) ** 2) / (mu_sd * math.sqrt(2 * math.pi))

    def prior_tau(t):
        return math.exp(float(tau_logprior(np.array([t]))[0]))

    def quad(f, a, b, **kw):
        return integrate.quad(f, a, b, epsabs=0, epsrel=1e-11, limit=1000, **kw)[0]

    z_tau = quad(prior_tau, 0, np.inf)  # normalise the tau prior

    def over_mu(t):  # integrate mu over where the integrand lives, centred on its peak
        w = 1 / (se**2 + t**2)
        centre = float(np.sum(w * y) / np.sum(w))
        half = 30 * min(mu_sd, 1 / math.sqrt(np.sum(w)))
        return quad(
            lambda m: lik(m, t) * prior_mu(m),
            centre - half,
            centre + half,
            points=[centre],
        )

    scale = float(np.sqrt(np.mean(se**2) + np.var(y)))

    def over_tau(f):
        return (quad(f, 0, 3 * scale) + quad(f, 3 * scale, np.inf)) / z_tau

    evidence = over_tau(lambda t: over_mu(t) * prior_tau(t))
    evidence_mu0 = over_tau(lambda t: lik(0.0, t) * prior_tau(t))
    return evidence_mu0 / evidence, over_mu(0.0) / evidence


@pytest.mark.parametrize(("data", "prior"), [("schools", SCHOOLS_PRIOR), ("crins", CRINS_PRIOR)])
def test_bayes_factors_match_quadrature_of_marginal_likelihoods(request, data, prior):
    y, se = request.getfixturevalue(data)
    bf_mu0, bf_tau0 = _quadrature_bayes_factors(y, se, **prior)
    mu = bayes_factor_mu(y, se, **prior)
    tau = bayes_factor_tau(y, se, **prior)
    np.testing.assert_allclose(mu.bf01, bf_mu0, rtol=1e-7)
    np.testing.assert_allclose(tau.bf01, bf_tau0, rtol=1e-7)
    assert mu.hypothesis == "mu = 0" and tau.hypothesis == "tau = 0"
    # Savage-Dickey: the Bayes factor is the ratio of the reported densities
    np.testing.assert_allclose(mu.bf01, mu.posterior_density / mu.prior_density, rtol=1e-12)
    np.testing.assert_allclose(tau.bf01, tau.posterior_density / tau.prior_density, rtol=1e-12)


def test_savage_dickey_densities_are_the_exact_marginals(schools):
    y, se = schools
    post = exact_posterior(
        y, se, tau_logprior=SCHOOLS_PRIOR["tau_logprior"], beta_mean=0, beta_sd=50
    )
    tau = bayes_factor_tau(y, se, posterior=post, **SCHOOLS_PRIOR)
    # the exact engine's density at its smallest grid node (tau ~ 1e-17) is the one at 0
    np.testing.assert_allclose(tau.posterior_density, post.tau_density[0], rtol=1e-9)
    np.testing.assert_allclose(tau.prior_density, 2 / (math.pi * 25), rtol=1e-12)
    # the mu density is a normalised density: it integrates to 1 and has the exact mean
    grid = np.linspace(-100, 120, 44001)
    dens = mu_marginal_density(y, se, grid, posterior=post, **SCHOOLS_PRIOR)
    np.testing.assert_allclose(np.trapezoid(dens, grid), 1, rtol=1e-7)
    np.testing.assert_allclose(
        np.trapezoid(grid * dens, grid), post.beta_summary()["mean"][0], rtol=1e-7
    )
    mu = bayes_factor_mu(y, se, posterior=post, **SCHOOLS_PRIOR)
    np.testing.assert_allclose(mu.posterior_density, np.interp(0.0, grid, dens), rtol=1e-6)


def test_tau_prior_normalisation_does_not_matter(schools):
    """An unnormalised tau prior is normalised by quadrature: same Bayes factors."""
    y, se = schools
    shifted = dict(SCHOOLS_PRIOR, tau_logprior=lambda t: -np.log1p((np.asarray(t) / 25) ** 2))
    a, b = bayes_factor_tau(y, se, **SCHOOLS_PRIOR), bayes_factor_tau(y, se, **shifted)
    np.testing.assert_allclose(a.bf01, b.bf01, rtol=1e-9)
    np.testing.assert_allclose(a.prior_density, b.prior_density, rtol=1e-9)
    np.testing.assert_allclose(
        bayes_factor_mu(y, se, **SCHOOLS_PRIOR).bf01, bayes_factor_mu(y, se, **shifted).bf01
    )


def test_bayes_factor_for_tau_with_zero_prior_density_at_zero(schools):
    """A gamma(2) prior has density 0 at tau = 0: the densities are NaN, the Bayes factor
    the limit of their ratio, p(y | tau = 0) / p(y) (checked by quadrature)."""
    y, se = schools
    prior = {"tau_logprior": stats.gamma(2, scale=5).logpdf, "mu_mean": 0.0, "mu_sd": 50.0}
    bf = bayes_factor_tau(y, se, **prior)
    assert math.isnan(bf.posterior_density) and math.isnan(bf.prior_density)
    np.testing.assert_allclose(bf.bf01, _quadrature_bayes_factors(y, se, **prior)[1], rtol=1e-7)


def test_bayes_factor_conditions(schools):
    y, se = schools
    with pytest.raises(SpecError, match="proper normal prior on mu"):
        bayes_factor_mu(y, se, tau_logprior=SCHOOLS_PRIOR["tau_logprior"], mu_mean=0, mu_sd=None)
    with pytest.raises(SpecError, match="excludes tau = 0"):
        bayes_factor_tau(
            y, se, tau_logprior=lambda t: np.where(t > 1, 0.0, -np.inf) - np.log1p(t**2),
            mu_mean=0, mu_sd=50,
        )  # fmt: skip


def test_bayes_factor_reading(schools):
    y, se = schools
    text = bayes_factor_tau(y, se, **SCHOOLS_PRIOR).reading
    assert "BF01 = 4.46" in text and "moderate evidence for tau = 0" in text
    text = bayes_factor_mu([2.0, 2.5, 3.0, 2.2], [0.3, 0.3, 0.3, 0.3], **CRINS_PRIOR).reading
    assert "extreme evidence for not mu = 0" in text


# -- shortest intervals and modes -------------------------------------------------------


def test_hdi_reproduces_bayesmeta_eight_schools(schools):
    y, se = schools
    post = exact_posterior(
        y, se, tau_logprior=SCHOOLS_PRIOR["tau_logprior"], beta_mean=0, beta_sd=50
    )
    tau_grid = np.concatenate([np.linspace(0, 50, 5001), np.geomspace(50, 1e5, 3000)[1:]])
    tau_dens = tau_marginal_density(y, se, tau_grid, posterior=post, **SCHOOLS_PRIOR)
    lo, hi = hdi_from_grid(tau_grid, tau_dens)
    assert lo == 0.0
    np.testing.assert_allclose(hi, 15.165894, rtol=1e-6)
    assert mode_from_grid(tau_grid, tau_dens) == 0.0
    mu_grid = np.linspace(-40, 55, 9501)
    mu_dens = mu_marginal_density(y, se, mu_grid, posterior=post, **SCHOOLS_PRIOR)
    np.testing.assert_allclose(hdi_from_grid(mu_grid, mu_dens), [-1.823353, 17.824562], atol=5e-3)
    np.testing.assert_allclose(mode_from_grid(mu_grid, mu_dens), 7.929503, atol=5e-3)


def test_hdi_holds_its_mass_and_is_no_wider_than_equal_tailed():
    dist = stats.gamma(2.5, scale=1.3)
    x = np.linspace(0, 60, 60001)
    lo, hi = hdi_from_grid(x, dist.pdf(x), prob=0.9)
    np.testing.assert_allclose(dist.cdf(hi) - dist.cdf(lo), 0.9, atol=1e-7)
    np.testing.assert_allclose(dist.pdf(lo), dist.pdf(hi), rtol=1e-4)  # highest density
    eq_lo, eq_hi = dist.ppf([0.05, 0.95])
    assert hi - lo < eq_hi - eq_lo - 0.1  # strictly shorter for a skewed density


def test_hdi_of_a_symmetric_unimodal_density_is_equal_tailed():
    dist = stats.t(5, loc=2.0, scale=0.7)
    x = np.linspace(-40, 44, 84001)
    np.testing.assert_allclose(
        hdi_from_grid(x, dist.pdf(x)), dist.ppf([0.025, 0.975]), rtol=0, atol=1e-5
    )
    # on a non-uniform grid too
    xs = 2.0 + np.sign(x - 2.0) * np.abs(x - 2.0) ** 1.2 / 3
    np.testing.assert_allclose(hdi_from_grid(xs, dist.pdf(xs)), dist.ppf([0.025, 0.975]), atol=1e-4)


def test_hdi_from_draws(seed):
    rng = np.random.default_rng(seed(31))
    draws = rng.standard_normal(40_000)
    lo, hi = hdi_from_draws(draws)
    inside = np.sum((draws >= lo) & (draws <= hi))
    assert inside == math.ceil(0.95 * draws.size)
    # the sampling sd of a 2.5% sample quantile of 40 000 normals is ~0.016
    np.testing.assert_allclose([lo, hi], [-1.959964, 1.959964], atol=0.08)
    skewed = rng.exponential(size=40_000)
    lo, hi = hdi_from_draws(skewed, prob=0.8)
    assert lo < 0.01 and hi - lo <= np.quantile(skewed, 0.9) - np.quantile(skewed, 0.1)
    np.testing.assert_allclose(hi, -math.log(0.2), atol=0.05)  # exact HDI: [0, log 5]


def test_mode_from_grid_is_exact_for_a_gaussian_peak():
    x = np.linspace(-3, 3, 13)
    assert mode_from_grid(x, np.exp(-0.5 * ((x - 0.123) / 0.8) ** 2)) == pytest.approx(0.123)
    assert mode_from_grid(x, np.exp(-x)) == -3.0  # maximum at the grid end


def test_joint_density_integrates_to_the_marginals(crins):
    y, se = crins
    post = exact_posterior(y, se, tau_logprior=CRINS_PRIOR["tau_logprior"], beta_mean=0, beta_sd=4)
    mu = np.linspace(-6, 3, 901)
    tau = np.linspace(0, 3, 601)
    joint = joint_posterior_density(y, se, mu, tau, posterior=post, **CRINS_PRIOR)
    assert joint.shape == (tau.size, mu.size)
    np.testing.assert_allclose(
        np.trapezoid(joint, mu, axis=1),
        tau_marginal_density(y, se, tau, posterior=post, **CRINS_PRIOR),
        rtol=1e-6,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        np.trapezoid(joint, tau, axis=0),
        mu_marginal_density(y, se, mu, posterior=post, **CRINS_PRIOR),
        rtol=1e-3,
        atol=1e-6,
    )


def test_bad_grids():
    with pytest.raises(ValueError, match="increase strictly"):
        hdi_from_grid([0, 2, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="prob"):
        hdi_from_grid([0, 1, 2], [1, 1, 1], prob=1.0)
    with pytest.raises(ValueError, match="finite"):
        hdi_from_draws([0.0, np.nan])
