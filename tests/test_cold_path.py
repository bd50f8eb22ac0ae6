"""The cold path of a marginal fit (issue 17, docs/performance.md): what a fresh process
imports and computes that the fit does not need, and that leaving it out changes no number."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels import models
from hiermodels.families import get_family

pytestmark = [
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
    # the mocked sampler draws from the prior, which ignores the marginal likelihood (a
    # Potential); these tests are about the plumbing, not the draws
    pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning"),
]

FORMULA = "log_radon ~ floor + (floor | county)"


def test_imports_of_a_marginal_fit_leave_scipy_stats_out():
    # scipy.stats takes ~0.9 s to import and a marginal fit never calls it
    code = (
        "import sys, hiermodels.models, hiermodels.engines.marginal, "
        "hiermodels.results.hierarchical, hiermodels.parameterization; "
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("shape", [(), (3, 5, 1), (3, 5, 7)])
def test_gaussian_logpdf_equals_scipy(shape):
    rng = np.random.default_rng(3)
    y = rng.normal(size=7)
    eta = rng.normal(size=(3, 5, 7))
    sigma = rng.uniform(0.01, 20.0, size=shape)
    ours = get_family("gaussian").logpdf(y, eta, {"sigma": sigma}, None)
    np.testing.assert_allclose(ours, stats.norm.logpdf(y, eta, sigma), rtol=0, atol=1e-10)


def test_other_families_still_score_with_scipy():
    y, eta = np.array([0.0, 3.0, 7.0]), np.array([0.1, 1.2, 1.9])
    aux = {"alpha": 2.5, "nu": 4.0, "sigma": 1.5}
    trials = np.array([5.0, 5.0, 9.0])
    expected = {
        "student_t": stats.t.logpdf(y, 4.0, eta, 1.5),
        "poisson": stats.poisson.logpmf(y, np.exp(eta)),
        "binomial": stats.binom.logpmf(y, trials, 1 / (1 + np.exp(-eta))),
        "negative_binomial": stats.nbinom.logpmf(y, 2.5, 2.5 / (2.5 + np.exp(eta))),
    }
    for name, values in expected.items():
        ours = get_family(name).logpdf(y, eta, aux, trials)
        np.testing.assert_allclose(ours, values, rtol=1e-12, err_msg=name)


@pytest.fixture
def marginal_fit(mock_pymc_sample, radon, monkeypatch):
    """A marginal fit (mocked sampler) during which choosing a parameterization or building
    the full model is an error."""

    def refuse(*args, **kwargs):
        raise AssertionError("the marginal path must not choose or build the full model")

    monkeypatch.setattr(models, "choose", refuse)
    monkeypatch.setattr(models, "build", refuse)
    res = hm.fit_hierarchical(
        radon, FORMULA, engine="marginal", sampler="pymc", chains=2, draws=20, random_seed=5
    )
    monkeypatch.undo()
    return res


def test_marginal_fit_skips_the_choice_and_the_full_model(marginal_fit):
    table = marginal_fit.parameterization
    assert list(table["term"]) == ["Intercept", "floor"]
    assert (table["choice"] == models.MARGINAL_CHOICE).all()
    assert table["reason"].str.contains("integrates the group effects out").all()
    assert table["ratio"].isna().all()
    assert json.loads(marginal_fit.idata.attrs["parameterization"])[0]["factor"] == "county"


def test_the_full_model_is_built_when_asked_for(marginal_fit):
    model = marginal_fit.model  # choose and build work again: built now
    assert "Intercept|county" in model.named_vars and "floor|county_sigma" in model.named_vars
    assert marginal_fit.model is model  # once


def test_stored_log_likelihood_is_the_gaussian_density_of_each_row(marginal_fit):
    # the values scipy.stats gave before the numpy formula (to 1e-10)
    res = marginal_fit
    sigma = np.asarray(res.idata["posterior"]["sigma"])[..., None]
    expected = stats.norm.logpdf(res.data.y, res.linear_predictor(), sigma)
    stored = res.idata["log_likelihood"]["log_radon"].values
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-10)


def test_linear_predictor_is_the_sum_term_by_term(marginal_fit):
    # the in-place sum of results.draws gives the same bits as one new array per term
    res, d = marginal_fit, marginal_fit.data
    post = res.idata["posterior"]
    eta = 0.0
    for k, t in enumerate(d.terms):
        eta = eta + np.asarray(post[t])[..., None] * d.X[:, k]
    for f, t in d.effects:
        eta = eta + np.asarray(post[f"{t}|{f.name}"])[..., f.idx] * d.X[:, d.terms.index(t)]
    np.testing.assert_array_equal(res.linear_predictor(), eta)


def test_a_saved_marginal_fit_loads_with_its_full_model(marginal_fit, tmp_path):
    # no "auto" left in the spec: read as non-centered, the choice the marginal path skips
    assert dict(marginal_fit.spec.parameterization) == {
        "Intercept|county": "noncentered",
        "floor|county": "noncentered",
    }
    back = hm.load(marginal_fit.save(tmp_path / "marginal.nc"))
    assert "floor|county_offset" in back.model.named_vars
    assert (back.parameterization["choice"] == models.MARGINAL_CHOICE).all()
