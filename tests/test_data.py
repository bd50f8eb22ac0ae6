"""Every bad input named in the foundation issue raises the documented error, up front."""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.data import prepare


def _model(df, **kw):
    args = {"y": "y", "group": "g", "predictors": ["x"], "varying": ["x"]} | kw
    return hm.HierarchicalModel(df, **args)


@pytest.fixture
def df():
    return pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5],
            "x": [0.1, 0.5, 0.2, 0.9, 0.3, 0.4],
            "g": ["a", "a", "b", "b", "c", "c"],
            "u": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
        }
    )


def test_missing_column(df):
    with pytest.raises(hm.DataError, match=r"column\(s\) 'z' not in the data.*available"):
        _model(df, predictors=["z"], varying=[]).build()


def test_nan_in_outcome_names_rows(df):
    df.loc[[1, 4], "y"] = np.nan
    with pytest.raises(hm.DataError, match=r"column 'y' has 2 missing.*rows 1, 4.*dropna"):
        _model(df).build()


@pytest.mark.parametrize("column", ["g", "x"])
def test_nan_in_group_or_predictor(df, column):
    df[column] = df[column].astype(object)
    df.loc[2, column] = None
    with pytest.raises(
        hm.DataError, match=rf"column '{column}' has 1 missing value\(s\) \(row 2\)"
    ):
        _model(df).build()


def test_non_numeric_outcome(df):
    df["y"] = ["1", "2", "three", "4", "5", "6"]
    with pytest.raises(hm.DataError, match=r"outcome column 'y' is not numeric.*row 2.*to_numeric"):
        _model(df).build()


def test_single_group(df):
    df["g"] = "a"
    with pytest.raises(hm.DataError, match=r"single group \('a'\).*at least 2 groups"):
        _model(df).build()


def test_empty_frame(df):
    with pytest.raises(hm.DataError, match="empty"):
        _model(df.iloc[:0]).build()


def test_constant_predictor(df):
    df["x"] = 3.0
    with pytest.raises(hm.DataError, match=r"predictor 'x' is constant.*remove it"):
        _model(df).build()


def test_unknown_preset(df):
    with pytest.raises(hm.SpecError, match=r"unknown hyperprior 'half_cuachy'.*half_cauchy"):
        _model(df, hyperprior="half_cuachy").build()


def test_unknown_varying_term(df):
    with pytest.raises(hm.SpecError, match=r"varying term 'w' is not a predictor"):
        _model(df, varying=["w"]).build()


def test_group_level_predictor_cannot_vary(df):
    with pytest.raises(hm.SpecError, match=r"'u'.*constant within every 'g' group"):
        _model(df, predictors=["x", "u"], varying=["u"]).build()


def test_errors_are_value_errors(df):
    with pytest.raises(ValueError, match="empty"):
        _model(df.iloc[:0]).build()


def test_bad_parameterization(df):
    with pytest.raises(hm.SpecError, match="unknown parameterization"):
        _model(df, parameterization="uncentered").build()
    with pytest.raises(hm.SpecError, match=r"parameterization given for \['w'\]"):
        _model(df, parameterization={"w": "centered"}).build()
    with pytest.raises(hm.SpecError, match="need one parameterization"):
        _model(df, parameterization={"x": "centered"}).build()


def test_caller_frame_is_not_mutated(df):
    before = df.copy(deep=True)
    _model(df, predictors=["x", "u"]).build()
    pd.testing.assert_frame_equal(df, before)


def test_group_level_predictors_detected(df):
    data = prepare(df, y="y", group="g", predictors=["x", "u"], varying=["x"])
    assert data.group_level == ("u",)
    assert data.varying == ("Intercept", "x")
    assert data.levels == ("a", "b", "c")
    np.testing.assert_array_equal(data.n_obs, [2, 2, 2])


def test_categorical_predictor_gets_treatment_dummies(df):
    df["c"] = ["lo", "hi", "lo", "mid", "hi", "lo"]
    data = prepare(df, y="y", group="g", predictors=["c"])
    assert data.terms == ("Intercept", "c[lo]", "c[mid]")
    np.testing.assert_array_equal(data.column("c[mid]"), [0, 0, 0, 1, 0, 0])
