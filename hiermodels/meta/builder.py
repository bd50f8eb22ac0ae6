"""PyMC graph of the normal-normal random-effects meta-analysis (and meta-regression).

Model (BDA3 §5.4-5.6; Röver 2020, J. Stat. Softw. 93(6))::

    y_i     ~ Normal(theta_i, se_i)            se_i known
    theta_i ~ Normal(x_i' beta, tau)           x_i = 1 without moderators, beta = mu
    beta    ~ flat, or Normal(m, s)
    tau     ~ hyperprior
"""

from __future__ import annotations

import pymc as pm
import pytensor.tensor as pt

from hiermodels.builders.effects import GroupEffect, group_effect
from hiermodels.meta.data import StudyData, coefficient_names
from hiermodels.priors import Prior

__all__ = ["build_meta_graph", "build_meta_model"]


def build_meta_model(
    data: StudyData,
    *,
    mu_prior: Prior | None,
    tau_prior: Prior,
    parameterization: str = "noncentered",
) -> pm.Model:
    """A new ``pm.Model``: ``mu`` (or coefficients), ``tau``, ``theta`` with dims the study column.

    ``mu_prior`` applies to the intercept (``mu``); moderator coefficients get flat priors.
    """
    model, _ = build_meta_graph(
        data, mu_prior=mu_prior, tau_prior=tau_prior, parameterization=parameterization
    )
    return model


def build_meta_graph(
    data: StudyData,
    *,
    mu_prior: Prior | None,
    tau_prior: Prior,
    parameterization: str = "noncentered",
) -> tuple[pm.Model, GroupEffect]:
    """:func:`build_meta_model` and what its group effect ``theta`` sampled (centered or
    offsets), for the convergence advice."""
    study = data.study
    with pm.Model(coords={study: list(data.labels)}) as model:
        coefs = []
        for k, name in enumerate(coefficient_names(data)):
            prior = mu_prior if k == 0 else None
            coefs.append(prior.create(name) if prior is not None else pm.Flat(name))
        mean = data.X[:, 0] * coefs[0]
        for k in range(1, len(coefs)):
            mean = mean + data.X[:, k] * coefs[k]
        tau = tau_prior.create("tau")
        effect = group_effect(
            ["theta"],
            study,
            parameterization=parameterization,
            sigma=tau,
            location={"theta": pt.as_tensor(mean)},
            values_name="theta",
        )
        theta = effect.values["theta"]
        pm.Normal(data.estimate, mu=theta, sigma=data.se, observed=data.y, dims=study)
    return model, effect
