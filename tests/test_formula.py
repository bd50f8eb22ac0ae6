import dataclasses
import doctest
import re

import pytest

import hiermodels.formula
from hiermodels.errors import SpecError
from hiermodels.formula import GroupTerm, ParsedFormula, parse_formula, population_model


def group(name, terms=("Intercept",), *, correlated=True):
    return GroupTerm(group=name, factors=tuple(name.split(":")), terms=terms, correlated=correlated)


def test_radon_varying_intercept_and_slope():
    formula = "log_radon ~ floor + log_uranium + (1 + floor | county)"
    assert parse_formula(formula) == ParsedFormula(
        formula=formula,
        response="log_radon",
        trials=None,
        intercept=True,
        predictors=("floor", "log_uranium"),
        groups=(group("county", ("Intercept", "floor")),),
        offset=None,
    )


def test_slope_alone_implies_the_varying_intercept():
    (county,) = parse_formula("y ~ floor + (floor | county)").groups
    assert county.terms == ("Intercept", "floor")


def test_intercept_written_last_still_comes_first():
    # formulae's own `|` fails on `x + 1`; the parser must not go through it
    (county,) = parse_formula("y ~ floor + (floor + 1 | county)").groups
    assert county.terms == ("Intercept", "floor")


@pytest.mark.parametrize(
    "formula",
    ["y ~ floor + (0 + floor | county)", "y ~ (-1 + floor|county)", "y ~ (floor - 1 | county)"],
)
def test_group_term_without_intercept(formula):
    parsed = parse_formula(formula)
    assert parsed.groups == (group("county", ("floor",)),)
    assert parsed.intercept  # removing the varying intercept keeps the population one


@pytest.mark.parametrize(
    "formula", ["y ~ 0 + x", "y ~ x - 1", "y ~ -1 + x", "y ~ x + (1 | g) - 1", "y ~ 0 + x + (1|g)"]
)
def test_population_intercept_removed(formula):
    parsed = parse_formula(formula)
    assert not parsed.intercept
    assert parsed.predictors == ("x",)


def test_intercept_only():
    parsed = parse_formula("y ~ 1 + (1 | g)")
    assert parsed.intercept
    assert parsed.predictors == ()


def test_predictors_keep_order_of_appearance_without_duplicates():
    assert parse_formula("y ~ b + a + b + (1 | g)").predictors == ("b", "a")


def test_crossed_groups():
    parsed = parse_formula("y ~ 1 + (1 | item) + (1 | rater)")
    assert parsed.groups == (group("item"), group("rater"))


def test_nested_groups_expand_to_outer_and_inner():
    parsed = parse_formula("y ~ x + (1 | school/class)")
    assert parsed.groups == (
        GroupTerm(group="school", factors=("school",), terms=("Intercept",), correlated=True),
        GroupTerm(
            group="school:class", factors=("school", "class"), terms=("Intercept",), correlated=True
        ),
    )


def test_explicit_combination_of_columns():
    parsed = parse_formula("y ~ x + (1 | school:class)")
    assert parsed.groups == (group("school:class"),)
    assert parsed.groups[0].factors == ("school", "class")


def test_double_bar_is_uncorrelated():
    parsed = parse_formula("y ~ x + (1 + x || g) + (1 | h)")
    assert parsed.groups == (group("g", ("Intercept", "x"), correlated=False), group("h"))


def test_double_bar_applies_to_every_nested_level():
    parsed = parse_formula("y ~ (x || a/b)")
    assert parsed.groups == (
        group("a", ("Intercept", "x"), correlated=False),
        group("a:b", ("Intercept", "x"), correlated=False),
    )


def test_same_group_in_two_blocks_stays_two_group_terms():
    # lme4's way to fit an intercept and a slope without their correlation
    parsed = parse_formula("y ~ x + (1 | g) + (0 + x | g)")
    assert parsed.groups == (group("g"), group("g", ("x",)))


def test_varying_predictor_missing_from_population_part_is_kept():
    parsed = parse_formula("y ~ z + (x | g)")
    assert parsed.predictors == ("z",)
    assert parsed.groups == (group("g", ("Intercept", "x")),)


def test_backquoted_column_names():
    parsed = parse_formula("`log radon` ~ `floor level` + (1 | `county name`)")
    assert parsed.response == "log radon"
    assert parsed.predictors == ("floor level",)
    assert parsed.groups == (
        GroupTerm("county name", ("county name",), ("Intercept",), correlated=True),
    )


def test_brms_trials():
    parsed = parse_formula("y | trials(n) ~ x + (1 | g)")
    assert (parsed.response, parsed.trials) == ("y", "n")
    assert parsed.predictors == ("x",)
    assert parsed.groups == (group("g"),)


def test_no_trials_by_default():
    assert parse_formula("y ~ x").trials is None


