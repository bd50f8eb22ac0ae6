"""parameterization="auto": centered or non-centered per term, chosen from the data."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hiermodels as hm
from hiermodels.engines.mcmc import check_convergence
from hiermodels.errors import ConvergenceWarning
from hiermodels.parameterization import THRESHOLD


def many_rows(seed, groups=50, per_group=100):
    """Groups pinned down by their data: 100 rows each, sigma 1, tau (0.5, 0.3)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    b = rng.normal(0, [0.5, 0.3], size=(groups, 2))
    y = 1 + b[g, 0] + (0.5 + b[g, 1]) * x + rng.normal(0, 1.0, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})


def offsets(model):
    return {v.name for v in model.free_RVs if v.name.endswith("_offset")}


def test_eight_schools_rows_with_known_se_are_noncentered():
    schools = hm.datasets.load("eight_schools")
    model = hm.HierarchicalModel(schools, "y | se(sigma) ~ 1 + (1 | school)")
    table = model.parameterization_choice()
    assert table[["term", "factor", "choice"]].values.tolist() == [
        ["Intercept", "school", "noncentered"]
    ]
    # se 9-18 and estimates that vary no more than that: tau_hat at its floor
    assert table.loc[0, "ratio"] > 10 and "floor" in table.loc[0, "reason"]
    assert offsets(model.build()) == {"Intercept|school_offset"}


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g)"])
def test_hundred_rows_per_group_are_centered(formula, seed):
    model = hm.HierarchicalModel(many_rows(seed(21)), formula)
    table = model.parameterization_choice()
    assert set(table["choice"]) == {"centered"}
    # s_j = 1 / sqrt(100) = 0.1 against tau 0.3-0.5
    assert (table["ratio"] < THRESHOLD).all() and (table["ratio"] > 0.1).all()
    assert offsets(model.build()) == set()


def test_correlated_block_follows_its_least_informed_term(seed):
    rng = np.random.default_rng(seed(22))
    g = np.repeat(np.arange(40), 100)
    # z hardly varies within a group: each group's own slope is weakly identified (s_j ~ 5),
    # its intercept well (s_j ~ 0.1, against tau 0.5)
    z = 0.02 * rng.normal(size=g.size)
    b = rng.normal(0, [0.5, 0.3], size=(40, 2))
    y = 1 + b[g, 0] + (0.5 + b[g, 1]) * z + rng.normal(0, 1.0, g.size)
    df = pd.DataFrame({"y": y, "z": z, "g": g})
    table = hm.HierarchicalModel(df, "y ~ z + (1 + z | g)").parameterization_choice()
    assert set(table["choice"]) == {"noncentered"}
    assert "least informed of the correlated terms, z" in table.loc[0, "reason"]
    independent = hm.HierarchicalModel(df, "y ~ z + (1 + z || g)").parameterization_choice()
    assert independent.set_index("term")["choice"].to_dict() == {
        "Intercept": "centered",
        "z": "noncentered",
    }


def test_glm_choices_use_the_fisher_information(seed):
    rng = np.random.default_rng(seed(23))
    g = np.repeat(np.arange(30), 200)
    b = rng.normal(0, 0.5, 30)
    df = pd.DataFrame({"k": rng.poisson(np.exp(2 + b[g])), "g": g})
    table = hm.HierarchicalModel(df, "k ~ 1 + (1 | g)", family="poisson").parameterization_choice()
    # each group: 200 counts of mean ~7, s_j ~ 1 / sqrt(1400) ~ 0.03 against tau 0.5
    assert table.loc[0, "choice"] == "centered" and table.loc[0, "ratio"] < 0.2
    # two counts of mean ~1 per group: s_j ~ 0.7 against tau 0.5
    few = pd.DataFrame({"k": rng.poisson(np.exp(b[g])), "g": g}).groupby("g").head(2)
    table = hm.HierarchicalModel(few, "k ~ 1 + (1 | g)", family="poisson").parameterization_choice()
    assert table.loc[0, "choice"] == "noncentered"


