"""Several grouping factors: crossed (items x raters) and nested (classes within schools)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm


def crossed_data(seed=0, items=20, raters=8, sd_item=1.0, sd_rater=0.5, sigma=0.3):
    """Every rater scores every item once: y = 1 + 0.5 x + a_item + b_rater + noise."""
    rng = np.random.default_rng(seed)
    ii, rr = np.meshgrid(np.arange(items), np.arange(raters), indexing="ij")
    ii, rr = ii.ravel(), rr.ravel()
    a, b = rng.normal(0, sd_item, items), rng.normal(0, sd_rater, raters)
    x = rng.normal(size=ii.size)
    y = 1 + 0.5 * x + a[ii] + b[rr] + rng.normal(0, sigma, ii.size)
    df = pd.DataFrame({"item": [f"i{i:02d}" for i in ii], "rater": [f"r{r}" for r in rr]})
    return df.assign(x=x, y=y), a, b


def nested_data(seed=0, schools=6, classes=3, students=8, sd_school=1.0, sd_class=0.5):
    """Classes are labelled c0..c2 in every school: only the pair (school, class) is a class."""
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(schools), classes * students)
    c = np.tile(np.repeat(np.arange(classes), students), schools)
    a = rng.normal(0, sd_school, schools)
    b = rng.normal(0, sd_class, (schools, classes))
    x = rng.normal(size=s.size)
    y = 2 + 0.3 * x + a[s] + b[s, c] + rng.normal(0, 0.5, s.size)
    df = pd.DataFrame({"school": [f"s{k}" for k in s], "class": [f"c{k}" for k in c]})
    return df.assign(x=x, y=y), a, b


def dims_of(model):
    return {v.name: model.named_vars_to_dims.get(v.name) for v in model.free_RVs}


def test_crossed_builds_one_block_per_factor():
    df, _, _ = crossed_data()
    model = hm.HierarchicalModel(
        df, "y ~ x + (1 | item) + (1 | rater)", parameterization="noncentered"
    ).build()
    assert len(model.coords["item"]) == 20 and len(model.coords["rater"]) == 8
    assert dims_of(model) == {
        "Intercept_at_means": None,  # predictors are centred inside the model
        "x": None,
        "Intercept|item_sigma": None,
        "Intercept|item_offset": ("item",),
        "Intercept|rater_sigma": None,
        "Intercept|rater_offset": ("rater",),
        "sigma": None,
    }
    point = model.initial_point()
    n_free = sum(np.size(v) for v in point.values())
    assert n_free == 2 + 1 + (1 + 20) + (1 + 8)  # beta, sigma, SD + levels per factor
    assert model.named_vars_to_dims["Intercept|item"] == ("item",)


def test_crossed_keyword_form_is_the_formula():
    df, _, _ = crossed_data()
    by_formula = hm.HierarchicalModel(df, "y ~ x + (1 + x | item) + (1 + x | rater)")
    by_keywords = hm.HierarchicalModel(
        df, y="y", group=["item", "rater"], predictors=["x"], varying=["x"]
    )
    _, f_spec, f_priors = by_formula.prepared()
    _, k_spec, k_priors = by_keywords.prepared()
    assert f_spec.groups == k_spec.groups
    assert f_priors == k_priors
    m1, m2 = by_formula.build(), by_keywords.build()
    point = m1.initial_point()
    assert m1.compile_logp()(point) == pytest.approx(m2.compile_logp()(point))


def test_nested_levels_are_school_class_pairs():
    df, _, _ = nested_data()
    model = hm.HierarchicalModel(
        df, "y ~ x + (1 | school/class)", parameterization="noncentered"
    ).build()
    assert len(model.coords["school"]) == 6
    assert len(model.coords["school:class"]) == 18  # not 3: c0 of s0 is not c0 of s1
    assert model.coords["school:class"][:3] == ("s0:c0", "s0:c1", "s0:c2")
    dims = dims_of(model)
    assert dims["Intercept|school_offset"] == ("school",)
    assert dims["Intercept|school:class_offset"] == ("school:class",)
    assert "Intercept|school:class_sigma" in dims


def test_varying_slopes_per_factor_have_their_own_correlation():
    df, _, _ = crossed_data()
    model = hm.HierarchicalModel(df, "y ~ x + (1 + x | item) + (1 | rater)").build()
    assert model.coords["item_term"] == ("Intercept", "x")
    assert model.named_vars_to_dims["item_corr"] == ("item_term", "item_term_bis")
    assert "rater_corr" not in model.named_vars
    assert dims_of(model)["x|item_offset"] == ("item",)
    independent = hm.HierarchicalModel(df, "y ~ x + (1 + x || item) + (1 | rater)").build()
    assert "item_corr" not in independent.named_vars
    assert "x|item_sigma" in independent.named_vars


def test_likelihood_indexes_each_factor():
    """At a random point, the model's log-likelihood is the hand-computed one."""
    df, _, _ = nested_data()
    model = hm.HierarchicalModel(
        df, "y ~ x + (1 | school/class)", parameterization="noncentered"
    ).build()
    rng = np.random.default_rng(3)
    point = {k: rng.normal(size=np.shape(v)) for k, v in model.initial_point().items()}
    loglik = model.compile_fn(model.logp(vars=[model["y"]]), inputs=model.value_vars)
    value = loglik(point)
    school = df["school"].str[1:].astype(int).to_numpy()
    klass = (df["school"] + ":" + df["class"]).map(
        {label: j for j, label in enumerate(model.coords["school:class"])}
    )
    a = np.exp(point["Intercept|school_sigma_log__"]) * point["Intercept|school_offset"]
    b = np.exp(point["Intercept|school:class_sigma_log__"]) * point["Intercept|school:class_offset"]
    values = model.replace_rvs_by_values([model["Intercept"], model["x"]])
    intercept, x = model.compile_fn(values, inputs=model.value_vars, on_unused_input="ignore")(
        point
    )
    eta = intercept + x * df["x"] + a[school] + b[klass.to_numpy()]
    sigma = np.exp(point["sigma_log__"])
    assert value == pytest.approx(stats.norm.logpdf(df["y"], eta, sigma).sum())


