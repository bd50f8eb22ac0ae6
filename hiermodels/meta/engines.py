"""The exact engine for the normal-normal model: numerical integration over tau.

Wraps :mod:`hiermodels.numerics.exact` (numpy/scipy only) and turns its independent draws
into the same ``xarray.DataTree`` layout the MCMC engine produces, so that summaries, ArviZ
and plots work the same for both methods.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hiermodels.errors import SpecError
from hiermodels.meta.data import StudyData
from hiermodels.numerics.exact import ExactPosterior, ImproperPosteriorError, exact_posterior
from hiermodels.priors import Normal, Prior

__all__ = ["exact_fit", "posterior_tree"]


def exact_fit(data: StudyData, *, mu_prior: Prior | None, tau_prior: Prior) -> ExactPosterior:
    """Exact posterior of ``data`` under a flat or normal prior on mu and any prior on tau."""
    if mu_prior is None:
        beta_mean = beta_sd = None
    elif isinstance(mu_prior, Normal):
        # the intercept gets the normal prior, moderator coefficients stay flat
        p = data.X.shape[1]
        beta_mean = np.r_[mu_prior.mu, np.zeros(p - 1)]
        beta_sd = np.r_[mu_prior.sigma, np.full(p - 1, np.inf)]
    else:
        raise SpecError(
            f"the exact engine takes a flat (None) or hm.priors.Normal prior on mu, got "
            f"{mu_prior}; use method='mcmc' for other priors"
        )
    try:
        return exact_posterior(
            data.y,
            data.se,
            tau_logprior=tau_prior.logpdf,
            X=data.X if data.has_moderators else None,
            beta_mean=beta_mean,
            beta_sd=beta_sd,
        )
    except ImproperPosteriorError as error:
        raise SpecError(
            f"tau ~ {tau_prior} with {data.k} studies: {error} For example "
            "hyperprior='half_normal' or 'half_cauchy'."
        ) from None


def posterior_tree(
    draws: dict[str, np.ndarray], data: StudyData, coef_names: list[str], *, chains: int
) -> xr.DataTree:
    """DataTree with ``posterior`` (chain, draw) and ``observed_data`` from flat draws."""
    n = len(draws["tau"]) // chains

    def shaped(a):
        return a[: n * chains].reshape(chains, n, *a.shape[1:])

    study = data.study
    variables = {
        name: (("chain", "draw"), shaped(draws["beta"][:, k])) for k, name in enumerate(coef_names)
    }
    variables["tau"] = (("chain", "draw"), shaped(draws["tau"]))
    variables["theta"] = (("chain", "draw", study), shaped(draws["theta"]))
    variables["theta_new"] = (("chain", "draw"), shaped(draws["theta_new"]))
    posterior = xr.Dataset(
        variables,
        coords={"chain": np.arange(chains), "draw": np.arange(n), study: list(data.labels)},
        attrs={"inference_library": "hiermodels.exact"},
    )
    observed = xr.Dataset({data.estimate: ((study,), data.y)}, coords={study: list(data.labels)})
    return xr.DataTree.from_dict({"posterior": posterior, "observed_data": observed})
