"""save -> load round trips (mocked draws): same summaries, same predictions; bad files."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hiermodels as hm

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


@pytest.fixture
def counts():
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "y": rng.poisson(2.0, 48),
            "x": rng.normal(size=48),
            "kind": rng.choice(["p", "q"], 48),
            "g": np.repeat(list("abcdef"), 8),
            "log_t": np.log(rng.uniform(1, 2, 48)),
        }
    )


def test_round_trip_predicts_identically(mock_pymc_sample, counts, tmp_path):
    res = hm.fit_hierarchical(
        counts,
        y="y",
        group="g",
        predictors=["x", "kind"],
        varying=["x"],
        family="poisson",
        offset="log_t",
        hyperprior=hm.priors.HalfNormal(0.3),
        parameterization={"x": "noncentered"},
        # the mocked sampler returns prior draws: tight priors keep the Poisson rates sane
        priors={"Intercept": hm.priors.Normal(0.7, 0.1), "x": hm.priors.Normal(0, 0.2)},
        draws=30,
    )
    path = res.save(tmp_path / "fit.nc")
    back = hm.load(path)
    assert back.spec == res.spec
    assert back.family.name == "poisson" and back.data.categories == (("kind", ("p", "q")),)
    pd.testing.assert_frame_equal(back.summary(), res.summary())
    pd.testing.assert_frame_equal(back.group_effects(), res.group_effects())
    new = counts.head(3).assign(g=["a", "new", "new"])
    for kind in ("mean", "response"):
        np.testing.assert_array_equal(
            back.predict(new, kind=kind, random_seed=5).draws.values,
            res.predict(new, kind=kind, random_seed=5).draws.values,
        )
    assert {v.name for v in back.model.free_RVs} == {v.name for v in res.model.free_RVs}
    # the file is plain netCDF: any reader sees the draws
    with xr.open_datatree(path) as tree:
        assert tree["posterior"]["x"].shape == res.idata["posterior"]["x"].shape
        assert tree.attrs["hiermodels_format"] == "hiermodels.fit"


def test_foreign_corrupt_missing_and_newer_files(mock_pymc_sample, counts, tmp_path):
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file at all")
    with pytest.raises(hm.DataError, match="not a readable netCDF file"):
        hm.load(garbage)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(foreign)
    with pytest.raises(hm.DataError, match="not a hiermodels fit"):
        hm.load(foreign)
    with pytest.raises(hm.DataError, match="no such file"):
        hm.load(tmp_path / "nothing.nc")
    res = hm.fit_hierarchical(counts, y="y", group="g", draws=10)
    path = res.save(tmp_path / "fit.nc")
    with xr.open_datatree(path) as tree:
        newer = tree.load()
    newer.attrs["hiermodels_format_version"] = 99
    newer.attrs["hiermodels_version"] = "9.0.0"
    newer.to_netcdf(tmp_path / "newer.nc")
    with pytest.raises(hm.SpecError, match=r"written by hiermodels 9\.0\.0 in file format 99"):
        hm.load(tmp_path / "newer.nc")


def test_save_gives_the_real_reason_and_leaves_no_half_written_file(
    mock_pymc_sample, counts, tmp_path, monkeypatch
):
    res = hm.fit_hierarchical(counts, y="y", group="g", draws=10)
    # the netCDF library says "Permission denied" for all of these
    with pytest.raises(hm.DataError, match=r"directory '.*missing' does not exist"):
        res.save(tmp_path / "missing" / "fit.nc")
    with pytest.raises(hm.DataError, match="it is a directory"):
        res.save(tmp_path)

    def fails_halfway(self, path, **kwargs):
        path.write_bytes(b"CDF\x01 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", fails_halfway)
    with pytest.raises(hm.DataError, match=r"cannot write '.*fit\.nc': No space left on device"):
        res.save(tmp_path / "fit.nc")
    assert not (tmp_path / "fit.nc").exists()  # hm.load would only call it damaged
