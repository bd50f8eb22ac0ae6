"""What the user asked of a meta-analysis, as one frozen dataclass (no data, no PyMC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hiermodels.errors import SpecError
from hiermodels.names import PARAMETERIZATIONS
from hiermodels.priors import PRESETS, Prior, resolve_hyperprior
from hiermodels.sampling import SamplingOptions

__all__ = ["ROW_LEVEL", "MetaSpec", "default_tau_scale"]

#: name of the effect-size (row) level of a multilevel model when no column names it
ROW_LEVEL = "effect"
DEFAULT_HYPERPRIOR = "half_cauchy"


def default_tau_scale(se: np.ndarray) -> float:
    """Data scale of tau for the presets: the root mean square of the standard errors.

    A tau of this size is as large as a typical study's sampling error (I^2 near 50%), so a
    half-Cauchy or half-normal with this scale is weakly informative on any outcome scale.
    """
    se = np.asarray(se, dtype=float)
    top = float(np.max(se))
    if 1e-100 < top < 1e100:
        return float(np.sqrt(np.mean(np.square(se))))
    # relative to the largest se: no under- or overflow for se of 1e-300 or 1e300
    return top * float(np.sqrt(np.mean(np.square(se / top))))


@dataclass(frozen=True)
class MetaSpec:
    """A random-effects meta-analysis as asked for: columns, priors, engine and sampling.

    The sampling error is given by exactly one of ``se`` (a column of standard errors) and
    ``vi`` (a column of sampling variances, metafor's ``vi``). ``subgroup`` optionally names
    the column :meth:`~hiermodels.meta.result.MetaAnalysisResult.subgroup_analysis` uses by
    default. ``method`` names an engine of :data:`hiermodels.meta.api.ENGINES`; ``hyperprior`` is a
    preset name (scaled by the data, see :meth:`tau_prior`) or a prior object; ``mu_prior``
    None is flat. ``sampling`` is used by the engines that sample (and seeds the exact draws).
    ``levels`` (outermost first) makes it a multilevel (three-level) model: the clusters, and
    the effect sizes (rows) as the innermost level; then ``hyperprior`` may also be a tuple of
    ``(level name, hyperprior)`` pairs, one per level (see :attr:`level_names`), and
    ``parameterization`` a tuple of ``(level name, parameterization)`` pairs.
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
    hyperprior: str | Prior | tuple[tuple[str, str | Prior], ...] = DEFAULT_HYPERPRIOR
    method: str = "exact"
    parameterization: str | tuple[tuple[str, str], ...] = "noncentered"
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    vi: str | None = None
    subgroup: str | None = None
    levels: tuple[str, ...] = ()

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
        hyperprior: str | Prior | Mapping[str, str | Prior] = DEFAULT_HYPERPRIOR,
        method: str = "exact",
        parameterization: str | Mapping[str, str] | None = None,
        sampling: SamplingOptions | None = None,
        subgroup: str | None = None,
        levels: str | Sequence[str] | None = None,
        cluster: str | None = None,
    ) -> MetaSpec:
        """Check the options (not the data) and normalize them into a spec.

        ``cluster="district"`` is the shorthand of ``levels=["district"]``: the clusters, with
        the effect sizes (the rows) as the inner level, named by ``study`` if given.
        """
        levels = _normalize_levels(levels, cluster, subgroup)
        if levels and len(set(_level_names(levels, study))) < 2:
            raise SpecError(
                f"the cluster column {levels[0]!r} cannot also label the effect sizes "
                f"(study={study!r}); give study= a column with one label per row, or drop it"
            )
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
        if isinstance(hyperprior, Mapping):
            hyperprior = _per_level(hyperprior, _level_names(levels, study))
        else:
            _check_hyperprior(hyperprior)
        parameterization = _parameterization(parameterization, _level_names(levels, study))
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
            levels=levels,
        )

    @property
    def level_names(self) -> tuple[str, ...]:
        """The levels of a multilevel model, outermost first, the effect sizes last (empty
        for the two-level model): ``levels``, then the ``study`` column (or
        :data:`ROW_LEVEL`) if ``levels`` names only the clusters. Each has an SD
        ``tau_{name}``."""
        return _level_names(self.levels, self.study)

    @property
    def level_parameterizations(self) -> tuple[str, ...]:
        """The parameterization of each level of :attr:`level_names`."""
        if isinstance(self.parameterization, tuple):
            return tuple(dict(self.parameterization)[name] for name in self.level_names)
        return tuple(self.parameterization for _ in self.level_names)

    def tau_priors(self, se: np.ndarray) -> tuple[Prior, ...]:
        """One prior per level of :attr:`level_names`: each level's hyperprior (a preset is
        scaled by :func:`default_tau_scale` of ``se``, as :meth:`tau_prior`)."""
        scale = default_tau_scale(se)
        given = dict(self.hyperprior) if isinstance(self.hyperprior, tuple) else None
        return tuple(
            resolve_hyperprior(given[name] if given else self.hyperprior, scale=scale)
            for name in self.level_names
        )

    def tau_prior(self, se: np.ndarray) -> Prior:
        """The prior on tau: the hyperprior itself, or its preset scaled by
        :func:`default_tau_scale` of the standard errors ``se``."""
        return resolve_hyperprior(self.hyperprior, scale=default_tau_scale(se))


