import numpy as np
import pytest
import xarray as xr

from hiermodels.engines.mcmc import check_convergence
from hiermodels.errors import ConvergenceWarning


def _idata(posterior, diverging):
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in posterior.items()})
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict({"posterior": ds, "sample_stats": stats})


def test_clean_chains_give_no_warning():
    rng = np.random.default_rng(0)
    idata = _idata({"a": rng.normal(size=(4, 500))}, np.zeros((4, 500), bool))
    assert check_convergence(idata, ["a"]) == []


def test_divergences_in_centered_term_say_switch_to_noncentered():
    rng = np.random.default_rng(0)
    div = np.zeros((4, 500), bool)
    div[0, :3] = True
    idata = _idata({"a": rng.normal(size=(4, 500))}, div)
    with pytest.warns(ConvergenceWarning, match=r"3 divergent.*\['floor'\] to parameterization="):
        check_convergence(idata, ["a"], centered=["floor"])
    with pytest.warns(ConvergenceWarning, match="target_accept"):
        check_convergence(idata, ["a"])


def test_stuck_chains_give_rhat_and_ess_warnings():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 5.0])[:, None]
    idata = _idata({"a": draws, "b": rng.normal(size=(4, 500))}, np.zeros((4, 500), bool))
    with pytest.warns(ConvergenceWarning) as record:
        messages = check_convergence(idata, ["a", "b"])
    assert any("R-hat above 1.01 for a" in m for m in messages)
    assert any("bulk ESS below 400" in m and "a (" in m for m in messages)
    assert not any("b (" in m for m in messages)
    assert len(record) == len(messages)


def test_slow_offsets_suggest_the_centered_form():
    rng = np.random.default_rng(0)
    stuck = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 5.0])[:, None]
    idata = _idata({"a|g_offset": stuck, "b": stuck.copy()}, np.zeros((4, 500), bool))
    with pytest.warns(ConvergenceWarning):
        messages = check_convergence(idata, ["a|g_offset", "b"], offsets=["a|g_offset"])
    assert messages
    assert all("a|g_offset belong to non-centered terms" in m for m in messages)
    assert all("parameterization='centered' mixes better" in m for m in messages)
    idata = _idata({"b": stuck}, np.zeros((4, 500), bool))
    with pytest.warns(ConvergenceWarning):
        assert all("centered" not in m for m in check_convergence(idata, ["b"]))
    # the advice follows what the builder reports, not a name that happens to end in _offset
    idata = _idata({"x_offset": stuck}, np.zeros((4, 500), bool))
    with pytest.warns(ConvergenceWarning):
        assert all("centered" not in m for m in check_convergence(idata, ["x_offset"]))
