"""Compiled nutpie models kept in the process, keyed by the structure of their graph.

nutpie's numba compilation costs 6-8 s whatever the size of the graph (PERFORMANCE-NOTES.md)
and nothing of it carries over to the next process. Within one process a compiled model takes
new values for its ``pm.Data`` (``CompiledPyMCModel.with_data``), so a second fit whose graph
differs only in those values (new data of the same structure, when every data-derived number
is ``pm.Data``, as in :mod:`hiermodels.builders.marginal`) reuses the compiled model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

import numpy as np
import pymc as pm

__all__ = ["CACHE_SIZE", "clear_cache", "compile_count", "compiled_model"]

CACHE_SIZE = 8  # least recently used entries beyond this are dropped

_cache: OrderedDict[Hashable, tuple[pm.Model, object]] = OrderedDict()
_compiles = 0


def compile_count() -> int:
    """How many models :func:`compiled_model` has compiled in this process (for tests and
    benchmarks: a cache hit does not count)."""
    return _compiles


def clear_cache() -> None:
    """Forget every compiled model (the next fit of each structure compiles again)."""
    _cache.clear()


def compiled_model(
    key: Hashable, build: Callable[[], pm.Model], values: Mapping[str, np.ndarray]
) -> tuple[pm.Model, object]:
    """The model and nutpie's compiled model for ``key``, holding ``values`` as its data.

    ``build()`` makes the model when ``key`` is new; its ``pm.Data`` must be named as in
    ``values``. On a hit the cached model's ``pm.Data`` are set to ``values`` too, so that
    what is computed from the model itself (nutpie's initial points, ``patch_nutpie_idata``)
    sees the new data, and the compiled model gets them through ``with_data``.
    """
    global _compiles
    import nutpie

    if key in _cache:
        _cache.move_to_end(key)
        model, compiled = _cache[key]
        for name, value in values.items():
            model[name].set_value(np.asarray(value, dtype=float))
        return model, compiled.with_data(**values)
    model = build()
    compiled = nutpie.compile_pymc_model(model)
    _compiles += 1
    _cache[key] = (model, compiled)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return model, compiled
