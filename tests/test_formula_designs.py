"""Formulas built by formulae's design matrices (issue 12): interactions, transformations,
C(), categorical terms in group blocks, (0 + x | g), no grouping term; fit (mocked draws),
predict with the training encoding, save and load."""

import numpy as np
import pandas as pd
import pytensor
import pytest
import xarray as xr

import hiermodels as hm
from hiermodels.data import prepare

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")

FORMULA = "y ~ x1 * x2 + np.log(z) + C(k) + (1 + x1 | g)"


@pytest.fixture
def df():
    rng = np.random.default_rng(4)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "z": rng.uniform(0.5, 3.0, n),
            "k": rng.choice(["lo", "mid", "hi"], n),
            "kind": rng.choice(["a", "b", "c"], n),
            "g": np.repeat([f"g{j}" for j in range(6)], 10),
        }
    )


def _data(df, formula):
    return hm.HierarchicalModel(df, formula).prepared()[0]


def test_design_columns_are_formulaes(df):
    d = _data(df, FORMULA)
    assert d.terms == (
        "Intercept", "x1", "x2", "x1:x2", "np.log(z)", "C(k)[lo]", "C(k)[mid]",
    )  # fmt: skip
    np.testing.assert_allclose(d.column("x1:x2"), df["x1"] * df["x2"])
    np.testing.assert_allclose(d.column("np.log(z)"), np.log(df["z"]))
    # levels sorted as text, the first ("hi") the reference
    np.testing.assert_array_equal(d.column("C(k)[mid]"), (df["k"] == "mid").astype(float))
    assert d.factor.varying == ("Intercept", "x1")


def test_fit_and_predict_new_rows_with_the_training_encoding(mock_pymc_sample, df):
    res = hm.fit_hierarchical(df, FORMULA, draws=20)
    summary = res.summary()
    assert {"x1:x2", "np.log(z)", "C(k)[lo]", "x1|g_sigma"} <= set(summary.index)
    np.testing.assert_allclose(res.predict(df).draws.values, res.linear_predictor())
    new = pd.DataFrame(
        {"x1": [0.5, -1.0], "x2": [2.0, 0.1], "z": [4.0, 0.25], "k": ["mid", "hi"], "g": "g0"}
    )
    post = res.idata["posterior"]
    beta = {t: np.asarray(post[t]) for t in res.data.terms}
    dev = {t: np.asarray(post[f"{t}|g"])[..., 0] for t in ("Intercept", "x1")}
    expected = np.stack(
        [
            beta["Intercept"] + dev["Intercept"] + (beta["x1"] + dev["x1"]) * x1
            + beta["x2"] * x2 + beta["x1:x2"] * x1 * x2 + beta["np.log(z)"] * np.log(z)
            + (beta["C(k)[mid]"] if k == "mid" else 0.0)
            for x1, x2, z, k in new[["x1", "x2", "z", "k"]].itertuples(index=False)
        ],
        axis=-1,
    )  # fmt: skip
    np.testing.assert_allclose(res.predict(new).draws.values, expected)
    with pytest.raises(hm.DataError, match=r"'k' has categories not seen.*\['top'\].*row 0"):
        res.predict(new.assign(k=["top", "hi"]))
    with pytest.raises(hm.DataError, match=r"'np.log\(z\)' is not finite \(row 1\)"):
        res.predict(new.assign(z=[1.0, -1.0]))


def test_scale_uses_the_training_mean_and_sd_also_after_load(mock_pymc_sample, df, tmp_path):
    res = hm.fit_hierarchical(df, "y ~ scale(x1) + center(x2) + (1 | g)", draws=20)
    new = pd.DataFrame({"x1": [0.0, 1.0], "x2": [0.0, 0.0], "g": ["g1", "g2"]})
    mean, sd = df["x1"].mean(), df["x1"].std(ddof=0)  # formulae's scale() divides by n
    encoded = res.data.design.encode(new)
    np.testing.assert_allclose(encoded[:, 1], (new["x1"] - mean) / sd)
    np.testing.assert_allclose(encoded[:, 2], -df["x2"].mean())
    back = hm.load(res.save(tmp_path / "fit.nc"))
    np.testing.assert_allclose(back.data.design.encode(new), encoded)
    np.testing.assert_array_equal(back.predict(new).draws.values, res.predict(new).draws.values)