def test_bad_grouping_terms():
    df, _, _ = crossed_data()
    with pytest.raises(hm.SpecError, match=r"\['item'\] appear in more than one"):
        hm.HierarchicalModel(df, "y ~ x + (1 | item) + (1 + x | item)").build()
    with pytest.raises(hm.DataError, match=r"column\(s\) 'judge' not in the data"):
        hm.HierarchicalModel(df, "y ~ x + (1 | item) + (1 | judge)").build()
    with pytest.raises(hm.SpecError, match="must be a column name or a list"):
        hm.HierarchicalModel(df, y="y", group=3).build()


@pytest.fixture
def crossed_mocked(mock_pymc_sample):
    df, _, _ = crossed_data()
    with warnings.catch_warnings():  # the mocked sampler returns unseeded prior draws
        warnings.simplefilter("ignore", hm.ConvergenceWarning)
        return df, hm.fit_hierarchical(df, "y ~ x + (1 + x | item) + (1 | rater)", draws=20)


def test_results_cover_every_factor(crossed_mocked):
    df, res = crossed_mocked
    summary = res.summary()
    for name in (
        "Intercept|item_sigma",
        "x|item_sigma",
        "Intercept|rater_sigma",
        "item_corr[x, Intercept]",
    ):
        assert name in summary.index
    effects = res.group_effects()
    counts = effects.groupby(["factor", "term"]).size().to_dict()
    assert counts == {("item", "Intercept"): 20, ("item", "x"): 20, ("rater", "Intercept"): 8}
    assert effects["no_pooling"].isna().all()  # not defined with crossed factors
    assert (effects.loc[effects["factor"] == "rater", "n_obs"] == 20).all()
    # fitted linear predictor adds both factors' deviations
    post = res.idata["posterior"]
    row = 5
    item, rater = df.loc[row, "item"], df.loc[row, "rater"]
    expected = (
        post["Intercept"]
        + post["x"] * df.loc[row, "x"]
        + post["Intercept|item"].sel(item=item)
        + post["x|item"].sel(item=item) * df.loc[row, "x"]
        + post["Intercept|rater"].sel(rater=rater)
    )
    np.testing.assert_allclose(res.linear_predictor()[..., row], expected.values)


def test_prediction_new_level_of_one_factor(crossed_mocked):
    _, res = crossed_mocked
    new = pd.DataFrame(
        {"item": ["i00", "i00", "zz", "zz"], "rater": ["r0", "new", "r0", "r0"], "x": 0.0}
    )
    pred = res.predict(new, random_seed=1)
    assert pred.new_group.tolist() == [False, True, True, True]
    assert pred.new_levels["rater"].tolist() == [False, True, False, False]
    summary = pred.summary()
    assert list(summary.columns[:3]) == ["item", "rater", "new_group"]
    post = res.idata["posterior"]
    draws = pred.draws.values
    # row 1: known item i00, new rater: the item deviation is the posterior one
    known_part = post["Intercept"] + post["Intercept|item"].sel(item="i00")
    zero = res.predict(new, new_groups="zero").draws.values
    np.testing.assert_allclose(zero[..., 1], known_part.values)
    assert not np.allclose(draws[..., 1], known_part.values)
    np.testing.assert_allclose(draws[..., 2], draws[..., 3])  # one draw per new level
    with pytest.raises(hm.DataError, match=r"factor 'rater' has level\(s\) not seen.*\['new'\]"):
        res.predict(new, new_groups="error")
    with pytest.raises(hm.DataError, match=r"'rater' not in the data"):
        res.predict(new.drop(columns="rater"))


