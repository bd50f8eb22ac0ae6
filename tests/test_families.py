"""Families: numpy log densities agree with PyMC's, data checks, priors and graphs."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest

import hiermodels as hm
from hiermodels.builders.likelihoods import add_likelihood
from hiermodels.families import FAMILIES, get_family

ETA = np.array([-1.2, 0.3, 2.0])
AUX = {"sigma": 1.7, "nu": 4.5, "alpha": 2.5}
Y = {
    "gaussian": np.array([-0.5, 0.1, 3.2]),
    "student_t": np.array([-0.5, 0.1, 9.2]),
    "bernoulli": np.array([0.0, 1.0, 1.0]),
    "binomial": np.array([0.0, 3.0, 7.0]),
    "poisson": np.array([0.0, 2.0, 11.0]),
    "negative_binomial": np.array([0.0, 2.0, 11.0]),
}
TRIALS = np.array([4.0, 5.0, 8.0])


@pytest.mark.parametrize("name", list(FAMILIES))
def test_numpy_logpdf_matches_pymc(name):
    family = get_family(name)
    trials = TRIALS if family.needs_trials else None
    aux = {a.name: AUX[a.name] for a in family.aux}
    with pm.Model() as model:
        add_likelihood(family, "y", ETA, aux, Y[name], trials)
    expected = model.compile_logp(sum=False, mode="FAST_COMPILE")({})[0]
    # PyMC and scipy evaluate the negative binomial by different formulas: 3e-8 apart
    np.testing.assert_allclose(family.logpdf(Y[name], ETA, aux, trials), expected, rtol=1e-6)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_simulated_responses_have_the_family_mean(name):
    family = get_family(name)
    trials = np.full(200_000, 6.0) if family.needs_trials else None
    aux = {a.name: AUX[a.name] for a in family.aux}
    eta = np.full(200_000, 0.4)
    draws = family.sample(eta, aux, trials, np.random.default_rng(0))
    expected = family.mean(eta, trials)[0]
    assert draws.mean() == pytest.approx(expected, rel=0.02, abs=0.01)


@pytest.mark.parametrize(
    ("name", "y", "message"),
    [
        ("bernoulli", [0, 1, 2], "not 0 or 1"),
        ("poisson", [0, 1.5, 2], "non-negative integer counts"),
        ("negative_binomial", [0, -1, 2], "non-negative integer counts"),
        ("binomial", [0, 9, 2], "between 0 and the trials column 'n'"),
    ],
)
def test_outcome_checks_name_the_rows(name, y, message):
    df = pd.DataFrame({"y": y, "g": ["a", "b", "b"], "n": [5, 5, 5]})
    kwargs = {"trials": "n"} if name == "binomial" else {}
    model = hm.HierarchicalModel(df, y="y", group="g", family=name, **kwargs)
    with pytest.raises(hm.DataError, match=f"{message}.*row"):
        model.build()


def test_family_spec_errors():
    df = pd.DataFrame({"y": [0, 1, 2], "g": ["a", "b", "b"], "n": [5, 5, 5]})
    with pytest.raises(hm.SpecError, match="unknown family 'logistic'"):
        hm.HierarchicalModel(df, y="y", group="g", family="logistic").build()
    with pytest.raises(hm.SpecError, match="needs trials="):
        hm.HierarchicalModel(df, y="y", group="g", family="binomial").build()
    with pytest.raises(hm.SpecError, match="only for family='binomial'"):
        hm.HierarchicalModel(df, y="y", group="g", family="poisson", trials="n").build()
    with pytest.raises(hm.DataError, match="trials column 'n' must hold positive integers"):
        bad = df.assign(n=[5, 0, 5])
        hm.HierarchicalModel(bad, y="y", group="g", family="binomial", trials="n").build()


def test_default_priors_per_family():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "y": rng.poisson(3.0, 60),
            "x": rng.normal(0, 2.0, 60),
            "g": np.repeat(list("abcdef"), 10),
            "log_exposure": np.log(rng.uniform(1, 3, 60)),
        }
    )
    pois = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], family="poisson", offset="log_exposure"
    ).default_priors()
    assert "sigma" not in pois.index
    exposure = np.exp(df["log_exposure"]).sum()
    assert pois.loc["Intercept", "prior"].mu == pytest.approx(
        np.log((df["y"].sum() + 0.5) / exposure)
    )
    # s_y = 1 on the log scale: coefficient sd 2.5 / sd(x)
    assert pois.loc["x", "prior"].sigma == pytest.approx(2.5 / df["x"].std(ddof=0))
    negbin = hm.HierarchicalModel(df, y="y", group="g", family="negative_binomial")
    assert str(negbin.default_priors().loc["alpha", "prior"]) == "HalfCauchy(beta=1)"
    robust = hm.HierarchicalModel(df, y="y", group="g", family="student_t").default_priors()
    assert str(robust.loc["nu", "prior"]) == "Gamma(alpha=2, beta=0.1)"
    assert robust.loc["sigma", "prior"].scale == pytest.approx(df["y"].std())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_builds_a_finite_graph(name):
    df = pd.DataFrame(
        {
            "y": Y[name].tolist() * 4,
            "n": TRIALS.tolist() * 4,
            "x": np.linspace(-1, 1, 12),
            "g": list("abcd") * 3,
        }
    )
    kwargs = {"trials": "n"} if name == "binomial" else {}
    model = hm.HierarchicalModel(
        df, y="y", group="g", predictors=["x"], varying=["x"], family=name, **kwargs
    ).build()
    observed = model["y"].owner.op
    assert (
        type(observed)
        .__name__.lower()
        .startswith(
            {"negative_binomial": "negbinomial", "student_t": "studentt", "gaussian": "normal"}.get(
                name, name
            )
        )
    )
    aux = {a.name for a in get_family(name).aux}
    assert aux <= {v.name for v in model.free_RVs}
    point = model.initial_point()
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))
