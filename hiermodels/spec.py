"""What the user asked for, as frozen dataclasses (no data, no PyMC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hiermodels.builders.effects import PARAMETERIZATIONS
from hiermodels.errors import SpecError
from hiermodels.families import get_family
from hiermodels.priors import PRESETS, Prior

__all__ = ["HierarchicalSpec", "keywords_from_formula"]


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
    formula: str | None = None

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
        formula=None,
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
            formula=formula,
        )

    def parameterization_of(self, term: str) -> str:
        """Parameterization of one varying term (a dict leaves unnamed terms non-centered)."""
        if isinstance(self.parameterization, str):
            return self.parameterization
        return dict(self.parameterization).get(term, "noncentered")


def keywords_from_formula(formula: str | None, **keywords) -> dict:
    """The keyword form (y, group, predictors, varying, correlated, trials, offset) of a
    formula; without a formula, ``keywords`` as given (y and group required).

    Both forms build the same :class:`HierarchicalSpec` (plus the formula text).
    """
    if formula is None:
        if keywords["y"] is None or keywords["group"] is None:
            raise SpecError("give a formula, or y= and group= (the outcome and grouping columns)")
        return {**keywords, "formula": None}
    from hiermodels.formula import parse_formula

    given = [k for k in ("y", "group", "trials", "offset") if keywords[k] is not None]
    given += [k for k in ("predictors", "varying") if keywords[k]]
    if given:
        raise SpecError(
            f"{given} given together with a formula; the formula sets them, give one or the other"
        )
    parsed = parse_formula(formula)
    if len(parsed.groups) != 1:
        raise SpecError(
            f"formula {formula!r} has {len(parsed.groups)} grouping terms "
            f"({[g.group for g in parsed.groups]}); this version fits exactly one grouping factor"
        )
    (term,) = parsed.groups
    if not parsed.intercept or "Intercept" not in term.terms:
        raise SpecError(
            f"formula {formula!r} removes an intercept; models without a population or a "
            "varying intercept are not supported"
        )
    if len(term.factors) != 1:
        raise SpecError(
            f"grouping factor {term.group!r} combines columns {list(term.factors)}; create "
            "one column with the combined label first"
        )
    slopes = [t for t in term.terms if t != "Intercept"]
    missing = [t for t in slopes if t not in parsed.predictors]
    if missing:
        raise SpecError(
            f"{missing} vary by {term.group!r} but have no population-level term; add them to "
            f"the population part of {formula!r} (the population value is their mean slope)"
        )
    return {
        "y": parsed.response,
        "group": term.factors[0],
        "predictors": list(parsed.predictors),
        "varying": slopes,
        "correlated": term.correlated if len(term.terms) > 1 else keywords["correlated"],
        "trials": parsed.trials,
        "offset": parsed.offset,
        "formula": formula,
    }
