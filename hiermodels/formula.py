"""Parse lme4/brms-style mixed-model formulas into term names (no data, no PyMC).

formulae's scanner and parser build the syntax tree and its resolver does the term algebra
(``a/b``, ``a*b``, ``0 +``, ``- 1``). This module only splits the tree into response,
population part and group terms: :func:`formulae.model_description` flattens ``(1 + x | g)``
into ``(1 | g) + (x | g)``, losing the correlation block, and rejects ``||`` (lme4) and
brms' addition terms ``y | trials(n)`` and ``y | se(sei)``. The population part is handed
back to formulae as a model (:func:`population_model`), whose design matrices encode the data
(:mod:`hiermodels.data`).
"""

from __future__ import annotations

from dataclasses import dataclass

from formulae import expr as ast
from formulae.parser import Parser
from formulae.resolver import Resolver
from formulae.scanner import Scanner
from formulae.terms import Call, Intercept, Model, Term, Variable
from formulae.terms.call_resolver import LazyValue, LazyVariable
from formulae.token import Token

from hiermodels.errors import SpecError

__all__ = ["GroupTerm", "ParsedFormula", "parse_formula", "population_model"]

_FIX = "create the column in the DataFrame first and use its name in the formula"


@dataclass(frozen=True)
class GroupTerm:
    """One grouping factor and the terms that vary across its groups.

    Attributes
    ----------
    group : str
        The factor's name; for nested ``a/b`` the inner one is ``"a:b"``.
    factors : tuple of str
        The columns whose combination defines the groups: ``("a",)`` or ``("a", "b")``.
    terms : tuple of str
        ``"Intercept"`` first when present, then the names of the varying terms (formulae's
        term names: ``"x"``, ``"kind"``, ``"x1:x2"``, ``"np.log(z)"``).
    correlated : bool
        False for lme4's ``||``, whose terms vary independently.

    Examples
    --------
    >>> from hiermodels.formula import parse_formula
    >>> parse_formula("y ~ (1 + x || a:b)").groups
    (GroupTerm(group='a:b', factors=('a', 'b'), terms=('Intercept', 'x'), correlated=False),)
    """

    group: str
    factors: tuple[str, ...]
    terms: tuple[str, ...]
    correlated: bool


@dataclass(frozen=True)
class ParsedFormula:
    """A mixed-model formula as column names, made by :func:`parse_formula`.

    Attributes
    ----------
    formula : str
        The formula as given.
    response : str
        The outcome column.
    trials : str or None
        The ``n`` of brms' binomial ``y | trials(n)``.
    intercept : bool
        Whether the population-level intercept is in (not after ``0 +`` or ``- 1``).
    predictors : tuple of str
        Population-level terms in order of appearance, by formulae's names: a column
        (``"x"``), an interaction (``"x1:x2"``, from ``x1:x2`` or ``x1*x2``) or a transformation
        (``"np.log(z)"``, ``"scale(x)"``, ``"C(k)"``). A term that only varies by group stays
        only in its :class:`GroupTerm`.
    groups : tuple of GroupTerm
        One per grouping factor and group term, in order of appearance.
    offset : str or None
        The column of an ``offset(col)`` term.
    se : str or None
        The column of known standard errors of brms' ``y | se(sei)`` (a meta-analysis).
    se_sigma : bool
        Whether ``se(sei, sigma = TRUE)`` asks for a residual SD besides the known errors.

    Examples
    --------
    >>> from hiermodels.formula import parse_formula
    >>> f = parse_formula("deaths ~ 0 + age + offset(log_exposure)")
    >>> f.response, f.intercept, f.predictors, f.offset
    ('deaths', False, ('age',), 'log_exposure')
    >>> f = parse_formula("yi | se(sei, sigma = TRUE) ~ 1 + (1 | study)")
    >>> f.response, f.se, f.se_sigma
    ('yi', 'sei', True)
    """

    formula: str
    response: str
    trials: str | None
    intercept: bool
    predictors: tuple[str, ...]
    groups: tuple[GroupTerm, ...]
    offset: str | None
    se: str | None = None
    se_sigma: bool = False