def test_offset_is_not_a_predictor():
    parsed = parse_formula("deaths ~ age + offset(log_exposure) + (1 | region)")
    assert parsed.offset == "log_exposure"
    assert parsed.predictors == ("age",)
    assert parse_formula("y ~ x").offset is None


def test_result_is_frozen():
    parsed = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.response = "z"
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.groups[0].correlated = False


@pytest.mark.parametrize(
    ("formula", "predictors", "varying"),
    [
        ("y ~ a:b", ("a:b",), None),
        ("y ~ a*b + (1 | g)", ("a", "b", "a:b"), ("Intercept",)),
        ("y ~ np.log(x)", ("np.log(x)",), None),
        ("y ~ x + C(k)", ("x", "C(k)"), None),
        ("y ~ scale(x) + center(z)", ("scale(x)", "center(z)"), None),
        ("y ~ x + np.log(x) + (np.log(x) | g)", ("x", "np.log(x)"), ("Intercept", "np.log(x)")),
        ("y ~ x + (1 + a:b | g)", ("x",), ("Intercept", "a:b")),
        ("y ~ a*b + (0 + a*b | g)", ("a", "b", "a:b"), ("a", "b", "a:b")),
    ],
)
def test_interactions_and_transformations_are_formulae_terms(formula, predictors, varying):
    parsed = parse_formula(formula)
    assert parsed.predictors == predictors
    assert (parsed.groups[0].terms if parsed.groups else None) == varying


@pytest.mark.parametrize(
    ("formula", "term", "kind"),
    [("log(y) ~ x", "log(y)", "transformation"), ("a:b ~ x", "a:b", "interaction")],
)
def test_the_response_must_be_a_column(formula, term, kind):
    message = f"{kind} {re.escape(repr(term))} as the response.*create the column in the DataFrame"
    with pytest.raises(SpecError, match=re.escape(repr(formula)) + ".*" + message):
        parse_formula(formula)


def test_population_model_is_formulaes_model_of_the_population_part():
    model = population_model("y ~ x1 * x2 + np.log(z) + offset(o) + (1 + x1 | g)")
    assert [t.name for t in model.common_terms] == ["Intercept", "x1", "x2", "x1:x2", "np.log(z)"]
    assert model.group_terms == [] and model.response is None
    keywords = population_model(None, ("floor level", "kind"))
    assert [t.name for t in keywords.common_terms] == ["Intercept", "floor level", "kind"]


@pytest.mark.parametrize(
    ("formula", "problem"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("y", "has no '~'"),
        ("~ x", "no response"),
        ("y ~", "nothing right of '~'"),
        ("y ~ x +", "ends too early"),
        ("y ~ x + (1 | g", "ends too early"),
        ("y ~ x | g", r"unexpected '\|'; group terms need parentheses"),
        ("y ~ x y", "unexpected 'y'"),
        ("y ~ x $", "cannot be read: Unexpected character"),
        ("y ~ x ~ z", "more than one '~'"),
        ("y ~ ( | g)", "not valid formula syntax"),
        ("y ~ 2 + x", "'2' as a population-level term, which is not a column name"),
        ("y + z ~ x", "exactly one column as the response"),
        ("y | weights(w) ~ x", "only 'y' and 'y | trials"),
        ("y || trials(n) ~ x", "only 'y' and 'y | trials"),
        ("y | trials(10) ~ x", r"one column name inside trials\(\)"),
        ("y ~ offset(a) + offset(b)", r"more than one offset\(\)"),
        ("y ~ offset(np.log(a))", r"one column name inside offset\(\)"),
        ("y ~ (0 | g)", "nothing that varies"),
        ("y ~ (1 | g + h)", "operator '\\+' in a grouping factor"),
        ("y ~ (1 | a*b)", r"operator '\*' in a grouping factor"),
        ("y ~ (1 | factor(g))", "something other than a column name in a grouping factor"),
        ("y ~ (1 | (x | g))", "group term inside another group term"),
        ("y ~ x - (1 | g)", "subtracts a group term"),
        ("y ~ x:(1 | g)", "group term .* inside another term"),
    ],
)
def test_bad_formula_is_a_spec_error_quoting_it(formula, problem):
    with pytest.raises(SpecError, match=re.escape(repr(formula)) + ".*" + problem):
        parse_formula(formula)


def test_formula_must_be_a_string():
    with pytest.raises(SpecError, match="must be a string"):
        parse_formula(None)


def test_formulae_errors_do_not_leak_their_traceback():
    with pytest.raises(SpecError) as info:
        parse_formula("y ~ x + (1 | g")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_docstring_examples_run():
    result = doctest.testmod(hiermodels.formula)
    assert result.attempted >= 11
    assert result.failed == 0
