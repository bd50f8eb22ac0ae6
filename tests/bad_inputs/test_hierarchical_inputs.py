"""Bad input to fit_hierarchical / HierarchicalModel / compare_pooling / predict: each row
names the error class, words the message must contain, and the frame stays unchanged.

Found by probing as a careful user would (issue 11); add a row for every new case. Every
case fails before sampling, so none of them compiles a model.
"""

from collections import namedtuple

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

Case = namedtuple("Case", "id frame call error words")
# frame: zero-arg callable returning the DataFrame given to call (or None); call: callable(frame);
# error: a HierModelsError subclass; words: strings the message must contain (case-insensitive)


def frame(n_groups=4, per=10, seed=0):
    rng = np.random.default_rng(seed)
    n = n_groups * per
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": np.repeat([f"g{j}" for j in range(n_groups)], per),
            "k": rng.integers(0, 5, n),
            "n": 5,
        }
    )


def fit(**kw):
    """fit_hierarchical(df, y="y", group="g", ...), with kw replacing the defaults."""
    args = {"y": "y", "group": "g", "draws": 10, "chains": 1, "tune": 10} | kw
    return lambda df: hm.fit_hierarchical(df, **args)


def with_column(name, values):
    return lambda: frame().assign(**{name: values(frame())})


def stray_string(df):
    x = df["x"].astype(str).tolist()
    x[7] = "missing"
    return x


def priors(**kw):
    """default_priors() of a model with kw; a kw given as a function is made at call time (a
    bad prior raises when it is made)."""

    def call(df):
        made = {k: v() if callable(v) else v for k, v in kw.items()}
        return hm.HierarchicalModel(df, y="y", group="g", **made).default_priors()

    return call


