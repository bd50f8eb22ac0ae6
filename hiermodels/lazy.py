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
3. per group, the sums of ``Z Z'``, ``Z X_c'``, ``Z y0`` and of ``W W'`` with
   ``W = (X_c, y0)``, ``y0 = y - X_c shift``: the marginal likelihood's sums, and what
   :meth:`~hiermodels.lazy_fit.AggregatedResult.no_pooling` needs.

Everything is the same arithmetic as the pandas path on the same numbers, summed in another
order (equal to ~1e-12 relative). The result is an :class:`AggregatedData`: a
:class:`~hiermodels.data.GroupedData` whose rows (``y``, ``X``, each factor's ``idx``) are
:class:`NotCollected`, so whatever needs them (``log_likelihood()``, ``ppc()``, ``save()``)
raises :class:`RowsNotCollectedError` instead of computing on something else. No PyMC here.

Supported: gaussian, one grouping column, population terms that are numeric (or boolean)
columns by name. Transform columns in the dask frame first (``ddf.assign(lx=np.log(ddf.x))``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hiermodels.columns import check_full_rank, check_names, sorted_levels
from hiermodels.data import (
    GroupedData,
    GroupFactor,
    PopulationDesign,
    factor_labels,
    population_columns,
    population_design,
)
from hiermodels.errors import DataError, RowsNotCollectedError, SpecError, format_rows
from hiermodels.formula import population_model
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

    n_obs = property(lambda self: self.counts)


@dataclass(frozen=True, eq=False)
class AggregatedData(GroupedData):
    """A :class:`~hiermodels.data.GroupedData` from :func:`collect`: names, design, factor and
    the sums; ``y``, ``X`` and ``row_labels`` are :class:`NotCollected`.

    ``sums`` holds ``n_obs``, ``means`` and ``sd_x`` (per term), ``mean_y``, ``sd_y``, and the
    fields of :class:`~hiermodels.builders.marginal.SufficientStatistics` (``XtX``, ``Xty``,
    ``yty``, ``ZtZ``, ``ZtX``, ``Zty``, ``shift``), plus ``gram`` (n_groups, p + 1, p + 1):
    each group's sums of ``W W'`` for ``W = (X_c, y0)``.
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
    if spec.se is not None or spec.trials is not None or spec.offset is not None:
        return False, "se, trials and offset columns are not yet summarized from a dask frame"
    if len(spec.groups) != 1 or len(spec.groups[0].columns) != 1:
        names = [g.name for g in spec.groups]
        return False, f"grouping factors {names}: the marginal engine takes one grouping column"
    return True, "gaussian outcome with one grouping column"


def _missing_rows(ddf, mask, count: int) -> str:
    """The labels of the first rows where ``mask`` holds (one more pass, on failure only)."""
    first = list(ddf.index[mask].head(8, npartitions=-1, compute=True))
    shown = format_rows(first)
    return f"{shown}, ... ({count} in all)" if count > len(first) else shown


def _first_pass(ddf, y: str, group: str, columns: list[str]):
    import dask

    numbers = [y, *columns]
    frame = ddf[[*numbers, group]]
    grouped = ddf[[group, *columns]].groupby(group, observed=True)
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


def _check_columns(ddf, spec: HierarchicalSpec, columns: list[str]) -> None:
    y, group = spec.y, spec.groups[0].columns[0]
    missing = [c for c in (y, group, *columns) if c not in ddf.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; available columns: "
            f"{', '.join(map(str, ddf.columns))}. Fix the name or add the column."
        )
    for col, what in [(y, "outcome"), *((c, "predictor") for c in columns)]:
        dtype = ddf.dtypes[col]
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise DataError(
                f"{what} column {col!r} is not numeric (dtype {dtype}); a dask frame is "
                "summarized from numeric columns only: convert it (dd.to_numeric) or code a "
                "category as 0/1 columns first"
            )


def _design(spec: HierarchicalSpec, model, columns, low, high, dtypes) -> PopulationDesign:
    """formulae's design of two rows (each column's minimum and maximum): all that encoding
    new rows needs when every term is a column by name."""
    where = f"formula {spec.formula!r}" if spec.formula is not None else "predictors"
    kinds = tuple("int" if pd.api.types.is_integer_dtype(dtypes[c]) else "float" for c in columns)
    frame = pd.DataFrame(
        {c: np.array([low[c], high[c]], dtype=float) for c in columns}, index=pd.RangeIndex(2)
    )
    for c, kind in zip(columns, kinds, strict=True):
        if kind == "int":
            frame[c] = frame[c].astype(np.int64)
    design = population_design(model, frame, kinds, (), where=where)
    if design.names != (INTERCEPT, *columns):
        odd = [n for n in design.names[1:] if n not in columns]
        raise SpecError(
            f"{where} has the term(s) {odd}; from a dask frame the population terms must be "
            "columns by name: add the transformed columns to the frame first, e.g. "
            "ddf.assign(log_z=np.log(ddf['z']))"
        )
    return design


def _levels(sizes: pd.Series, group: str, dtype) -> tuple[tuple, np.ndarray]:
    """The sorted levels as :func:`~hiermodels.data.prepare` labels and sorts them, and each
    distinct raw value's level code (equal labels, e.g. 1 and 1.0, share a level)."""
    raw = pd.DataFrame({group: pd.Series(sizes.index.to_numpy(), dtype=dtype)})
    labels = factor_labels(raw, (group,))
    levels = sorted_levels(raw, (group,), labels)
    return levels, pd.Index(levels).get_indexer(labels)


def _by_level(values: np.ndarray, codes: np.ndarray, n_levels: int) -> np.ndarray:
    out = np.zeros((n_levels, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


def _centred(part: pd.DataFrame, columns, means) -> np.ndarray:
    x = [part[c].to_numpy(dtype=float) - m for c, m in zip(columns, means[1:], strict=True)]
    return np.column_stack([np.ones(len(part)), *x])


def _gram_partition(part, y, columns, means, mean_y) -> pd.DataFrame:
    """One partition's sums of ``(X_c, y_c)(X_c, y_c)'`` (``y_c = y - mean(y)``), flattened
    into one row."""
    W = np.column_stack([_centred(part, columns, means), part[y].to_numpy(dtype=float) - mean_y])
    return pd.DataFrame((W.T @ W).reshape(1, -1))


def _group_partition(part, y, group, columns, means, shift, varying) -> pd.DataFrame:
    """One partition's per-group sums of ``Z Z'``, ``Z X_c'``, ``Z y0`` and ``W W'`` (the
    products of ``sufficient_statistics``), one row per raw group value."""
    Xc = _centred(part, columns, means)
    y0 = part[y].to_numpy(dtype=float) - Xc @ shift
    raw = np.column_stack([np.ones(len(part)), *(part[c].to_numpy(dtype=float) for c in columns)])
    Z = raw[:, varying]
    W = np.column_stack([Xc, y0])
    n, q, p = len(part), Z.shape[1], Xc.shape[1]
    products = np.concatenate(
        [
            (Z[:, :, None] * Z[:, None, :]).reshape(n, q * q),
            (Z[:, :, None] * Xc[:, None, :]).reshape(n, q * p),
            Z * y0[:, None],
            (W[:, :, None] * W[:, None, :]).reshape(n, (p + 1) ** 2),
        ],
        axis=1,
    )
    frame = pd.DataFrame(products, columns=[f"s{k}" for k in range(products.shape[1])])
    frame[group] = part[group].to_numpy()
    return frame.groupby(group, observed=True, sort=False).sum().reset_index()


def collect(ddf, spec: HierarchicalSpec) -> AggregatedData:
    """Check a dask DataFrame and summarize it for the marginal engine in three passes.

    Raises the named errors of :func:`hiermodels.data.prepare` for a missing column, missing
    or infinite values, a non-numeric or constant column, a single group, a constant outcome,
    collinear predictors and a varying term constant within every group (the row labels
    named on failure cost one more pass). ``spec`` must pass :func:`lazy_supported`.
    """
    ok, reason = lazy_supported(spec)
    if not ok:
        raise SpecError(f"a dask DataFrame cannot be summarized for this model: {reason}")
    grouping = spec.groups[0]
    y, group = spec.y, grouping.columns[0]
    model = population_model(spec.formula, tuple(spec.predictors))
    columns = list(population_columns(model))
    if y in columns or group in columns:
        raise SpecError("predictors must not contain the outcome or a grouping column; remove them")
    check_names(y, columns, [group], [grouping.name])
    _check_columns(ddf, spec, columns)
    nulls, infinite, sums, low, high, sizes, gmin, gmax = _first_pass(ddf, y, group, columns)
    for col in (y, group, *columns):
        if nulls[col]:
            rows = _missing_rows(ddf, ddf[col].isna(), int(nulls[col]))
            raise DataError(
                f"column {col!r} has {int(nulls[col])} missing value(s) ({rows}); drop or "
                f"impute them first, e.g. ddf.dropna(subset=[{col!r}])"
            )
    for col in (y, *columns):
        if infinite[col]:
            rows = _missing_rows(ddf, ddf[col].isin([np.inf, -np.inf]), int(infinite[col]))
            what = "outcome" if col == y else "predictor"
            raise DataError(
                f"{what} column {col!r} has infinite values ({rows}); remove those rows"
            )
    for col in columns:
        if low[col] == high[col]:
            raise DataError(
                f"predictor {col!r} is constant ({float(low[col]):g} in every row), so it cannot "
                "be told apart from the intercept; remove it"
            )
    design = _design(spec, model, columns, low, high, ddf.dtypes)
    terms = design.names
    levels, codes = _levels(sizes, group, ddf.dtypes[group])
    if len(levels) < 2:
        raise DataError(
            f"grouping factor {grouping.name!r} has a single group ({levels[0]!r}); a "
            "hierarchical model needs at least 2 groups per factor (drop this grouping term)"
        )
    J = len(levels)
    counts = _by_level(sizes.to_numpy(dtype=float), codes, J).astype(np.int64)
    group_level, group_values = [], []
    if columns:
        spread = gmax[columns].to_numpy(dtype=float) - gmin[columns].to_numpy(dtype=float)
        lowest = gmin[columns].to_numpy(dtype=float)
        for k, col in enumerate(columns):
            if np.all(spread[:, k] == 0):
                group_level.append(col)
                value = np.zeros(J)
                value[codes] = lowest[:, k]  # one value per group: any of its rows'
                group_values.append(value)
    varying = list(grouping.varying)
    unknown = [t for t in varying if t not in columns]
    if unknown:
        raise SpecError(
            f"varying term(s) {unknown} are not population terms; varying terms must also be "
            f"listed in predictors (now {columns})"
        )
    bad_varying = [t for t in varying if t in group_level]
    if bad_varying:
        raise SpecError(
            f"term(s) {bad_varying} are constant within every {grouping.name!r} group, so "
            "their slope cannot vary by group; keep them in predictors and remove them from "
            "the varying terms of this grouping"
        )
    varying = (INTERCEPT, *varying) if grouping.intercept else tuple(varying)
    n = int(sizes.sum())
    if high[y] == low[y]:
        raise DataError(
            f"outcome column {y!r} is constant ({float(low[y]):g} in every row): there is "
            "nothing to model and its SD is zero; check that you chose the right column"
        )
    means = np.array([0.0, *(sums[c] / n for c in columns)])
    mean_y = float(sums[y] / n)
    at = [terms.index(t) for t in varying]
    sums_out = _sums(ddf, y, group, columns, (means, mean_y), at, (sizes.index, codes, J))
    sums_out.update(
        n_obs=n,
        means=means,
        mean_y=mean_y,
        sd_x=np.array([1.0, *np.sqrt(np.diag(sums_out["XtX"])[1:] / n)]),
    )
    factor = AggregatedFactor(
        name=grouping.name,
        columns=(group,),
        levels=levels,
        idx=NotCollected(n, f"the {grouping.name!r} code of each row"),
        varying=varying,
        group_level=tuple(group_level),
        correlated=bool(grouping.correlated),
        counts=counts,
        group_values=np.column_stack(group_values) if group_values else np.empty((J, 0)),
    )
    return AggregatedData(
        y=NotCollected(n, f"outcome {y!r}"),
        y_name=y,
        X=NotCollected(n, "the population design"),
        terms=terms,
        factors=(factor,),
        row_labels=NotCollected(n, "row labels"),
        predictors=tuple(spec.predictors),
        design=design,
        sums=sums_out,
    )


def _sums(ddf, y, group, columns, centres, varying, levels) -> dict:
    """Passes 2 and 3: the global cross-products and ``shift``, then the per-group sums.
    ``centres`` is (column means, mean of y); ``levels`` (the distinct raw group values, their
    level codes, the number of levels)."""
    (means, mean_y), (raw, codes, J) = centres, levels
    p, q = len(columns) + 1, len(varying)
    meta = pd.DataFrame({k: pd.Series(dtype=float) for k in range((p + 1) ** 2)})
    parts = ddf.map_partitions(_gram_partition, y, columns, means, mean_y, meta=meta)
    G = parts.sum().compute().to_numpy(dtype=float).reshape(p + 1, p + 1)
    XtX = G[:p, :p]
    eigen, vectors = np.linalg.eigh(XtX)
    # X'X = R'R: R has the singular values and vectors of the centred design itself
    check_full_rank(np.sqrt(np.clip(eigen, 0, None))[:, None] * vectors.T, (INTERCEPT, *columns))
    # least squares on y = y_c + mean(y) * (the intercept column): the same fit, moved
    shift = np.linalg.solve(XtX, G[:p, p]) + mean_y * (np.arange(p) == 0)
    width = q * q + q * p + q + (p + 1) ** 2
    meta = pd.DataFrame({group: pd.Series(dtype=ddf.dtypes[group])})
    for k in range(width):
        meta[f"s{k}"] = pd.Series(dtype=float)
    parts = ddf.map_partitions(
        _group_partition, y, group, columns, means, shift, varying, meta=meta
    )
    by_raw = parts.groupby(group, observed=True).sum().compute()
    out = _by_level(by_raw.reindex(raw).to_numpy(dtype=float), codes, J)
    a, b, c = q * q, q * q + q * p, q * q + q * p + q
    gram = out[:, c:].reshape(J, p + 1, p + 1)
    total = gram.sum(axis=0)
    return {
        "XtX": XtX,
        "Xty": total[:p, p],
        "yty": float(total[p, p]),
        "ZtZ": out[:, :a].reshape(J, q, q),
        "ZtX": out[:, a:b].reshape(J, q, p),
        "Zty": out[:, b:c],
        "shift": shift,
        "gram": gram,
        "sd_y": float(np.sqrt(G[p, p] / (G[0, 0] - 1))),  # G[0, 0] = n >= 2 (two groups)
    }
