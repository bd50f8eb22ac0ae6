"""The marginal engine's sums from a dask DataFrame, computed where the rows are (issue 17).

A Gaussian model with one grouping factor needs of its data only per-group and global sums
(:mod:`hiermodels.builders.marginal`), the mean and SD of ``y`` and of each predictor (the
data-scaled priors, :mod:`hiermodels.defaults`), the group levels and counts. For a dask
DataFrame, :func:`collect` computes them with dask's own reductions and group-by in three
passes, so no row reaches the driver (which may then be a laptop and the rows on a cluster):

1. counts of missing and infinite values, sums, minima and maxima per column, and per group
   the row count and the minimum and maximum of each predictor (levels, group-level
   predictors, the checks :func:`hiermodels.data.prepare` makes);
2. the cross-products of the centred design ``X_c`` (columns ``1, x_k - mean(x_k)``) and
   ``y``, which give the least squares ``shift`` as ``sufficient_statistics`` takes it;
3. per group (per cell of the grouping columns), the sums of ``Z Z'``, ``Z X_c'``, ``Z y0``
   (one factor only) and of ``W W'`` with
   ``W = (X_c, y0)``, ``y0 = y - X_c shift``: the marginal likelihood's sums, and what
   :meth:`~hiermodels.lazy_fit.AggregatedResult.no_pooling` needs.

Everything is the same arithmetic as the pandas path on the same numbers, summed in another
order (equal to ~1e-12 relative). The result is an :class:`AggregatedData`: a
:class:`~hiermodels.data.GroupedData` whose rows (``y``, ``X``, each factor's ``idx``) are
:class:`NotCollected`, so whatever needs them (``log_likelihood()``, ``ppc()``, ``save()``)
raises :class:`RowsNotCollectedError` instead of computing on something else. No PyMC here.

Supported: gaussian, one grouping factor or two nested ones, population terms that are
columns by name: numeric (or boolean), or text / categorical, coded as the pandas path codes
them (treatment dummies ``k[b]``, ``k[c]``, the first sorted level the reference); their
levels take one more pass first, and each partition is coded by
:func:`~hiermodels.lazy_partitions.encoded_partition` before the sums. With two grouping
factors they must nest (a class within one school: ``(1 | school/class)``, or class labels
unique across schools); the sums are then per (school, class) cell, added up per inner group
as for a pandas frame (:func:`hiermodels.builders.marginal_nested.nested_from_gram`).
An ``offset`` column enters as ``y - offset``; known standard errors (``se``, without
``sigma``) weight every sum by ``1 / se^2``, as ``sufficient_statistics`` does for pandas.
Transform columns in the dask frame first (``ddf.assign(lx=np.log(ddf.x))``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiermodels.columns import check_full_rank, check_names, level_labels, sorted_levels
from hiermodels.data import (
    GroupedData,
    GroupFactor,
    PopulationDesign,
    expand_varying,
    factor_labels,
    population_columns,
    population_design,
)
from hiermodels.errors import DataError, RowsNotCollectedError, SpecError, format_rows
from hiermodels.formula import population_model
from hiermodels.lazy_partitions import encoded_partition, gram_partition, group_partition
from hiermodels.names import INTERCEPT
from hiermodels.spec import HierarchicalSpec

__all__ = [
    "AggregatedData",
    "AggregatedFactor",
    "NotCollected",
    "RowsNotCollectedError",
    "collect",
    "is_dask_frame",
    "lazy_supported",
]


class NotCollected:
    """Stands for the rows of a dask frame, which never reach the driver: ``len()`` is the
    number of rows; any use of the values raises :class:`RowsNotCollectedError`."""

    def __init__(self, n: int, what: str):
        self._n, self._what = n, what

    def __len__(self) -> int:
        return self._n

    def _refuse(self, *args, **kwargs):
        raise RowsNotCollectedError(
            f"this needs the {self._n} rows ({self._what}) of the dask DataFrame the model was "
            "fitted from, and only per-group sums were collected; fit a sample of rows "
            "(ddf.sample(frac=...).compute()) with pandas for row-level results (log "
            "likelihood, LOO, posterior predictive checks, residuals, save)"
        )

    __array__ = __getitem__ = __iter__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __neg__ = __float__ = _refuse

    def __repr__(self) -> str:
        return f"<{self._n} rows ({self._what}) not collected>"


@dataclass(frozen=True, eq=False)
class AggregatedFactor(GroupFactor):
    """A :class:`~hiermodels.data.GroupFactor` known from aggregates: ``counts`` (rows per
    level) and ``group_values`` ((n_groups, len(group_level)), each group-level predictor's
    value per level) stand in for the row codes ``idx``, which are :class:`NotCollected`."""

    counts: np.ndarray | None = None
    group_values: np.ndarray | None = None
    cells: np.ndarray | None = None

    n_obs = property(lambda self: self.counts)

    def parents(self, outer: GroupFactor) -> np.ndarray | None:
        """(n_groups,) the level of ``outer`` each level of this factor lies in, or None if
        some level spans several (crossed factors). Read from ``cells``, this factor's
        level code of each distinct combination of the grouping columns' values (the same
        combinations for every factor of the data), as ``_parents`` of
        :mod:`hiermodels.builders.marginal_nested` reads the row codes."""
        theirs = getattr(outer, "cells", None)
        if self.cells is None or theirs is None:
            return None
        parent = np.full(self.n_groups, -1)
        parent[self.cells] = theirs
        return None if np.any(parent[self.cells] != theirs) else parent


@dataclass(frozen=True, eq=False)
class AggregatedData(GroupedData):
    """A :class:`~hiermodels.data.GroupedData` from :func:`collect`: names, design, factor and
    the sums; ``y``, ``X`` and ``row_labels`` are :class:`NotCollected`.

    ``sums`` holds ``n_obs``, ``means`` and ``sd_x`` (per term), ``mean_y``, ``sd_y`` (of
    ``y`` itself, as ``Family.scale`` for the identity link), and the fields of
    :class:`~hiermodels.builders.marginal.SufficientStatistics` (``XtX``, ``Xty``, ``yty``,
    ``ZtZ``, ``ZtX``, ``Zty``, ``shift``, ``sum_log_var``), plus ``gram`` (n_groups, p + 1,
    p + 1): each group's sums of ``W W'`` for ``W = (X_c, y0)``; with an offset ``y0`` is
    ``y - offset - X_c shift``, and with known standard errors every sum is weighted by
    ``1 / se^2``. ``offset`` and ``se`` are :class:`NotCollected` when given.
    """

    sums: dict | None = None

    def scales(self) -> tuple[float, float, dict[str, float]]:
        """What :func:`hiermodels.defaults.data_scales` gives for the rows, from the sums:
        ``(mean(y), sd(y), {term: sd(x)})``, ``sd(y)`` with ddof 1 and ``sd(x)`` with ddof 0
        (1 for the intercept), for the data-scaled priors and the standardizing."""
        s = self.sums
        sd_y = s["sd_y"] if s["sd_y"] > 0 else 1.0  # as Family.scale: collect refuses sd 0
        sd_x = {t: float(v) for t, v in zip(self.terms, s["sd_x"], strict=True)}
        return float(s["mean_y"]), float(sd_y), sd_x


def is_dask_frame(data) -> bool:
    """Whether ``data`` is a dask DataFrame (without importing dask)."""
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "npartitions")


def lazy_supported(spec: HierarchicalSpec) -> tuple[bool, str]:
    """Whether :func:`collect` can summarize this model, and if not, why (before any pass)."""
    if spec.family != "gaussian":
        return False, f"family {spec.family!r}: the group effects integrate out for 'gaussian' only"
    if spec.trials is not None:
        return False, "a trials column belongs to a binomial outcome, not 'gaussian'"
    if spec.se is not None and spec.se_sigma:
        return False, (
            "se with sigma=True weights each row by 1 / (se^2 + sigma^2), which changes with "
            "sigma, so the sums are not fixed: fit without sigma, or .compute() the frame"
        )
    if len(spec.groups) not in (1, 2):
        names = [g.name for g in spec.groups]
        return False, (
            f"grouping factors {names}: the marginal engine takes one grouping factor or two "
            "nested ones"
        )
    if len(spec.groups) == 2:
        return True, "gaussian outcome with two grouping factors (they must nest)"
    return True, "gaussian outcome with one grouping factor"


def _missing_rows(ddf, mask, count: int) -> str:
    """The labels of the first rows where ``mask`` holds (one more pass, on failure only)."""
    first = list(ddf.index[mask].head(8, npartitions=-1, compute=True))
    shown = format_rows(first)
    return f"{shown}, ... ({count} in all)" if count > len(first) else shown


def _first_pass(ddf, y: str, cells: list[str], columns: list[str], extras: list[str]):
    import dask

    numbers = [y, *extras, *columns]
    frame = ddf[[*numbers, *cells]]
    grouped = ddf[[*cells, *columns]].groupby(cells, observed=True)
    return dask.compute(
        frame.isna().sum(),
        frame[numbers].isin([np.inf, -np.inf]).sum(),
        frame[numbers].astype(float).sum(),
        frame[numbers].min(),
        frame[numbers].max(),
        grouped.size(),
        grouped[columns].min() if columns else None,
        grouped[columns].max() if columns else None,
    )


def _check_columns(ddf, spec: HierarchicalSpec, cells: list[str], columns: list[str]) -> list[str]:
    """Refuse missing and non-numeric columns; return the predictors to code as categories
    (text, categorical or object columns). ``cells`` are the grouping columns."""
    y = spec.y
    extras = [c for c in (spec.offset, spec.se) if c is not None]
    missing = [c for c in (y, *cells, *extras, *columns) if c not in ddf.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; available columns: "
            f"{', '.join(map(str, ddf.columns))}. Fix the name or add the column."
        )
    text = []
    roles = [(y, "outcome"), (spec.offset, "offset"), (spec.se, "standard error")]
    roles += [(c, "predictor") for c in columns]
    for col, what in [(c, w) for c, w in roles if c is not None]:
        dtype = ddf.dtypes[col]
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        if what == "predictor" and not pd.api.types.is_datetime64_any_dtype(dtype):
            text.append(col)
            continue
        raise DataError(
            f"{what} column {col!r} is not numeric (dtype {dtype}); convert it first "
            f"(dd.to_numeric(ddf[{col!r}]), or numbers from the dates)"
        )
    return text


def _categories(ddf, text: list[str]) -> dict[str, tuple[str, ...]]:
    """Each text predictor's sorted levels, as :func:`hiermodels.data.prepare` labels and
    sorts them (one pass: the distinct values and their counts), with its checks."""
    import dask

    if not text:
        return {}
    nulls, *counts = dask.compute(ddf[text].isna().sum(), *(ddf[c].value_counts() for c in text))
    out = {}
    for col, count in zip(text, counts, strict=True):
        if nulls[col]:
            rows = _missing_rows(ddf, ddf[col].isna(), int(nulls[col]))
            raise DataError(
                f"column {col!r} has {int(nulls[col])} missing value(s) ({rows}); drop or "
                f"impute them first, e.g. ddf.dropna(subset=[{col!r}])"
            )
        count = count[count.to_numpy(dtype=float) > 0]  # a categorical's unused categories
        values = pd.Series(count.index)  # the column's dtype (a categorical's: its categories)
        if not isinstance(values.dtype, pd.CategoricalDtype):
            # as check_text_predictor: mostly numbers stored as text is a typo, not a category
            as_num = pd.to_numeric(values.astype(object), errors="coerce")
            share = count.to_numpy(dtype=float)[as_num.isna().to_numpy()].sum() / count.sum()
            if share <= 0.2 and len(values) > 2:
                raise DataError(
                    f"predictor column {col!r} looks numeric but has dtype {values.dtype}: "
                    f"{1 - share:.0%} of its rows are numbers stored as text. Fix the others "
                    f"and convert with dd.to_numeric(ddf[{col!r}]); if it really is a "
                    f"category, make that explicit with ddf[{col!r}].astype('category')"
                )
        levels = sorted_levels(pd.DataFrame({col: values}), [col], level_labels(values))
        if len(levels) < 2:
            raise DataError(
                f"predictor {col!r} has a single category ({levels[0]!r}); "
                "remove it from predictors"
            )
        out[col] = levels
    return out


def _design(spec: HierarchicalSpec, model, columns, low, high, dtypes, levels) -> PopulationDesign:
    """formulae's design of a few rows (each numeric column's minimum and maximum, each text
    column's ``levels`` in turn): all that encoding new rows needs when every term is a
    column by name."""
    where = f"formula {spec.formula!r}" if spec.formula is not None else "predictors"
    n = max(2, *(len(v) for v in levels.values())) if levels else 2
    values, kinds = {}, []
    for c in columns:
        if c in levels:
            values[c] = pd.Categorical(np.resize(levels[c], n), categories=levels[c], ordered=True)
            kinds.append("category")
        elif pd.api.types.is_integer_dtype(dtypes[c]):
            values[c] = np.resize(np.array([low[c], high[c]], dtype=np.int64), n)
            kinds.append("int")
        else:
            values[c] = np.resize(np.array([low[c], high[c]], dtype=float), n)
            kinds.append("float")
    frame = pd.DataFrame(values, index=pd.RangeIndex(n))
    categories = tuple((c, levels[c]) for c in columns if c in levels)
    design = population_design(model, frame, tuple(kinds), categories, where=where)
    expected = [[c] if c not in levels else [f"{c}[{v}]" for v in levels[c][1:]] for c in columns]
    if design.names != (INTERCEPT, *(name for names in expected for name in names)):
        odd = [n for n in design.names[1:] if all(n not in names for names in expected)]
        raise SpecError(
            f"{where} has the term(s) {odd}; from a dask frame the population terms must be "
            "columns by name: add the transformed columns to the frame first, e.g. "
            "ddf.assign(log_z=np.log(ddf['z']))"
        )
    return design


def _cell_frame(sizes: pd.Series, cells: list[str], dtypes) -> pd.DataFrame:
    """The distinct combinations of the grouping columns' values (the group-by's index), one
    row each, in the columns' own dtypes."""
    index = sizes.index
    return pd.DataFrame(
        {
            c: pd.Series(index.get_level_values(k).to_numpy(), dtype=dtypes[c])
            for k, c in enumerate(cells)
        }
    )


