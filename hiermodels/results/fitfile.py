"""Save a fitted hierarchical model to netCDF and load it back.

The file is the result's ArviZ ``DataTree`` (posterior, sample_stats, ...) written with
``DataTree.to_netcdf``, plus:

* a group ``hiermodels_data`` with the encoded data the result needs to summarize and predict:
  ``y``, the design ``X`` (dims ``obs``, ``term``), ``group_idx`` (dims ``obs``, ``factor``:
  each row's level code per grouping factor), ``design_data`` (dims ``obs``,
  ``data_column``: the training values of the columns the population terms read, text as
  level codes, from which formulae's design, and with it the encoding of new rows such as the
  mean and SD of ``scale(x)``, is rebuilt on load) and, when used, ``trials``, ``offset`` and
  ``se`` (the known standard errors of a meta-analysis);
* root attributes: ``hiermodels_format`` (= ``"hiermodels.fit"``), ``hiermodels_format_version``,
  ``hiermodels_version``, and JSON strings ``hiermodels_spec`` (the keywords of the fit:
  outcome, grouping terms, predictors, family, parameterization, hyperprior, priors, the
  standard-error column ``se`` and ``se_sigma``), ``hiermodels_encoding`` (per grouping factor
  its columns, levels, varying terms and group-level predictors; terms; the population
  columns, their kinds and text levels; ``se_name``)
  and ``hiermodels_priors`` (every prior used, by name).

Any netCDF reader sees the draws; :func:`read` checks every field and returns the parts, from
which :func:`hiermodels.load` rebuilds the result, including its PyMC model.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hiermodels import priors as priors_module
from hiermodels._version import __version__
from hiermodels.data import GroupedData, GroupFactor, population_design
from hiermodels.defaults import ResolvedPrior
from hiermodels.errors import DataError, HierModelsError, SpecError
from hiermodels.formula import population_model
from hiermodels.priors import Prior
from hiermodels.spec import Grouping, HierarchicalSpec

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "FitParts",
    "check_posterior",
    "check_writable",
    "read",
    "save",
]

FORMAT = "hiermodels.fit"
FORMAT_VERSION = 4  # bump when a file written now could not be read by the old loader
# 2: several grouping factors (spec "groups", encoding "factors", group_idx (obs, factor))
# 3: formulae designs (design_data (obs, data_column), encoding "population", groups'
#    "intercept"; zero grouping factors)
# 4: known standard errors (spec "se", "se_sigma", encoding "se_name", variable se): a format-3
#    loader would read a fit with se= and sigma=True as one without known errors, silently
READABLE_VERSIONS = (3, 4)  # a format-3 file is a format-4 one without known standard errors
DATA_GROUP = "hiermodels_data"


def _prior_to_json(prior: Prior) -> dict:
    return {
        "family": type(prior).__name__,
        **{f.name: getattr(prior, f.name) for f in fields(prior)},
    }


def save(result, path) -> Path:
    """Write ``result`` to ``path`` (netCDF4); see the module docstring for the layout.

    Raises :class:`DataError` when ``path`` cannot be written (its directory does not exist,
    it is a directory, no permission, disk full), saying which.
    """

    path = check_writable(path, example="fit.nc")
    d, spec = result.data, result.spec
    design = d.design
    idx = [f.idx for f in d.factors]
    values = [
        design.frame[c].cat.codes if k == "category" else design.frame[c]
        for c, k in zip(design.columns, design.kinds, strict=True)
    ]
    n = len(d.y)
    variables = {
        "y": (("obs",), d.y),
        "X": (("obs", "term"), d.X),
        "group_idx": (("obs", "factor"), np.column_stack(idx) if idx else np.empty((n, 0), int)),
        "design_data": (
            ("obs", "data_column"),
            np.column_stack(values).astype(float) if values else np.empty((n, 0)),
        ),
    }
    if d.trials is not None:
        variables["trials"] = (("obs",), d.trials)
    if d.offset is not None:
        variables["offset"] = (("obs",), d.offset)
    if d.se is not None:
        variables["se"] = (("obs",), d.se)
    data = xr.Dataset(
        variables,
        coords={
            "term": list(d.terms),
            "factor": [f.name for f in d.factors],
            "data_column": list(design.columns),
        },
    )
    hyperprior = spec.hyperprior
    spec_json = {
        "y": spec.y,
        "groups": [
            {
                "name": g.name,
                "columns": list(g.columns),
                "varying": list(g.varying),
                "correlated": g.correlated,
                "intercept": g.intercept,
            }
            for g in spec.groups
        ],
        "predictors": list(spec.predictors),
        "parameterization": spec.parameterization
        if isinstance(spec.parameterization, str)
        else dict(spec.parameterization),
        "hyperprior": hyperprior if isinstance(hyperprior, str) else _prior_to_json(hyperprior),
        "lkj_eta": spec.lkj_eta,
        "priors": {k: _prior_to_json(v) for k, v in spec.priors},
        "family": spec.family,
        "trials": spec.trials,
        "offset": spec.offset,
        "formula": spec.formula,
        "se": spec.se,
        "se_sigma": spec.se_sigma,
    }
    encoding = {
        "y_name": d.y_name,
        "terms": list(d.terms),
        "factors": [
            {
                "name": f.name,
                "columns": list(f.columns),
                "levels": list(f.levels),
                "varying": list(f.varying),
                "group_level": list(f.group_level),
                "correlated": f.correlated,
            }
            for f in d.factors
        ],
        "predictors": list(d.predictors),
        "population": {
            "columns": list(design.columns),
            "kinds": list(design.kinds),
            "categories": {k: list(v) for k, v in design.categories},
        },
        "trials_name": d.trials_name,
        "offset_name": d.offset_name,
        "se_name": d.se_name,
        "row_labels": [str(r) for r in d.row_labels],
    }
    resolved = {
        k: {"prior": _prior_to_json(r.prior), "role": r.role, "rule": r.rule}
        for k, r in result.priors.items()
    }
    tree = result.idata.copy()
    tree[DATA_GROUP] = xr.DataTree(data)
    tree.attrs = {
        **{k: v for k, v in tree.attrs.items() if isinstance(v, str | int | float)},
        "hiermodels_format": FORMAT,
        "hiermodels_format_version": FORMAT_VERSION,
        "hiermodels_version": __version__,
        "hiermodels_spec": json.dumps(spec_json),
        "hiermodels_encoding": json.dumps(encoding),
        "hiermodels_priors": json.dumps(resolved),
        "hiermodels_diagnostics": json.dumps(list(result.diagnostics)),
    }
    existed = path.exists()
    try:
        tree.to_netcdf(path)
    except OSError as error:
        # the netCDF library reports most failures as "Permission denied"; the checks above
        # ruled out the usual causes, so what is left is the system's own reason
        if not existed:
            path.unlink(missing_ok=True)  # no half-written file that hm.load would reject
        raise DataError(
            f"cannot write {str(path)!r}: {error.strerror or error}; check the disk space and "
            "permissions, or save to another path"
        ) from None
    return path


def check_writable(path, *, example: str) -> Path:
    """``path`` as a ``Path`` if a file can be written there, else a :class:`DataError`.

    Checked before any work (a fit, a plot), so a bad path is reported at once and with its
    real reason: the directory does not exist, the path is a directory, no permission.
    ``example`` is a file name to suggest when ``path`` is a directory.
    """
    path = Path(path)
    shown = str(path)
    if path.is_dir():
        raise DataError(
            f"cannot write {shown!r}: it is a directory; give a file name, "
            f"e.g. {str(path / example)!r}"
        )
    folder = path.parent
    if not folder.exists():
        raise DataError(
            f"cannot write {shown!r}: directory {str(folder)!r} does not exist; create it "
            f"(mkdir -p {folder}) or choose another path"
        )
    if not folder.is_dir():
        raise DataError(
            f"cannot write {shown!r}: {str(folder)!r} is a file, not a directory; "
            "choose another path"
        )
    try:
        # a real trial, not os.access: that says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DataError(
            f"cannot write {shown!r}: directory {str(folder)!r} is not writable "
            f"({error.strerror or error}); choose another directory"
        ) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(f"cannot write {shown!r}: the file exists and is read-only")
    return path


@dataclass(frozen=True, eq=False)
class FitParts:
    """What a fit file holds, every field checked: the DataTree without the data group, the
    encoded data, the spec, the priors and the diagnostics; ``file`` and ``posterior`` for
    :func:`check_posterior`."""

    file: str
    idata: xr.DataTree
    posterior: xr.Dataset
    data: GroupedData
    spec: HierarchicalSpec
    priors: dict[str, ResolvedPrior]
    diagnostics: tuple[str, ...]


def read(path) -> FitParts:
    """Read the parts of a result written by ``HierarchicalResult.save``.

    Raises :class:`DataError` for a file that is not a hiermodels fit (or not netCDF at
    all), or one that was damaged or edited (the message names the file and the field), and
    :class:`SpecError` for one written in a newer, incompatible format.
    """
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise DataError(f"no such file: {file!r}")
    if path.is_dir():
        raise DataError(f"{file!r} is a directory; hm.load reads a file written by result.save")
    try:
        with xr.open_datatree(path) as opened:
            tree = opened.load()
    except (OSError, ValueError) as error:
        raise DataError(
            f"{file!r} is not a readable netCDF file ({type(error).__name__}: {error}); "
            "hm.load reads files written by result.save"
        ) from None
    attrs = tree.attrs
    if attrs.get("hiermodels_format") != FORMAT or DATA_GROUP not in tree.children:
        raise DataError(
            f"{file!r} is a netCDF file but not a hiermodels fit (no "
            "'hiermodels_format' attribute or data group); hm.load reads files written by "
            "result.save"
        )
    version = _Fields(file, "attribute", attrs).get("hiermodels_format_version", int)
    if version not in READABLE_VERSIONS:
        raise SpecError(
            f"{file!r} was written by hiermodels {attrs.get('hiermodels_version')} in "
            f"file format {version}; this hiermodels {__version__} reads formats "
            f"{', '.join(map(str, READABLE_VERSIONS))}; load it with the version that wrote it"
        )
    if "posterior" not in tree.children:
        raise _damaged(file, "group 'posterior'", "is missing")
    spec = _spec_from_json(_json_attr(file, attrs, "hiermodels_spec"), version)
    data = _data_from_tree(
        tree[DATA_GROUP].to_dataset(),
        _json_attr(file, attrs, "hiermodels_encoding"),
        spec,
        version,
    )
    stored = _json_attr(file, attrs, "hiermodels_priors")
    priors = {}
    for name in stored.value:
        entry = stored.record(name)
        priors[name] = ResolvedPrior(
            _prior_from_json(entry.record("prior")), entry.get("role", str), entry.get("rule", str)
        )
    # files written before diagnostics were stored have none
    diagnostics = (
        _json_attr(file, attrs, "hiermodels_diagnostics", kind=list).value
        if "hiermodels_diagnostics" in attrs
        else []
    )
    spec_groups = [g.name for g in spec.groups]
    if spec_groups != [f.name for f in data.factors]:
        raise _damaged(
            file,
            "hiermodels_encoding.factors",
            f"names {[f.name for f in data.factors]} but hiermodels_spec.groups names "
            f"{spec_groups}",
        )
    idata = tree.copy()
    del idata[DATA_GROUP]
    idata.attrs = {k: v for k, v in attrs.items() if not k.startswith("hiermodels_")}
    return FitParts(
        file,
        idata,
        tree["posterior"].to_dataset(),
        data,
        spec,
        priors,
        tuple(map(str, diagnostics)),
    )


# -- reading a file that may have been damaged or edited ----------------------------------


def _damaged(file: str, where: str, problem: str) -> DataError:
    return DataError(
        f"{file!r} is damaged: {where} {problem}; the file was edited or not fully written - "
        "refit and save again with result.save"
    )


_KIND_NAMES = {
    str: "a string",
    bool: "true or false",
    float: "a number",
    int: "an integer",
    dict: "an object",
    list: "a list",
}


class _Fields:
    """A JSON object (or the root attributes) read from a fit file.

    Every read goes through :meth:`get`, which raises a :class:`DataError` naming the file and
    the full field (``hiermodels_spec.groups[0].columns``) when it is missing or of the wrong
    type, instead of a ``KeyError`` deep inside the loader.
    """

    def __init__(self, file: str, where: str, value):
        self.file, self.where, self.value = file, where, value

    def _name(self, key) -> str:
        if self.where == "attribute":
            return key
        return f"{self.where}[{key}]" if isinstance(key, int) else f"{self.where}.{key}"

    def _field(self, key) -> str:
        """How a message names the field: ``attribute 'x'`` or ``field a.b[0].c``."""
        return f"attribute {key!r}" if self.where == "attribute" else f"field {self._name(key)}"

    def get(self, key, kind, *, null: bool = False):
        """The field ``key``, which must be a ``kind`` (or None if ``null``)."""
        if key not in self.value:
            raise _damaged(self.file, self._field(key), "is missing")
        value = self.value[key]
        if null and value is None:
            return None
        if kind is int:
            ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            wanted = _KIND_NAMES.get(kind, getattr(kind, "__name__", str(kind)))
            raise _damaged(
                self.file,
                self._field(key),
                f"should be {wanted}{' or null' if null else ''}, not {shown}",
            )
        return value

    def record(self, key) -> _Fields:
        return _Fields(self.file, self._name(key), self.get(key, dict))

    def records(self, key) -> list[_Fields]:
        items = _Fields(self.file, self._name(key), dict(enumerate(self.get(key, list))))
        return [items.record(k) for k in items.value]

    def strings(self, key) -> tuple[str, ...]:
        items = _Fields(self.file, self._name(key), dict(enumerate(self.get(key, list))))
        return tuple(items.get(k, str) for k in items.value)


def _json_attr(file: str, attrs, name: str, *, kind=dict) -> _Fields:
    text = _Fields(file, "attribute", attrs).get(name, str)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _damaged(file, f"attribute {name!r}", f"is not valid JSON ({error})") from None
    if not isinstance(value, kind):
        raise _damaged(file, f"attribute {name!r}", f"should hold {_KIND_NAMES[kind]}")
    return _Fields(file, name, value)


def _prior_from_json(f: _Fields) -> Prior:
    entry = dict(f.value)
    family = f.get("family", str)
    cls = getattr(priors_module, family, None)
    if not (isinstance(cls, type) and issubclass(cls, Prior)):
        raise _damaged(f.file, f"field {f.where}.family", f"names no prior family ({family!r})")
    del entry["family"]
    wanted = {p.name for p in fields(cls)}
    if set(entry) != wanted:
        raise _damaged(
            f.file,
            f"field {f.where}",
            f"has parameters {sorted(entry)}; {family} takes {sorted(wanted)}",
        )
    for p in fields(cls):
        f.get(p.name, float, null=p.default is None)
    return cls(**entry)


def _spec_from_json(s: _Fields, version: int) -> HierarchicalSpec:
    parameterization = s.get("parameterization", str | dict)
    if isinstance(parameterization, dict):
        stored = s.record("parameterization")
        parameterization = tuple(sorted((k, stored.get(k, str)) for k in stored.value))
    hyperprior = s.get("hyperprior", str | dict)
    if isinstance(hyperprior, dict):
        hyperprior = _prior_from_json(s.record("hyperprior"))
    stored_priors = s.record("priors")
    return HierarchicalSpec(
        y=s.get("y", str),
        groups=tuple(
            Grouping(
                g.get("name", str),
                g.strings("columns"),
                g.strings("varying"),
                g.get("correlated", bool),
                g.get("intercept", bool),
            )
            for g in s.records("groups")
        ),
        predictors=s.strings("predictors"),
        parameterization=parameterization,
        hyperprior=hyperprior,
        lkj_eta=float(s.get("lkj_eta", float)),
        priors=tuple(
            sorted((k, _prior_from_json(stored_priors.record(k))) for k in stored_priors.value)
        ),
        family=s.get("family", str),
        trials=s.get("trials", str, null=True),
        offset=s.get("offset", str, null=True),
        # files written before formulas were stored have no "formula"
        formula=s.get("formula", str, null=True) if "formula" in s.value else None,
        # format 3 has no known standard errors
        se=s.get("se", str, null=True) if version >= 4 else None,
        se_sigma=s.get("se_sigma", bool) if version >= 4 else False,
    )


def _array(file: str, ds: xr.Dataset, name: str, dims: tuple[str, ...], shape, dtype) -> np.ndarray:
    """Variable ``name`` of the data group, checked for its dims, shape and a numeric type."""
    where = f"variable {DATA_GROUP}/{name}"
    if name not in ds:
        raise _damaged(file, where, "is missing")
    var = ds[name]
    if var.dims != dims or var.shape != shape:
        raise _damaged(
            file,
            where,
            f"has dims {dict(var.sizes)}; expected {dict(zip(dims, shape, strict=True))}",
        )
    if not np.issubdtype(var.dtype, np.number):
        raise _damaged(file, where, f"has type {var.dtype}, not numbers")
    return np.asarray(var, dtype=dtype)


def _data_from_tree(
    ds: xr.Dataset, e: _Fields, spec: HierarchicalSpec, version: int
) -> GroupedData:
    file = e.file
    if "y" not in ds:
        raise _damaged(file, f"variable {DATA_GROUP}/y", "is missing")
    n = ds["y"].size
    terms = e.strings("terms")
    factors = e.records("factors")
    y = _array(file, ds, "y", ("obs",), (n,), float)
    X = _array(file, ds, "X", ("obs", "term"), (n, len(terms)), float)
    idx = _array(file, ds, "group_idx", ("obs", "factor"), (n, len(factors)), np.int64)
    row_labels = e.strings("row_labels")
    if len(row_labels) != n:
        raise _damaged(
            file,
            "field hiermodels_encoding.row_labels",
            f"has {len(row_labels)} labels for {n} rows",
        )
    trials_name = e.get("trials_name", str, null=True)
    offset_name = e.get("offset_name", str, null=True)
    se_name = e.get("se_name", str, null=True) if version >= 4 else None
    if se_name != spec.se:
        raise _damaged(
            file,
            "field hiermodels_encoding.se_name",
            f"is {se_name!r} but hiermodels_spec.se is {spec.se!r}",
        )
    se = None if se_name is None else _array(file, ds, "se", ("obs",), (n,), float)
    if se is not None and not (np.all(np.isfinite(se)) and np.all(se > 0)):
        raise _damaged(file, f"variable {DATA_GROUP}/se", "has values that are not positive")
    group_factors = []
    for k, f in enumerate(factors):
        levels = f.strings("levels")
        codes = idx[:, k]
        if not levels or (n and (codes.min() < 0 or codes.max() >= len(levels))):
            raise _damaged(
                file,
                f"field {f.where}.levels",
                f"has {len(levels)} levels but {DATA_GROUP}/group_idx codes run "
                f"{codes.min() if n else '-'}..{codes.max() if n else '-'}",
            )
        group_factors.append(
            GroupFactor(
                name=f.get("name", str),
                columns=f.strings("columns"),
                levels=levels,
                idx=codes,
                varying=f.strings("varying"),
                group_level=f.strings("group_level"),
                correlated=f.get("correlated", bool),
            )
        )
    predictors = e.strings("predictors")
    return GroupedData(
        y=y,
        y_name=e.get("y_name", str),
        X=X,
        terms=terms,
        factors=tuple(group_factors),
        row_labels=row_labels,
        predictors=predictors,
        design=_design_from_tree(ds, e.record("population"), spec, X, terms),
        trials=None if trials_name is None else _array(file, ds, "trials", ("obs",), (n,), float),
        offset=None if offset_name is None else _array(file, ds, "offset", ("obs",), (n,), float),
        trials_name=trials_name,
        offset_name=offset_name,
        se=se,
        se_name=se_name,
    )


def _design_from_tree(ds: xr.Dataset, p: _Fields, spec: HierarchicalSpec, X, terms):
    """formulae's population design rebuilt from the training values of its columns: the
    encoding of new rows (levels, the mean and SD of ``scale(x)``) is the fitted one."""
    file, n = p.file, len(X)
    columns, kinds = p.strings("columns"), p.strings("kinds")
    stored = p.record("categories")
    categories = {k: stored.strings(k) for k in stored.value}
    values = _array(file, ds, "design_data", ("obs", "data_column"), (n, len(columns)), float)
    frame = {}
    for k, (col, kind) in enumerate(zip(columns, kinds, strict=False)):
        if kind == "category" and col in categories:
            levels = categories[col]
            codes = values[:, k]
            if n and (codes.min() < 0 or codes.max() >= len(levels)):
                raise _damaged(
                    file, f"field {p.where}.categories", f"has too few levels for {col!r}"
                )
            frame[col] = pd.Categorical.from_codes(codes.astype(int), levels, ordered=True)
        elif kind in ("int", "float"):
            frame[col] = values[:, k].astype(np.int64 if kind == "int" else float)
        else:
            raise _damaged(file, f"field {p.where}.kinds[{k}]", f"is {kind!r} for {col!r}")
    if len(kinds) != len(columns) or set(categories) - set(frame):
        raise _damaged(file, f"field {p.where}", "lists kinds or categories of unknown columns")
    try:
        design = population_design(
            population_model(spec.formula, spec.predictors),
            pd.DataFrame(frame, index=pd.RangeIndex(n)),
            tuple(kinds),
            tuple(categories.items()),
            where="the stored formula",
        )
    except HierModelsError as error:
        raise _damaged(
            file, f"variable {DATA_GROUP}/design_data", f"gives no design ({error})"
        ) from None
    if design.names != terms or not np.allclose(design.X, X, equal_nan=True):
        raise _damaged(
            file,
            f"variable {DATA_GROUP}/design_data",
            f"rebuilds the design {list(design.names)}, not the stored X {list(terms)}",
        )
    return design


def check_posterior(file: str, posterior: xr.Dataset, model, data: GroupedData) -> None:
    """Every variable of the rebuilt model that the results read is in the posterior, with as
    many groups (a fit of the marginal engine has no offsets or Cholesky factors: only the
    named parameters and deviations; the full engine's fits have every variable)."""
    marginal = posterior.attrs.get("engine") == "marginal"
    for var in [*model.free_RVs, *model.deterministics]:
        if marginal and (var.name.endswith(("_offset", "_coef", "_chol_cov", "_effects"))):
            continue
        if var.name not in posterior:
            raise _damaged(file, f"variable posterior/{var.name}", "is missing")
    for k, f in enumerate(data.factors):
        if f.name in posterior.sizes and posterior.sizes[f.name] != len(f.levels):
            raise _damaged(
                file,
                f"field hiermodels_encoding.factors[{k}].levels",
                f"lists {len(f.levels)} levels but the posterior has {posterior.sizes[f.name]}",
            )
