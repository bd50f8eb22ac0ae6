"""Every teaching notebook runs top to bottom (reduced draws through the documented switch
``HIERMODELS_FAST_NOTEBOOKS=1``, set by ``notebooks/run.py --fast``)."""

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = [
    "01_eight_schools.ipynb",
    "02_radon_varying_intercepts_slopes.ipynb",
    "03_meta_analysis_bcg.ipynb",
    "04_hyperpriors_and_boundary.ipynb",
    "05_funnel_and_noncentering.ipynb",
    "06_multiple_comparisons.ipynb",
    "07_multilevel_meta_analysis.ipynb",
    "08_can_i_trust_these_intervals.ipynb",
]


def _runner():
    spec = importlib.util.spec_from_file_location("notebook_runner", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_notebooks_are_there():
    assert [p.name for p in _runner().notebooks()] == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name, monkeypatch):
    """A cell that raises fails the test (nbclient's CellExecutionError names the cell)."""
    monkeypatch.setenv("HIERMODELS_FAST_NOTEBOOKS", "1")  # unset again afterwards
    runner = _runner()
    runner.execute(NOTEBOOKS / name, fast=True, save=False)
