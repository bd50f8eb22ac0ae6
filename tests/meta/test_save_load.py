"""A meta-analysis saved and loaded gives identical tables, for both engines (issue 13)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hiermodels as hm

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


def bcg():
    data = hm.datasets.load("bcg")
    return hm.effect_sizes(data, measure="RR", ai="tpos", bi="tneg", ci="cpos", di="cneg")


def same_tables(a, b):
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    pd.testing.assert_frame_equal(a.heterogeneity(), b.heterogeneity())
    pd.testing.assert_frame_equal(a.study_effects(), b.study_effects())
    for name in a.idata["posterior"].data_vars:
        np.testing.assert_array_equal(
            a.idata["posterior"][name].values, b.idata["posterior"][name].values
        )


@pytest.mark.parametrize("moderators", [(), ("ablat",)])
def test_exact_round_trip(tmp_path, moderators):
    meta = hm.meta_analysis(
        bcg(), estimate="yi", vi="vi", study="trial", moderators=list(moderators), random_seed=3
    )
    back = hm.load(meta.save(tmp_path / "bcg.nc"))
    assert type(back) is type(meta) and back.method == "exact"
    same_tables(meta, back)
    pd.testing.assert_frame_equal(meta.leave_one_out(), back.leave_one_out())
    # the study table comes back for analyses that read other columns
    pd.testing.assert_frame_equal(meta.cumulative(order="year"), back.cumulative(order="year"))


def test_mcmc_round_trip_without_sampling_again(tmp_path, mock_pymc_sample):
    meta = hm.meta_analysis(
        bcg(), estimate="yi", vi="vi", study="trial", method="mcmc", draws=30, chains=2
    )
    back = hm.load(meta.save(tmp_path / "mcmc.nc"))
    assert back.method == "mcmc" and back.exact is None
    same_tables(meta, back)
    assert back.diagnostics == meta.diagnostics


def test_damaged_meta_files_name_the_field(tmp_path):
    meta = hm.meta_analysis(bcg(), estimate="yi", vi="vi", study="trial")
    path = meta.save(tmp_path / "m.nc")
    with xr.open_datatree(path) as opened:
        tree = opened.load()
    broken = tree.copy()
    broken.attrs["hiermodels_spec"] = "{not json"
    broken.to_netcdf(tmp_path / "json.nc")
    with pytest.raises(hm.DataError, match=r"hiermodels_spec.*not valid JSON"):
        hm.load(tmp_path / "json.nc")
    newer = tree.copy()
    newer.attrs["hiermodels_format_version"] = 99
    newer.to_netcdf(tmp_path / "newer.nc")
    with pytest.raises(hm.SpecError, match="meta-analysis file format 99"):
        hm.load(tmp_path / "newer.nc")
    missing = tree.copy()
    del missing["hiermodels_studies"]
    missing.to_netcdf(tmp_path / "missing.nc")
    with pytest.raises(hm.DataError, match=r"hiermodels_studies.*missing"):
        hm.load(tmp_path / "missing.nc")
