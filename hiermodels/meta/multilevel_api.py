"""The three-level meta-analysis behind :func:`hiermodels.meta_analysis` with ``levels=``.

The flow: :func:`hiermodels.meta_analysis` makes the :class:`~hiermodels.meta.spec.MetaSpec`
(with its ``levels``) and hands it here; the data become a
:class:`~hiermodels.meta.data.MultilevelData`, the engine of :data:`ENGINES` (imported only
then) returns an :class:`~hiermodels.meta.engines.EngineFit`, which
:class:`~hiermodels.meta.multilevel.MultilevelMetaResult` reports on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from hiermodels.errors import PriorWarning, SpecError
from hiermodels.meta.data import MultilevelData, prepare_multilevel
from hiermodels.meta.engines import EngineFit
from hiermodels.meta.multilevel import MultilevelMetaResult
from hiermodels.meta.spec import MetaSpec

__all__ = ["ENGINES", "fit_levels"]

RESERVED = {"mu", "theta", "theta_offset", "theta_new", "chain", "draw", "term", "se", "X"}


@dataclass(frozen=True)
class LevelsEngine:
    """One way to compute the posterior of a three-level model: a registry entry.

    ``load`` imports the engine function ``(data, spec, *, tau_priors) -> EngineFit`` only
    when it is used (the MCMC engine brings PyMC).
    """

    name: str
    description: str
    source: str
    load: Callable[[], Callable[..., EngineFit]]


def _load_exact():
    from hiermodels.meta.multilevel_engines import fit_multilevel_exact

    return fit_multilevel_exact


def _load_mcmc():
    from hiermodels.meta.multilevel_mcmc import fit_multilevel_mcmc

    return fit_multilevel_mcmc


ENGINES: dict[str, LevelsEngine] = {
    e.name: e
    for e in (
        LevelsEngine(
            "exact",
            "Numerical integration over both SDs on a 2-D grid; beta, the cluster effects and "
            "theta given them analytically. Numpy/scipy only, independent draws.",
            "BDA3 §5.4 with the block-diagonal marginal covariance of Konstantopoulos (2011).",
            _load_exact,
        ),
        LevelsEngine(
            "mcmc",
            "NUTS through pm.sample on the PyMC model (group effects for the clusters and the "
            "effect sizes, centered or non-centered).",
            "Hoffman & Gelman (2014), The No-U-Turn Sampler, JMLR 15:1593-1623.",
            _load_mcmc,
        ),
    )
}


def _check_names(data: MultilevelData) -> None:
    d = data.studies
    model_names = RESERVED | {*data.tau_names, data.cluster_effect_name}
    model_names |= {f"{data.cluster_effect_name}_offset"}
    clash = model_names.intersection({d.estimate, *d.terms, *data.levels})
    clash |= set(data.levels).intersection({d.estimate, *d.terms})
    if clash:
        raise SpecError(
            f"column or level name(s) {sorted(clash)} clash with model names; rename them"
        )


def fit_levels(frame: pd.DataFrame, spec: MetaSpec) -> MultilevelMetaResult:
    """Validate the data of a spec with ``levels``, warn about the priors, run its engine.

    Called by :func:`hiermodels.meta_analysis`; each level's prior warning names its SD.
    """
    if spec.method not in ENGINES:
        raise SpecError(f"unknown method {spec.method!r}; use {' or '.join(map(repr, ENGINES))}")
    data = prepare_multilevel(
        frame,
        estimate=spec.estimate,
        levels=spec.levels,
        names=spec.level_names,
        se=spec.se,
        vi=spec.vi,
        study=spec.study,
        moderators=spec.moderators,
    )
    _check_names(data)
    tau_priors = spec.tau_priors(data.studies.se)
    for name, prior, n_groups in zip(
        data.tau_names, tau_priors, (data.n_clusters, data.k), strict=True
    ):
        message = prior.warning(n_groups)
        if message:
            # user -> meta_analysis -> fit_levels
            warnings.warn(f"{name}: {message}", PriorWarning, stacklevel=3)
    fit = ENGINES[spec.method].load()(data, spec, tau_priors=tau_priors)
    return MultilevelMetaResult(
        data=data, spec=spec, tau_priors=tau_priors, fit=fit, frame=frame.copy()
    )
