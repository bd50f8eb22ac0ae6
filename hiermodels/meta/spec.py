"""What the user asked of a meta-analysis, as one frozen dataclass (no data, no PyMC)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hiermodels.errors import SpecError
from hiermodels.names import PARAMETERIZATIONS
from hiermodels.priors import PRESETS, Prior, resolve_hyperprior
from hiermodels.sampling import SamplingOptions

__all__ = ["MetaSpec", "default_tau_scale"]


def default_tau_scale(se: np.ndarray) -> float:
    """Data scale of tau for the presets: the root mean square of the standard errors.

    A tau of this size is as large as a typical study's sampling error (I^2 near 50%), so a
    half-Cauchy or half-normal with this scale is weakly informative on any outcome scale.
    """
    return float(np.sqrt(np.mean(np.square(se))))


@dataclass(frozen=True)
class MetaSpec:
    """A random-effects meta-analysis as asked for: columns, priors, engine and sampling.

    The sampling error is given by exactly one of ``se`` (a column of standard errors) and
    ``vi`` (a column of sampling variances, metafor's ``vi``). ``subgroup`` optionally names
    the column :meth:`~hiermodels.meta.result.MetaAnalysisResult.subgroup_analysis` uses by
    default. ``method`` names an engine of :data:`hiermodels.meta.api.ENGINES`; ``hyperprior`` is a
    preset name (scaled by the data, see :meth:`tau_prior`) or a prior object; ``mu_prior``
    None is flat. ``sampling`` is used by the engines that sample (and seeds the exact draws).
    Build one with :meth:`from_user`, which checks and normalizes the arguments.

    Examples
    --------
    >>> spec = MetaSpec.from_user(estimate="y", se="sigma", moderators="year")
    >>> spec.moderators, spec.method, spec.sampling.draws
    (('year',), 'exact', 1000)
    """

    estimate: str
    se: str | None = None
    study: str | None = None
    moderators: tuple[str, ...] = ()
    mu_prior: Prior | None = None
    hyperprior: str | Prior = "half_cauchy"
    method: str = "exact"
    parameterization: str = "noncentered"
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    vi: str | None = None
    subgroup: str | None = None

    @classmethod
    def from_user(
        cls,
        *,
        estimate: str,
        se: str | None = None,
        vi: str | None = None,
        study: str | None = None,
        moderators: str | Sequence[str] = (),
        mu_prior: Prior | None = None,
        hyperprior: str | Prior = "half_cauchy",
        method: str = "exact",
        parameterization: str = "noncentered",
        sampling: SamplingOptions | None = None,
        subgroup: str | None = None,
    ) -> MetaSpec:
        """Check the options (not the data) and normalize them into a spec."""
        if (se is None) == (vi is None):
            given = "both" if se is not None else "neither"
            raise SpecError(
                f"give exactly one of se= (a column of standard errors) and vi= (a column of "
                f"sampling variances, as metafor's escalc writes it); got {given}"
            )
        for name, value in (("se", se), ("vi", vi), ("subgroup", subgroup)):
            if value is not None and not isinstance(value, str):
                raise SpecError(f"{name} must name a column (a string), got {value!r}")
        if mu_prior is not None and not isinstance(mu_prior, Prior):
            raise SpecError(f"mu_prior must be None (flat) or a prior object, got {mu_prior!r}")
        if not isinstance(hyperprior, Prior) and hyperprior not in PRESETS:
            raise SpecError(
                f"unknown hyperprior {hyperprior!r}; use one of {', '.join(PRESETS)} "
                "or a prior object such as hm.priors.HalfCauchy(5)"
            )
        if parameterization not in PARAMETERIZATIONS:
            raise SpecError(
                f"unknown parameterization {parameterization!r}; use 'noncentered' or 'centered'"
            )
        return cls(
            estimate=estimate,
            se=se,
            study=study,
            moderators=(moderators,) if isinstance(moderators, str) else tuple(moderators),
            mu_prior=mu_prior,
            hyperprior=hyperprior,
            method=method,
            parameterization=parameterization,
            sampling=sampling if sampling is not None else SamplingOptions(),
            vi=vi,
            subgroup=subgroup,
        )

    def tau_prior(self, se: np.ndarray) -> Prior:
        """The prior on tau: the hyperprior itself, or its preset scaled by
        :func:`default_tau_scale` of the standard errors ``se``."""
        return resolve_hyperprior(self.hyperprior, scale=default_tau_scale(se))
