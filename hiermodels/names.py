"""Names the stages share: the model's variable names, built in one place (no PyMC here).

A population-level coefficient is named after its term (``Intercept``, ``floor``); the
residual SD is ``sigma``; a term's group-specific deviations are ``{term}|{group}``, their SD
``{term}|{group}_sigma``, their non-centered offsets ``{term}|{group}_offset`` and the
correlations of a factor's terms ``{group}_corr`` (STYLE.md, Names).
"""

from __future__ import annotations

__all__ = [
    "INTERCEPT",
    "INTERCEPT_AT_MEANS",
    "PARAMETERIZATIONS",
    "RESIDUAL_SIGMA",
    "corr_name",
    "effect_name",
    "sigma_name",
]

INTERCEPT = "Intercept"
# the sampled intercept when predictors are centred inside the model (brms's "Intercept")
INTERCEPT_AT_MEANS = f"{INTERCEPT}_at_means"
RESIDUAL_SIGMA = "sigma"
PARAMETERIZATIONS = ("centered", "noncentered")


def effect_name(term: str, group: str) -> str:
    """``{term}|{group}``: the name of a term's group-specific deviations."""
    return f"{term}|{group}"


def sigma_name(term: str, group: str) -> str:
    """``{term}|{group}_sigma``: the SD of a term's group-level deviations."""
    return f"{effect_name(term, group)}_sigma"


def corr_name(group: str) -> str:
    """``{group}_corr``: the correlation matrix of a factor's varying terms."""
    return f"{group}_corr"