def test_given_parameterizations_work_as_before(seed):
    df = many_rows(seed(24), groups=10, per_group=100)
    non = hm.HierarchicalModel(df, "y ~ x + (1 + x | g)", parameterization="noncentered")
    assert offsets(non.build()) == {"Intercept|g_offset", "x|g_offset"}
    assert non.parameterization_choice()["reason"].tolist() == ["given", "given"]
    assert non.parameterization_choice()["ratio"].isna().all()
    mixed = hm.HierarchicalModel(
        df, "y ~ x + (1 + x || g)", parameterization={"x": "auto", "Intercept": "noncentered"}
    )
    table = mixed.parameterization_choice().set_index("term")
    assert table.loc["Intercept", "reason"] == "given"
    assert table.loc["x", "choice"] == "centered" and table.loc["x", "reason"] != "given"
    assert offsets(mixed.build()) == {"Intercept|g_offset"}
    # unnamed terms of a dict stay non-centered, as before "auto" existed
    only = hm.HierarchicalModel(df, "y ~ x + (1 + x || g)", parameterization={"x": "centered"})
    assert offsets(only.build()) == {"Intercept|g_offset"}


def test_unknown_parameterization_names_auto():
    df = many_rows(0, groups=5, per_group=4)
    with pytest.raises(hm.SpecError, match="use 'auto'"):
        hm.HierarchicalModel(df, "y ~ 1 + (1 | g)", parameterization="automatic").build()


def test_auto_is_the_default():
    import inspect

    for f in (hm.HierarchicalModel.__init__, hm.fit_hierarchical):
        assert inspect.signature(f).parameters["parameterization"].default == "auto"


@pytest.mark.filterwarnings("ignore::hiermodels.ConvergenceWarning")  # mocked draws
def test_the_choice_is_in_the_result_and_survives_save(mock_pymc_sample, tmp_path, seed):
    df = many_rows(seed(25), groups=8, per_group=100)
    res = hm.fit_hierarchical(df, "y ~ x + (1 | g)", draws=10, chains=1)
    assert res.parameterization.loc[0, "choice"] == "centered"
    assert res.spec.parameterization == (("Intercept|g", "centered"),)
    stored = json.loads(res.idata.attrs["parameterization"])
    assert stored[0]["choice"] == "centered" and stored[0]["automatic"] is True
    loaded = hm.load(res.save(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(loaded.parameterization, res.parameterization)


def _idata(posterior, diverging):
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in posterior.items()})
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict({"posterior": ds, "sample_stats": stats})


def test_convergence_advice_quotes_the_automatic_choice():
    rng = np.random.default_rng(0)
    div = np.zeros((4, 500), bool)
    div[0, :3] = True
    idata = _idata({"a": rng.normal(size=(4, 500))}, div)
    why = {"a|g": "the automatic choice was centered because median s_j / tau_hat = 0.2"}
    with pytest.warns(ConvergenceWarning) as record:
        check_convergence(idata, ["a"], centered=["a|g"], why=why)
    assert "(the automatic choice was centered because median" in str(record[0].message)
    stuck = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 5.0])[:, None]
    idata = _idata({"b|g_offset": stuck}, np.zeros((4, 500), bool))
    why = {"b|g_offset": "the automatic choice was noncentered because it is"}
    with pytest.warns(ConvergenceWarning):
        messages = check_convergence(idata, ["b|g_offset"], offsets=["b|g_offset"], why=why)
    assert all("(the automatic choice was noncentered because it is)" in m for m in messages)
    # a given parameterization gets the advice without a reason
    with pytest.warns(ConvergenceWarning):
        messages = check_convergence(idata, ["b|g_offset"], offsets=["b|g_offset"])
    assert not any("automatic" in m for m in messages)


def test_intercepts_of_several_factors_stay_noncentered(seed):
    """Crossed items x raters, each factor's data informative (ratios ~0.25): centering both
    intercepts puts a ridge between them (bench_parameterization: smallest ESS ~25 vs ~80)."""
    rng = np.random.default_rng(seed(26))
    ii, rr = (g.ravel() for g in np.meshgrid(np.arange(40), np.arange(12), indexing="ij"))
    x = rng.normal(size=ii.size)
    y = 1 + 0.5 * x + rng.normal(0, 1.0, 40)[ii] + rng.normal(0, 0.5, 12)[rr]
    df = pd.DataFrame({"item": ii, "rater": rr, "x": x, "y": y + rng.normal(0, 0.3, ii.size)})
    table = hm.HierarchicalModel(df, "y ~ x + (1 | item) + (1 | rater)").parameterization_choice()
    assert table["choice"].tolist() == ["noncentered", "noncentered"]
    assert (table["ratio"] < THRESHOLD).all()
    assert all("several grouping factors (item, rater)" in r for r in table["reason"])
    # a slope varying by one factor still follows the ratio rule
    slopes = hm.HierarchicalModel(df, "y ~ x + (1 | item) + (0 + x | rater)")
    assert slopes.parameterization_choice()["reason"].str.contains("several").sum() == 0
