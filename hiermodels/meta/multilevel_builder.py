"""PyMC graph of the three-level meta-analysis (effect sizes nested in clusters).

Model (Konstantopoulos 2011, Res. Synth. Methods 2:61-76; Cheung 2014, Psychol. Methods
19:211-229), for effect size i in cluster c(i)::

    y_i     ~ Normal(theta_i, se_i)                       se_i known
    theta_i ~ Normal(x_i' beta + u_c(i), tau_{effect})    x_i = 1 without moderators
    u_c     ~ Normal(0, tau_{cluster})
    beta    ~ flat, or Normal(m, s) on the intercept (mu)
    tau_{cluster}, tau_{effect} ~ hyperpriors

Both group-level effects come from :func:`hiermodels.builders.effects.group_effect`, the one
place that knows centered from non-centered.
"""

from __future__ import annotations

from collections.abc import Sequence

import pymc as pm
import pytensor.tensor as pt

from hiermodels.builders.effects import GroupEffect, group_effect
from hiermodels.meta.data import MultilevelData, coefficient_names
from hiermodels.priors import Prior

__all__ = ["build_multilevel_graph"]


def build_multilevel_graph(
    data: MultilevelData,
    *,
    mu_prior: Prior | None,
    tau_priors: Sequence[Prior],
    parameterizations: Sequence[str] = ("noncentered", "centered"),
) -> tuple[pm.Model, tuple[GroupEffect, GroupEffect]]:
    """A new ``pm.Model`` of the three-level model, and its two group effects (clusters,
    effect sizes) for the convergence advice.

    Variables: the coefficients (``mu``, or ``Intercept`` and the moderators; ``mu_prior``
    on the intercept, the others flat), ``tau_{cluster}``, ``tau_{effect}``, the cluster
    effects ``u_{cluster}`` (dims: the cluster column) and ``theta`` (dims: the effect-size
    level), each level in its parameterization (``parameterizations``: clusters, effects).
    """
    d = data.studies
    cluster, effect = data.levels
    coords = {cluster: list(data.cluster_labels), effect: list(d.labels)}
    with pm.Model(coords=coords) as model:
        coefs = []
        for k, name in enumerate(coefficient_names(d)):
            prior = mu_prior if k == 0 else None
            coefs.append(prior.create(name) if prior is not None else pm.Flat(name))
        mean = d.X[:, 0] * coefs[0]
        for k in range(1, len(coefs)):
            mean = mean + d.X[:, k] * coefs[k]
        tau_b, tau_w = (
            prior.create(name) for prior, name in zip(tau_priors, data.tau_names, strict=True)
        )
        clusters = group_effect(
            ["u"],
            cluster,
            parameterization=parameterizations[0],
            sigma=tau_b,
            values_name=data.cluster_effect_name,
        )
        u = clusters.values["u"][pt.as_tensor(data.cluster)]
        effects = group_effect(
            ["theta"],
            effect,
            parameterization=parameterizations[1],
            sigma=tau_w,
            location={"theta": mean + u},
            values_name="theta",
        )
        pm.Normal(d.estimate, mu=effects.values["theta"], sigma=d.se, observed=d.y, dims=effect)
    return model, (clusters, effects)