def _check_hyperprior(hyperprior) -> None:
    if not isinstance(hyperprior, Prior) and hyperprior not in PRESETS:
        raise SpecError(
            f"unknown hyperprior {hyperprior!r}; use one of {', '.join(PRESETS)} "
            "or a prior object such as hm.priors.HalfCauchy(5)"
        )


def _parameterization(parameterization, names: tuple[str, ...]):
    """A parameterization, or one per level: None is 'noncentered' for the two-level model
    and, for a multilevel one, non-centered clusters with centered effect sizes."""
    if parameterization is None:
        if not names:
            return "noncentered"
        # the SD of the effect sizes has many groups to inform it, so their funnel is mild and
        # the centered form mixes better; the few clusters need the non-centered one (on
        # konstantopoulos2011 this sampled 2-5x more effective draws of mu than either
        # form for both levels, with no divergences)
        parameterization = {names[0]: "noncentered", names[1]: "centered"}
    if isinstance(parameterization, Mapping):
        if not names:
            raise SpecError(
                "a parameterization per level (a dict) needs levels= or cluster=; for the "
                "two-level model give 'noncentered' or 'centered'"
            )
        unknown = [key for key in parameterization if key not in names]
        if unknown:
            raise SpecError(
                f"parameterization names unknown level(s) {unknown}; the levels are {list(names)}"
            )
        values = {name: parameterization.get(name, "noncentered") for name in names}
    else:
        values = {"": parameterization}
    for value in values.values():
        if value not in PARAMETERIZATIONS:
            raise SpecError(f"unknown parameterization {value!r}; use 'noncentered' or 'centered'")
    return parameterization if not isinstance(parameterization, Mapping) else tuple(values.items())


def _normalize_levels(levels, cluster, subgroup) -> tuple[str, ...]:
    """``levels`` (or ``cluster``) as a tuple of one or two column names, outermost first."""
    if cluster is not None:
        if levels is not None:
            raise SpecError(
                "give levels= or its shorthand cluster=, not both: cluster='c' is levels=['c']"
            )
        levels = [cluster]
    if levels is None:
        return ()
    levels = [levels] if isinstance(levels, str) else list(levels)
    bad = [lv for lv in levels if not isinstance(lv, str)]
    if bad or not levels:
        raise SpecError(
            f"levels must name columns (strings), outermost first, e.g. levels=['district', "
            f"'study']; got {levels!r}"
        )
    if len(levels) > 2:
        raise SpecError(
            f"levels={levels}: the multilevel meta-analysis has three levels (sampling error, "
            "effect sizes, clusters), so give at most two columns: the clusters and the effect "
            "sizes, e.g. levels=['district', 'study']"
        )
    if len(set(levels)) < len(levels):
        raise SpecError(f"levels={levels} names a column twice; give each level once")
    if subgroup is not None:
        raise SpecError(
            "subgroup= is not available for a multilevel model; add the column as a moderator "
            "instead (moderators=...)"
        )
    return tuple(levels)


def _level_names(levels: tuple[str, ...], study: str | None) -> tuple[str, ...]:
    if len(levels) == 1:
        return (levels[0], study or ROW_LEVEL)
    return levels


def _per_level(hyperprior: Mapping, names: tuple[str, ...]) -> tuple[tuple[str, str | Prior], ...]:
    """A hyperprior per level from a mapping level name -> preset or prior; levels it does
    not name get the default."""
    if not names:
        raise SpecError(
            "a hyperprior per level (a dict) needs levels= or cluster=; for the two-level model "
            "give one hyperprior"
        )
    unknown = [key for key in hyperprior if key not in names]
    if unknown:
        raise SpecError(
            f"hyperprior names unknown level(s) {unknown}; the levels are {list(names)}"
        )
    for value in hyperprior.values():
        _check_hyperprior(value)
    return tuple((name, hyperprior.get(name, DEFAULT_HYPERPRIOR)) for name in names)
