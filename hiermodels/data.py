"""Validate a tidy DataFrame and encode it as arrays for the model builders.

Nothing here touches PyMC: :func:`prepare` checks every column the user named, reports
bad rows by their labels, and returns a :class:`GroupedData` (numpy arrays plus names).
The caller's DataFrame is never modified.

The population design is built by formulae's design matrices (:class:`PopulationDesign`),
from a frame this module has validated and normalized first: numbers as numbers, text as
ordered categoricals with this module's sorted levels (the first is the reference), so
formulae names and codes every term as the keyword form always has (``floor``, ``kind[b]``)
and re-encodes new rows with the training encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulae.environment import Environment
from formulae.matrices import CommonEffectsMatrix, DesignMatrices
from formulae.terms import Model

from hiermodels.columns import (
    check_full_rank,
    check_names,
    check_not_dates,
    check_text_predictor,
    level_labels,
    numeric_column,
    require_columns,
    require_finite,
    sorted_levels,
)
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.formula import population_model
from hiermodels.names import INTERCEPT
from hiermodels.spec import Grouping

__all__ = [
    "INTERCEPT",
    "GroupFactor",
    "GroupedData",
    "PopulationDesign",
    "check_full_rank",
    "expand_varying",
    "factor_labels",
    "level_labels",
    "numeric_column",
    "prepare",
    "require_columns",
    "require_finite",
    "se_column",
]


@dataclass(frozen=True, eq=False)
class GroupFactor:
    """One grouping factor: its levels, each row's level and the terms that vary by it.

    Attributes
    ----------
    name : the factor's name: its column (``"county"``), or the columns joined by ``:`` for
        a nested or combined factor (``"school:class"``, a class within its school).
    columns : the data columns whose values, joined by ``:``, label a row's level.
    levels : the sorted level labels.
    idx : (n,) integer code of each row's level in ``levels``.
    varying : the terms (columns of ``X``) that vary by this factor, ``Intercept`` first when
        the intercept varies (not for lme4's ``(0 + x | g)``).
    group_level : predictors that are constant within every level of this factor.
    correlated : whether the deviations of several varying terms are correlated.
    """

    name: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    idx: np.ndarray
    varying: tuple[str, ...]
    group_level: tuple[str, ...] = ()
    correlated: bool = True

    @property
    def n_groups(self) -> int:
        return len(self.levels)

    @property
    def n_obs(self) -> np.ndarray:
        """Number of rows in each level, in the order of ``levels``."""
        return np.bincount(self.idx, minlength=self.n_groups)

    @property
    def first_rows(self) -> np.ndarray:
        """Index of the first row of each level (where group-level values are read)."""
        return _first_index(self.idx, self.n_groups)


# What a formula may call besides formulae's own transformations (scale, center, C, I, ...,
# which formulae looks up first): numpy. Nothing from the caller's or this module's scope.
_NAMESPACE = Environment([{"np": np}])


@dataclass(frozen=True, eq=False)
class PopulationDesign:
    """The population-level design as formulae built it, kept to encode new rows alike.

    Attributes
    ----------
    columns : the data columns the population terms read, in order of appearance.
    kinds : per column, how it was given to formulae: ``"float"`` or ``"int"`` (numbers;
        bools as 0/1) or ``"category"`` (text, coded by ``categories``).
    categories : text column -> its sorted levels (the first is the reference).
    frame : the training values of ``columns`` as formulae saw them.
    matrix : formulae's common-effects matrix; its terms keep the training encoding (the
        levels of categorical terms, the mean and SD of ``scale(x)``).
    names : the design's column names, ``Intercept`` first (``x``, ``kind[b]``, ``x1:x2``).
    term_columns : each population term's name -> the design columns it spans.
    """

    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]
    frame: pd.DataFrame
    matrix: CommonEffectsMatrix
    names: tuple[str, ...]
    term_columns: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def X(self) -> np.ndarray:
        return np.asarray(self.matrix.design_matrix, dtype=float)

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The design columns ``names`` for the rows of ``df``, with the training encoding.

        Raises :class:`DataError` naming the column and rows for a category not seen in
        fitting, a non-numeric value where numbers were fitted, or a term that is not finite
        (``np.log`` of a value <= 0).
        """
        categories = dict(self.categories)
        values = {}
        for col, kind in zip(self.columns, self.kinds, strict=True):
            if kind != "category":
                numbers = numeric_column(df, col, "predictor")
                whole = kind == "int" and np.all(np.mod(numbers, 1) == 0)
                values[col] = numbers.astype(np.int64) if whole else numbers
                continue
            labels = level_labels(df[col])
            unseen = ~labels.isin(categories[col])
            if unseen.any():
                raise DataError(
                    f"predictor {col!r} has categories not seen in fitting "
                    f"({sorted(labels[unseen].unique())}, {format_rows(df.index[unseen])}); "
                    f"known categories: {list(categories[col])}"
                )
            # plain labels, coded by the training levels: formulae's C() refuses an ordered
            # categorical that lacks some of its categories, as new rows may
            values[col] = labels.to_numpy(dtype=object)
        frame = pd.DataFrame(values, index=pd.RangeIndex(len(df)))
        try:
            with np.errstate(all="ignore"):
                X = self.matrix.evaluate_new_data(frame).design_matrix
        except Exception as exc:  # formulae raises ValueError, KeyError, ...: say which term
            raise DataError(f"the new rows cannot be encoded like the fitted ones: {exc}") from None
        X = np.asarray(X, dtype=float).reshape(len(df), -1)
        _check_finite_terms(X, self.names, df.index)
        return X


