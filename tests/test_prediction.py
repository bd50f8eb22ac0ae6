"""predict(): new rows, new groups, encodings and errors (mocked draws), then real fits."""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


@pytest.fixture
def fitted(mock_pymc_sample):
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {
            "y": rng.normal(size=60),
            "x": rng.normal(size=60),
            "kind": rng.choice(["a", "b", "c"], 60),
            "g": np.repeat([f"g{j}" for j in range(6)], 10),
        }
    )
    return df, hm.fit_hierarchical(
        df, y="y", group="g", predictors=["x", "kind"], varying=["x"], draws=40
    )


def test_prediction_for_known_rows_equals_the_linear_predictor(fitted):
    df, res = fitted
    pred = res.predict(df)
    np.testing.assert_allclose(pred.draws.values, res.linear_predictor())
    summary = pred.summary()
    assert list(summary.columns) == [
        "g", "new_group", "mean", "sd", "median", "ci_low", "ci_high"
    ]  # fmt: skip
    assert not summary["new_group"].any()
    assert (summary.index == df.index).all()


def test_group_labels_match_by_value_in_fit_predict_save_and_load(mock_pymc_sample, tmp_path):
    """A group id read back as float (1.0), or as np.int64, is the group it was fitted as."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"y": rng.normal(size=60), "x": rng.normal(size=60), "g": np.repeat(np.arange(1, 13), 5)}
    )
    res = hm.fit_hierarchical(df, y="y", group="g", predictors=["x"], draws=40)
    assert res.model.coords["g"][:3] == ("1", "2", "3")  # numeric ids in numeric order
    rows = {"x": [0.3, 0.3]}
    as_int = res.predict(pd.DataFrame({"g": [2, 10]} | rows), random_seed=1).summary()
    back = hm.load(res.save(tmp_path / "fit.nc"))
    for labels, fit in [
        ([2.0, 10.0], res),
        ([np.int64(2), np.int64(10)], res),
        (pd.Series([2, 10], dtype="Int64"), res),
        ([2.0, 10.0], back),
    ]:
        pred = fit.predict(pd.DataFrame({"g": labels} | rows), random_seed=1).summary()
        assert not pred["new_group"].any(), labels
        widths = pred["ci_high"] - pred["ci_low"]
        np.testing.assert_allclose(widths, as_int["ci_high"] - as_int["ci_low"])
    # fitting on the float-read column gives the same groups
    floats = hm.HierarchicalModel(df.assign(g=df["g"].astype(float)), y="y", group="g").build()
    assert floats.coords["g"] == res.model.coords["g"]
    # a genuinely new id is new, and 2.5 is not 2
    pred = res.predict(pd.DataFrame({"g": [13, 2.5]} | rows), random_seed=1).summary()
    assert pred["new_group"].all()


def test_new_groups_population_zero_error(fitted):
    _, res = fitted
    new = pd.DataFrame({"g": ["g0", "zz", "zz", "yy"], "x": [0.5, 0.5, 0.5, 0.5], "kind": "b"})
    pop = res.predict(new, random_seed=1)
    assert pop.new_group.tolist() == [False, True, True, True]
    draws = pop.draws.values
    np.testing.assert_allclose(draws[..., 1], draws[..., 2])  # one effect per new group
    assert not np.allclose(draws[..., 1], draws[..., 3])  # independent across new groups
    zero = res.predict(new, new_groups="zero").draws.values
    post = res.idata["posterior"]
    expected = post["Intercept"] + 0.5 * post["x"] + post["kind[b]"]
    np.testing.assert_allclose(zero[..., 1], expected.values)
    with pytest.raises(hm.DataError, match=r"not seen in fitting: \['yy', 'zz'\] \(rows 1, 2, 3\)"):
        res.predict(new, new_groups="error")


def test_response_draws_add_noise(fitted):
    df, res = fitted
    mean = res.predict(df.head(3), kind="mean").draws.values
    response = res.predict(df.head(3), kind="response", random_seed=0).draws.values
    sigma = res.idata["posterior"]["sigma"].values[..., None]
    z = (response - mean) / sigma
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns="x"), r"column\(s\) 'x' not in the data"),
        (lambda d: d.assign(kind="d"), r"categories not seen in fitting \(\['d'\]"),
        (lambda d: d.assign(x=np.nan), "missing value"),
    ],
)
def test_bad_new_data(fitted, change, message):
    df, res = fitted
    with pytest.raises(hm.DataError, match=message):
        res.predict(change(df.head(4)))


def test_bad_options(fitted):
    df, res = fitted
    with pytest.raises(hm.SpecError, match="kind must be one of"):
        res.predict(df, kind="link")
    with pytest.raises(hm.SpecError, match="new_groups must be one of"):
        res.predict(df, new_groups="sample")


@pytest.mark.slow
def test_new_group_interval_wider_than_known_group_with_much_data(radon, seed):
    res = hm.fit_hierarchical(
        radon, y="log_radon", group="county", predictors=["floor"], random_seed=seed(5)
    )
    new = pd.DataFrame({"county": ["HENNEPIN", "NOWHERE"], "floor": [0, 0]})
    s = res.predict(new, random_seed=seed(1)).summary()
    width = s["ci_high"] - s["ci_low"]
    assert width.iloc[1] > 3 * width.iloc[0]  # 105 houses vs none
    # the new county's spread is the population's: sd ~ sqrt(tau^2 + se(mu)^2)
    tau = res.summary().loc["Intercept|county_sigma", "mean"]
    assert s["sd"].iloc[1] == pytest.approx(tau, rel=0.25)