def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4/brms-style formula such as ``"y ~ x + (1 + x | g)"``.

    Parameters
    ----------
    formula : str
        ``response ~ population terms + (varying terms | group) + ...``. Supported: ``0 +`` and
        ``- 1`` (no intercept, also inside a group term), ``(x | g)`` (implies the varying
        intercept, as in lme4), ``||`` (uncorrelated), crossed ``(1 | a) + (1 | b)``, nested
        ``(1 | a/b)`` and ``(1 | a:b)``, ``offset(col)``, ``y | trials(n) ~ ...`` (binomial)
        and ``y | se(sei) ~ ...`` or ``y | se(sei, sigma = TRUE) ~ ...`` (known standard
        errors, brms' addition terms).
        Terms are formulae's: interactions ``a:b`` and ``a*b``, transformations such as
        ``np.log(x)``, ``scale(x)``, ``center(x)`` and ``C(k)``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    SpecError
        On a syntax error, a missing response, or a response, trials or offset that is not
        a single column (``log(y) ~ x``).

    Examples
    --------
    >>> from hiermodels.formula import parse_formula
    >>> f = parse_formula("log_radon ~ floor + log_uranium + (1 + floor | county)")
    >>> f.response, f.intercept, f.predictors
    ('log_radon', True, ('floor', 'log_uranium'))
    >>> f.groups[0]
    GroupTerm(group='county', factors=('county',), terms=('Intercept', 'floor'), correlated=True)
    >>> [g.group for g in parse_formula("y ~ x + (1 | school/class)").groups]
    ['school', 'school:class']
    >>> parse_formula("y | trials(n) ~ 0 + x + (1 | g)").trials
    'n'
    >>> parse_formula("yi | se(sei) ~ x + (1 | study/es_id)").se
    'sei'
    >>> parse_formula("y ~ x1 * x2 + np.log(z) + (0 + x1 | g)").predictors
    ('x1', 'x2', 'x1:x2', 'np.log(z)')
    """
    tokens, double_pipes = _scan(formula)
    tree = _parse(formula, tokens)
    response, trials, se, se_sigma = _response(formula, tree.left, double_pipes)

    blocks: list[ast.Binary] = []
    population, offset = _population_terms(formula, tree.right, blocks)
    intercept = any(isinstance(term, Intercept) for term in population)
    predictors = [
        _term_name(formula, term, "population-level term")
        for term in population
        if not isinstance(term, Intercept)
    ]
    groups = [
        group
        for block in blocks
        for group in _group_terms(formula, block, correlated=id(block.operator) not in double_pipes)
    ]
    return ParsedFormula(
        formula=formula,
        response=response,
        trials=trials,
        intercept=intercept,
        predictors=tuple(predictors),
        groups=tuple(groups),
        offset=offset,
        se=se,
        se_sigma=se_sigma,
    )


def population_model(formula: str | None, predictors: tuple[str, ...] = ()) -> Model:
    """formulae's model of the population part: the intercept and the population terms of
    ``formula`` (without its group terms and offset), or, without a formula, of the columns
    ``predictors`` (the keyword form), each a term named after its column.

    Examples
    --------
    >>> from hiermodels.formula import population_model
    >>> [t.name for t in population_model("y ~ x1*x2 + np.log(z) + (1 | g)").common_terms]
    ['Intercept', 'x1', 'x2', 'x1:x2', 'np.log(z)']
    >>> [t.name for t in population_model(None, ("floor level", "kind")).common_terms]
    ['Intercept', 'floor level', 'kind']
    """
    if formula is None:
        # backquotes make any column name one variable, as in a formula (`floor level`)
        text = " + ".join(["y ~ 1", *(f"`{p}`" for p in predictors)])
        terms = _resolve(text, _parse(text, _scan(text)[0]).right)
    else:
        tokens, _ = _scan(formula)
        terms, _ = _population_terms(formula, _parse(formula, tokens).right, [])
    return Model(*terms)


def _population_terms(formula: str, rhs: object, blocks: list) -> tuple[list, str | None]:
    """The intercept and terms of the population part of ``rhs``, and its offset column;
    the group terms go to ``blocks``."""
    population = _strip_group_terms(formula, rhs, blocks)
    terms, offset = [], None
    for term in _resolve(formula, population) if population is not None else []:
        if (column := _call_argument(formula, [term], "offset")) is not None:
            if offset is not None:
                raise _error(formula, "has more than one offset(); add them up into one column")
            offset = column
        elif isinstance(term, Intercept | Term):
            terms.append(term)
    return terms, offset


def _error(formula: str, problem: str) -> SpecError:
    return SpecError(f"formula {formula!r} {problem}")


def _scan(formula: str) -> tuple[list[Token], set[int]]:
    """Tokens of ``formula`` with each ``||`` merged into one ``|``, plus the merged ones' ids."""
    if not isinstance(formula, str):
        raise SpecError(f"formula must be a string like 'y ~ x + (1 | g)', not {formula!r}")
    if not formula.strip():
        raise _error(formula, "is empty; write it as 'response ~ predictors'")
    try:
        tokens = Scanner(formula).scan()
    except Exception as exc:  # formulae raises bare Exception subclasses; re-word them for users
        raise _error(formula, f"cannot be read: {exc}") from None
    kinds = [token.kind for token in tokens]
    if "TILDE" not in kinds:
        raise _error(formula, "has no '~'; write it as 'response ~ predictors'")
    if kinds[0] == "TILDE":
        raise _error(formula, "has no response on the left of '~'")
    # the scanner has inserted the implicit `1 +` right after `~`
    if kinds[kinds.index("TILDE") + 3] == "EOF":
        raise _error(formula, "has nothing right of '~'; write 'y ~ 1' for an intercept only")
    # formulae has no `||`, so it scans as two pipes. lme4's `(x || g)` means the same terms as
    # `(x | g)` with the correlations fixed at zero, so parse a single pipe and remember which
    # tokens were doubled (Token defines __eq__, so is unhashable; the ids stay valid because
    # the caller keeps the token list, and with it the parse tree, alive).
    merged: list[Token] = []
    double_pipes: set[int] = set()
    for token in tokens:
        if token.kind == "PIPE" and merged and merged[-1].kind == "PIPE":
            double_pipes.add(id(merged[-1]))
        else:
            merged.append(token)
    return merged, double_pipes


def _parse(formula: str, tokens: list[Token]) -> ast.Binary:
    parser = Parser(tokens)
    try:
        tree = parser.parse()
    except Exception as exc:  # formulae's ParseError and friends carry no position; add context
        if parser.peek().kind == "EOF":
            raise _error(formula, "ends too early: an operand or ')' is missing") from None
        raise _error(formula, f"is not valid formula syntax: {exc}") from None
    # formulae's parser stops at the first token it cannot place instead of failing
    if not parser.at_end():
        extra = parser.peek().lexeme
        hint = "; group terms need parentheses: (x | g)" if extra == "|" else ""
        raise _error(formula, f"is not valid formula syntax: unexpected {extra!r}{hint}")
    if not (isinstance(tree, ast.Binary) and tree.operator.kind == "TILDE"):
        raise _error(formula, "has no '~'; write it as 'response ~ predictors'")
    return tree


def _response(formula: str, lhs: object, double_pipes: set[int]):
    """``(response, trials, se, se_sigma)``: the response column and brms' addition term
    right of its ``|``, either the trials column of ``y | trials(n)`` or the standard-error
    column of ``y | se(sei)`` with ``sigma`` of ``se(sei, sigma = TRUE)``."""
    if not (isinstance(lhs, ast.Binary) and lhs.operator.kind == "PIPE"):
        return _column(formula, _resolve(formula, lhs), "response"), None, None, False
    terms = _resolve(formula, lhs.right)
    call = _call(terms)
    if call is None or call.callee not in ("trials", "se") or id(lhs.operator) in double_pipes:
        raise _error(
            formula,
            "has an unsupported left-hand side; only 'y', 'y | trials(n)', 'y | se(sei)' and "
            "'y | se(sei, sigma = TRUE)' work",
        )
    response = _column(formula, _resolve(formula, lhs.left), "response")
    if call.callee == "trials":
        return response, _call_argument(formula, terms, "trials"), None, False
    return response, None, *_se_term(formula, call)


def _se_term(formula: str, call) -> tuple[str, bool]:
    """brms' ``se(sei)`` or ``se(sei, sigma = TRUE)``: the column of known standard errors and
    whether a residual SD is estimated besides them (brms' ``sigma``, default FALSE)."""
    usage = "write se(sei) or se(sei, sigma = TRUE) with sei a column of standard errors"
    if len(call.args) != 1 or not isinstance(call.args[0], LazyVariable):
        raise _error(formula, f"needs one column name inside se(); {usage}")
    unknown = sorted(set(call.kwargs) - {"sigma"})
    if unknown:
        raise _error(formula, f"gives se() the unknown argument(s) {unknown}; {usage}")
    sigma = call.kwargs.get("sigma")
    if sigma is None:
        flag = False
    elif isinstance(sigma, LazyVariable) and sigma.name in _LOGICAL:
        flag = _LOGICAL[sigma.name]
    elif isinstance(sigma, LazyValue) and isinstance(sigma.value, bool):
        flag = sigma.value
    else:
        raise _error(formula, f"has se(..., sigma = ?) with neither TRUE nor FALSE; {usage}")
    return call.args[0].name, flag


# the logical constants of R (brms) and Python, as formulae reads them: names
_LOGICAL = {"TRUE": True, "T": True, "True": True, "FALSE": False, "F": False, "False": False}


def _strip_group_terms(formula: str, node: object, blocks: list[ast.Binary]) -> object | None:
    """Move the ``(terms | group)`` summands of ``node`` into ``blocks``; return what is left."""
    if isinstance(node, ast.Binary) and node.operator.kind == "PIPE":
        blocks.append(node)
        for side in (node.left, node.right):
            if _has_pipe(side):
                raise _error(formula, "has a group term inside another group term")
        return None
    if isinstance(node, ast.Grouping):
        inner = _strip_group_terms(formula, node.expression, blocks)
        return None if inner is None else ast.Grouping(inner)
    # A group term may be added, or stand left of a `-` as in `y ~ x + (1 | g) - 1`; anywhere
    # else (`x:(1 | g)`, `x - (1 | g)`) formulae would silently drop it from the model.
    if isinstance(node, ast.Binary) and node.operator.kind in ("PLUS", "MINUS"):
        left = _strip_group_terms(formula, node.left, blocks)
        if node.operator.kind == "PLUS":
            right = _strip_group_terms(formula, node.right, blocks)
        elif _has_pipe(node.right):
            raise _error(formula, "subtracts a group term; group terms can only be added")
        else:
            right = node.right
        if left is None or right is None:
            return right if left is None else left
        return ast.Binary(left, node.operator, right)
    if _has_pipe(node):
        raise _error(formula, "uses a group term ( | ) inside another term; add it with '+'")
    return node


def _has_pipe(node: object) -> bool:
    if isinstance(node, ast.Binary) and node.operator.kind == "PIPE":
        return True
    children = [getattr(node, name, None) for name in ("left", "right", "expression")]
    children += [getattr(arg, "value", arg) for arg in getattr(node, "args", ())]  # Assign: value
    return any(_has_pipe(child) for child in children if child is not None)


def _resolve(formula: str, node: object) -> list[object]:
    """formulae's term algebra on one part of the tree, as a flat list of terms."""
    try:
        resolved = Resolver(node).resolve()
    except Exception as exc:  # formulae raises ValueError, TypeError, ResolverError, ...
        raise _error(formula, f"cannot be interpreted: {exc}") from None
    return list(resolved.common_terms) if isinstance(resolved, Model) else [resolved]


def _column(formula: str, terms: list[object], where: str) -> str:
    """The column name behind a single-variable term; anything else is a SpecError."""
    if len(terms) != 1 or not isinstance(terms[0], Term):
        raise _error(formula, f"must have exactly one column as the {where}")
    term = terms[0]
    component = term.components[0]
    if len(term.components) > 1 or isinstance(component, Call):
        kind = "interaction" if len(term.components) > 1 else "transformation"
        raise _error(
            formula, f"has the {kind} {term.name!r} as the {where}, which must be a column; {_FIX}"
        )
    if (
        not isinstance(component, Variable)
        or not isinstance(component.name, str)
        or component.reference is not None
    ):
        level = "" if getattr(component, "reference", None) is None else f"[{component.reference}]"
        raise _error(formula, f"has '{term.name}{level}' as a {where}, which is not a column name")
    return component.name


def _term_name(formula: str, term: object, where: str) -> str:
    """formulae's name of a term read from the data: a column, an interaction or a
    transformation of columns; a SpecError for a literal such as ``2``."""
    if not isinstance(term, Term):
        raise _error(formula, f"has {getattr(term, 'name', term)!r} as a {where}")
    for component in term.components:
        if isinstance(component, Variable) and not isinstance(component.name, str):
            raise _error(formula, f"has '{term.name}' as a {where}, which is not a column name")
    return term.name


def _call(terms: list[object]):
    """formulae's call (callee, args, kwargs) if ``terms`` are a single call such as
    ``offset(x)``; else None."""
    if len(terms) != 1 or not isinstance(terms[0], Term) or len(terms[0].components) != 1:
        return None
    return getattr(terms[0].components[0], "call", None)


def _call_argument(formula: str, terms: list[object], callee: str) -> str | None:
    """``"x"`` if ``terms`` is the single call ``callee(x)``, such as ``offset(x)``; else None."""
    call = _call(terms)
    if call is None or call.callee != callee:
        return None
    if len(call.args) != 1 or call.kwargs or not isinstance(call.args[0], LazyVariable):
        raise _error(formula, f"needs one column name inside {callee}(); {_FIX}")
    return call.args[0].name


def _group_terms(formula: str, block: ast.Binary, *, correlated: bool) -> list[GroupTerm]:
    """One GroupTerm per grouping factor of ``(terms | factor)``; ``a/b`` gives two."""
    _check_factor_syntax(formula, block.right)
    # after that check, formulae resolves `a/b` to the terms `a` and `a:b`, all plain columns
    factors = [tuple(c.name for c in term.components) for term in _resolve(formula, block.right)]
    # lme4 adds the varying intercept unless `0 +` or `- 1` removes it: the same rule formulae's
    # scanner applies to the whole right-hand side by inserting `1 +`, so insert it here too.
    # formulae's own `|` cannot be used: `(x + 1 | g)` fails in it (Term + Intercept).
    varying = _resolve(formula, _with_leading_one(block.left))
    names = ["Intercept"] if any(isinstance(t, Intercept) for t in varying) else []
    for term in varying:
        if isinstance(term, Term):
            group = ":".join(factors[0])
            names.append(_term_name(formula, term, f"varying term of the group term for {group!r}"))
    if not names:
        raise _error(formula, "has a group term with nothing that varies, such as (0 | g)")
    return [
        GroupTerm(group=":".join(cols), factors=cols, terms=tuple(names), correlated=correlated)
        for cols in factors
    ]


def _check_factor_syntax(formula: str, node: object) -> None:
    # lme4 only expands `/` (nesting) and `:` (combination) right of the bar; formulae would also
    # distribute `+` and `*`, which lme4 users do not mean
    if isinstance(node, ast.Grouping):
        _check_factor_syntax(formula, node.expression)
    elif isinstance(node, ast.Binary) and node.operator.kind in ("COLON", "SLASH"):
        _check_factor_syntax(formula, node.left)
        _check_factor_syntax(formula, node.right)
    elif not (
        isinstance(node, ast.QuotedName) or (isinstance(node, ast.Variable) and node.level is None)
    ):
        operator = getattr(getattr(node, "operator", None), "lexeme", None)
        what = f"the operator {operator!r}" if operator else "something other than a column name"
        raise _error(
            formula,
            f"has {what} in a grouping factor; right of '|' only column names joined by "
            "':' or '/' work, as in (1 | g), (1 | a:b) or (1 | a/b)",
        )


def _with_leading_one(node: object) -> ast.Binary:
    """``1 + node``, with the ``1`` as the leftmost operand so formulae adds it first."""
    if isinstance(node, ast.Binary) and node.operator.kind in ("PLUS", "MINUS"):
        return ast.Binary(_with_leading_one(node.left), node.operator, node.right)
    return ast.Binary(ast.Literal(1, "1"), Token("PLUS", "+"), node)
