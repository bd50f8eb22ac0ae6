"""Every prior a hierarchical model uses, resolved to numbers from the data (no PyMC here).

The defaults are data-scaled in the spirit of rstanarm and bambi; :func:`resolve_priors`
documents each rule and ``HierarchicalModel.default_priors()`` shows them before fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiermodels.data import GroupedData
from hiermodels.errors import SpecError
from hiermodels.families import Family, get_family
from hiermodels.names import INTERCEPT, RESIDUAL_SIGMA, corr_name, effect_name, sigma_name
from hiermodels.priors import LKJ, Normal, Prior, resolve_hyperprior
from hiermodels.spec import HierarchicalSpec

__all__ = ["ResolvedPrior", "check_spec", "data_scales", "priors_frame", "resolve_priors"]


@dataclass(frozen=True)
class ResolvedPrior:
    """A prior with the reason it was chosen (shown by ``default_priors()``)."""

    prior: Prior
    role: str
    rule: str


def data_scales(data: GroupedData, family: Family) -> tuple[float, float, dict[str, float]]:
    centre, sd_y = family.scale(data.y, data.trials, data.offset)
    sd_x = {t: 1.0 if t == INTERCEPT else float(np.std(data.column(t))) for t in data.terms}
    return centre, sd_y, sd_x


def check_spec(data: GroupedData, spec: HierarchicalSpec) -> None:
    """Cross-check the spec against the data (names, per-term parameterizations)."""
    if not isinstance(spec.parameterization, str):
        known = {t for _, t in data.effects} | {effect_name(t, f.name) for f, t in data.effects}
        unknown = [k for k, _ in spec.parameterization if k not in known]
        if unknown:
            raise SpecError(
                f"parameterization given for {unknown}, which do not vary by group; varying "
                f"terms are {sorted(known)}"
            )
        for f in data.factors:
            if f.correlated and len(f.varying) > 1:
                kinds = {spec.parameterization_of(t, f.name) for t in f.varying}
                if len(kinds) > 1:
                    raise SpecError(
                        "correlated varying terms share one multivariate normal, so they need "
                        f"one parameterization; give the same for all of {list(f.varying)} "
                        f"(grouping {f.name!r}) or make them independent (correlated=False, "
                        "or || in a formula)"
                    )
    reserved = {RESIDUAL_SIGMA, "nu", "alpha", *(f.name for f in data.factors)}
    reserved |= {c for f in data.factors for c in f.columns}
    clash = [t for t in data.terms if t in reserved]
    if clash:
        raise SpecError(f"predictor name(s) {clash} clash with model names; rename the column(s)")


def resolve_priors(
    data: GroupedData,
    spec: HierarchicalSpec,
    *,
    scales: tuple[float, float, dict[str, float]] | None = None,
) -> dict[str, ResolvedPrior]:
    """Every prior the model will use, resolved to numbers.

    Data-scaled defaults (in the spirit of rstanarm and bambi), with ``s_x = sd(x)`` for each
    predictor and ``s_y = sd(y)`` for the identity link, 1 for the logit and log links (see
    :mod:`hiermodels.families`):

    - ``Intercept ~ Normal(c, 2.5 s_y)`` for the intercept at the predictors' means (the
      model samples it as ``Intercept_at_means`` and reports ``Intercept`` at x = 0, as brms
      and rstanarm do), with ``c`` the link of the mean outcome (``mean(y)``, ``logit`` of
      the success rate, ``log`` of the rate per unit exposure);
    - each coefficient ``~ Normal(0, 2.5 s_y / s_x)``;
    - the family's auxiliary parameters: ``sigma ~ Exponential(mean = s_y)`` (gaussian,
      student_t), ``nu ~ Gamma(2, 0.1)`` (student_t), ``alpha ~ HalfCauchy(1)``
      (negative_binomial); with known standard errors (``se``) there is no ``sigma`` unless
      ``sigma=True`` asks for one besides them (``spec.aux``), and ``s_y`` is still ``sd(y)``;
    - ``{term}|{group}_sigma ~ hyperprior(scale = s_y / s_x)`` (``s_x = 1`` for the intercept),
      for every grouping factor.

    Entries of ``spec.priors`` replace the default of the same name. ``scales`` are
    ``(c, s_y, {term: s_x})`` when they come from elsewhere than the rows of ``data`` (the
    aggregates of a dask DataFrame, :mod:`hiermodels.lazy_fit`); by default
    :func:`data_scales` of ``data``.
    """
    check_spec(data, spec)
    family = get_family(spec.family)
    centre, sd_y, sd_x = data_scales(data, family) if scales is None else scales
    slopes = [t for t in data.terms if t != INTERCEPT]
    out: dict[str, ResolvedPrior] = {}
    link = "" if family.link == "identity" else f"{family.link} "
    out[INTERCEPT] = ResolvedPrior(
        Normal(centre, 2.5 * sd_y),
        "population intercept" + (" at the predictors' means" if slopes else ""),
        f"Normal({link}mean outcome, 2.5 s_y)",
    )
    for t in slopes:
        out[t] = ResolvedPrior(
            Normal(0.0, 2.5 * sd_y / sd_x[t]),
            "population coefficient",
            "Normal(0, 2.5 s_y/sd(x))",
        )
    for aux in spec.aux:
        out[aux.name] = ResolvedPrior(aux.default(sd_y), aux.role, aux.rule)
    for f, t in data.effects:
        scale = sd_y / sd_x[t]
        out[sigma_name(t, f.name)] = ResolvedPrior(
            resolve_hyperprior(spec.hyperprior, scale=scale),
            "group-level SD",
            f"hyperprior {spec.hyperprior if isinstance(spec.hyperprior, str) else 'given'}, "
            f"scale s_y/sd(x) = {scale:.4g}",
        )
    for f in data.factors:
        if f.correlated and len(f.varying) > 1:
            out[corr_name(f.name)] = ResolvedPrior(
                LKJ(spec.lkj_eta),
                "correlations of the varying terms",
                f"LKJ(eta = lkj_eta = {spec.lkj_eta:g})",
            )
    user = dict(spec.priors)
    wrong = [k for k, p in user.items() if k in out and isinstance(p, LKJ) != k.endswith("_corr")]
    if wrong:
        raise SpecError(
            f"priors for {wrong}: an LKJ prior is for a {{group}}_corr correlation, and a "
            "correlation takes only an LKJ prior (e.g. hm.priors.LKJ(4))"
        )
    unknown = [k for k in user if k not in out]
    if unknown:
        raise SpecError(f"priors given for unknown parameter(s) {unknown}; known: {list(out)}")
    for name, prior in user.items():
        out[name] = ResolvedPrior(prior, out[name].role, "given")
    return out


def priors_frame(priors: dict[str, ResolvedPrior]) -> pd.DataFrame:
    """``default_priors()`` as a table: one row per parameter, with the prior itself (it
    prints as ``Normal(mu=0, sigma=2.5)`` and can be reused), its role and the rule that set
    it."""
    return pd.DataFrame(
        {
            "prior": [r.prior for r in priors.values()],
            "role": [r.role for r in priors.values()],
            "rule": [r.rule for r in priors.values()],
        },
        index=pd.Index(list(priors), name="parameter"),
    )
