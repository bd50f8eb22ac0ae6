"""Checking and labelling the columns of a user's table (no PyMC here).

Every check names the column, the rows and the fix (STYLE.md, Errors); the caller's frame is
never modified. Shared by the row-level data (:mod:`hiermodels.data`) and the study-level
data of a meta-analysis (:mod:`hiermodels.meta.data`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.names import INTERCEPT, INTERCEPT_AT_MEANS, RESIDUAL_SIGMA

__all__ = [
    "RESERVED",
    "check_full_rank",
    "check_names",
    "check_not_dates",
    "check_text_predictor",
    "level_labels",
    "numeric_column",
    "require_columns",
    "require_finite",
    "sorted_levels",
]


def require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise :class:`DataError` unless ``df`` is a non-empty frame with all ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; available columns: "
            f"{', '.join(map(str, df.columns))}. Fix the name or add the column."
        )
    repeated = [c for c in dict.fromkeys(columns) if (df.columns == c).sum() > 1]
    if repeated:
        raise DataError(
            f"column(s) {', '.join(map(repr, repeated))} appear more than once in the data; "
            "rename or drop the duplicates, e.g. df.loc[:, ~df.columns.duplicated()]"
        )
    if len(df) == 0:
        raise DataError("the data frame is empty; pass at least one row per group")


def require_finite(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise :class:`DataError` naming the rows where a column is missing (NaN/None)."""
    for col in columns:
        bad = df.index[df[col].isna().to_numpy()]
        if len(bad):
            raise DataError(
                f"column {col!r} has {len(bad)} missing value(s) ({format_rows(bad)}); drop or "
                f"impute them first, e.g. df.dropna(subset=[{col!r}])"
            )


def numeric_column(df: pd.DataFrame, col: str, what: str) -> np.ndarray:
    """Return ``df[col]`` as float, or raise naming the non-numeric rows."""
    series = df[col]
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series):
        bad = df.index[_unparsed(series)]
        if len(bad) == 0:
            raise DataError(
                f"{what} column {col!r} holds numbers stored as text (dtype {series.dtype}); "
                f"convert it with df[{col!r}] = pd.to_numeric(df[{col!r}])"
            )
        raise DataError(
            f"{what} column {col!r} is not numeric (dtype {series.dtype}; {format_rows(bad)} "
            f"cannot be read as numbers, e.g. {series.loc[bad[0]]!r}); fix or drop those rows, "
            f"then convert it with pd.to_numeric(df[{col!r}])"
        )
    values = series.to_numpy(dtype=float)
    bad = df.index[~np.isfinite(values)]
    if len(bad):
        raise DataError(
            f"{what} column {col!r} has infinite values ({format_rows(bad)}); remove those rows"
        )
    return values


def _unparsed(series: pd.Series) -> np.ndarray:
    """Where a column's values cannot be read as numbers (missing values count as read)."""
    as_num = pd.to_numeric(series.astype(object), errors="coerce")
    return (as_num.isna() & series.notna()).to_numpy()


def level_labels(series: pd.Series) -> pd.Series:
    """Each value of a label column as text, equal for equal values.

    1, 1.0 and ``np.int64(1)`` all become ``"1"`` (a group id read back from a CSV as float
    is the same group), 2.5 becomes ``"2.5"``, and text stays as it is.
    """
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return series.astype(str)
    if pd.api.types.is_float_dtype(series):
        return pd.Series([_number_label(v) for v in series.to_numpy()], index=series.index)
    return series.map(
        lambda v: (
            _number_label(v)
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            else str(v)
        )
    ).astype(str)


def _number_label(v) -> str:
    v = float(v) if not isinstance(v, (int, np.integer)) else v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return str(v)