def test_save_load_several_factors(crossed_mocked, tmp_path):
    _, res = crossed_mocked
    back = hm.load(res.save(tmp_path / "crossed.nc"))
    assert [f.name for f in back.data.factors] == ["item", "rater"]
    assert back.spec == res.spec
    new = pd.DataFrame({"item": ["i03", "zz"], "rater": ["r2", "new"], "x": [0.2, -1.0]})
    a = res.predict(new, kind="response", random_seed=4).draws.values
    b = back.predict(new, kind="response", random_seed=4).draws.values
    np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(back.group_effects(), res.group_effects())


def _fit_tolerating_rhat(df, formula, **kwargs):
    """Fit, letting R-hat (1.01-1.05), ESS (100-200) and rare-divergence warnings through;
    worse fails.

    With well-measured groups the population intercept and the mean of the deviations form a
    ridge (the deviation parameterization is not hierarchically centered), which mixes
    slowly: R-hat 1.01-1.03 on 2 x 1000 draws.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", hm.ConvergenceWarning)
        res = hm.fit_hierarchical(df, formula, **kwargs)
    for w in caught:
        message = str(w.message)
        assert message.startswith(("R-hat above", "bulk ESS below")) or "divergent" in message

    assert np.asarray(res.idata["sample_stats"]["diverging"]).mean() < 0.005
    table = res.summary()
    assert table["r_hat"].max() < 1.05
    assert table["ess_bulk"].min() > 100
    return res


@pytest.mark.slow
def test_crossed_recovery(seed):
    """Item and rater SDs and the slope are recovered (99% intervals) with converged chains."""
    df, a, b = crossed_data(seed=seed(5))
    res = _fit_tolerating_rhat(
        df,
        "y ~ x + (1 | item) + (1 | rater)",
        draws=1000,
        tune=1000,
        chains=2,
        random_seed=seed(5),
        sample_kwargs={"target_accept": 0.95},
    )
    table = res.summary(prob=0.99)
    # the SDs the data carry information on are those of the effects drawn (20 items, 8
    # raters), not the nominal 1.0 and 0.5: with 20 draws a sample SD of 0.46 happens
    for name, truth in (
        ("x", 0.5),
        ("sigma", 0.3),
        ("Intercept|item_sigma", np.std(a, ddof=1)),
        ("Intercept|rater_sigma", np.std(b, ddof=1)),
    ):
        assert table.loc[name, "ci_low"] < truth < table.loc[name, "ci_high"], name
    assert table["r_hat"].max() < 1.05
    effects = res.group_effects().set_index(["factor", "group"])
    item_dev = effects.loc["item", "deviation"].to_numpy()
    assert np.corrcoef(item_dev, a)[0, 1] > 0.95  # each item's deviation is recovered


@pytest.mark.slow
def test_nested_recovery_and_new_class_in_known_school(seed):
    df, _, _ = nested_data(seed=seed(2), schools=8, students=10)
    res = _fit_tolerating_rhat(
        df,
        "y ~ x + (1 | school/class)",
        draws=800,
        tune=800,
        chains=2,
        random_seed=seed(2),
        sample_kwargs={"target_accept": 0.95},
    )
    table = res.summary(prob=0.99)
    assert table.loc["x", "ci_low"] < 0.3 < table.loc["x", "ci_high"]
    assert table.loc["Intercept|school:class_sigma", "ci_low"] < 0.5
    assert 0.5 < table.loc["Intercept|school:class_sigma", "ci_high"]
    new = pd.DataFrame({"school": ["s0", "s0", "new"], "class": ["c0", "c9", "c0"], "x": 0.0})
    width = res.predict(new, random_seed=seed(1)).summary(prob=0.9).eval("ci_high - ci_low")
    # known class < new class of a known school < class of a new school
    assert width.iloc[0] < width.iloc[1] < width.iloc[2]


def test_parameterization_and_priors_per_factor():
    df, _, _ = crossed_data()
    model = hm.HierarchicalModel(
        df,
        "y ~ x + (1 | item) + (1 | rater)",
        parameterization={"Intercept|item": "centered"},
        priors={"Intercept|rater_sigma": hm.priors.HalfNormal(0.5)},
    )
    dims = dims_of(model.build())
    assert dims["Intercept|item_coef"] == ("item",)  # centered on the population intercept
    assert "Intercept|item_offset" not in dims
    assert dims["Intercept|rater_offset"] == ("rater",)
    priors = model.default_priors()
    assert priors.loc["Intercept|rater_sigma", "rule"] == "given"
    assert str(priors.loc["Intercept|item_sigma", "prior"]).startswith("HalfCauchy")
    with pytest.raises(hm.SpecError, match=r"parameterization given for \['Intercept\|judge'\]"):
        hm.HierarchicalModel(
            df, "y ~ x + (1 | item)", parameterization={"Intercept|judge": "centered"}
        ).build()