def test_save_load_keeps_interactions_and_categories(mock_pymc_sample, df, tmp_path):
    res = hm.fit_hierarchical(df, FORMULA, draws=20)
    back = hm.load(res.save(tmp_path / "fit.nc"))
    assert back.spec == res.spec and back.data.terms == res.data.terms
    new = df.head(4).assign(g=["g0", "new", "g3", "new"])
    np.testing.assert_array_equal(
        back.predict(new, random_seed=1).draws.values, res.predict(new, random_seed=1).draws.values
    )
    pd.testing.assert_frame_equal(back.group_effects(), res.group_effects())


def test_no_grouping_term_is_a_plain_regression(mock_pymc_sample, df, tmp_path):
    model = hm.HierarchicalModel(df, "y ~ x1 + kind")
    assert {v.name for v in model.build().free_RVs} == {
        "Intercept_at_means", "x1", "kind[b]", "kind[c]", "sigma",
    }  # fmt: skip
    res = model.fit(draws=20)
    assert list(res.summary().index) == ["Intercept", "x1", "kind[b]", "kind[c]", "sigma"]
    effects = res.group_effects()
    assert effects.empty
    assert list(effects.columns) == [
        "factor", "group", "term", "mean", "sd", "ci_low", "ci_high", "deviation", "n_obs",
        "no_pooling", "population", "pooling_factor", "shrinkage_ratio",
    ]  # fmt: skip
    pred = res.predict(df.drop(columns="g"))  # no group column needed
    np.testing.assert_allclose(pred.draws.values, res.linear_predictor())
    columns = ["new_group", "mean", "sd", "median", "ci_low", "ci_high"]
    assert list(pred.summary().columns) == columns
    assert not pred.new_group.any()
    back = hm.load(res.save(tmp_path / "fit.nc"))
    pd.testing.assert_frame_equal(back.summary(), res.summary())
    np.testing.assert_array_equal(back.predict(df).draws.values, pred.draws.values)
    assert "y ~ x1 + kind[b] + kind[c];" in repr(res)


def test_varying_slope_without_varying_intercept(mock_pymc_sample, df, tmp_path):
    model = hm.HierarchicalModel(df, "y ~ x1 + (0 + x1 | g)")
    names = {v.name for v in model.build().free_RVs}
    assert {"x1|g_sigma", "x1|g_offset"} <= names
    assert not any(n.startswith("Intercept|") for n in names)
    res = model.fit(draws=20)
    effects = res.group_effects()
    assert set(effects["term"]) == {"x1"} and len(effects) == 6
    assert np.isfinite(effects["no_pooling"]).all()
    np.testing.assert_allclose(res.predict(df).draws.values, res.linear_predictor())
    new = df.head(2).assign(g=["g0", "brand new"])
    pred = res.predict(new, random_seed=3)
    assert pred.new_group.tolist() == [False, True]
    back = hm.load(res.save(tmp_path / "fit.nc"))
    assert back.data.factor.varying == ("x1",) and not back.spec.groups[0].intercept
    np.testing.assert_array_equal(back.predict(new, random_seed=3).draws.values, pred.draws.values)
    assert "(0 + x1 | g)" in repr(res)


def test_centered_slope_without_intercept_builds():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"y": rng.normal(size=20), "x": rng.normal(size=20), "u": np.repeat([1.0, 2.0], 10)}
    ).assign(g=np.repeat(["a", "b"], 10))
    model = hm.HierarchicalModel(df, "y ~ x + u + (0 + x | g)", parameterization="centered")
    built = model.build()
    assert "x|g_coef" in built.named_vars
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        assert np.isfinite(built.compile_logp()(built.initial_point()))


def test_categorical_term_varies_as_its_dummy_columns(df):
    by_formula = hm.HierarchicalModel(df, "y ~ x1 + kind + (1 + kind | g)")
    by_keywords = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x1", "kind"], varying=["kind"]
    )
    f_data, _, f_priors = by_formula.prepared()
    k_data, _, k_priors = by_keywords.prepared()
    assert f_data.factor.varying == ("Intercept", "kind[b]", "kind[c]")
    assert f_data.terms == k_data.terms and f_data.factor.varying == k_data.factor.varying
    np.testing.assert_array_equal(f_data.X, k_data.X)
    assert f_priors == k_priors
    m1, m2 = by_formula.build(), by_keywords.build()
    with pytensor.config.change_flags(mode="FAST_COMPILE"):  # no C compiler, no BLAS lookup
        point = m2.initial_point()
    assert m1.compile_logp(mode="FAST_COMPILE")(point) == pytest.approx(
        m2.compile_logp(mode="FAST_COMPILE")(point)
    )