CASES = [
    # outcome
    Case("y_missing_column", frame, fit(y="yy"), hm.DataError, ("'yy'", "not in the data")),
    Case(
        "y_nan",
        with_column("y", lambda d: d["y"].where(d.index != 3)),
        fit(),
        hm.DataError,
        ("'y'", "row 3", "dropna"),
    ),
    Case(
        "y_inf",
        with_column("y", lambda d: d["y"].where(d.index != 5, np.inf)),
        fit(),
        hm.DataError,
        ("'y'", "infinite", "row 5"),
    ),
    Case(
        "y_numbers_as_text",
        with_column("y", lambda d: d["y"].astype(str)),
        fit(),
        hm.DataError,
        ("'y'", "stored as text", "pd.to_numeric"),
    ),
    Case(
        "y_with_a_word",
        with_column("y", lambda d: ["n/a", *d["y"].astype(str)[1:]]),
        fit(),
        hm.DataError,
        ("'y'", "row 0", "'n/a'", "pd.to_numeric"),
    ),
    Case("y_constant", with_column("y", lambda d: 3.0), fit(), hm.DataError, ("'y'", "constant")),
    Case("y_not_binary", frame, fit(y="k", family="bernoulli"), hm.DataError, ("'k'", "0 or 1")),
    Case(
        "y_negative_count",
        with_column("k", lambda d: -d["k"] - 1),
        fit(y="k", family="poisson"),
        hm.DataError,
        ("'k'", "non-negative integer"),
    ),
    Case(
        "y_above_trials",
        with_column("k", lambda d: d["n"] + 1),
        fit(y="k", family="binomial", trials="n"),
        hm.DataError,
        ("'k'", "'n'"),
    ),
    Case(
        "trials_fractional",
        with_column("n", lambda d: 5.5),
        fit(y="k", family="binomial", trials="n"),
        hm.DataError,
        ("'n'", "positive integers"),
    ),
    Case("unknown_family", frame, fit(family="gamma"), hm.SpecError, ("gamma", "gaussian")),
    # predictors
    Case(
        "x_stray_string",
        with_column("x", stray_string),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "row 7", "'missing'", "pd.to_numeric", "astype('category')"),
    ),
    Case(
        "x_numbers_as_text",
        with_column("x", lambda d: d["x"].astype(str)),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "stored as text", "pd.to_numeric"),
    ),
    Case(
        "x_dates",
        with_column("x", lambda d: pd.date_range("2020-01-01", periods=len(d))),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "dates", ".dt.year"),
    ),
    Case(
        "x_constant",
        with_column("x", lambda d: 1.0),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "constant"),
    ),
    Case(
        "x_collinear",
        with_column("x2", lambda d: 2 * d["x"] + 1),
        fit(predictors=["x", "x2"]),
        hm.DataError,
        ("rank deficient", "x, x2", "drop one"),
    ),
    Case(
        "dummies_collinear",
        with_column("c", lambda d: np.where(d["x"] > 0, "hi", "lo")),
        fit(predictors=["c", "above"]) if False else fit(predictors=["x", "c", "x_again"]),
        hm.DataError,
        ("'x_again'", "not in the data"),
    ),
    Case(
        "x_inf",
        with_column("x", lambda d: d["x"].where(d.index != 2, -np.inf)),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "infinite", "row 2"),
    ),
    Case("x_is_outcome", frame, fit(predictors=["y"]), hm.SpecError, ("outcome",)),
    Case("x_listed_twice", frame, fit(predictors=["x", "x"]), hm.SpecError, ("more than once",)),
    Case(
        "x_named_intercept",
        with_column("Intercept", lambda d: d["x"]),
        fit(predictors=["Intercept"]),
        hm.SpecError,
        ("'Intercept'", "rename"),
    ),
    Case(
        "x_named_sigma",
        with_column("sigma", lambda d: d["x"]),
        fit(predictors=["sigma"]),
        hm.SpecError,
        ("'sigma'", "rename"),
    ),
    Case(
        "x_with_bar",
        with_column("x|g", lambda d: d["x"]),
        fit(predictors=["x|g"]),
        hm.SpecError,
        ("'x|g'", "'|'"),
    ),
    Case(
        "x_duplicate_column",
        lambda: pd.concat([frame(), frame()[["x"]]], axis=1),
        fit(predictors=["x"]),
        hm.DataError,
        ("'x'", "more than once", "duplicated"),
    ),
    Case("varying_not_predictor", frame, fit(varying=["x"]), hm.SpecError, ("'x'", "predictors")),
    Case(
        "varying_group_level",
        with_column("u", lambda d: d["g"].str[1:].astype(float)),
        fit(predictors=["u"], varying=["u"]),
        hm.SpecError,
        ("constant within", "'g'"),
    ),
    # grouping
    Case("group_missing_column", frame, fit(group="school"), hm.DataError, ("'school'",)),
    Case(
        "group_nan",
        with_column("g", lambda d: d["g"].where(d.index != 4)),
        fit(),
        hm.DataError,
        ("'g'", "row 4"),
    ),
    Case(
        "group_single_level",
        with_column("g", lambda d: "only"),
        fit(),
        hm.DataError,
        ("'g'", "single group"),
    ),
    Case(
        "group_named_obs",
        lambda: frame().rename(columns={"g": "obs"}),
        fit(group="obs"),
        hm.SpecError,
        ("'obs'", "rename"),
    ),
    Case(
        "group_twice_in_formula",
        frame,
        lambda df: hm.fit_hierarchical(df, "y ~ x + (1 | g) + (1 + x | g)", draws=10),
        hm.SpecError,
        ("['g']", "more than one"),
    ),
    Case(
        "formula_unreadable",
        frame,
        lambda df: hm.fit_hierarchical(df, "y ~~ x (", draws=10),
        hm.SpecError,
        ("cannot be read",),
    ),
    Case(
        "formula_and_keywords",
        frame,
        lambda df: hm.fit_hierarchical(df, "y ~ x + (1 | g)", y="y", draws=10),
        hm.SpecError,
        ("formula",),
    ),
    # known standard errors (se=, y | se(sei))
    Case("se_missing_column", frame, fit(se="sei"), hm.DataError, ("'sei'", "not in the data")),
    Case(
        "se_not_positive",
        with_column("sei", lambda d: np.where(d.index.isin([3, 7]), 0.0, 0.2)),
        fit(se="sei"),
        hm.DataError,
        ("'sei'", "2 value(s) <= 0", "rows 3, 7", "positive"),
    ),
    Case(
        "se_negative_in_formula",
        with_column("sei", lambda d: np.where(d.index == 5, -0.1, 0.2)),
        lambda df: hm.fit_hierarchical(df, "y | se(sei) ~ x + (1 | g)", draws=10),
        hm.DataError,
        ("'sei'", "row 5", "positive"),
    ),
    Case(
        "se_not_numeric",
        with_column("sei", lambda d: ["n/a", *[0.2] * (len(d) - 1)]),
        fit(se="sei"),
        hm.DataError,
        ("standard error", "'sei'", "row 0", "'n/a'"),
    ),
    Case(
        "se_nan",
        with_column("sei", lambda d: np.where(d.index == 4, np.nan, 0.2)),
        fit(se="sei"),
        hm.DataError,
        ("'sei'", "row 4", "missing"),
    ),
    Case(
        "se_with_poisson",
        with_column("sei", lambda d: 0.2),
        fit(y="k", family="poisson", se="sei"),
        hm.SpecError,
        ("'sei'", "gaussian", "'poisson'", "drop se="),
    ),
    Case(
        "se_with_bernoulli_formula",
        lambda: frame().assign(b=lambda d: (d["y"] > 0).astype(int), sei=0.2),
        lambda df: hm.fit_hierarchical(df, "b | se(sei) ~ (1 | g)", family="bernoulli"),
        hm.SpecError,
        ("'sei'", "family='gaussian'"),
    ),
    Case("sigma_without_se", frame, fit(sigma=True), hm.SpecError, ("sigma=true", "se=")),
    Case(
        "se_keyword_and_formula",
        with_column("sei", lambda d: 0.2),
        lambda df: hm.fit_hierarchical(df, "y ~ x + (1 | g)", se="sei", draws=10),
        hm.SpecError,
        ("['se']", "formula", "y | se(sei) ~"),
    ),
    # sampling arguments
    Case("draws_zero", frame, fit(draws=0), hm.SpecError, ("draws", ">= 1")),
    Case("draws_negative", frame, fit(draws=-5), hm.SpecError, ("draws", "-5")),
    Case("draws_fraction", frame, fit(draws=10.5), hm.SpecError, ("draws", "whole number")),
    Case("chains_negative", frame, fit(chains=-2), hm.SpecError, ("chains", "-2")),
    Case("tune_negative", frame, fit(tune=-1), hm.SpecError, ("tune", ">= 0")),
    Case("seed_text", frame, fit(random_seed="abc"), hm.SpecError, ("random_seed", "'abc'")),
    Case("seed_negative", frame, fit(random_seed=-3), hm.SpecError, ("random_seed",)),
    Case("unknown_sampler", frame, fit(sampler="stan"), hm.SpecError, ("'stan'", "nutpie")),
    # priors and specification
    Case(
        "prior_negative_scale",
        frame,
        priors(hyperprior=lambda: hm.priors.HalfCauchy(-5)),
        hm.SpecError,
        ("HalfCauchy", "beta", "> 0"),
    ),
    Case(
        "prior_nan",
        frame,
        priors(priors=lambda: {"Intercept": hm.priors.Normal(np.nan, 1)}),
        hm.SpecError,
        ("Normal", "mu", "finite"),
    ),
    Case(
        "prior_zero_sd",
        frame,
        priors(priors=lambda: {"sigma": hm.priors.Exponential(0)}),
        hm.SpecError,
        ("Exponential", "scale", "> 0"),
    ),
    Case(
        "prior_uniform_reversed",
        frame,
        priors(hyperprior=lambda: hm.priors.Uniform(5, 1)),
        hm.SpecError,
        ("Uniform", "upper"),
    ),
    Case(
        "prior_text_parameter",
        frame,
        priors(hyperprior=lambda: hm.priors.HalfNormal("1")),
        hm.SpecError,
        ("HalfNormal", "sigma", "finite number"),
    ),
    Case(
        "prior_unknown_name",
        frame,
        priors(priors={"zz": hm.priors.Normal(0, 1)}),
        hm.SpecError,
        ("'zz'", "unknown"),
    ),
    Case(
        "prior_not_a_prior",
        frame,
        priors(priors={"Intercept": 3}),
        hm.SpecError,
        ("not prior objects",),
    ),
    Case(
        "hyperprior_unknown",
        frame,
        priors(hyperprior="wide"),
        hm.SpecError,
        ("'wide'", "half_cauchy"),
    ),
    Case(
        "parameterization_unknown",
        frame,
        priors(parameterization="sideways"),
        hm.SpecError,
        ("sideways", "noncentered"),
    ),
    Case(
        "lkj_negative",
        frame,
        priors(predictors=["x"], varying=["x"], lkj_eta=-1),
        hm.SpecError,
        ("lkj_eta",),
    ),
    Case(
        "not_a_frame",
        lambda: None,
        lambda _: hm.fit_hierarchical([1, 2], y="y", group="g"),
        hm.DataError,
        ("DataFrame",),
    ),
    Case("empty_frame", lambda: frame().iloc[:0], fit(), hm.DataError, ("empty",)),
    # comparing pooling, predicting
    Case(
        "pool_one_row_per_group",
        lambda: frame(n_groups=6, per=1),
        lambda df: hm.compare_pooling(df, y="y", group="g", draws=10),
        hm.DataError,
        ("no residual degrees of freedom", "one each"),
    ),
    Case(
        "pool_two_factors",
        frame,
        lambda df: hm.compare_pooling(df, y="y", group=["g", "k"], draws=10),
        hm.SpecError,
        ("one grouping column",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, bad_input):
    bad_input(case)


def _mocked_fit(df, **kw):
    """fit_hierarchical with the mocked sampler (prior draws)."""
    from pymc.testing import mock_sample_setup_and_teardown

    gen = mock_sample_setup_and_teardown()
    next(gen)
    try:
        with pytest.warns(hm.ConvergenceWarning):  # mocked draws are prior draws
            return hm.fit_hierarchical(df, draws=20, chains=1, **kw)
    finally:
        next(gen, None)


@pytest.fixture(scope="module")
def fitted_se():
    """A known-se fit made with the mocked sampler, for the prediction cases."""
    return _mocked_fit(frame().assign(sei=0.3), formula="y | se(sei) ~ x + (1 | g)")


@pytest.fixture(scope="module")
def fitted():
    """A fit made with the mocked sampler, for the prediction cases."""
    return _mocked_fit(
        frame().assign(c=lambda d: np.where(d["x"] > 0, "hi", "lo")),
        y="y",
        group="g",
        predictors=["x", "c"],
    )


PREDICT_CASES = [
    Case(
        "predict_missing_column",
        lambda: pd.DataFrame({"g": ["g1"], "c": ["hi"]}),
        lambda res, df: res.predict(df),
        hm.DataError,
        ("'x'", "not in the data"),
    ),
    Case(
        "predict_unseen_category",
        lambda: pd.DataFrame({"g": ["g1"], "x": [0.0], "c": ["mid"]}),
        lambda res, df: res.predict(df),
        hm.DataError,
        ("'c'", "not seen", "'mid'"),
    ),
    Case(
        "predict_x_as_text",
        lambda: pd.DataFrame({"g": ["g1"], "x": ["0.5"], "c": ["hi"]}),
        lambda res, df: res.predict(df),
        hm.DataError,
        ("'x'", "pd.to_numeric"),
    ),
    Case(
        "predict_new_group_error",
        lambda: pd.DataFrame({"g": ["zz"], "x": [0.0], "c": ["hi"]}),
        lambda res, df: res.predict(df, new_groups="error"),
        hm.DataError,
        ("'zz'", "row 0"),
    ),
    Case(
        "predict_kind_unknown",
        lambda: pd.DataFrame({"g": ["g1"], "x": [0.0], "c": ["hi"]}),
        lambda res, df: res.predict(df, kind="bogus"),
        hm.SpecError,
        ("kind", "'bogus'"),
    ),
    Case(
        "predict_group_nan",
        lambda: pd.DataFrame({"g": [None], "x": [0.0], "c": ["hi"]}),
        lambda res, df: res.predict(df),
        hm.DataError,
        ("'g'", "missing"),
    ),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c.id for c in PREDICT_CASES])
def test_bad_prediction_input(case, bad_input, fitted):
    bad_input(case._replace(call=lambda df: case.call(fitted, df)))


SE_PREDICT_CASES = [
    Case(
        "predict_response_without_se",
        lambda: pd.DataFrame({"g": ["g1"], "x": [0.0]}),
        lambda res, df: res.predict(df, kind="response"),
        hm.DataError,
        ("kind='response'", "'sei'", "kind='mean'"),
    ),
    Case(
        "predict_response_se_zero",
        lambda: pd.DataFrame({"g": ["g1", "g2"], "x": [0.0, 1.0], "sei": [0.2, 0.0]}),
        lambda res, df: res.predict(df, kind="response"),
        hm.DataError,
        ("'sei'", "row 1", "positive"),
    ),
]


@pytest.mark.parametrize("case", SE_PREDICT_CASES, ids=[c.id for c in SE_PREDICT_CASES])
def test_bad_known_se_prediction_input(case, bad_input, fitted_se):
    bad_input(case._replace(call=lambda df: case.call(fitted_se, df)))
