"""Save a fitted hierarchical model to netCDF and load it back.

The file is the result's ArviZ ``DataTree`` (posterior, sample_stats, ...) written with
``DataTree.to_netcdf``, plus:

* a group ``hiermodels_data`` with the encoded data the result needs to summarize and predict:
  ``y``, the design ``X`` (dims ``obs``, ``term``), ``group_idx`` (dims ``obs``, ``factor``:
  each row's level code per grouping factor) and, when used, ``trials`` and ``offset``;
* root attributes: ``hiermodels_format`` (= ``"hiermodels.fit"``), ``hiermodels_format_version``,
  ``hiermodels_version``, and JSON strings ``hiermodels_spec`` (the keywords of the fit:
  outcome, grouping terms, predictors, family, parameterization, hyperprior, priors),
  ``hiermodels_encoding`` (per grouping factor its columns, levels, varying terms and
  group-level predictors; terms; categorical levels)
  and ``hiermodels_priors`` (every prior used, by name).

Any netCDF reader sees the draws; :func:`load` rebuilds the result, including its PyMC model.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import xarray as xr

from hiermodels import priors as priors_module
from hiermodels.builders.hierarchical import ResolvedPrior, build_model
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.errors import DataError, SpecError
from hiermodels.priors import Prior
from hiermodels.results import HierarchicalResult
from hiermodels.spec import Grouping, HierarchicalSpec

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "hiermodels.fit"
FORMAT_VERSION = 2  # bump when a file written now could not be read by the old loader
# 2: several grouping factors (spec "groups", encoding "factors", group_idx (obs, factor))
DATA_GROUP = "hiermodels_data"


def _prior_to_json(prior: Prior) -> dict:
    return {
        "family": type(prior).__name__,
        **{f.name: getattr(prior, f.name) for f in fields(prior)},
    }


def _prior_from_json(entry: dict) -> Prior:
    entry = dict(entry)
    cls = getattr(priors_module, entry.pop("family"), None)
    if not (isinstance(cls, type) and issubclass(cls, Prior)):
        raise SpecError(f"unknown prior family in file: {entry}")
    return cls(**entry)


def save(result: HierarchicalResult, path) -> Path:
    """Write ``result`` to ``path`` (netCDF4); see the module docstring for the layout."""
    from hiermodels import __version__

    d, spec = result.data, result.spec
    variables = {
        "y": (("obs",), d.y),
        "X": (("obs", "term"), d.X),
        "group_idx": (("obs", "factor"), np.column_stack([f.idx for f in d.factors])),
    }
    if d.trials is not None:
        variables["trials"] = (("obs",), d.trials)
    if d.offset is not None:
        variables["offset"] = (("obs",), d.offset)
    data = xr.Dataset(
        variables, coords={"term": list(d.terms), "factor": [f.name for f in d.factors]}
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
        "categories": {k: list(v) for k, v in d.categories},
        "trials_name": d.trials_name,
        "offset_name": d.offset_name,
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
    path = Path(path)
    tree.to_netcdf(path)
    return path


def load(path) -> HierarchicalResult:
    """Read a result written by :meth:`HierarchicalResult.save`.

    Raises :class:`DataError` for a file that is not a hiermodels fit (or not netCDF at
    all) and :class:`SpecError` for one written in a newer, incompatible format.
    """
    from hiermodels import __version__

    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {str(path)!r}")
    try:
        with xr.open_datatree(path) as opened:
            tree = opened.load()
    except (OSError, ValueError) as error:
        raise DataError(
            f"{str(path)!r} is not a readable netCDF file ({type(error).__name__}: {error}); "
            "hm.load reads files written by result.save"
        ) from None
    attrs = tree.attrs
    if attrs.get("hiermodels_format") != FORMAT or DATA_GROUP not in tree.children:
        raise DataError(
            f"{str(path)!r} is a netCDF file but not a hiermodels fit (no "
            "'hiermodels_format' attribute or data group); hm.load reads files written by "
            "result.save"
        )
    version = int(attrs.get("hiermodels_format_version", -1))
    if version != FORMAT_VERSION:
        raise SpecError(
            f"{str(path)!r} was written by hiermodels {attrs.get('hiermodels_version')} in "
            f"file format {version}; this hiermodels {__version__} reads format "
            f"{FORMAT_VERSION}; load it with the version that wrote it"
        )
    try:
        spec_json = json.loads(attrs["hiermodels_spec"])
        encoding = json.loads(attrs["hiermodels_encoding"])
        resolved = json.loads(attrs["hiermodels_priors"])
        diagnostics = tuple(json.loads(attrs.get("hiermodels_diagnostics", "[]")))
    except (KeyError, json.JSONDecodeError) as error:
        raise DataError(f"{str(path)!r} has damaged hiermodels attributes ({error})") from None
    spec = _spec_from_json(spec_json)
    data = _data_from_tree(tree[DATA_GROUP].to_dataset(), encoding)
    priors = {
        k: ResolvedPrior(_prior_from_json(v["prior"]), v["role"], v["rule"])
        for k, v in resolved.items()
    }
    idata = tree.copy()
    del idata[DATA_GROUP]
    idata.attrs = {k: v for k, v in attrs.items() if not k.startswith("hiermodels_")}
    return HierarchicalResult(
        idata, build_model(data, spec, priors), data, spec, priors, diagnostics
    )


def _spec_from_json(s: dict) -> HierarchicalSpec:
    parameterization = s["parameterization"]
    hyperprior = s["hyperprior"]
    return HierarchicalSpec(
        y=s["y"],
        groups=tuple(
            Grouping(g["name"], tuple(g["columns"]), tuple(g["varying"]), bool(g["correlated"]))
            for g in s["groups"]
        ),
        predictors=tuple(s["predictors"]),
        parameterization=parameterization
        if isinstance(parameterization, str)
        else tuple(sorted(parameterization.items())),
        hyperprior=hyperprior if isinstance(hyperprior, str) else _prior_from_json(hyperprior),
        lkj_eta=float(s["lkj_eta"]),
        priors=tuple(sorted((k, _prior_from_json(v)) for k, v in s["priors"].items())),
        family=s["family"],
        trials=s["trials"],
        offset=s["offset"],
        formula=s.get("formula"),
    )


def _data_from_tree(ds: xr.Dataset, e: dict) -> GroupedData:
    return GroupedData(
        y=np.asarray(ds["y"], dtype=float),
        y_name=e["y_name"],
        X=np.asarray(ds["X"], dtype=float),
        terms=tuple(e["terms"]),
        factors=tuple(
            GroupFactor(
                name=f["name"],
                columns=tuple(f["columns"]),
                levels=tuple(f["levels"]),
                idx=np.asarray(ds["group_idx"], dtype=np.int64)[:, k],
                varying=tuple(f["varying"]),
                group_level=tuple(f["group_level"]),
                correlated=bool(f["correlated"]),
            )
            for k, f in enumerate(e["factors"])
        ),
        row_labels=tuple(e["row_labels"]),
        predictors=tuple(e["predictors"]),
        categories=tuple((k, tuple(v)) for k, v in e["categories"].items()),
        trials=np.asarray(ds["trials"], dtype=float) if "trials" in ds else None,
        offset=np.asarray(ds["offset"], dtype=float) if "offset" in ds else None,
        trials_name=e["trials_name"],
        offset_name=e["offset_name"],
    )
