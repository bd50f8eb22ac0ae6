"""What the user asked for, as frozen dataclasses (no data, no PyMC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hiermodels.builders.effects import PARAMETERIZATIONS
from hiermodels.errors import SpecError
from hiermodels.families import get_family
from hiermodels.priors import PRESETS, Prior

__all__ = ["HierarchicalSpec"]


@dataclass(frozen=True)
class HierarchicalSpec:
    """A varying-intercepts (and slopes) regression with one grouping factor."""

    y: str
    group: str
    predictors: tuple[str, ...] = ()
    varying: tuple[str, ...] = ()
    parameterization: str | tuple[tuple[str, str], ...] = "noncentered"
    hyperprior: str | Prior = "half_cauchy"
    correlated: bool = True
    lkj_eta: float = 2.0
    priors: tuple[tuple[str, Prior], ...] = field(default=())
    family: str = "gaussian"
    trials: str | None = None
    offset: str | None = None

    @classmethod
    def from_user(
        cls,
        *,
        y,
        group,
        predictors=(),
        varying=(),
        parameterization="noncentered",
        hyperprior="half_cauchy",
        correlated=True,
        lkj_eta=2.0,
        priors=None,
        family="gaussian",
        trials=None,
        offset=None,
    ) -> HierarchicalSpec:
        """Normalize user arguments (lists, dicts, single strings) into a spec, checking types."""
        if isinstance(predictors, str):
            predictors = [predictors]
        if isinstance(varying, str):
            varying = [varying]
        if isinstance(parameterization, Mapping):
            bad = {k: v for k, v in parameterization.items() if v not in PARAMETERIZATIONS}
            parameterization = tuple(sorted(parameterization.items()))
        else:
            bad = {} if parameterization in PARAMETERIZATIONS else {"model": parameterization}
        if bad:
            raise SpecError(
                f"unknown parameterization {bad}; use 'centered' or 'noncentered', for the whole "
                "model or per varying term as a dict like {'floor': 'centered'}"
            )
        if not isinstance(hyperprior, Prior) and hyperprior not in PRESETS:
            raise SpecError(
                f"unknown hyperprior {hyperprior!r}; use one of {', '.join(PRESETS)} "
                "or a prior object such as hm.priors.HalfCauchy(5)"
            )
        priors = dict(priors or {})
        wrong = [k for k, v in priors.items() if not isinstance(v, Prior)]
        if wrong:
            raise SpecError(
                f"priors for {wrong} are not prior objects; pass e.g. "
                "{'floor': hm.priors.Normal(0, 1)}"
            )
        fam = get_family(family)
        if fam.needs_trials and trials is None:
            raise SpecError(
                f"family {fam.name!r} needs trials=: the column with the number of trials per row"
            )
        if trials is not None and not fam.needs_trials:
            raise SpecError(f"trials= is only for family='binomial', not {fam.name!r}")
        if lkj_eta <= 0:
            raise SpecError(f"lkj_eta must be positive, got {lkj_eta}")
        return cls(
            y=y,
            group=group,
            predictors=tuple(predictors),
            varying=tuple(varying),
            parameterization=parameterization,
            hyperprior=hyperprior,
            correlated=bool(correlated),
            lkj_eta=float(lkj_eta),
            priors=tuple(sorted(priors.items())),
            family=fam.name,
            trials=trials,
            offset=offset,
        )

    def parameterization_of(self, term: str) -> str:
        """Parameterization of one varying term (a dict leaves unnamed terms non-centered)."""
        if isinstance(self.parameterization, str):
            return self.parameterization
        return dict(self.parameterization).get(term, "noncentered")
