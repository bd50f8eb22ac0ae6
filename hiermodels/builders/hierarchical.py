"""Build the PyMC graph of a varying-intercepts / varying-slopes regression.

Model (Gelman & Hill 2007, ch. 13-14; BDA3 ch. 15), for a family with link g and grouping
factors f = 1..F (crossed, like items and raters, or nested, like classes within schools)::

    y_i      ~ family(g^-1(eta_i), aux)         (e.g. Normal(eta_i, sigma))
    eta_i    = X_i beta + sum_f Z^f_i b^f_{g_f[i]} + offset_i
    b_j      ~ MvNormal(0, S R S),   S = diag(tau_1..tau_q),  R ~ LKJ(eta)   (correlated)
    b_{j,t}  ~ Normal(0, tau_t)                                              (correlated=False)
    tau_t    ~ hyperprior(scale_t)

``X`` holds the intercept and every population term (group-level ones included), as
formulae's design matrix encodes them; ``Z^f`` the columns of the terms that vary by factor f
(the intercept only when it varies: not for lme4's ``(0 + x | g)``). Each factor has its own
SDs (and correlations): the lines below hold per factor. With no grouping factor (``y ~ x``)
the model is a plain regression, ``eta_i = X_i beta + offset_i``.

With known standard errors ``se_i`` (a meta-analysis: the lowest level's variance is known;
metafor's ``rma.mv``, brms' ``y | se(sei)``) the gaussian outcome has no residual SD::

    y_i ~ Normal(eta_i, se_i)                          (se=)
    y_i ~ Normal(eta_i, sqrt(se_i^2 + sigma^2))        (se=, sigma=True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from hiermodels.builders.effects import group_effect
from hiermodels.builders.likelihoods import add_likelihood
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.defaults import ResolvedPrior, data_scales
from hiermodels.families import Family, get_family
from hiermodels.names import INTERCEPT, INTERCEPT_AT_MEANS, corr_name, sigma_name
from hiermodels.priors import Prior, stacked_dist
from hiermodels.spec import HierarchicalSpec

__all__ = ["BuiltModel", "build", "build_model"]


@dataclass(frozen=True, eq=False)
class BuiltModel:
    """A model and what its group-level effects sample: ``centered`` names the effects sampled
    centered, ``offsets`` the standard-normal offsets of non-centered ones (the convergence
    checks advise from these, never from variable names)."""

    model: pm.Model
    centered: tuple[str, ...]
    offsets: tuple[str, ...]


def build_model(data: GroupedData, spec: HierarchicalSpec, priors: dict[str, ResolvedPrior]):
    """A new ``pm.Model`` for ``data`` under ``spec`` (pure: same inputs, same graph)."""
    return build(data, spec, priors).model


def build(data: GroupedData, spec: HierarchicalSpec, priors: dict[str, ResolvedPrior]):
    """:func:`build_model`, with what each group-level effect samples (:class:`BuiltModel`)."""
    family = get_family(spec.family)
    coords = {"obs": list(range(len(data.y)))}
    for f in data.factors:
        coords[f.name] = list(f.levels)
        coords[f"{f.name}_term"] = list(f.varying)
        if f.correlated and len(f.varying) > 1:
            coords[f"{f.name}_term_bis"] = list(f.varying)
    effects = []
    # The design enters as constants, term by term (no matmul, no multiplying by the
    # intercept's column of ones): the smallest graph, which compiles fastest under nutpie.
    with pm.Model(coords=coords) as model:
        coefs, mu = _population(data, family, priors)
        for f in data.factors:
            for effect in _factor_effects(f, spec, priors, _locations(data, f, coefs)):
                effects.append(effect)
                for t, b in effect.deviations.items():
                    mu = mu + (b[f.idx] if t == INTERCEPT else b[f.idx] * data.column(t))
        if data.offset is not None:
            mu = mu + data.offset
        aux = {a.name: priors[a.name].prior.create(a.name) for a in spec.aux}
        add_likelihood(family, data.y_name, mu, aux, data.y, data.trials, se=data.se, dims="obs")
    return BuiltModel(
        model,
        tuple(n for e in effects for n in e.centered),
        tuple(n for e in effects for n in e.offsets),
    )


class _Standardize(Transform):
    """Sample ``(value - loc) / scale`` instead of ``value``: the same prior and posterior,
    but NUTS sees every population coefficient on a unit scale, so a slope per second of a
    Unix timestamp (~1e-9) and an intercept in the thousands start and adapt alike."""

    name = "standardized"

    def __init__(self, loc: float, scale: float):
        self.loc, self.scale = float(loc), float(scale)

    def forward(self, value, *inputs):
        return (value - self.loc) / self.scale

    def backward(self, value, *inputs):
        return value * self.scale + self.loc

    def log_jac_det(self, value, *inputs):
        return pt.zeros_like(value) + np.log(self.scale)


def _population(data: GroupedData, family: Family, priors: dict[str, ResolvedPrior]):
    """Population coefficients and the population part of the linear predictor.

    Predictors are centred inside the model (brms and rstanarm do the same): the sampled
    intercept is the one at the predictors' means, ``Intercept_at_means``, and the linear
    predictor is ``Intercept_at_means + sum_k beta_k (x_k - mean(x_k))``. So a ``year``
    (2000-2020) or a Unix timestamp does not tie the intercept to every slope in a ridge;
    ``Intercept`` (at x = 0, the user's scale) is a Deterministic. Each coefficient is also
    sampled standardized (:class:`_Standardize`). Coefficients are the user's, unscaled.
    """
    centre, sd_y, sd_x = data_scales(data, family)
    sd_y = sd_y if np.isfinite(sd_y) and sd_y > 0 else 1.0
    slopes = [t for t in data.terms if t != INTERCEPT]
    coefs = {}
    for t in slopes:
        coefs[t] = _create(priors[t].prior, t, 0.0, sd_y / sd_x[t])
    if not slopes:
        coefs[INTERCEPT] = _create(priors[INTERCEPT].prior, INTERCEPT, centre, sd_y)
        return coefs, coefs[INTERCEPT]
    at_means = _create(priors[INTERCEPT].prior, INTERCEPT_AT_MEANS, centre, sd_y)
    means = {t: float(np.mean(data.column(t))) for t in slopes}
    mu, shift = at_means, 0.0
    for t in slopes:
        mu = mu + coefs[t] * (data.column(t) - means[t])
        shift = shift + coefs[t] * means[t]
    coefs[INTERCEPT] = pm.Deterministic(INTERCEPT, at_means - shift)
    return {INTERCEPT: coefs[INTERCEPT], **{t: coefs[t] for t in slopes}}, mu


def _create(prior: Prior, name: str, loc: float, scale: float):
    """``prior`` as variable ``name``, sampled standardized when its support is the real line."""
    if getattr(prior, "real_line", False) and np.isfinite(scale) and scale > 0:
        return prior.create(name, default_transform=_Standardize(loc, scale))
    return prior.create(name)


def _locations(data: GroupedData, f: GroupFactor, coefs: dict) -> dict:
    """The population value of each term varying by factor ``f``: where its group values are
    centred when the term is sampled centered (hierarchical centering, Gelfand, Sahu & Carlin
    1995), so the data that pin a group down do not also have to pin down the split between
    the population coefficient and the deviation. A varying intercept's value includes the
    predictors constant within the factor's levels (Gelman & Hill 2007, §12.6)."""
    out = {t: coefs[t] for t in f.varying}
    if f.group_level and INTERCEPT in out:
        rows = f.first_rows
        for k in f.group_level:
            out[INTERCEPT] = out[INTERCEPT] + coefs[k] * data.column(k)[rows]
    return out


def _factor_effects(f: GroupFactor, spec: HierarchicalSpec, priors, location) -> list:
    """The group effects of one grouping factor: one block, or one per independent term."""
    sigma_priors = [priors[sigma_name(t, f.name)].prior for t in f.varying]
    if f.correlated and len(f.varying) > 1:
        return [
            group_effect(
                f.varying,
                f.name,
                parameterization=spec.parameterization_of(f.varying[0], f.name),
                chol=_correlated_cholesky(f, priors[corr_name(f.name)].prior.eta, sigma_priors),
                location=location,
            )
        ]
    return [
        group_effect(
            [t],
            f.name,
            parameterization=spec.parameterization_of(t, f.name),
            sigma=prior.create(sigma_name(t, f.name)),
            location={t: location[t]},
        )
        for t, prior in zip(f.varying, sigma_priors, strict=True)
    ]


def _correlated_cholesky(f: GroupFactor, eta: float, sigma_priors: list[Prior]):
    """Cholesky factor of the covariance of correlated varying terms, with named SDs and corr.

    When the SD priors form one vectorizable family, ``pm.LKJCholeskyCov`` samples SDs and
    correlations together (its packed transform compiles about 1.5x faster under nutpie than
    ``LKJCorr``); otherwise the SDs are sampled one by one and scale an ``LKJCorr`` factor.
    """
    group, q = f.name, len(f.varying)
    dims = (f"{group}_term", f"{group}_term_bis")
    sd_dist = stacked_dist(sigma_priors)
    if sd_dist is not None:
        chol, corr, sds = pm.LKJCholeskyCov(
            f"{group}_chol_cov",
            n=q,
            eta=eta,
            sd_dist=sd_dist,
            compute_corr=True,
            store_in_trace=False,  # stored below under our names, once
        )
        for k, t in enumerate(f.varying):
            pm.Deterministic(sigma_name(t, group), sds[k])
        pm.Deterministic(corr_name(group), corr, dims=dims)
        return chol
    sigmas = [p.create(sigma_name(t, group)) for t, p in zip(f.varying, sigma_priors, strict=True)]
    chol_corr = pm.LKJCorr(f"{group}_corr_chol", n=q, eta=eta)
    pm.Deterministic(corr_name(group), chol_corr @ chol_corr.T, dims=dims)
    return pt.stack(sigmas)[:, None] * chol_corr
