"""The one place that knows centered from non-centered group-level effects.

Centered (BDA3 §5.3; Betancourt & Girolami 2015; Gelfand, Sahu & Carlin 1995): the group
values are sampled around their location, ``theta_j ~ Normal(mu, tau)``, and the deviations
``b_j = theta_j - mu`` follow; this mixes well when each group's data pin its value down.
Non-centered: ``z_j ~ Normal(0, 1)`` is sampled and ``b_j = tau * z_j``, which removes the
funnel between ``tau`` and ``b`` when the data say little about each group. The model is the
same either way: only what the sampler sees changes. Callers give a location, a scale (or a
Cholesky factor) and the parameterization; :func:`group_effect` says what it sampled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pymc as pm
import pytensor.tensor as pt

from hiermodels.names import PARAMETERIZATIONS, effect_name

__all__ = ["GroupEffect", "group_effect"]


@dataclass(frozen=True, eq=False)
class GroupEffect:
    """What :func:`group_effect` added to the model.

    Attributes
    ----------
    deviations : term -> (n_groups,) deviations from the location.
    values : term -> (n_groups,) group values, location + deviation.
    parameterization : ``"centered"`` or ``"noncentered"``.
    centered : the effect names (``{term}|{group}``, or ``values_name``) sampled centered.
    offsets : the names of the sampled standard-normal offsets (non-centered only).
    """

    deviations: dict[str, pt.TensorVariable]
    values: dict[str, pt.TensorVariable]
    parameterization: str
    centered: tuple[str, ...] = ()
    offsets: tuple[str, ...] = ()


def group_effect(
    terms: Sequence[str],
    group: str,
    *,
    parameterization: str,
    sigma: pt.TensorVariable | None = None,
    chol: pt.TensorVariable | None = None,
    location: Mapping[str, object] | None = None,
    values_name: str | None = None,
) -> GroupEffect:
    """Add the group-level effects of ``terms`` to the model in context.

    Parameters
    ----------
    terms : the terms of one block (a single term, or several correlated ones).
    group : the grouping column; also the name of the group dim.
    parameterization : ``"centered"`` or ``"noncentered"``.
    sigma : the SD of a single term's deviations (``{term}|{group}_sigma``).
    chol : for a block of correlated terms instead, the lower Cholesky factor ``C`` of their
        covariance: deviations of group j are ``b_j ~ MvNormal(0, C C')``.
    location : term -> its population value (a scalar or one value per group, e.g. the
        intercept plus group-level predictors); terms not named have location 0.
    values_name : for a single term, register the group values under this name (``theta``
        in a meta-analysis) instead of the deviations under ``{term}|{group}``.

    Returns
    -------
    GroupEffect
        The deviations and values, and what was sampled.

    Notes
    -----
    Names of what is sampled: non-centered, ``{name}_offset`` per term; centered, the
    deviations themselves ``{term}|{group}`` where the location is 0, else the group values
    ``{term}|{group}_coef`` (jointly ``{group}_effects`` for a correlated block, dims
    ``(group, {group}_term)``); with ``values_name``, the values under that name.
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}")
    location = dict(location or {})
    centre = [location.get(t, 0.0) for t in terms]
    has_location = [t in location for t in terms]
    names = [effect_name(t, group) for t in terms]
    if values_name is not None:
        if len(terms) != 1:
            raise ValueError("values_name is for a single term")
        names = [values_name]
    centered = parameterization == "centered"

    if chol is None:
        (term,), (name,), (loc,) = terms, names, centre
        if not centered:
            offset = pm.Normal(f"{name}_offset", 0.0, 1.0, dims=group)
            if values_name:
                value = pm.Deterministic(name, loc + sigma * offset, dims=group)
                deviation = value - loc
            else:
                deviation = pm.Deterministic(name, sigma * offset, dims=group)
                value = loc + deviation
            return GroupEffect(
                {term: deviation}, {term: value}, parameterization, (), (f"{name}_offset",)
            )
        if values_name:
            value = pm.Normal(name, loc, sigma, dims=group)
            return GroupEffect({term: value - loc}, {term: value}, parameterization, (name,))
        if has_location[0]:
            value = pm.Normal(f"{name}_coef", loc, sigma, dims=group)
            deviation = pm.Deterministic(name, value - loc, dims=group)
        else:
            deviation = pm.Normal(name, 0.0, sigma, dims=group)
            value = deviation
        return GroupEffect({term: deviation}, {term: value}, parameterization, (name,))

    if centered:
        n_groups = len(pm.modelcontext(None).coords[group])
        stacked = pt.stack([pt.ones(n_groups) * c for c in centre], axis=1)
        joint = pm.MvNormal(
            f"{group}_effects", mu=stacked, chol=chol, dims=(group, f"{group}_term")
        )
        columns = [joint[:, k] - centre[k] for k in range(len(terms))]
        offsets: tuple[str, ...] = ()
    else:
        offset_vars = [pm.Normal(f"{name}_offset", 0.0, 1.0, dims=group) for name in names]
        offsets = tuple(f"{name}_offset" for name in names)
        # b_k = sum_{m <= k} C[k, m] z_m, the rows of C z written out elementwise: unlike
        # stack-then-matmul this fuses into one kernel, and compiles ~20% faster under nutpie
        columns = []
        for k in range(len(terms)):
            column = chol[k, 0] * offset_vars[0]
            for m in range(1, k + 1):
                column = column + chol[k, m] * offset_vars[m]
            columns.append(column)
    deviations = {
        term: pm.Deterministic(name, column, dims=group)
        for term, name, column in zip(terms, names, columns, strict=True)
    }
    values = {t: centre[k] + deviations[t] for k, t in enumerate(terms)}
    return GroupEffect(
        deviations, values, parameterization, tuple(names) if centered else (), offsets
    )
