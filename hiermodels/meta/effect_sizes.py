"""Effect sizes from the columns of a study table: :func:`effect_sizes`, metafor's ``escalc``.

The formulas live in :mod:`hiermodels.numerics.effect_sizes` (numpy only, checked against
metafor); this module reads the columns the user names, checks them with messages that name
the column, the rows and the fix, and returns a copy of the table with ``yi``, ``vi`` and
``sei`` added. Nothing here imports PyMC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiermodels.data import numeric_column, require_columns, require_finite
from hiermodels.errors import DataError, SpecError, format_rows
from hiermodels.frames import to_pandas
from hiermodels.numerics.effect_sizes import MEASURES, escalc

__all__ = ["DATA_ARGUMENTS", "effect_sizes"]

#: What each of metafor's data arguments holds, for the checks (and the messages).
DATA_ARGUMENTS = {
    "ai": "count",  # events, treated
    "bi": "count",  # non-events, treated
    "ci": "count",  # events, control
    "di": "count",  # non-events, control
    "n1i": "size",  # group size, treated (a count for 2x2 tables)
    "n2i": "size",
    "m1i": "mean",
    "m2i": "mean",
    "sd1i": "sd",
    "sd2i": "sd",
    "ri": "correlation",
    "ni": "size",
    "xi": "count",
    "mi": "count",
    "ti": "time",
    "x1i": "count",
    "x2i": "count",
    "t1i": "time",
    "t2i": "time",
}
_TO = ("only0", "all", "if0all", "none")
# measures whose group sizes are numbers of patients counted in cells (whole numbers)
_COUNTED_SIZES = {"RR", "OR", "RD", "PETO", "PR", "PLO"}


def _check_options(measure, add, to, drop00, append):
    if measure not in MEASURES:
        raise SpecError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
    if isinstance(add, bool) or not isinstance(add, (int, float, np.number)) or not add >= 0:
        raise SpecError(
            f"add must be a number >= 0 (added to the cells of tables with a zero), got {add!r}; "
            "use add=0.5 (metafor's default) or add=0"
        )
    if not np.isfinite(add):
        raise SpecError(f"add must be finite, got {add!r}; use add=0.5 (metafor's default)")
    if to not in _TO:
        raise SpecError(f"unknown to={to!r}; use one of {', '.join(map(repr, _TO))}")
    for name, value in (("drop00", drop00), ("append", append)):
        if not isinstance(value, (bool, np.bool_)):
            raise SpecError(f"{name} must be True or False, got {value!r}")


def _columns_for(measure, given):
    """The accepted argument set of ``measure`` that ``given`` fills, or a SpecError."""
    spec = MEASURES[measure]
    allowed = {name for names in spec.arguments for name in names}
    unknown = [name for name in given if name not in allowed]
    options = " or ".join(f"({', '.join(names)})" for names in spec.arguments)
    if unknown:
        raise SpecError(
            f"measure {measure!r} ({spec.description}) takes no {', '.join(unknown)}; "
            f"it takes the columns {options}"
        )
    for names in spec.arguments:
        if set(names) <= set(given):
            extra = sorted(set(given) - set(names))
            if extra:
                raise SpecError(
                    f"measure {measure!r} takes the columns {options}, not both sets: drop "
                    f"{', '.join(extra)}"
                )
            return names
    missing = [n for n in spec.arguments[0] if n not in given]
    raise SpecError(
        f"measure {measure!r} ({spec.description}) needs the columns {options}; name the "
        f"missing {', '.join(missing)}, e.g. {missing[0]}='<column>'"
    )


def _fail(column, values, mask, index, problem, fix):
    bad = index[mask]
    example = values[mask][0]
    raise DataError(
        f"column {column!r} has {problem} ({format_rows(bad)}, e.g. {example:g}); {fix}"
    )


def _check_values(df, measure, columns):
    """Per-kind checks on the numeric columns, naming column, rows and fix."""
    index = df.index
    values = {arg: numeric_column(df, col, DATA_ARGUMENTS[arg]) for arg, col in columns.items()}
    for arg, col in columns.items():
        v, kind = values[arg], DATA_ARGUMENTS[arg]
        counted = kind == "count" or (kind == "size" and measure in _COUNTED_SIZES)
        if counted:
            if (v < 0).any():
                _fail(col, v, v < 0, index, "negative counts", "counts must be >= 0")
            if (v != np.round(v)).any():
                _fail(
                    col,
                    v,
                    v != np.round(v),
                    index,
                    "non-integer counts",
                    "counts must be whole numbers: check those rows, or round them with "
                    f"df[{col!r}].round() if they are reconstructed counts",
                )
        if kind == "size" and (v <= 0).any():
            _fail(col, v, v <= 0, index, "group sizes <= 0", "every group needs a participant")
        if kind == "sd" and (v <= 0).any():
            _fail(
                col,
                v,
                v <= 0,
                index,
                "standard deviations <= 0",
                "a standard deviation must be positive (check for a missing value coded as 0)",
            )
        if kind == "time" and (v <= 0).any():
            _fail(col, v, v <= 0, index, "person-times <= 0", "person-times must be positive")
        if kind == "correlation" and (np.abs(v) >= 1).any():
            _fail(
                col,
                v,
                np.abs(v) >= 1,
                index,
                "correlations outside (-1, 1)",
                "a correlation lies in [-1, 1], and |r| = 1 has a zero or infinite sampling "
                "variance; check those rows",
            )
    if measure in ("COR", "ZCOR") and (values["ni"] <= 3).any():
        v = values["ni"]
        _fail(
            columns["ni"],
            v,
            v <= 3,
            index,
            "sample sizes <= 3",
            "the sampling variance of a correlation needs n > 3 (metafor leaves it missing); "
            "drop those rows",
        )
    if measure == "ROM":
        for arg in ("m1i", "m2i"):
            v = values[arg]
            if (v <= 0).any():
                _fail(
                    columns[arg],
                    v,
                    v <= 0,
                    index,
                    "means <= 0",
                    "a ratio of means needs positive means (use measure='MD' or 'SMD')",
                )
    # totals given with the events: the events must not exceed them
    for events, total in (("ai", "n1i"), ("ci", "n2i"), ("xi", "ni")):
        if events in values and total in values and DATA_ARGUMENTS[total] == "size":
            over = values[events] > values[total]
            if measure in _COUNTED_SIZES and over.any():
                bad = index[over]
                raise DataError(
                    f"column {columns[events]!r} exceeds column {columns[total]!r} "
                    f"({format_rows(bad)}): more events than participants; check those rows"
                )
    for arm, (events, rest) in (("treated", ("ai", "bi")), ("control", ("ci", "di"))):
        if events in values and rest in values:
            bad = index[(values[events] + values[rest]) == 0]
            if len(bad):
                raise DataError(
                    f"the {arm} arm has no patients ({columns[events]!r} + {columns[rest]!r} = 0 "
                    f"in {format_rows(bad)}), so its risk is undefined; drop those rows"
                )
    return values


def effect_sizes(
    data: pd.DataFrame,
    measure: str = "SMD",
    *,
    ai: str | None = None,
    bi: str | None = None,
    ci: str | None = None,
    di: str | None = None,
    n1i: str | None = None,
    n2i: str | None = None,
    m1i: str | None = None,
    sd1i: str | None = None,
    m2i: str | None = None,
    sd2i: str | None = None,
    ri: str | None = None,
    ni: str | None = None,
    xi: str | None = None,
    mi: str | None = None,
    ti: str | None = None,
    x1i: str | None = None,
    t1i: str | None = None,
    x2i: str | None = None,
    t2i: str | None = None,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    append: bool = True,
) -> pd.DataFrame:
    """Effect sizes and sampling variances from the columns of ``data`` (metafor's ``escalc``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study; never modified.
    measure : str
        metafor's code, a key of :data:`hiermodels.numerics.effect_sizes.MEASURES`: "MD",
        "SMD" (Hedges' g), "ROM" (log ratio of means), "COR", "ZCOR", "PR", "PLO", "IR",
        "IRLN", "IRR", "RR" (log risk ratio), "OR" (log odds ratio), "RD", "PETO".
    ai, bi, ci, di, n1i, n2i, m1i, sd1i, m2i, sd2i, ri, ni, xi, mi, ti, x1i, t1i, x2i, t2i : str
        The COLUMNS holding the measure's data, under metafor's argument names: ``ai, bi, ci,
        di`` (or ``ai, n1i, ci, n2i``) for 2x2 tables; ``m1i, sd1i, n1i, m2i, sd2i, n2i`` for
        means; ``ri, ni`` for correlations; ``xi, ni`` (or ``xi, mi``) for proportions;
        ``xi, ti`` for rates; ``x1i, t1i, x2i, t2i`` for rate ratios.
    add, to, drop00
        Continuity correction of count measures, as in metafor: ``add`` (default 1/2) is
        added to every cell of the tables ``to`` says ("only0": those with a zero cell,
        "all", "if0all", "none"); ``drop00=True`` makes studies without events (or only
        events) in both groups NaN.
    append : bool
        True: a copy of ``data`` with the columns added; False: only ``yi``, ``vi``, ``sei``.

    Returns
    -------
    pandas.DataFrame
        ``yi`` (the effect size), ``vi`` (its sampling variance) and ``sei = sqrt(vi)``, on
        the index of ``data``; ``attrs["measure"]`` holds the measure.

    Raises
    ------
    SpecError
        Unknown measure or ``to``, a column argument the measure does not take or lacks.
    DataError
        A missing column or value, text in a number column, negative or fractional counts,
        events above the group size, standard deviations, sizes or times <= 0, correlations
        outside (-1, 1): the message names the column, the rows and the fix.

    Examples
    --------
    >>> import hiermodels as hm
    >>> bcg = hm.effect_sizes(hm.datasets.load("bcg"), "RR", ai="tpos", bi="tneg",
    ...                       ci="cpos", di="cneg")
    >>> round(float(bcg.loc[0, "yi"]), 4), round(float(bcg.loc[0, "vi"]), 4)  # metafor
    (-0.8893, 0.3256)
    """
    data = to_pandas(data)
    _check_options(measure, add, to, drop00, append)
    named = {
        "ai": ai,
        "bi": bi,
        "ci": ci,
        "di": di,
        "n1i": n1i,
        "n2i": n2i,
        "m1i": m1i,
        "sd1i": sd1i,
        "m2i": m2i,
        "sd2i": sd2i,
        "ri": ri,
        "ni": ni,
        "xi": xi,
        "mi": mi,
        "ti": ti,
        "x1i": x1i,
        "t1i": t1i,
        "x2i": x2i,
        "t2i": t2i,
    }
    given = {arg: col for arg, col in named.items() if col is not None}
    for arg, col in given.items():
        if not isinstance(col, str):
            raise SpecError(
                f"{arg} names a column of the data (a string), got {col!r}; e.g. "
                f"{arg}='{arg}' if the column is called {arg!r}"
            )
    names = _columns_for(measure, list(given))
    columns = {arg: given[arg] for arg in names}
    require_columns(data, list(columns.values()))
    require_finite(data, list(columns.values()))
    values = _check_values(data, measure, columns)
    yi, vi = escalc(measure, add=add, to=to, drop00=drop00, **values)
    out = data.copy() if append else pd.DataFrame(index=data.index)
    out["yi"], out["vi"] = yi, vi
    out["sei"] = np.sqrt(vi)
    out.attrs["measure"] = measure
    return out
