"""What every meta-analysis engine returns (:class:`EngineFit`), and the exact engine.

The exact engine integrates over tau numerically (:mod:`hiermodels.numerics.exact`,
numpy/scipy only) and turns its independent draws into the same ``xarray.DataTree`` layout
the MCMC engine (:mod:`hiermodels.meta.mcmc`) produces, so that summaries, ArviZ and plots
work the same for both. Nothing here imports PyMC, ArviZ or matplotlib, and xarray only
when the draws are first used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from hiermodels.errors import SpecError
from hiermodels.meta.data import StudyData, coefficient_names
from hiermodels.meta.spec import MetaSpec
from hiermodels.numerics.exact import ExactPosterior, ImproperPosteriorError, exact_posterior
from hiermodels.priors import Normal, Prior

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "EngineFit",
    "EngineResult",
    "check_exact_spec",
    "exact_fit",
    "exact_takes",
    "fit_exact",
    "posterior_tree",
    "with_theta_new",
]


@dataclass(frozen=True, eq=False)
class EngineFit:
    """What every engine returns, in one shape.

    Attributes
    ----------
    idata : xarray.DataTree
        ``posterior`` with the coefficients (``mu``, or ``Intercept`` and the moderators),
        ``tau``, ``theta`` (dims: the study column) and ``theta_new`` (the effect in a new
        study, :func:`with_theta_new`), and ``observed_data``; an engine may add groups
        (``sample_stats``) and variables (``theta_offset``). Made by ``make_idata`` on first
        use and kept, so an exact fit whose draws are never used never makes them.
    exact : ExactPosterior or None
        The exact posterior, from engines that have it: summaries then come without Monte
        Carlo error.
    model : pymc.Model or None
        The PyMC model, from engines that build one.
    diagnostics : tuple of str
        Convergence messages (empty for independent draws).
    """

    make_idata: Callable[[], xr.DataTree]
    exact: ExactPosterior | None = None
    model: object | None = None
    diagnostics: tuple[str, ...] = ()

    @cached_property
    def idata(self) -> xr.DataTree:
        # cached_property stores in the instance __dict__: no __setattr__ on the frozen class
        return self.make_idata()


# -- theta_new, for every engine -----------------------------------------------------------


class EngineResult:
    """The properties every meta-analysis result reads from its ``spec`` and its engine's
    ``fit`` (:class:`EngineFit`): shared by the two- and three-level results."""

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def mu_prior(self) -> Prior | None:
        return self.spec.mu_prior

    @property
    def exact(self):
        """The exact posterior (``method="exact"``), or None."""
        return self.fit.exact

    @property
    def model(self):
        """The PyMC model (``method="mcmc"``), or None."""
        return self.fit.model

    @property
    def diagnostics(self) -> tuple[str, ...]:
        return self.fit.diagnostics

    @property
    def idata(self) -> xr.DataTree:
        """The draws as an ArviZ DataTree, with ``log_likelihood``, ``observed_data`` and
        ``constant_data`` (exact draws are made on first access)."""
        return self.fit.idata


def with_theta_new(idata: xr.DataTree, data: StudyData, rng: np.random.Generator) -> xr.DataTree:
    """``idata`` with ``theta_new ~ Normal(x_bar' beta, tau)`` added to its posterior, one per draw.

    The effect in a new study (Higgins et al. 2009, §4), at the mean of the moderators
    ``x_bar`` (``x_bar = 1`` without moderators). The one place that draws it, for every
    engine.
    """
    post = idata["posterior"]
    x_bar = data.X.mean(axis=0)
    names = coefficient_names(data)
    mean = sum(np.asarray(post[name]) * x_bar[k] for k, name in enumerate(names))
    tau = np.asarray(post["tau"])
    new = mean + tau * rng.standard_normal(tau.shape)
    idata["posterior"] = post.to_dataset().assign(theta_new=(("chain", "draw"), new))
    return _with_study_groups(idata, data)


def _with_study_groups(idata: xr.DataTree, data: StudyData) -> xr.DataTree:
    """The groups ArviZ reads, per study: ``log_likelihood`` (Normal(y_i | theta_i, se_i)
    per draw, for ``az.loo``), ``observed_data`` and ``constant_data`` (se, design)."""
    import xarray as xr
    from scipy import stats

    study, coords = data.study, {data.study: list(data.labels)}
    post = idata["posterior"]
    theta = np.asarray(post["theta"])
    draws = {"chain": post["chain"].values, "draw": post["draw"].values}
    groups = {
        "log_likelihood": xr.Dataset(
            {data.estimate: (("chain", "draw", study), stats.norm.logpdf(data.y, theta, data.se))},
            coords={**draws, **coords},
        ),
        "observed_data": xr.Dataset({data.estimate: (study, data.y)}, coords=coords),
        "constant_data": xr.Dataset(
            {"se": (study, data.se), "X": ((study, "term"), data.X)},
            coords={**coords, "term": list(data.terms)},
        ),
    }
    for name, dataset in groups.items():
        if name in idata.children:
            del idata[name]
        idata[name] = dataset
    return idata


# -- the exact engine ----------------------------------------------------------------------


def exact_takes(mu_prior: Prior | None) -> bool:
    """Whether the exact engine takes ``mu_prior``: flat (None) or normal, the priors under
    which mu (and the coefficients) given tau stays normal and integrates analytically
    (BDA3 eqs. 5.17-5.21)."""
    return mu_prior is None or isinstance(mu_prior, Normal)


def check_exact_spec(spec: MetaSpec) -> None:
    """Refuse a spec the exact engine cannot compute, saying to use ``method='mcmc'``."""
    if not exact_takes(spec.mu_prior):
        raise SpecError(
            f"method='exact' integrates mu analytically, so it takes a flat (mu_prior=None) or "
            f"hm.priors.Normal prior on mu, not {spec.mu_prior}; use method='mcmc' for this "
            "prior"
        )


def exact_fit(data: StudyData, *, mu_prior: Prior | None, tau_prior: Prior) -> ExactPosterior:
    """Exact posterior of ``data`` under a flat or normal prior on mu and any prior on tau."""
    if not exact_takes(mu_prior):
        raise SpecError(
            f"the exact engine takes a flat (None) or hm.priors.Normal prior on mu, got "
            f"{mu_prior}; use method='mcmc' for other priors"
        )
    if mu_prior is None:
        beta_mean = beta_sd = None
    else:
        # the intercept gets the normal prior, moderator coefficients stay flat
        p = data.X.shape[1]
        beta_mean = np.r_[mu_prior.mu, np.zeros(p - 1)]
        beta_sd = np.r_[mu_prior.sigma, np.full(p - 1, np.inf)]
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


def fit_exact(data: StudyData, spec: MetaSpec, *, tau_prior: Prior) -> EngineFit:
    """The exact engine: the posterior by numerical integration over tau (milliseconds).

    ``spec.sampling.draws * chains`` independent draws are made on first use of ``idata``
    (seeded by ``spec.sampling.random_seed``); summaries need none.
    """
    exact = exact_fit(data, mu_prior=spec.mu_prior, tau_prior=tau_prior)
    options = spec.sampling
    rng = np.random.default_rng(options.random_seed)

    def make_idata():
        draws = exact.draw(options.draws * options.chains, rng)
        tree = posterior_tree(draws, data, chains=options.chains)
        return with_theta_new(tree, data, rng)

    return EngineFit(make_idata=make_idata, exact=exact)


def posterior_tree(draws: dict[str, np.ndarray], data: StudyData, *, chains: int) -> xr.DataTree:
    """DataTree with ``posterior`` (chain, draw) of the coefficients, ``tau`` and ``theta``,
    and ``observed_data``, from flat draws ``{"beta": (n, p), "tau": (n,), "theta": (n, k)}``.
    """
    import xarray as xr  # only when draws are used: the exact summaries need none

    n = len(draws["tau"]) // chains

    def shaped(a):
        return a[: n * chains].reshape(chains, n, *a.shape[1:])

    study = data.study
    variables = {
        name: (("chain", "draw"), shaped(draws["beta"][:, k]))
        for k, name in enumerate(coefficient_names(data))
    }
    variables["tau"] = (("chain", "draw"), shaped(draws["tau"]))
    variables["theta"] = (("chain", "draw", study), shaped(draws["theta"]))
    posterior = xr.Dataset(
        variables,
        coords={"chain": np.arange(chains), "draw": np.arange(n), study: list(data.labels)},
        attrs={"inference_library": "hiermodels.exact"},
    )
    observed = xr.Dataset({data.estimate: ((study,), data.y)}, coords={study: list(data.labels)})
    return xr.DataTree.from_dict({"posterior": posterior, "observed_data": observed})
