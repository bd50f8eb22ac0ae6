"""hiermodels: hierarchical models and Bayesian meta-analysis in one call, on PyMC."""

from hiermodels import datasets, priors
from hiermodels.errors import (
    ConvergenceWarning,
    DataError,
    HierModelsError,
    PriorWarning,
    SpecError,
)
from hiermodels.models import HierarchicalModel, fit_hierarchical
from hiermodels.results import HierarchicalResult

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "HierModelsError",
    "HierarchicalModel",
    "HierarchicalResult",
    "PriorWarning",
    "SpecError",
    "__version__",
    "datasets",
    "fit_hierarchical",
    "priors",
]
