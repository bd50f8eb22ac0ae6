"""What the user asked for, as frozen dataclasses (no data, no PyMC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hiermodels.errors import SpecError
from hiermodels.families import Aux, get_family
from hiermodels.names import PARAMETERIZATIONS, effect_name
from hiermodels.priors import PRESETS, Prior

__all__ = ["PARAMETERIZATION_CHOICES", "Grouping", "HierarchicalSpec", "keywords_from_formula"]

# what a user may ask for: a parameterization, or "auto" (decided from the data before
# sampling, hiermodels.parameterization); the builder gets only the first two
PARAMETERIZATION_CHOICES = (*PARAMETERIZATIONS, "auto")


@dataclass(frozen=True)
class Grouping:
    """One grouping term: ``(1 + varying | columns)``, or ``(0 + varying | columns)``.

    ``name`` is the factor's name (its column, or the columns joined by ``:`` for a nested
    factor: ``(1 | school/class)`` is ``school`` plus ``school:class``); ``varying`` the
    population terms whose slopes also vary by it; ``correlated`` whether the deviations of
    its terms are correlated (``|``) or independent (``||``); ``intercept`` whether the
    intercept varies by it (False for lme4's ``(0 + x | g)``).
    """

    name: str
    columns: tuple[str, ...]
    varying: tuple[str, ...] = ()
    correlated: bool = True
    intercept: bool = True


@dataclass(frozen=True)
class HierarchicalSpec:
    """A varying-intercepts (and slopes) regression with grouping factors (none: a plain
    regression). ``predictors`` are the population terms by name (columns in the keyword
    form; formulae's term names such as ``x1:x2`` in the formula form, which ``formula``
    holds). ``se`` names a column of known standard errors of ``y`` (gaussian only: a
    meta-analysis, brms' ``y | se(sei)``); ``se_sigma`` whether a residual SD is estimated
    besides them (brms' ``se(sei, sigma = TRUE)``). ``parameterization`` may hold ``"auto"``
    (the default of :meth:`from_user`) as the user asked; ``HierarchicalModel`` resolves it
    from the data (:func:`hiermodels.parameterization.choose`) before the builder, which
    takes only ``"centered"`` and ``"noncentered"``, sees the spec."""

    y: str
    groups: tuple[Grouping, ...]
    predictors: tuple[str, ...] = ()
    parameterization: str | tuple[tuple[str, str], ...] = "noncentered"
    hyperprior: str | Prior = "half_cauchy"
    lkj_eta: float = 2.0
    priors: tuple[tuple[str, Prior], ...] = field(default=())
    family: str = "gaussian"
    trials: str | None = None
    offset: str | None = None
    formula: str | None = None
    se: str | None = None
    se_sigma: bool = False

    @property
    def aux(self) -> tuple[Aux, ...]:
        """The family's auxiliary parameters this model estimates (no residual ``sigma``
        with known standard errors, unless ``se_sigma``): the one place that says which exist,
        for the priors, the graph and the results."""
        return get_family(self.family).model_aux(se=self.se is not None, se_sigma=self.se_sigma)

    @classmethod
    def from_user(
        cls,
        *,
        y,
        groups,
        predictors=(),
        parameterization="auto",
        hyperprior="half_cauchy",
        lkj_eta=2.0,
        priors=None,
        family="gaussian",
        trials=None,
        offset=None,
        formula=None,
        se=None,
        se_sigma=False,
    ) -> HierarchicalSpec:
        """Normalize user arguments (lists, dicts, single strings) into a spec, checking types."""
        if isinstance(predictors, str):
            predictors = [predictors]
        if isinstance(parameterization, Mapping):
            bad = {k: v for k, v in parameterization.items() if v not in PARAMETERIZATION_CHOICES}
            parameterization = tuple(sorted(parameterization.items()))
        else:
            bad = (
                {} if parameterization in PARAMETERIZATION_CHOICES else {"model": parameterization}
            )
        if bad:
            raise SpecError(
                f"unknown parameterization {bad}; use 'auto' (chosen from the data), "
                "'centered' or 'noncentered', for the whole model or per varying term as a "
                "dict like {'floor': 'centered'} (or {'floor|county': 'centered'} for one "
                "grouping factor only)"
            )
        names = [g.name for g in groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise SpecError(
                f"grouping factor(s) {repeated} appear in more than one grouping term; give "
                "each factor one term, e.g. (1 + x | g), or (1 + x || g) for independent terms"
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
        if se is not None and not isinstance(se, str):
            raise SpecError(f"se must be the name of the column of standard errors, got {se!r}")
        if se is not None and not fam.known_se:
            raise SpecError(
                f"known standard errors (se={se!r}) are for family='gaussian' (a meta-analysis "
                f"of estimates with their standard errors), not {fam.name!r}; use "
                "family='gaussian' or drop se="
            )
        if not isinstance(se_sigma, bool):
            raise SpecError(f"sigma must be True or False, got {se_sigma!r}")
        if se_sigma and se is None:
            raise SpecError(
                "sigma=True adds a residual SD besides known standard errors, so it needs se= "
                "(the column of standard errors); without se= the model always has sigma"
            )
        if lkj_eta <= 0:
            raise SpecError(f"lkj_eta must be positive, got {lkj_eta}")
        return cls(
            y=y,
            groups=tuple(groups),
            predictors=tuple(predictors),
            parameterization=parameterization,
            hyperprior=hyperprior,
            lkj_eta=float(lkj_eta),
            priors=tuple(sorted(priors.items())),
            family=fam.name,
            trials=trials,
            offset=offset,
            formula=formula,
            se=se,
            se_sigma=se_sigma,
        )

    def _single(self) -> Grouping:
        if len(self.groups) != 1:
            raise SpecError(
                f"this needs one grouping factor; the spec has {[g.name for g in self.groups]}"
            )
        return self.groups[0]

    @property
    def group(self) -> str:
        """The grouping column (single-factor models)."""
        return self._single().name

    @property
    def varying(self) -> tuple[str, ...]:
        """The varying slopes (single-factor models)."""
        return self._single().varying

    @property
    def correlated(self) -> bool:
        return self._single().correlated

    def parameterization_of(self, term: str, group: str) -> str:
        """Parameterization of one varying term of one factor: a dict entry for
        ``{term}|{group}`` first, then for ``term``; unnamed terms stay non-centered."""
        if isinstance(self.parameterization, str):
            return self.parameterization
        given = dict(self.parameterization)
        return given.get(effect_name(term, group), given.get(term, "noncentered"))


def _groupings(group, varying, correlated) -> tuple[Grouping, ...]:
    """Keyword form: one column, or a list of columns (crossed factors), each with the
    same varying slopes."""
    if isinstance(group, str):
        columns = [group]
    elif isinstance(group, list | tuple):
        columns = list(group)
    else:
        columns = []
    if not columns or not all(isinstance(c, str) for c in columns):
        raise SpecError(f"group must be a column name or a list of column names, got {group!r}")
    varying = (varying,) if isinstance(varying, str) else tuple(varying)
    return tuple(Grouping(c, (c,), varying, bool(correlated)) for c in columns)


def keywords_from_formula(formula: str | None, **keywords) -> dict:
    """The keyword form (y, groups, predictors, trials, offset, se, se_sigma) of a formula;
    without a formula, of the keywords (y and group required; group may list several crossed
    columns; ``sigma`` is the keyword of ``se_sigma``).

    Both forms build the same :class:`HierarchicalSpec` (plus the formula text) where both can
    express the model. Only a formula has interactions and transformations (``x1*x2``,
    ``np.log(z)``), no grouping term (``y ~ x``) or a group term without a varying intercept
    (``(0 + x | g)``).
    """
    if formula is None:
        if keywords["y"] is None or keywords["group"] is None:
            raise SpecError("give a formula, or y= and group= (the outcome and grouping columns)")
        return {
            "y": keywords["y"],
            "groups": _groupings(keywords["group"], keywords["varying"], keywords["correlated"]),
            "predictors": keywords["predictors"],
            "trials": keywords["trials"],
            "offset": keywords["offset"],
            "formula": None,
            "se": keywords.get("se"),
            "se_sigma": keywords.get("sigma", False),
        }
    from hiermodels.formula import parse_formula

    given = [k for k in ("y", "group", "trials", "offset", "se") if keywords.get(k) is not None]
    given += [k for k in ("predictors", "varying", "sigma") if keywords.get(k)]
    if given:
        hint = (
            " (known standard errors go left of '~': 'y | se(sei) ~ ...', or "
            "'y | se(sei, sigma = TRUE) ~ ...' for a residual SD besides)"
            if {"se", "sigma"} & set(given)
            else ""
        )
        raise SpecError(
            f"{given} given together with a formula; the formula sets them, give one or the "
            f"other{hint}"
        )
    parsed = parse_formula(formula)
    if not parsed.intercept:
        raise SpecError(
            f"formula {formula!r} removes the population intercept; models without one are "
            "not supported"
        )
    groups = []
    for term in parsed.groups:
        intercept = "Intercept" in term.terms
        slopes = [t for t in term.terms if t != "Intercept"]
        missing = [t for t in slopes if t not in parsed.predictors]
        if missing:
            raise SpecError(
                f"{missing} vary by {term.group!r} but have no population-level term; add them "
                f"to the population part of {formula!r} (the population value is their mean "
                "slope)"
            )
        correlated = term.correlated if slopes else keywords["correlated"]
        groups.append(
            Grouping(term.group, tuple(term.factors), tuple(slopes), correlated, intercept)
        )
    return {
        "y": parsed.response,
        "groups": tuple(groups),
        "predictors": list(parsed.predictors),
        "trials": parsed.trials,
        "offset": parsed.offset,
        "formula": formula,
        "se": parsed.se,
        "se_sigma": parsed.se_sigma,
    }
