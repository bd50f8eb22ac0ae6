"""The PyMC likelihood of each outcome family (the families themselves are PyMC-free data in
:mod:`hiermodels.families`)."""

from __future__ import annotations

import pymc as pm

from hiermodels.families import Family

__all__ = ["add_likelihood"]


def _gaussian(name, eta, aux, y, trials, **kw):
    return pm.Normal(name, mu=eta, sigma=aux["sigma"], observed=y, **kw)


def _student_t(name, eta, aux, y, trials, **kw):
    return pm.StudentT(name, nu=aux["nu"], mu=eta, sigma=aux["sigma"], observed=y, **kw)


def _bernoulli(name, eta, aux, y, trials, **kw):
    return pm.Bernoulli(name, logit_p=eta, observed=y, **kw)


def _binomial(name, eta, aux, y, trials, **kw):
    return pm.Binomial(name, n=trials, logit_p=eta, observed=y, **kw)


def _poisson(name, eta, aux, y, trials, **kw):
    return pm.Poisson(name, mu=pm.math.exp(eta), observed=y, **kw)


def _negative_binomial(name, eta, aux, y, trials, **kw):
    return pm.NegativeBinomial(name, mu=pm.math.exp(eta), alpha=aux["alpha"], observed=y, **kw)


LIKELIHOODS = {
    "gaussian": _gaussian,
    "student_t": _student_t,
    "bernoulli": _bernoulli,
    "binomial": _binomial,
    "poisson": _poisson,
    "negative_binomial": _negative_binomial,
}


def add_likelihood(family: Family, name: str, eta, aux: dict, y, trials=None, se=None, **kw):
    """Add the observed outcome ``name`` of ``family`` to the model in context; with known
    standard errors ``se`` its residual SD is each row's total SD
    (:meth:`~hiermodels.families.Family.observation_aux`)."""
    aux = family.observation_aux(aux, se)
    return LIKELIHOODS[family.name](name, eta, aux, y, trials, **kw)