def _levels(raw: pd.DataFrame, columns) -> tuple[tuple, np.ndarray]:
    """A factor's sorted levels as :func:`~hiermodels.data.prepare` labels and sorts them,
    and the level code of each combination of ``raw`` (equal labels, e.g. 1 and 1.0, share a
    level; a factor of several columns is labelled by its values joined by ``:``)."""
    labels = factor_labels(raw, tuple(columns))
    levels = sorted_levels(raw, tuple(columns), labels)
    return levels, pd.Index(levels).get_indexer(labels)


def _by_level(values: np.ndarray, codes: np.ndarray, n_levels: int) -> np.ndarray:
    out = np.zeros((n_levels, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


def collect(ddf, spec: HierarchicalSpec) -> AggregatedData:
    """Check a dask DataFrame and summarize it for the marginal engine in three passes.

    Raises the named errors of :func:`hiermodels.data.prepare` for a missing column, missing
    or infinite values, a non-numeric or constant column, a single group, a constant outcome,
    collinear predictors and a varying term constant within every group (the row labels
    named on failure cost one more pass), and a :class:`DataError` for two crossed factors.
    ``spec`` must pass :func:`lazy_supported`.

    With two factors the sums are per distinct combination of the grouping columns' values
    (a cell: a class of a school), ``sums["cell_gram"]``, and each factor's ``cells`` gives
    its level of each; :mod:`hiermodels.lazy_fit` adds them up per inner group.
    """
    ok, reason = lazy_supported(spec)
    if not ok:
        raise SpecError(f"a dask DataFrame cannot be summarized for this model: {reason}")
    y, groupings = spec.y, spec.groups
    cells = list(dict.fromkeys(c for g in groupings for c in g.columns))
    model = population_model(spec.formula, tuple(spec.predictors))
    columns = list(population_columns(model))
    if y in columns or any(c in columns for c in cells):
        raise SpecError("predictors must not contain the outcome or a grouping column; remove them")
    check_names(y, columns, cells, [g.name for g in groupings])
    levels = _categories(ddf, _check_columns(ddf, spec, cells, columns))
    numeric = [c for c in columns if c not in levels]
    dummies = [(f"{c}[{v}]", c, v) for c in columns if c in levels for v in levels[c][1:]]
    extras = [c for c in (spec.offset, spec.se) if c is not None]
    if dummies:
        # the dummies are summed like numeric columns: the frame below carries them
        keep = [y, *cells, *extras, *numeric]
        meta = ddf._meta[keep].assign(**{d: pd.Series(dtype=float) for d, *_ in dummies})
        ddf = ddf.map_partitions(encoded_partition, keep, dummies, meta=meta)
    coded = [*numeric, *(d for d, *_ in dummies)]
    first = _first_pass(ddf, y, cells, coded, extras)
    nulls, infinite, sums, low, high, sizes, gmin, gmax = first
    for col in (y, *cells, *extras, *numeric):
        if nulls[col]:
            rows = _missing_rows(ddf, ddf[col].isna(), int(nulls[col]))
            raise DataError(
                f"column {col!r} has {int(nulls[col])} missing value(s) ({rows}); drop or "
                f"impute them first, e.g. ddf.dropna(subset=[{col!r}])"
            )
    what = {y: "outcome", spec.offset: "offset", spec.se: "standard error"}
    for col in (y, *extras, *numeric):
        if infinite[col]:
            rows = _missing_rows(ddf, ddf[col].isin([np.inf, -np.inf]), int(infinite[col]))
            raise DataError(
                f"{what.get(col, 'predictor')} column {col!r} has infinite values ({rows}); "
                "remove those rows"
            )
    if spec.se is not None and low[spec.se] <= 0:
        bad = ddf[spec.se] <= 0
        rows = _missing_rows(ddf, bad, int(bad.sum().compute()))
        raise DataError(
            f"standard error column {spec.se!r} has value(s) <= 0 ({rows}); standard errors "
            "must be positive (a variance vi gives se = sqrt(vi))"
        )
    for col in numeric:
        if low[col] == high[col]:
            raise DataError(
                f"predictor {col!r} is constant ({float(low[col]):g} in every row), so it cannot "
                "be told apart from the intercept; remove it"
            )
    design = _design(spec, model, columns, low, high, ddf.dtypes, levels)
    terms = design.names
    columns = list(terms[1:])  # the design columns, dummies in place of text columns
    raw = _cell_frame(sizes, cells, ddf.dtypes)
    if columns:  # row for row with the sizes (group-bys need not return one order)
        gmin, gmax = gmin.reindex(sizes.index), gmax.reindex(sizes.index)
    per_cell = (sizes.to_numpy(dtype=float), gmin, gmax, columns)
    factors = [_factor(g, raw, per_cell, spec, design) for g in groupings]
    if len(factors) == 2:
        _check_nested(*factors)
    n = int(sizes.sum())
    if high[y] == low[y]:
        raise DataError(
            f"outcome column {y!r} is constant ({float(low[y]):g} in every row): there is "
            "nothing to model and its SD is zero; check that you chose the right column"
        )
    means = np.array([0.0, *(sums[c] / n for c in columns)])
    mean_y = float(sums[y] / n)
    mean_t = mean_y - (float(sums[spec.offset] / n) if spec.offset is not None else 0.0)
    # one factor: its Z sums per cell; two: only W W' per cell (lazy_fit derives the rest)
    at = [terms.index(t) for t in factors[0].varying] if len(factors) == 1 else []
    outcome = (y, spec.offset, spec.se)
    centres = (means, mean_y, mean_t)
    sums_out, per_cell = _sums(ddf, outcome, cells, columns, centres, at, sizes.index)
    if len(factors) == 1:
        sums_out |= _factor_sums(per_cell, factors[0], len(at), len(columns) + 1)
    else:
        p = len(columns) + 1
        sums_out["cell_gram"] = per_cell.reshape(len(raw), p + 1, p + 1)
    sums_out.update(n_obs=n, means=means, mean_y=mean_y)
    return AggregatedData(
        y=NotCollected(n, f"outcome {y!r}"),
        y_name=y,
        X=NotCollected(n, "the population design"),
        terms=terms,
        factors=tuple(factors),
        row_labels=NotCollected(n, "row labels"),
        predictors=tuple(spec.predictors),
        design=design,
        offset=None if spec.offset is None else NotCollected(n, f"offset {spec.offset!r}"),
        offset_name=spec.offset,
        se=None if spec.se is None else NotCollected(n, f"standard errors {spec.se!r}"),
        se_name=spec.se,
        sums=sums_out,
    )


def _factor(grouping, raw: pd.DataFrame, per_cell, spec, design) -> AggregatedFactor:
    """One grouping factor from the cells' sizes and the predictors' minima and maxima per
    cell (``per_cell``), with :func:`hiermodels.data.prepare`'s checks: two levels or more,
    no varying term constant within every level."""
    sizes, gmin, gmax, columns = per_cell
    levels, codes = _levels(raw, grouping.columns)
    if len(levels) < 2:
        raise DataError(
            f"grouping factor {grouping.name!r} has a single group ({levels[0]!r}); a "
            "hierarchical model needs at least 2 groups per factor (drop this grouping term)"
        )
    J = len(levels)
    group_level, group_values = [], []
    if columns:
        lowest = np.full((J, len(columns)), np.inf)
        highest = np.full((J, len(columns)), -np.inf)
        np.minimum.at(lowest, codes, gmin[columns].to_numpy(dtype=float))
        np.maximum.at(highest, codes, gmax[columns].to_numpy(dtype=float))
        for k, col in enumerate(columns):
            if np.all(highest[:, k] == lowest[:, k]):
                group_level.append(col)
                group_values.append(lowest[:, k])  # one value per level: any of its rows'
    varying = expand_varying(grouping.varying, spec.predictors, design)
    bad_varying = [t for t in varying if t in group_level]
    if bad_varying:
        raise SpecError(
            f"term(s) {bad_varying} are constant within every {grouping.name!r} group, so "
            "their slope cannot vary by group; keep them in predictors and remove them from "
            "the varying terms of this grouping"
        )
    n = int(sizes.sum())
    return AggregatedFactor(
        name=grouping.name,
        columns=tuple(grouping.columns),
        levels=levels,
        idx=NotCollected(n, f"the {grouping.name!r} code of each row"),
        varying=(INTERCEPT, *varying) if grouping.intercept else tuple(varying),
        group_level=tuple(group_level),
        correlated=bool(grouping.correlated),
        counts=_by_level(sizes, codes, J).astype(np.int64),
        group_values=np.column_stack(group_values) if group_values else np.empty((J, 0)),
        cells=codes,
    )


def _check_nested(a: AggregatedFactor, b: AggregatedFactor) -> None:
    """Refuse two crossed factors (some level of each lies in several levels of the other),
    naming a level of the one with more levels that does."""
    if a.parents(b) is not None or b.parents(a) is not None:
        return
    inner, outer = (a, b) if a.n_groups >= b.n_groups else (b, a)
    pairs = pd.DataFrame({"inner": inner.cells, "outer": outer.cells}).drop_duplicates()
    spans = pairs.groupby("inner")["outer"].agg(list)
    level, where = next((k, v) for k, v in spans.items() if len(v) > 1)
    shown = ", ".join(repr(outer.levels[k]) for k in sorted(where)[:3])
    raise DataError(
        f"grouping factors {[a.name, b.name]} are crossed, not nested: level "
        f"{inner.levels[level]!r} of {inner.name!r} has rows in {len(where)} levels of "
        f"{outer.name!r} ({shown}{', ...' if len(where) > 3 else ''}); a dask DataFrame is "
        "fitted by the marginal engine, which takes nested factors only. Give each inner "
        "level a label unique across the outer ones if they are nested, e.g. (1 | school/class), "
        "or fit crossed factors with pandas (ddf.compute()) and engine='full'"
    )


def _factor_sums(per_cell: np.ndarray, factor: AggregatedFactor, q: int, p: int) -> dict:
    """One factor's per-level sums from the per-cell ones
    (:func:`~hiermodels.lazy_partitions.group_partition`)."""
    J = factor.n_groups
    out = _by_level(per_cell, factor.cells, J)
    a, b, c = q * q, q * q + q * p, q * q + q * p + q
    gram = out[:, c:].reshape(J, p + 1, p + 1)
    return {
        "ZtZ": out[:, :a].reshape(J, q, q),
        "ZtX": out[:, a:b].reshape(J, q, p),
        "Zty": out[:, b:c],
        "gram": gram,
    }


def _sums(ddf, outcome, cells, columns, centres, varying, raw) -> tuple[dict, np.ndarray]:
    """Passes 2 and 3: the global cross-products and ``shift``, then the sums per cell
    (:func:`~hiermodels.lazy_partitions.group_partition`) in the order of ``raw``, the
    distinct combinations of the grouping columns ``cells``. ``outcome`` is the columns
    ``(y, offset, se)``; ``centres`` (column means, mean of y, mean of y - offset);
    ``varying`` the positions of the varying terms in the design."""
    means, mean_y, mean_t = centres
    p = len(columns) + 1
    meta = pd.DataFrame({k: pd.Series(dtype=float) for k in range((p + 1) ** 2 + p + 2)})
    parts = ddf.map_partitions(gram_partition, outcome, columns, means, (mean_y, mean_t), meta=meta)
    total = parts.sum().compute().to_numpy(dtype=float)
    G = total[: (p + 1) ** 2].reshape(p + 1, p + 1)
    squares, (syy, sum_log_var) = total[(p + 1) ** 2 : -2], total[-2:]
    n = squares[0]  # the intercept column's sum of squares
    XtX = G[:p, :p]
    eigen, vectors = np.linalg.eigh(XtX)
    # X'X = R'R: R has the singular values and vectors of the centred design itself
    check_full_rank(np.sqrt(np.clip(eigen, 0, None))[:, None] * vectors.T, (INTERCEPT, *columns))
    # least squares on y = y_c + mean(y) * (the intercept column): the same fit, moved
    shift = np.linalg.solve(XtX, G[:p, p]) + mean_t * (np.arange(p) == 0)
    q = len(varying)
    width = q * q + q * p + q + (p + 1) ** 2
    meta = pd.DataFrame({c: pd.Series(dtype=ddf.dtypes[c]) for c in cells})
    for k in range(width):
        meta[f"s{k}"] = pd.Series(dtype=float)
    parts = ddf.map_partitions(
        group_partition, outcome, cells, columns, means, shift, varying, meta=meta
    )
    by_cell = parts.groupby(cells, observed=True).sum().compute()
    per_cell = by_cell.reindex(raw).to_numpy(dtype=float)
    gram = per_cell[:, q * q + q * p + q :].reshape(-1, p + 1, p + 1)
    total = gram.sum(axis=0)
    out = {
        "XtX": XtX,
        "Xty": total[:p, p],
        "yty": float(total[p, p]),
        "shift": shift,
        "sd_y": float(np.sqrt(syy / (n - 1))),  # n >= 2 (two groups)
        "sd_x": np.array([1.0, *np.sqrt(squares[1:] / n)]),  # ddof 0, unweighted
        "sum_log_var": float(sum_log_var),
    }
    return out, per_cell
