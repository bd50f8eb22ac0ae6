"""Load a saved result: ``hm.load(path)``, for a hierarchical fit (file format in
:mod:`hiermodels.results.fitfile`) or a meta-analysis (:mod:`hiermodels.meta.fitfile`)."""

from __future__ import annotations

from pathlib import Path

from hiermodels.builders.hierarchical import build_model
from hiermodels.errors import DataError
from hiermodels.meta import fitfile as meta_fitfile
from hiermodels.results import fitfile
from hiermodels.results.hierarchical import HierarchicalResult

__all__ = ["load"]


def load(path):
    """Read a result written by ``result.save``: a :class:`HierarchicalResult` with its PyMC
    model rebuilt, or a :class:`MetaAnalysisResult` (not sampled again: the draws are the
    stored ones, the exact posterior is recomputed), with every table as before saving.

    Raises :class:`DataError` for a file that is not a hiermodels fit (or not netCDF at
    all), or one that was damaged or edited (the message names the file and the field), and
    :class:`SpecError` for one written in a newer, incompatible format.
    """
    tree = _meta_tree(path)
    if tree is not None:
        return _load_meta(str(path), tree)
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


def _meta_tree(path):
    """The opened file if it is a meta-analysis file, else None (errors come from the
    hierarchical reader, which names them)."""
    path = Path(path)
    if not path.is_file():
        return None
    import xarray as xr

    try:
        with xr.open_datatree(path) as opened:
            if opened.attrs.get("hiermodels_format") != meta_fitfile.FORMAT:
                return None
            return opened.load()
    except (OSError, ValueError):
        return None


def _load_meta(file: str, tree):
    from hiermodels.meta.data import prepare_studies
    from hiermodels.meta.engines import EngineFit, exact_fit
    from hiermodels.meta.result import MetaAnalysisResult

    parts = meta_fitfile.read(file, tree)
    spec = parts.spec
    studies = prepare_studies(
        parts.frame,
        estimate=spec.estimate,
        se=spec.se,
        vi=spec.vi,
        study=spec.study,
        moderators=spec.moderators,
    )
    exact = (
        exact_fit(studies, mu_prior=spec.mu_prior, tau_prior=parts.tau_prior)
        if spec.method == "exact"
        else None
    )
    fit = EngineFit(make_idata=lambda: parts.idata, exact=exact, diagnostics=parts.diagnostics)
    return MetaAnalysisResult(
        data=studies, spec=spec, tau_prior=parts.tau_prior, fit=fit, frame=parts.frame
    )
