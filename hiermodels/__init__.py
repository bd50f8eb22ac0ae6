"""hiermodels: hierarchical models and Bayesian meta-analysis in one call, on PyMC.

``import hiermodels as hm`` is cheap: each public name is imported on first use (PEP 562), so
the exact meta-analysis path and the numerics start without PyMC or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hiermodels._blas import configure_pytensor_blas
from hiermodels._version import __version__
from hiermodels.errors import (
    ConvergenceWarning,
    DataError,
    HierModelsError,
    PriorWarning,
    SpecError,
)

configure_pytensor_blas()  # before anything imports PyTensor: link the wheel's OpenBLAS

# public name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "HierarchicalModel": "hiermodels.models",
    "fit_hierarchical": "hiermodels.models",
    "HierarchicalResult": "hiermodels.results.hierarchical",
    "MetaAnalysisResult": "hiermodels.meta.result",
    "calibrate": "hiermodels.calibration",
    "meta_analysis": "hiermodels.meta.api",
    "effect_sizes_2x2": "hiermodels.meta.api",
    "effect_sizes": "hiermodels.meta.effect_sizes",
    "PoolingComparison": "hiermodels.pooling.comparison",
    "compare_pooling": "hiermodels.pooling.api",
    "load": "hiermodels.files",
    "compare": "hiermodels.comparison",
}
_SUBMODULES = ("datasets", "families", "formula", "priors")

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from hiermodels import datasets, families, formula, priors  # noqa: F401
    from hiermodels.calibration import calibrate
    from hiermodels.comparison import compare
    from hiermodels.files import load
    from hiermodels.meta.api import effect_sizes_2x2, meta_analysis
    from hiermodels.meta.effect_sizes import effect_sizes
    from hiermodels.meta.result import MetaAnalysisResult
    from hiermodels.models import HierarchicalModel, fit_hierarchical
    from hiermodels.pooling.api import compare_pooling
    from hiermodels.pooling.comparison import PoolingComparison
    from hiermodels.results.hierarchical import HierarchicalResult


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"hiermodels.{name}")
    else:
        raise AttributeError(f"module 'hiermodels' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "ConvergenceWarning",
    "DataError",
    "HierModelsError",
    "HierarchicalModel",
    "HierarchicalResult",
    "MetaAnalysisResult",
    "PoolingComparison",
    "PriorWarning",
    "SpecError",
    "__version__",
    "calibrate",
    "compare",
    "compare_pooling",
    "datasets",
    "effect_sizes",
    "effect_sizes_2x2",
    "fit_hierarchical",
    "load",
    "meta_analysis",
    "priors",
]
