"""Errors and warnings raised by hiermodels.

Every error is a :class:`HierModelsError` (itself a ``ValueError``), and its message names
the column, the offending rows and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "HierModelsError",
    "PriorWarning",
    "RowsNotCollectedError",
    "SpecError",
    "format_rows",
]


class HierModelsError(ValueError):
    """Base class of all errors raised by hiermodels."""


class DataError(HierModelsError):
    """The data frame cannot be used as given (missing column, NaN, wrong type, ...)."""


class SpecError(HierModelsError):
    """The model specification is inconsistent (unknown preset, unknown term, ...)."""


class RowsNotCollectedError(HierModelsError):
    """A fit from a lazy (dask) frame holds per-group sums only; this needs its rows."""


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics (divergences, R-hat, ESS) suggest the posterior is not trustworthy."""


class PriorWarning(UserWarning):
    """A prior choice is known to behave badly (Gelman 2006)."""


def format_rows(labels: Sequence[object], limit: int = 8) -> str:
    """Format row labels for an error message: ``rows 3, 7`` or ``rows 1, 2, ... (12 in all)``."""
    labels = list(labels)
    shown = ", ".join(str(label) for label in labels[:limit])
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    word = "row" if len(labels) == 1 else "rows"
    return f"{word} {shown}{more}"
