"""Plumbing with a mocked sampler: fit -> summary / group_effects wiring, no MCMC."""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

# mocked draws come from the prior, so the convergence checks rightly complain
pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


@pytest.fixture
def result(mock_pymc_sample, radon):
    return hm.fit_hierarchical(
        radon,
        y="log_radon",
        group="county",
        predictors=["floor", "log_uranium"],
        varying=["floor"],
        draws=30,
        chains=2,
        random_seed=1,
    )


def test_summary_rows_and_columns(result):
    table = result.summary()
    assert list(table.index) == [
        "Intercept",
        "floor",
        "log_uranium",
        "sigma",
        "Intercept|county_sigma",
        "floor|county_sigma",
        "county_corr[floor, Intercept]",
    ]
    for column in ["mean", "sd", "median", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat"]:
        assert column in table.columns
    assert (table["ci_low"] <= table["ci_high"]).all()
    post = result.idata["posterior"]
    assert table.loc["floor", "mean"] == pytest.approx(float(post["floor"].mean()))


def test_group_effects_table(result, radon):
    table = result.group_effects(prob=0.9)
    assert len(table) == 85 * 2
    assert set(table["term"]) == {"Intercept", "floor"}
    for column in [
        "group",
        "term",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "n_obs",
        "no_pooling",
        "population",
        "pooling_factor",
        "shrinkage_ratio",
        "deviation",
    ]:
        assert column in table.columns
    counts = radon.groupby("county").size()
    row = table[(table["group"] == "HENNEPIN") & (table["term"] == "Intercept")].iloc[0]
    assert row["n_obs"] == counts["HENNEPIN"]
    # the group's coefficient is population intercept + uranium effect + its deviation
    post = result.idata["posterior"]
    u = radon.loc[radon["county"] == "HENNEPIN", "log_uranium"].iloc[0]
    draws = (
        post["Intercept"]
        + post["log_uranium"] * u
        + post["Intercept|county"].sel(county="HENNEPIN")
    )
    assert row["mean"] == pytest.approx(float(draws.mean()))
    # a county whose houses are all on one floor has no slope of its own
    one_floor = radon.groupby("county")["floor"].nunique().eq(1)
    slopes = table[table["term"] == "floor"].set_index("group")
    assert slopes.loc[one_floor[one_floor].index, "no_pooling"].isna().all()
    assert slopes.loc[one_floor[~one_floor].index, "no_pooling"].notna().all()


def test_result_exposes_idata_and_model(result):
    assert "posterior" in result.idata.children
    assert result.model["Intercept|county"] in result.model.deterministics
    assert "(Intercept + floor | county); 85 county groups" in repr(result)


def test_sample_kwargs_and_sampler_reach_pm_sample(monkeypatch, radon):
    import pymc as pm

    seen = {}

    def fake_sample(**kwargs):
        seen.update(kwargs)
        _stop_sampling()

    monkeypatch.setattr(pm, "sample", fake_sample)
    with pytest.raises(RuntimeError, match="sampling reached"):
        hm.fit_hierarchical(
            radon,
            y="log_radon",
            group="county",
            draws=7,
            sampler="pymc",
            sample_kwargs={"target_accept": 0.95},
            random_seed=3,
        )
    assert seen["nuts_sampler"] == "pymc"
    assert seen["draws"] == 7
    assert seen["target_accept"] == 0.95
    assert seen["random_seed"] == 3


def test_default_sampler_is_nutpie(monkeypatch, radon):
    import pymc as pm

    seen = {}
    monkeypatch.setattr(pm, "sample", lambda **kw: seen.update(kw) or _stop_sampling())
    with pytest.raises(RuntimeError):
        hm.fit_hierarchical(radon, y="log_radon", group="county")
    assert seen["nuts_sampler"] == "nutpie"


def test_unknown_or_missing_sampler(radon):
    with pytest.raises(hm.SpecError, match="unknown sampler 'stan'"):
        hm.fit_hierarchical(radon, y="log_radon", group="county", sampler="stan")
    import importlib.util

    if importlib.util.find_spec("numpyro") is None:
        with pytest.raises(hm.SpecError, match="pip install numpyro"):
            hm.fit_hierarchical(radon, y="log_radon", group="county", sampler="numpyro")


def _stop_sampling(**kwargs):
    raise RuntimeError("sampling reached")


def test_prior_warnings_on_fit(monkeypatch, radon):
    import pymc as pm

    monkeypatch.setattr(pm, "sample", _stop_sampling)
    few = radon[radon["county"].isin(["AITKIN", "ANOKA", "BECKER"])]
    cases = [(few, "uniform", "heavy-tailed"), (radon, "inverse_gamma", "toward zero")]
    for data, preset, message in cases:
        with pytest.warns(hm.PriorWarning, match=message), pytest.raises(RuntimeError):
            hm.fit_hierarchical(data, y="log_radon", group="county", hyperprior=preset)


def test_fit_does_not_mutate_frame(mock_pymc_sample, radon):
    before = radon.copy(deep=True)
    hm.fit_hierarchical(
        radon, y="log_radon", group="county", predictors=["floor"], draws=5, chains=1
    )
    assert radon.equals(before)
    assert np.isfinite(before["log_radon"]).all()


def test_group_effects_of_big_data_use_per_group_sums(monkeypatch, mock_pymc_sample):
    """Above the dense-design limit (1e6 rows x 1e4 groups would need ~150 GB) the own
    estimates come from per-group sums; on data where both fit they agree closely."""
    from hiermodels.results import hierarchical

    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(20), 15)
    df = pd.DataFrame(
        {"g": g.astype(str), "x": rng.normal(size=g.size), "z": rng.normal(size=g.size)}
    )
    df["y"] = (
        1 + 0.5 * df["x"] + 0.2 * df["z"] + rng.normal(0, 0.5, 20)[g] + rng.normal(size=g.size)
    )
    res = hm.fit_hierarchical(df, "y ~ x + z + (1 + x | g)", draws=30, chains=1)
    # the per-group sums take the shared slope of z at its posterior mean where the dense
    # fit refits it with the groups' own intercepts and slopes: with that mean set to the
    # dense fit's own z slope (least squares on group dummies, group x slopes and z), the two
    # must agree to rounding (the mocked draws would make z's mean arbitrary)
    dummies = (df["g"].to_numpy()[:, None] == np.unique(df["g"])[None, :]).astype(float)
    design = np.column_stack([dummies, dummies * df[["x"]].to_numpy(), df["z"]])
    z_slope = np.linalg.lstsq(design, df["y"].to_numpy(), rcond=None)[0][-1]
    res.idata["posterior"]["z"].values[...] = z_slope
    dense = res.group_effects()
    monkeypatch.setattr(hierarchical, "DENSE_LIMIT", 10)
    grouped = res.group_effects()
    np.testing.assert_allclose(grouped["no_pooling"], dense["no_pooling"], rtol=1e-8, atol=1e-10)
    assert grouped["pooling_factor"].dropna().between(0, 1).all()


def test_no_pooling_subtracts_the_offset(mock_pymc_sample):
    """y_i = offset_i + intercept_g + e_i: each group's own estimate is the mean of y - offset
    (the model's mean includes the offset), not the mean of y."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(6), 8)
    df = pd.DataFrame({"g": g, "off": rng.normal(5, 2, g.size)})
    df["y"] = df["off"] + rng.normal(0, 1, 6)[g] + rng.normal(size=g.size)
    res = hm.fit_hierarchical(df, "y ~ 1 + offset(off) + (1 | g)", draws=20, chains=1)
    estimate, _ = res.no_pooling()
    want = (df["y"] - df["off"]).groupby(df["g"]).mean().to_numpy()
    np.testing.assert_allclose(np.ravel(estimate), want, rtol=1e-10)