def sorted_levels(df: pd.DataFrame, columns: Sequence[str], labels: pd.Series) -> tuple:
    """The distinct labels, numeric columns in numeric order (2 before 10), text as text."""
    keys = pd.DataFrame({"label": labels.to_numpy()})
    for k, col in enumerate(columns):
        series = df[col]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        keys[f"k{k}"] = series.to_numpy(dtype=float) if numeric else level_labels(series).to_numpy()
    keys = keys.drop_duplicates("label").sort_values([f"k{k}" for k in range(len(columns))])
    return tuple(keys["label"])


def check_text_predictor(df: pd.DataFrame, col: str) -> None:
    """Refuse a text column that is mostly numbers: a typo ("missing", "1,5") or numbers
    stored as text would otherwise become a categorical predictor with a level per value."""
    series = df[col]
    if isinstance(series.dtype, pd.CategoricalDtype):
        return  # categorical by the user's own choice
    unparsed = _unparsed(series)
    if unparsed.mean() <= 0.2 and series.nunique() > 2:
        bad = df.index[unparsed]
        which = (
            f"{format_rows(bad)} cannot be read as numbers (e.g. {series.loc[bad[0]]!r})"
            if len(bad)
            else "every value is a number stored as text"
        )
        raise DataError(
            f"predictor column {col!r} looks numeric but has dtype {series.dtype}: {which}. "
            f"Fix those rows and convert with pd.to_numeric(df[{col!r}]); if it really is a "
            f"category, make that explicit with df[{col!r}].astype('category')"
        )


def check_full_rank(X: np.ndarray, terms: Sequence[str]) -> None:
    """Raise :class:`DataError` naming the collinear terms when the population design is
    rank deficient: their split would be set by the priors alone, silently (lm() reports NA
    coefficients and lme4 drops columns with a message)."""
    scale = np.linalg.norm(X, axis=0)
    Xs = X / np.where(scale > 0, scale, 1.0)
    _, sv, vt = np.linalg.svd(Xs, full_matrices=False)
    tol = sv.max() * max(X.shape) * np.finfo(float).eps * 1e3
    null = vt[sv <= tol]
    if len(null) == 0:
        return
    involved = [t for k, t in enumerate(terms) if np.abs(null[:, k]).max() > 1e-6]
    raise DataError(
        f"the population-level design is rank deficient: {', '.join(involved)} are collinear "
        f"(a combination of them is constant or equal to another), so the data cannot tell "
        f"their coefficients apart; drop one of {', '.join(t for t in involved if t != INTERCEPT)}"
        " from predictors"
    )


# names the model itself uses: columns with these names would clash with its variables
RESERVED = frozenset({INTERCEPT, INTERCEPT_AT_MEANS, RESIDUAL_SIGMA, "nu", "alpha", "obs"})


def check_names(y, predictors, group_columns, factor_names) -> None:
    """Refuse column names that would clash with the model's own variable or dim names."""
    named = {"outcome": [y], "predictor": predictors, "grouping": [*group_columns, *factor_names]}
    for what, names in named.items():
        for name in names:
            if not isinstance(name, str) or not name:
                raise SpecError(f"{what} column names must be non-empty strings, got {name!r}")
            clash = name in RESERVED or name in ("chain", "draw")
            odd = "|" in name or name.endswith("__")
            if clash or odd:
                why = (
                    "is a name the model uses for its own variables"
                    if clash
                    else "contains '|' or ends in '__', which the model's variable names use"
                )
                raise SpecError(
                    f"{what} column {name!r} {why}; rename it, e.g. "
                    f"df.rename(columns={{{name!r}: {name.strip('_|') + '_col'!r}}})"
                )


def check_not_dates(series: pd.Series, col: str) -> None:
    """Refuse a date or time column as a predictor: the unit of its slope is the user's call."""
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        raise DataError(
            f"predictor column {col!r} holds dates or times ({series.dtype}); choose the "
            f"unit of its slope and make it numeric, e.g. df[{col!r}].dt.year, or days "
            f"since a start: (df[{col!r}] - df[{col!r}].min()).dt.days"
        )