def _check_finite_terms(X: np.ndarray, names, index) -> None:
    for k, name in enumerate(names):
        bad = index[~np.isfinite(X[:, k])]
        if len(bad):
            raise DataError(
                f"term {name!r} is not finite ({format_rows(bad)}), e.g. np.log of a value "
                "<= 0; drop those rows or change the term"
            )


@dataclass(frozen=True, eq=False)
class GroupedData:
    """Arrays for a model with one or more grouping factors.

    Attributes
    ----------
    y : (n,) outcome.
    X : (n, p) population-level design; column ``terms[k]`` (``Intercept`` first).
    factors : the grouping factors, each with the terms that vary by it (none: a plain
        regression).
    predictors : the population terms by name (``x``, ``kind``, ``x1:x2``, ``np.log(z)``).
    design : how formulae built ``X``, to encode new rows alike.
    se : (n,) known standard errors of ``y`` (a meta-analysis), or None; column ``se_name``.

    The single-factor shortcuts ``group``, ``levels``, ``group_idx``, ``varying``,
    ``group_level``, ``n_groups``, ``n_obs``, ``first_rows`` and ``Z`` read the one factor
    and raise :class:`SpecError` when there are several.
    """

    y: np.ndarray
    y_name: str
    X: np.ndarray
    terms: tuple[str, ...]
    factors: tuple[GroupFactor, ...]
    row_labels: tuple[object, ...]
    predictors: tuple[str, ...] = ()
    design: PopulationDesign | None = None
    trials: np.ndarray | None = None  # binomial trials per row
    offset: np.ndarray | None = None  # added to the linear predictor (e.g. log exposure)
    trials_name: str | None = None
    offset_name: str | None = None
    se: np.ndarray | None = None
    se_name: str | None = None

    def column(self, term: str) -> np.ndarray:
        return self.X[:, self.terms.index(term)]

    @property
    def categories(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each text column of the population terms -> its levels (the first: reference)."""
        return () if self.design is None else self.design.categories

    @property
    def effects(self) -> tuple[tuple[GroupFactor, str], ...]:
        """Every (factor, varying term) pair, in model order."""
        return tuple((f, t) for f in self.factors for t in f.varying)

    def factor_named(self, name: str) -> GroupFactor:
        for f in self.factors:
            if f.name == name:
                return f
        raise SpecError(
            f"no grouping factor {name!r}; the model's factors are {[f.name for f in self.factors]}"
        )

    @property
    def factor(self) -> GroupFactor:
        """The one grouping factor (for what is defined for a single factor only)."""
        if not self.factors:
            raise SpecError("this needs a grouping factor; the model has none (no (1 | group))")
        if len(self.factors) != 1:
            raise SpecError(
                f"this needs a model with one grouping factor; this one has "
                f"{[f.name for f in self.factors]}"
            )
        return self.factors[0]

    group = property(lambda self: self.factor.name)
    levels = property(lambda self: self.factor.levels)
    group_idx = property(lambda self: self.factor.idx)
    varying = property(lambda self: self.factor.varying)
    group_level = property(lambda self: self.factor.group_level)
    n_groups = property(lambda self: self.factor.n_groups)
    n_obs = property(lambda self: self.factor.n_obs)
    first_rows = property(lambda self: self.factor.first_rows)

    @property
    def Z(self) -> np.ndarray:
        """(n, q) columns of ``X`` for the varying terms of the one factor."""
        return self.X[:, [self.terms.index(t) for t in self.varying]]


def encode_predictors(df: pd.DataFrame, predictors: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Design columns for ``predictors``: numeric as is, categorical as treatment dummies.

    A non-numeric predictor ``c`` with sorted levels ``a < b < c`` becomes the columns
    ``c[b]`` and ``c[c]`` (the first level is the reference), as in R's ``model.matrix``.
    """
    names: list[str] = []
    columns: list[np.ndarray] = []
    for col in predictors:
        series = df[col]
        check_not_dates(series, col)
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            values = numeric_column(df, col, "predictor")
            if np.ptp(values) == 0:
                raise DataError(
                    f"predictor {col!r} is constant ({values[0]:g} in every row), so it cannot be "
                    "told apart from the intercept; remove it from predictors"
                )
            names.append(col)
            columns.append(values)
            continue
        check_text_predictor(df, col)
        labels = level_labels(series)
        levels = sorted_levels(df, [col], labels)
        if len(levels) < 2:
            raise DataError(
                f"predictor {col!r} has a single category ({levels[0]!r}); "
                "remove it from predictors"
            )
        for level in levels[1:]:
            names.append(f"{col}[{level}]")
            columns.append((labels == level).to_numpy(dtype=float))
    return names, np.column_stack(columns) if columns else np.empty((len(df), 0))


def expand_varying(varying: Sequence[str], predictors: Sequence[str], design: PopulationDesign):
    """The design columns of the varying terms: a term's own columns (``kind`` varies as
    ``kind[b]`` and ``kind[c]``), or one design column named directly."""
    term_columns = dict(design.term_columns)
    expanded: list[str] = []
    for term in varying:
        if term in design.names:
            expanded.append(term)
        elif term in term_columns:
            expanded.extend(term_columns[term])
        else:
            raise SpecError(
                f"varying term {term!r} is not a predictor; varying terms must also be listed in "
                f"predictors (now {list(predictors)})"
            )
    return expanded


def _population_frame(df: pd.DataFrame, columns: Sequence[str]):
    """Check the columns the population terms read and normalize them for formulae: numbers
    as numbers (bools as 0/1), text as ordered categoricals with :func:`_sorted_levels`."""
    values, kinds, categories = {}, [], []
    for col in columns:
        series = df[col]
        check_not_dates(series, col)
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            numbers = numeric_column(df, col, "predictor")
            integer = pd.api.types.is_integer_dtype(series)
            values[col] = numbers.astype(np.int64) if integer else numbers
            kinds.append("int" if integer else "float")
            continue
        check_text_predictor(df, col)
        labels = level_labels(series)
        levels = sorted_levels(df, [col], labels)
        if len(levels) < 2:
            raise DataError(
                f"predictor {col!r} has a single category ({levels[0]!r}); "
                "remove it from predictors"
            )
        values[col] = pd.Categorical(labels, categories=levels, ordered=True)
        kinds.append("category")
        categories.append((col, levels))
    frame = pd.DataFrame(values, index=pd.RangeIndex(len(df)))
    return frame, tuple(kinds), tuple(categories)


def population_columns(model: Model) -> tuple[str, ...]:
    """The data columns a formulae model reads, in order of appearance."""
    # formulae lists a literal inside a call (the 2 of I(x * 2)) as the name ""
    names = (c for t in model.common_terms for c in sorted(t.var_names) if c)
    return tuple(dict.fromkeys(names))


def population_design(
    model: Model, frame: pd.DataFrame, kinds, categories, *, where: str, index=None
) -> PopulationDesign:
    """formulae's design matrix of ``model`` on the normalized ``frame`` (see
    :func:`_population_frame`); ``where`` names the formula in messages, ``index`` the
    caller's row labels."""
    index = frame.index if index is None else index
    columns = population_columns(model)
    try:
        with np.errstate(all="ignore"):  # np.log(0): reported below, by row
            matrix = DesignMatrices(model, frame, _NAMESPACE).common
    except KeyError as exc:
        # every column was found in the data before, so a name formulae cannot find is a
        # function that is neither numpy's nor one of formulae's transformations
        raise SpecError(
            f"{where} calls {exc.args[0]!r}, which is not a known function; use numpy's "
            "(np.log(x), np.sqrt(x), ...) or formulae's (scale(x), center(x), C(k), I(x**2)), "
            "or create the column in the DataFrame first"
        ) from None
    except Exception as exc:  # formulae's own errors: name the formula, drop the traceback
        raise SpecError(
            f"{where} cannot be turned into a design matrix ({type(exc).__name__}: {exc}); "
            "create the columns in the DataFrame first"
        ) from None
    names = tuple(str(n) for n in matrix.as_dataframe().columns)
    labels = iter(names)
    term_columns = tuple(
        (name, tuple(next(labels) for _ in range(s.stop - s.start)))
        for name, s in matrix.slices.items()
    )
    design = PopulationDesign(columns, kinds, categories, frame, matrix, names, term_columns)
    _check_finite_terms(design.X, names, index)
    return design


def _build_design(df, formula, predictors, columns, model) -> PopulationDesign:
    where = f"formula {formula!r}" if formula is not None else "predictors"
    frame, kinds, categories = _population_frame(df, columns)
    design = population_design(model, frame, kinds, categories, where=where, index=df.index)
    if not design.names or design.names[0] != INTERCEPT:
        raise SpecError(f"{where} must keep the population intercept")
    X = design.X
    for k, name in enumerate(design.names[1:], start=1):
        if np.ptp(X[:, k]) == 0:
            remove = "remove it from predictors" if formula is None else "remove it"
            raise DataError(
                f"predictor {name!r} is constant ({X[0, k]:g} in every row), so it cannot be "
                f"told apart from the intercept; {remove}"
            )
    return design


def factor_labels(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Each row's level of a grouping factor: its column's values as text (by value: 1 and
    1.0 are one level, see :func:`level_labels`), or the values of several columns joined by
    ``:`` (a class within its school is ``"s1:c2"``)."""
    labels = level_labels(df[columns[0]])
    for col in columns[1:]:
        labels = labels + ":" + level_labels(df[col])
    return labels


def _encode_factor(df, grouping, terms, X, predictors, design) -> GroupFactor:
    """Levels, row codes, varying terms and group-level predictors of one grouping factor."""
    name, columns = grouping.name, tuple(grouping.columns)
    labels = factor_labels(df, columns)
    levels = sorted_levels(df, columns, labels)
    if len(levels) < 2:
        raise DataError(
            f"grouping factor {name!r} has a single group ({levels[0]!r}); a hierarchical "
            "model needs at least 2 groups per factor (drop this grouping term)"
        )
    idx = pd.Categorical(labels, categories=levels).codes.astype(np.int64)
    varying = expand_varying(grouping.varying, predictors, design)
    first = _first_index(idx, len(levels))
    group_level = []
    for k, term in enumerate(terms[1:], start=1):
        col = X[:, k]
        within = np.zeros(len(levels))
        np.maximum.at(within, idx, np.abs(col - col[first][idx]))
        if np.all(within == 0):
            group_level.append(term)
    bad_varying = [t for t in varying if t in group_level]
    if bad_varying:
        raise SpecError(
            f"term(s) {bad_varying} are constant within every {name!r} group, so their slope "
            "cannot vary by group; keep them in predictors and remove them from the varying "
            "terms of this grouping"
        )
    return GroupFactor(
        name=name,
        columns=columns,
        levels=levels,
        idx=idx,
        varying=(INTERCEPT, *varying) if grouping.intercept else tuple(varying),
        group_level=tuple(group_level),
        correlated=bool(grouping.correlated),
    )


def prepare(
    df: pd.DataFrame,
    *,
    y: str,
    group: str | None = None,
    predictors: Sequence[str] = (),
    varying: Sequence[str] = (),
    trials: str | None = None,
    offset: str | None = None,
    groups: Sequence | None = None,
    formula: str | None = None,
    se: str | None = None,
) -> GroupedData:
    """Validate ``df`` and encode it for a model with grouping factors.

    Either ``group`` (one grouping column, with the slopes of ``varying`` varying by it), or
    ``groups``: :class:`~hiermodels.spec.Grouping` objects (name, columns, varying,
    correlated, intercept), one per grouping factor (none for a plain regression).

    The population terms are the columns ``predictors``, or, given a ``formula``, its
    population part (``predictors`` are then its term names, as
    :func:`~hiermodels.formula.parse_formula` gives them); formulae builds the design.
    ``se`` names a column of known standard errors of ``y`` (:func:`se_column`).
    """
    if groups is None:
        if group is None:
            raise SpecError("give group= (the grouping column) or groups=")
        groups = [Grouping(group, (group,), tuple(varying))]
    predictors = list(predictors)
    lists = [("predictors", predictors)]
    lists += [(f"the varying terms of {g.name!r}", list(g.varying)) for g in groups]
    for what, values in lists:
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise SpecError(f"{what} list {dupes} more than once; list each term once")
    group_columns = list(dict.fromkeys(c for g in groups for c in g.columns))
    model = population_model(formula, tuple(predictors))
    columns = list(population_columns(model))
    clash = [c for c in (y, *group_columns) if c in columns]
    if clash:
        raise SpecError(
            f"predictors must not contain the outcome or a grouping column ({clash}); "
            "remove them from predictors"
        )
    check_names(y, columns, group_columns, [g.name for g in groups])
    extra = [c for c in (trials, offset, se) if c is not None]
    require_columns(df, [y, *group_columns, *columns, *extra])
    require_finite(df, [y, *group_columns, *columns, *extra])
    y_values = numeric_column(df, y, "outcome")
    trials_values = offset_values = None
    if trials is not None:
        trials_values = numeric_column(df, trials, "trials")
        bad = df.index[(trials_values < 1) | (np.mod(trials_values, 1) != 0)]
        if len(bad):
            raise DataError(
                f"trials column {trials!r} must hold positive integers; {format_rows(bad)} do not"
            )
    if offset is not None:
        offset_values = numeric_column(df, offset, "offset")
    se_values = se_column(df, se) if se is not None else None

    design = _build_design(df, formula, predictors, columns, model)
    X, terms = design.X, design.names
    check_full_rank(X, terms)
    factors = tuple(_encode_factor(df, g, terms, X, predictors, design) for g in groups)
    return GroupedData(
        y=y_values,
        y_name=y,
        X=X,
        terms=terms,
        factors=factors,
        row_labels=tuple(df.index),
        predictors=tuple(predictors),
        design=design,
        trials=trials_values,
        offset=offset_values,
        trials_name=trials,
        offset_name=offset,
        se=se_values,
        se_name=se,
    )


def se_column(df: pd.DataFrame, col: str) -> np.ndarray:
    """The known standard errors in column ``col`` of ``df``, or a :class:`DataError` naming
    the column and rows that are missing, not numbers, or not positive."""
    require_columns(df, [col])
    require_finite(df, [col])
    values = numeric_column(df, col, "standard error")
    bad = df.index[values <= 0]
    if len(bad):
        raise DataError(
            f"standard error column {col!r} has {len(bad)} value(s) <= 0 ({format_rows(bad)}); "
            "standard errors must be positive (a variance vi gives se = sqrt(vi))"
        )
    return values


def _first_index(group_idx: np.ndarray, n_groups: int) -> np.ndarray:
    """Row index of the first row of each group."""
    first = np.full(n_groups, len(group_idx))
    np.minimum.at(first, group_idx, np.arange(len(group_idx)))
    return first
