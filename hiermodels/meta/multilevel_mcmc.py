"""The MCMC engine of the three-level meta-analysis: the PyMC model sampled with NUTS.

Loaded only when ``method="mcmc"`` is asked for, so the exact path never imports PyMC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hiermodels.engines.mcmc import sample_checked
from hiermodels.meta.data import MultilevelData
from hiermodels.meta.engines import EngineFit
from hiermodels.meta.multilevel_builder import build_multilevel_graph
from hiermodels.meta.multilevel_engines import with_theta_new_levels
from hiermodels.meta.spec import MetaSpec
from hiermodels.priors import Prior

__all__ = ["fit_multilevel_mcmc"]


def fit_multilevel_mcmc(
    data: MultilevelData, spec: MetaSpec, *, tau_priors: Sequence[Prior]
) -> EngineFit:
    """Build the model (parameterization included), sample it with ``spec.sampling``, check
    convergence and add ``theta_new`` and the ArviZ groups."""
    model, effects = build_multilevel_graph(
        data,
        mu_prior=spec.mu_prior,
        tau_priors=tau_priors,
        parameterizations=spec.level_parameterizations,
    )
    idata, diagnostics = sample_checked(
        model,
        spec.sampling,
        centered=tuple(n for e in effects for n in e.centered),
        offsets=tuple(n for e in effects for n in e.offsets),
    )
    # theta_new draws are seeded like the sampler, so a seeded fit is reproducible
    idata = with_theta_new_levels(idata, data, np.random.default_rng(spec.sampling.random_seed))
    return EngineFit(make_idata=lambda: idata, model=model, diagnostics=diagnostics)
