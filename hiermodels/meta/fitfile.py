"""Save a meta-analysis to netCDF and read it back (``result.save(path)`` / ``hm.load``).

The file is the result's DataTree of draws (posterior, and for MCMC sample_stats), plus:

* a group ``hiermodels_studies`` with the study table the analysis was run on (one variable
  per column, ``col_0``, ``col_1``, ... with the column's name and kind as attributes: the
  subgroup, cumulative and prediction analyses read columns beyond the estimates);
* root attributes ``hiermodels_format`` (= ``"hiermodels.meta"``),
  ``hiermodels_format_version``, ``hiermodels_version``, and JSON strings ``hiermodels_spec``
  (the arguments of ``meta_analysis``: columns, priors, method, sampling options),
  ``hiermodels_tau_prior`` and ``hiermodels_diagnostics``.

Reading rebuilds the result without sampling again: the exact posterior is recomputed (it is
deterministic, milliseconds) and the stored draws are kept, so every table is identical.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from hiermodels._version import __version__
from hiermodels.errors import DataError, SpecError
from hiermodels.meta.spec import MetaSpec
from hiermodels.priors import Prior
from hiermodels.results.fitfile import (
    _damaged,
    _Fields,
    _json_attr,
    _prior_from_json,
    _prior_to_json,
    check_writable,
)
from hiermodels.sampling import SamplingOptions

__all__ = ["FORMAT", "FORMAT_VERSION", "MetaFileParts", "read", "save"]

FORMAT = "hiermodels.meta"
FORMAT_VERSION = 1
STUDIES = "hiermodels_studies"


def _to_json(value):
    """A spec field as JSON: priors as {"prior": {...}}, sampling options as a dict."""
    if isinstance(value, Prior):
        return {"prior": _prior_to_json(value)}
    if isinstance(value, SamplingOptions):
        return {"sampling": {f.name: _to_json(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise SpecError(
        f"cannot save a meta-analysis whose spec holds {type(value).__name__} ({value!r}); "
        "use a whole-number random_seed and prior objects from hm.priors"
    )


def _from_json(f: _Fields, key):
    value = f.value[key]
    if isinstance(value, dict) and set(value) == {"prior"}:
        return _prior_from_json(f.record(key).record("prior"))
    if isinstance(value, dict) and set(value) == {"sampling"}:
        inner = f.record(key).record("sampling")
        kwargs = {k: _from_json(inner, k) for k in inner.value}
        return SamplingOptions(**kwargs)
    if isinstance(value, list):
        return tuple(value)
    return value


def _table_dataset(frame: pd.DataFrame) -> xr.Dataset:
    variables = {}
    for k, (name, column) in enumerate(frame.items()):
        series = column.reset_index(drop=True)
        if pd.api.types.is_bool_dtype(series):
            values, kind = series.to_numpy(dtype="int8"), "bool"
        elif pd.api.types.is_integer_dtype(series) and not series.isna().any():
            values, kind = series.to_numpy(dtype="int64"), "integer"
        elif pd.api.types.is_numeric_dtype(series):
            values, kind = series.to_numpy(dtype=float), "number"
        else:
            values, kind = series.astype(str).to_numpy(dtype=object), "text"
        variables[f"col_{k}"] = xr.Variable("row", values, attrs={"name": str(name), "kind": kind})
    return xr.Dataset(variables, coords={"row": np.arange(len(frame))})


def _table_frame(file: str, ds: xr.Dataset) -> pd.DataFrame:
    columns = {}
    for k in range(len(ds.data_vars)):
        var = ds.get(f"col_{k}")
        if var is None or "name" not in var.attrs or "kind" not in var.attrs:
            raise _damaged(file, f"group {STUDIES!r} variable 'col_{k}'", "is missing or unnamed")
        values = var.values
        kind = var.attrs["kind"]
        columns[var.attrs["name"]] = (
            values.astype(bool)
            if kind == "bool"
            else values.astype(str)
            if kind == "text"
            else values
        )
    return pd.DataFrame(columns)


def save(result, path) -> Path:
    """Write a meta-analysis result to ``path`` (netCDF4); see the module docstring."""
    path = check_writable(path, example="meta.nc")
    tree = result.idata.copy()
    frame = result.frame if result.frame is not None else pd.DataFrame()
    tree[STUDIES] = _table_dataset(frame)
    tree.attrs = {
        **{k: v for k, v in tree.attrs.items() if not str(k).startswith("hiermodels_")},
        "hiermodels_format": FORMAT,
        "hiermodels_format_version": FORMAT_VERSION,
        "hiermodels_version": __version__,
        "hiermodels_spec": json.dumps(
            {f.name: _to_json(getattr(result.spec, f.name)) for f in fields(result.spec)}
        ),
        "hiermodels_tau_prior": json.dumps(_prior_to_json(result.tau_prior)),
        "hiermodels_diagnostics": json.dumps(list(result.diagnostics)),
    }
    try:
        tree.to_netcdf(path)
    except OSError as error:
        if path.exists():
            os.remove(path)
        raise DataError(f"cannot write {str(path)!r}: {error.strerror or error}") from None
    return path


@dataclass(frozen=True, eq=False)
class MetaFileParts:
    """What a meta-analysis file holds, every field checked."""

    file: str
    idata: xr.DataTree
    frame: pd.DataFrame
    spec: MetaSpec
    tau_prior: Prior
    diagnostics: tuple[str, ...]


def read(file: str, tree: xr.DataTree) -> MetaFileParts:
    """The parts of a meta-analysis file already opened as ``tree`` (see :func:`hm.load`)."""
    attrs = tree.attrs
    version = _Fields(file, "attribute", attrs).get("hiermodels_format_version", int)
    if version != FORMAT_VERSION:
        raise SpecError(
            f"{file!r} was written by hiermodels {attrs.get('hiermodels_version')} in "
            f"meta-analysis file format {version}; this hiermodels {__version__} reads format "
            f"{FORMAT_VERSION}; load it with the version that wrote it"
        )
    for group in ("posterior", STUDIES):
        if group not in tree.children:
            raise _damaged(file, f"group {group!r}", "is missing")
    stored = _json_attr(file, attrs, "hiermodels_spec")
    known = {f.name for f in fields(MetaSpec)}
    unknown = sorted(set(stored.value) - known)
    if unknown or "estimate" not in stored.value:
        raise _damaged(file, "attribute 'hiermodels_spec'", f"has unknown fields {unknown}")
    try:
        spec = MetaSpec(**{k: _from_json(stored, k) for k in stored.value})
    except (TypeError, ValueError) as error:
        raise _damaged(
            file, "attribute 'hiermodels_spec'", f"does not make a spec ({error})"
        ) from None
    tau_prior = _prior_from_json(_json_attr(file, attrs, "hiermodels_tau_prior"))
    diagnostics = _json_attr(file, attrs, "hiermodels_diagnostics", kind=list).value
    frame = _table_frame(file, tree[STUDIES].to_dataset())
    idata = tree.copy()
    del idata[STUDIES]
    idata.attrs = {k: v for k, v in attrs.items() if not str(k).startswith("hiermodels_")}
    return MetaFileParts(file, idata, frame, spec, tau_prior, tuple(map(str, diagnostics)))
