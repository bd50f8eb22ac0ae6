"""The MCMC engine of the meta-analysis: the PyMC model sampled with NUTS.

Loaded only when ``method="mcmc"`` is asked for (:data:`hiermodels.meta.api.ENGINES`), so
the exact path never imports PyMC. It takes any prior on mu that has a PyMC form.
"""

from __future__ import annotations

import numpy as np

from hiermodels.engines.mcmc import sample_checked
from hiermodels.meta.builder import build_meta_graph
from hiermodels.meta.data import StudyData
from hiermodels.meta.engines import EngineFit, with_theta_new
from hiermodels.meta.spec import MetaSpec
from hiermodels.priors import Prior

__all__ = ["fit_mcmc"]


def fit_mcmc(data: StudyData, spec: MetaSpec, *, tau_prior: Prior) -> EngineFit:
    """Build the model of ``spec`` (parameterization included), sample it with
    ``spec.sampling``, check convergence and add ``theta_new``."""
    model, effect = build_meta_graph(
        data,
        mu_prior=spec.mu_prior,
        tau_prior=tau_prior,
        parameterization=spec.parameterization,
    )
    idata, diagnostics = sample_checked(
        model, spec.sampling, centered=effect.centered, offsets=effect.offsets
    )
    # theta_new draws are seeded like the sampler, so a seeded fit is reproducible
    idata = with_theta_new(idata, data, np.random.default_rng(spec.sampling.random_seed))
    return EngineFit(make_idata=lambda: idata, model=model, diagnostics=diagnostics)