def test_keyword_form_keeps_its_names_and_encoding():
    df = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5, 2.0, 1.0],
            "n": [1, 2, 3, 1, 2, 5, 7, 1],  # integers
            "flag": [True, False, True, True, False, False, True, False],  # bools are 0/1
            "floor level": [0.0, 1.0, 0.5, 1.0, 1.0, 0.0, 0.0, 2.0],
            "c": pd.Categorical(list("abaxbxaa"), categories=["x", "b", "a"]).rename_categories(
                {"a": "10", "b": "9"}
            ),
            "g": ["a", "a", "b", "b", "c", "c", "a", "b"],
        }
    )
    d = prepare(df, y="y", group="g", predictors=["n", "flag", "floor level", "c"])
    # text levels sorted as text whatever the categorical's own order; first is reference
    assert d.terms == ("Intercept", "n", "flag", "floor level", "c[9]", "c[x]")
    np.testing.assert_array_equal(d.column("flag"), [1, 0, 1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(d.column("c[x]"), [0, 0, 0, 1, 0, 1, 0, 0])
    formula = prepare(
        df,
        y="y",
        group="g",
        predictors=["n", "flag", "floor level", "c"],
        formula="y ~ n + flag + `floor level` + c + (1 | g)",
    )
    assert formula.terms == d.terms
    np.testing.assert_array_equal(formula.X, d.X)


def test_priors_by_term_name(df):
    model = hm.HierarchicalModel(
        df, FORMULA, priors={"x1:x2": hm.priors.Normal(0, 1), "C(k)[lo]": hm.priors.Normal(0, 2)}
    )
    priors = model.default_priors()
    assert str(priors.loc["x1:x2", "prior"]) == "Normal(mu=0, sigma=1)"
    assert priors.loc["x1:x2", "rule"] == "given"
    assert priors.loc["np.log(z)", "rule"] == "Normal(0, 2.5 s_y/sd(x))"


@pytest.mark.parametrize(
    ("formula", "error", "message"),
    [
        ("y ~ foo(x1) + (1 | g)", hm.SpecError, r"'y ~ foo\(x1\).*calls 'foo'.*not a known"),
        ("y ~ np.logg(x1) + (1 | g)", hm.SpecError, r"np.logg.*cannot be turned into a design"),
        ("y ~ x1 + nothere + (1 | g)", hm.DataError, r"'nothere' not in the data"),
        ("y ~ np.log(nothere)", hm.DataError, r"'nothere' not in the data"),
        ("y ~ np.log(x1) + (1 | g)", hm.DataError, r"term 'np.log\(x1\)' is not finite \(rows"),
        ("y ~ x1 + I(x1 * 2) + (1 | g)", hm.DataError, r"rank deficient: x1, I\(x1 \* 2\)"),
        ("y ~ np.abs(x1 * 0) + (1 | g)", hm.DataError, r"'np.abs\(x1 \* 0\)' is constant"),
        ("y ~ x1 + g + (1 | g)", hm.SpecError, r"outcome or a grouping column \(\['g'\]\)"),
        ("y ~ x1 + (1 + x2 | g)", hm.SpecError, r"\['x2'\] vary by 'g' but have no population"),
    ],
)
def test_formula_errors_name_the_term_never_a_formulae_traceback(df, formula, error, message):
    with pytest.raises(error, match=message) as info:
        hm.HierarchicalModel(df, formula).build()
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("z", lambda d: pd.date_range("2020-01-01", periods=len(d)), r"'z' holds dates"),
        ("z", lambda d: d["z"].astype(str), r"'z' .*stored as text"),
        ("k", lambda d: "one", r"'k' has a single category"),
        ("z", lambda d: d["z"].where(d.index != 3), r"'z' has 1 missing value\(s\) \(row 3\)"),
    ],
)
def test_columns_inside_terms_are_checked_by_name(df, column, values, message):
    bad = df.assign(**{column: values(df)})
    with pytest.raises(hm.DataError, match=message):
        hm.HierarchicalModel(bad, FORMULA).build()


def test_a_file_whose_design_data_no_longer_gives_its_design_is_damaged(
    mock_pymc_sample, df, tmp_path
):
    res = hm.fit_hierarchical(df, FORMULA, draws=10)
    path = res.save(tmp_path / "fit.nc")
    with xr.open_datatree(path) as opened:
        tree = opened.load()
    data = tree["hiermodels_data"].to_dataset()
    doubled = data["design_data"].where(data["data_column"] != "x1", data["design_data"] * 2)
    tree["hiermodels_data"] = xr.DataTree(data.assign(design_data=doubled))
    tree.to_netcdf(tmp_path / "edited.nc")
    with pytest.raises(hm.DataError, match=r"edited.nc.*damaged.*hiermodels_data/design_data"):
        hm.load(tmp_path / "edited.nc")
