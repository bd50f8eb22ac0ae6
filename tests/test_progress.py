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
