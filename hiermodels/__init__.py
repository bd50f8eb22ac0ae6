"""hiermodels: hierarchical models and Bayesian meta-analysis in one call, on PyMC."""

from hiermodels import datasets, priors
from hiermodels.errors import (
    ConvergenceWarning,
    DataError,
    HierModelsError,
    PriorWarning,
    SpecError,
)
from hiermodels.io import load
from hiermodels.meta import effect_sizes_2x2, meta_analysis
from hiermodels.meta_results import MetaAnalysisResult
from hiermodels.models import HierarchicalModel, fit_hierarchical
from hiermodels.pooling import PoolingComparison, compare_pooling
from hiermodels.results import HierarchicalResult

__version__ = "0.1.0"

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
    "compare_pooling",
    "datasets",
    "effect_sizes_2x2",
    "fit_hierarchical",
    "load",
    "meta_analysis",
    "priors",
]
