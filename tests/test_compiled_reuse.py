"""The full engine reuses a compiled model for new data of the same structure (issue 17).

Every data-derived number of the full model is ``pm.Data`` and ``full_inputs`` keys what
else the graph depends on (hiermodels.builders.hierarchical), so that nutpie compiles once
per structure (hiermodels.engines.compiled, ``CompiledPyMCModel.with_data``). Fast tests
check the key and the packed data against a log density written out by hand; slow ones fit
for real and count compilations.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.builders.hierarchical import FLOATS, INTS, Y_DATA, build, full_inputs
from hiermodels.engines import compiled


def frame(seed, n_groups=6, per=5, prefix="g", scale=1.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    return pd.DataFrame(
        {
            "y": scale * rng.normal(size=g.size),
            "x": rng.normal(size=g.size),
            "o": rng.normal(size=g.size),
            "k": rng.binomial(1, 0.4, size=g.size),
            "g": [f"{prefix}{j}" for j in g],
        }
    )


def inputs(df, formula="y ~ x + (1 | g)", **kw):
    return full_inputs(*hm.HierarchicalModel(df, formula, **kw).prepared())


def test_new_data_of_one_structure_share_the_key():
    a, b = inputs(frame(1)), inputs(frame(2, prefix="h"))
    assert a.key == b.key
    assert not np.array_equal(a.values[Y_DATA], b.values[Y_DATA])
    assert not np.array_equal(a.values[FLOATS], b.values[FLOATS])
    # the labels are not part of the structure; the coords carry them
    assert a.coords["g"] == [f"g{j}" for j in range(6)]
    assert b.coords["g"] == [f"h{j}" for j in range(6)]


def test_default_priors_keep_the_key_when_the_outcome_scale_changes():
    # the data-scaled priors move with the data, and the standardizing with them
    assert inputs(frame(1)).key == inputs(frame(2, scale=1000.0)).key


@pytest.mark.parametrize(
    ("other", "kw"),
    [
        (frame(1, n_groups=7), {}),
        (frame(1), {"parameterization": "centered"}),
        (frame(1), {"hyperprior": "half_normal"}),
        (frame(1), {"hyperprior": hm.priors.InverseGamma(1, 2)}),
        (frame(1), {"formula": "y ~ x + (1 + x | g)"}),
        (frame(1), {"formula": "k ~ x + (1 | g)", "family": "bernoulli"}),
    ],
    ids=["groups", "parameterization", "prior family", "baked prior", "terms", "family"],
)
def test_structure_changes_change_the_key(other, kw):
    base = inputs(frame(1), parameterization="noncentered")
    assert inputs(other, **({"parameterization": "noncentered"} | kw)).key != base.key


def test_baked_prior_numbers_are_in_the_key():
    ig = [inputs(frame(1), hyperprior=hm.priors.InverseGamma(1, b)).key for b in (2, 3)]
    assert ig[0] != ig[1]


def test_discrete_outcomes_and_codes_are_integer_data():
    got = inputs(frame(1), "k ~ x + (1 | g)", family="bernoulli")
    assert got.values[Y_DATA].dtype == np.int64
    assert got.values[INTS].dtype == np.int64
    np.testing.assert_array_equal(got.values[Y_DATA], frame(1)["k"])


def test_packed_data_give_the_hand_written_log_likelihood():
    # y_i ~ Normal(Intercept + x_i beta + b_g[i] + x_i c_g[i] + o_i, sigma), BDA3 eq. 15.1
    df = frame(3)
    model = hm.HierarchicalModel(
        df, "y ~ x + (1 + x || g) + offset(o)", parameterization="noncentered"
    )
    built = build(*model.prepared())
    m = built.model
    point = m.initial_point()
    rng = np.random.default_rng(4)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in point.items()}
    names = ["Intercept", "x", "sigma", "Intercept|g", "x|g"]
    values = dict(zip(names, _evaluate(m, names, point), strict=True))
    g = pd.factorize(df["g"], sort=True)[0]
    eta = (
        values["Intercept"]
        + values["x"] * df["x"]
        + values["Intercept|g"][g]
        + values["x|g"][g] * df["x"]
        + df["o"]
    )
    expected = stats.norm.logpdf(df["y"], eta, values["sigma"]).sum()
    got = m.compile_logp(vars=[m["y"]], mode="FAST_COMPILE")(point)
    assert got == pytest.approx(expected, rel=1e-10)


def _evaluate(model, names, point):
    outputs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(
        outputs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE"
    )
    return fn(point)


# -- real fits (slow) ---------------------------------------------------------------------


def _fit(df, seed, formula="y ~ x + (1 | g)", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hm.ConvergenceWarning)  # tiny fits; not the point
        return hm.fit_hierarchical(
            df, formula, draws=100, tune=100, chains=2, random_seed=seed, progressbar=False,
            engine="full", **kw,
        )  # fmt: skip


@pytest.mark.slow
def test_refit_reuses_the_compiled_model_and_matches_a_fresh_fit(seed):
    compiled.clear_cache()
    a, b = frame(seed(11)), frame(seed(12), prefix="h")
    first = _fit(a, seed(13))
    count = compiled.compile_count()
    again = _fit(b, seed(13))
    assert compiled.compile_count() == count  # no compilation for new data
    # the new data's labels, values and groups, as a fresh fit gives them
    assert list(again.idata["posterior"]["g"].values) == [f"h{j}" for j in range(6)]
    np.testing.assert_array_equal(again.idata["observed_data"]["y"], b["y"])
    assert set(again.idata.children) == set(first.idata.children)
    compiled.clear_cache()
    fresh = _fit(b, seed(13))
    assert compiled.compile_count() == count + 1
    post, expected = again.idata["posterior"], fresh.idata["posterior"]
    assert set(post.data_vars) == set(expected.data_vars)
    for name in expected.data_vars:
        np.testing.assert_array_equal(post[name].values, expected[name].values, err_msg=name)
        assert post[name].dims == expected[name].dims


@pytest.mark.slow
def test_glm_refit_with_integer_outcomes_reuses_the_compiled_model(seed):
    compiled.clear_cache()
    fits = [_fit(frame(seed(s)), seed(14), "k ~ x + (1 | g)", family="bernoulli") for s in (15, 16)]
    assert compiled.compile_count() >= 1
    count = compiled.compile_count()
    third = _fit(frame(seed(17)), seed(14), "k ~ x + (1 | g)", family="bernoulli")
    assert compiled.compile_count() == count
    for res in [*fits, third]:
        assert np.isfinite(res.idata["posterior"]["x"].values).all()
        assert res.idata["posterior"]["Intercept|g"].shape[-1] == 6


@pytest.mark.filterwarnings("ignore::hiermodels.ConvergenceWarning")  # mocked draws
def test_replaced_pm_sample_is_honoured(mock_pymc_sample):
    # pymc.testing's mock replaces pm.sample: the fit honours it instead of nutpie's own call
    before = compiled.compile_count()
    res = hm.fit_hierarchical(frame(1), "y ~ x + (1 | g)", draws=20, chains=2)
    assert compiled.compile_count() == before
    assert res.idata["posterior"].sizes["draw"] == 20
