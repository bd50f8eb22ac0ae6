"""Compiled nutpie models kept in the process, keyed by the structure of their graph.

nutpie's numba compilation costs 6-8 s whatever the size of the graph (PERFORMANCE-NOTES.md)
and nothing of it carries over to the next process. Within one process a compiled model takes
new values for its ``pm.Data`` (``CompiledPyMCModel.with_data``), so a second fit whose graph
differs only in those values (new data of the same structure, when every data-derived number
is ``pm.Data``, as in :mod:`hiermodels.builders.marginal` and
:mod:`hiermodels.builders.hierarchical`) reuses the compiled model.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import pymc as pm

__all__ = ["CACHE_SIZE", "clear_cache", "compile_count", "compiled_model", "is_cached"]

CACHE_SIZE = 8  # least recently used entries beyond this are dropped

_cache: OrderedDict[Hashable, tuple[pm.Model, object]] = OrderedDict()
_compiles = 0
# key -> the support point of the cached model's current data, for models loaded from the
# disk cache: their initial points are fixed when loaded, so a hit must renew them
_starts: dict[Hashable, Callable[[], list[float]]] = {}


def compile_count() -> int:
    """How many models :func:`compiled_model` has compiled in this process (for tests and
    benchmarks: a cache hit does not count)."""
    return _compiles


def clear_cache() -> None:
    """Forget every compiled model (the next fit of each structure compiles again)."""
    _cache.clear()
    _starts.clear()


def is_cached(key: Hashable) -> bool:
    """Whether a model of structure ``key`` is compiled already (a fit will not compile)."""
    return key in _cache


def compiled_model(
    key: Hashable,
    build: Callable[[], pm.Model],
    values: Mapping[str, np.ndarray],
    coords: Mapping[str, Sequence] | None = None,
) -> tuple[pm.Model, object]:
    """The model and nutpie's compiled model for ``key``, holding ``values`` as its data.

    ``build()`` makes the model when ``key`` is new; its ``pm.Data`` must be named as in
    ``values``. On a hit the cached model's ``pm.Data`` are set to ``values`` too, so that
    what is computed from the model itself (nutpie's initial points, ``patch_nutpie_idata``)
    sees the new data, and the compiled model gets them through ``with_data``. ``coords``
    (the labels of each dim, which the key holds only the lengths of) replace the cached
    model's and the compiled model's, so the draws carry the new data's labels.
    """
    global _compiles
    from hiermodels.engines import diskcache, nutpie_support

    if key in _cache:
        _cache.move_to_end(key)
        model, compiled = _cache[key]
        for name, value in values.items():
            model[name].set_value(np.asarray(value, dtype=model[name].dtype))
        compiled = compiled.with_data(**values)
        if key in _starts:
            # start where a model compiled for these data starts: the same draws for a seed
            start = nutpie_support.jittered_start(_starts[key]())
            compiled = dataclasses.replace(compiled, initial_point_func=start)
        if coords:
            compiled = _relabel(model, compiled, coords)
        return model, compiled
    model = build()
    # the numba callbacks from the on-disk cache when an earlier process compiled this
    # structure (hiermodels.engines.diskcache; HIERMODELS_CACHE_DIR=off: nutpie's own compile)
    compiled = diskcache.compile_pymc_model(model)
    _compiles += 1
    _cache[key] = (model, compiled)
    if diskcache.last_outcome() in ("hit", "stored"):
        # where a refit starts: the support point for the data the model then holds (PyMC's
        # point function is compiled at the first refit; a single fit never needs it, ~0.5 s)
        free = compiled.shape_info[0][: len(model.free_RVs)]
        _starts[key] = nutpie_support.support_point(model, free)
    while len(_cache) > CACHE_SIZE:
        _starts.pop(_cache.popitem(last=False)[0], None)
    return model, compiled


def _relabel(model: pm.Model, compiled, coords: Mapping[str, Sequence]):
    """``model`` and ``compiled`` with the labels of ``coords`` (same lengths)."""
    import pandas as pd

    changed = {k: list(v) for k, v in coords.items() if list(model.coords.get(k) or ()) != list(v)}
    for name, labels in changed.items():
        model.set_dim(name, len(labels), coord_values=labels)
    if not changed:
        return compiled
    # nutpie labels its draws from the coords it copied from the model when compiling
    return dataclasses.replace(
        compiled, _coords={**compiled.coords, **{k: pd.Index(v) for k, v in changed.items()}}
    )
