"""Progress when a person watches, silence under CI and pytest (issue 13)."""

import sys

import pytest

from hiermodels import progress
from hiermodels.sampling import SamplingOptions


class Tty:
    def isatty(self):
        return True

    def write(self, text):
        pass

    def flush(self):
        pass


def test_off_under_pytest_and_ci(monkeypatch):
    monkeypatch.delenv("HIERMODELS_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress.watching() is False  # PYTEST_CURRENT_TEST is set
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.setenv("CI", "true")
    assert progress.watching() is False


def test_on_in_a_terminal_or_notebook(monkeypatch):
    for name in ("HIERMODELS_PROGRESS", "PYTEST_CURRENT_TEST", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert progress.watching() is True
    assert SamplingOptions().pymc_kwargs()["progressbar"] is True
    assert SamplingOptions(progressbar=False).pymc_kwargs()["progressbar"] is False


def test_override(monkeypatch):
    monkeypatch.setenv("HIERMODELS_PROGRESS", "1")
    assert progress.watching() is True
    monkeypatch.setenv("HIERMODELS_PROGRESS", "0")
    assert progress.watching() is False


def test_step_says_what_it_does_only_when_shown(capsys):
    with progress.step("Integrating", show=True):
        pass
    assert "Integrating ..." in capsys.readouterr().err
    with progress.step("Integrating", show=False):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", [None, True, False])
def test_resolve(value, monkeypatch):
    monkeypatch.setenv("HIERMODELS_PROGRESS", "1")
    assert progress.resolve(value) is (True if value is None else value)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")  # 100 draws
def test_marginal_fit_says_what_it_does_when_watched(monkeypatch, capfd, seed):
    """The default engine for a Gaussian model: its compile step and the group effects'
    draws are announced (no bar of their own), as the full engine's compile is."""
    import numpy as np
    import pandas as pd

    import hiermodels as hm

    monkeypatch.setenv("HIERMODELS_PROGRESS", "1")
    rng = np.random.default_rng(seed(31))
    g = np.repeat(np.arange(6), 5)
    df = pd.DataFrame({"y": rng.normal(size=g.size) + g * 0.3, "g": g})
    res = hm.fit_hierarchical(df, "y ~ 1 + (1 | g)", draws=100, tune=100, chains=1)
    assert res.idata["posterior"].attrs["engine"] == "marginal"
    said = capfd.readouterr().err
    assert "marginal model" in said or "compiled model reused" in said
    assert "Drawing the group effects" in said and "done in" in said
