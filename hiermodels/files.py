"""Load a saved result: ``hm.load(path)`` (the file format is in
:mod:`hiermodels.results.fitfile`)."""

from __future__ import annotations

from hiermodels.builders.hierarchical import build_model
from hiermodels.errors import DataError
from hiermodels.results import fitfile
from hiermodels.results.hierarchical import HierarchicalResult

__all__ = ["load"]


def load(path) -> HierarchicalResult:
    """Read a result written by :meth:`HierarchicalResult.save`, with its PyMC model rebuilt.

    Raises :class:`DataError` for a file that is not a hiermodels fit (or not netCDF at
    all), or one that was damaged or edited (the message names the file and the field), and
    :class:`SpecError` for one written in a newer, incompatible format.
    """
    parts = fitfile.read(path)
    try:
        model = build_model(parts.data, parts.spec, parts.priors)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        # every field passed its own check, so they disagree with each other
        raise DataError(
            f"{parts.file!r} is damaged: its stored spec, encoding and priors do not fit "
            f"together ({type(error).__name__}: {error}); the file was edited or not fully "
            "written - refit and save again with result.save"
        ) from error
    fitfile.check_posterior(parts.file, parts.posterior, model, parts.data)
    return HierarchicalResult(
        parts.idata, model, parts.data, parts.spec, parts.priors, parts.diagnostics
    )
