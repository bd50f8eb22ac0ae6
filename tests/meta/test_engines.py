"""The meta-analysis spec, its engine registry, the one shape engines return, the sampling
options every entry point passes on, and an exact path that never imports PyMC."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.meta import api
from hiermodels.meta.engines import EngineFit, fit_exact
from hiermodels.meta.spec import MetaSpec
from hiermodels.sampling import SamplingOptions, sampling_options

RUBIN = pd.DataFrame(
    {
        "school": list("ABCDEFGH"),
        "y": [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16],
        "sigma": [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6],
    }
)
KWARGS = {"estimate": "y", "se": "sigma", "study": "school"}
STUDENT_T = hm.priors.StudentT(nu=3, mu=0, sigma=10)


# -- the registry ---------------------------------------------------------------------------


def test_registry_lists_each_engine_with_its_source():
    assert api.METHODS == ("exact", "mcmc") == tuple(api.ENGINES)
    for name, engine in api.ENGINES.items():
        assert engine.name == name
        assert engine.description and engine.source
    assert api.get_engine("exact").load() is fit_exact
    with pytest.raises(hm.SpecError, match="unknown method 'bootstrap'; use 'exact' or 'mcmc'"):
        api.get_engine("bootstrap")


def test_meta_analysis_runs_the_engine_the_registry_names(monkeypatch):
    """Dispatch is a lookup: a new entry is a new method, and only that engine runs."""
    calls = []

    def fake(data, spec, *, tau_prior):
        calls.append((spec.method, data.k, tau_prior))
        return fit_exact(data, spec, tau_prior=tau_prior)

    monkeypatch.setitem(api.ENGINES, "fake", api.Engine("fake", "a test", "none", lambda: fake))

    def refuse(*args, **kwargs):
        raise AssertionError("the exact engine ran for method='fake'")

    monkeypatch.setitem(api.ENGINES, "exact", api.Engine("exact", "-", "-", lambda: refuse))
    meta = hm.meta_analysis(RUBIN, method="fake", hyperprior=hm.priors.HalfCauchy(25), **KWARGS)
    assert calls == [("fake", 8, hm.priors.HalfCauchy(25))]
    assert meta.method == "fake" and meta.spec.method == "fake"
    monkeypatch.undo()
    reference = hm.meta_analysis(RUBIN, hyperprior=hm.priors.HalfCauchy(25), **KWARGS)
    pd.testing.assert_frame_equal(meta.summary(), reference.summary())


def test_exact_refuses_a_non_normal_mu_prior_before_reading_the_data():
    # the frame lacks the columns: the spec error comes first, so no data is touched
    with pytest.raises(hm.SpecError) as caught:
        hm.meta_analysis(pd.DataFrame({"a": [1]}), mu_prior=STUDENT_T, **KWARGS)
    message = str(caught.value)
    assert "method='exact'" in message and "StudentT" in message
    assert "use method='mcmc'" in message


def test_spec_holds_what_was_asked():
    meta = hm.meta_analysis(
        RUBIN, moderators=(), hyperprior="half_normal", draws=50, chains=2, **KWARGS
    )
    spec = meta.spec
    assert isinstance(spec, MetaSpec)
    assert (spec.estimate, spec.se, spec.study, spec.moderators) == ("y", "sigma", "school", ())
    assert spec.hyperprior == "half_normal" and spec.method == "exact"
    assert isinstance(spec.sampling, SamplingOptions)
    assert (spec.sampling.draws, spec.sampling.chains, spec.sampling.tune) == (50, 2, 1000)
    # the preset is resolved against the data, once, into the result's tau prior
    assert meta.tau_prior == spec.tau_prior(meta.data.se)
    with pytest.raises(AttributeError):
        spec.method = "mcmc"  # frozen
    assert MetaSpec.from_user(estimate="y", se="s", moderators="x").moderators == ("x",)
    with pytest.raises(hm.SpecError, match="unknown parameterization 'offset'"):
        MetaSpec.from_user(estimate="y", se="s", parameterization="offset")


# -- one shape from every engine ------------------------------------------------------------


def test_exact_fit_makes_its_draws_once_on_first_use():
    meta = hm.meta_analysis(RUBIN, random_seed=3, draws=500, chains=2, **KWARGS)
    assert isinstance(meta.fit, EngineFit)
    assert "idata" not in meta.fit.__dict__  # the summaries needed none
    meta.summary(), meta.heterogeneity(), meta.study_effects()
    assert "idata" not in meta.fit.__dict__
    first = meta.idata
    assert meta.idata is first
    post = first["posterior"]
    assert dict(post.sizes) == {"chain": 2, "draw": 500, "school": 8}
    assert set(post.data_vars) == {"mu", "tau", "theta", "theta_new"}
    # theta_new ~ Normal(mu, tau) per draw: its moments are the exact predictive ones
    new = np.asarray(post["theta_new"]).ravel()
    exact = meta.exact.predictive_moments()
    assert abs(new.mean() - exact["mean"]) < 4 * exact["sd"] / np.sqrt(new.size)
    # seeded: the same seed gives the same draws
    again = hm.meta_analysis(RUBIN, random_seed=3, draws=500, chains=2, **KWARGS)
    np.testing.assert_array_equal(np.asarray(again.idata["posterior"]["theta_new"]).ravel(), new)


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_mcmc_with_a_student_t_mu_prior_runs_only_the_mcmc_engine(mock_pymc_sample, monkeypatch):
    import hiermodels.meta.engines as engines

    def refuse(*args, **kwargs):
        raise AssertionError("an mcmc fit computed the exact posterior")

    monkeypatch.setattr(engines, "exact_posterior", refuse)
    meta = hm.meta_analysis(
        RUBIN, method="mcmc", mu_prior=STUDENT_T, draws=20, chains=2, random_seed=1, **KWARGS
    )
    assert isinstance(meta.fit, EngineFit) and meta.exact is None
    assert type(meta.model["mu"].owner.op).__name__ == "StudentTRV"
    post = meta.idata["posterior"]
    assert {"mu", "tau", "theta", "theta_offset", "theta_new"} <= set(post.data_vars)
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 20
    assert list(meta.summary().index) == ["mu", "tau", "theta_new"]
    assert "r_hat" in meta.summary().columns
    # REML and DL come from the frequentist numerics, the same as for an exact fit
    table = meta.heterogeneity()
    assert len(meta.study_effects()) == 8
    monkeypatch.undo()
    reference = hm.meta_analysis(RUBIN, **KWARGS).heterogeneity()
    pd.testing.assert_frame_equal(table.loc[["REML", "DL"]], reference.loc[["REML", "DL"]])
    with pytest.raises(hm.SpecError, match=r"leave_one_out .*exact engine.*StudentT"):
        meta.leave_one_out()


# -- sampling options ------------------------------------------------------------------------


def test_sampling_options_check_when_made():
    options = SamplingOptions(draws=200, tune=None, chains=2, random_seed=[1, 2])
    assert options.pymc_kwargs() == {
        "draws": 200,
        "tune": None,
        "chains": 2,
        "random_seed": [1, 2],
        "progressbar": False,
    }
    merged = SamplingOptions(sample_kwargs={"target_accept": 0.9}).pymc_kwargs()
    assert merged["target_accept"] == 0.9
    for bad, word in [
        ({"draws": 0}, "draws"),
        ({"tune": -1}, "tune"),
        ({"chains": 1.5}, "chains"),
        ({"random_seed": -3}, "random_seed"),
        ({"sampler": 3}, "sampler"),
        ({"sample_kwargs": [("target_accept", 0.9)]}, "sample_kwargs"),
        ({"sample_kwargs": {"draws": 10}}, "'draws'"),
    ]:
        with pytest.raises(hm.SpecError, match=word):
            SamplingOptions(**bad)
    assert sampling_options(options) is options
    assert sampling_options(draws=5).draws == 5
    with pytest.raises(TypeError, match="not both"):
        sampling_options(options, draws=5)


@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_sample_takes_the_options_or_the_keyword_form(mock_pymc_sample):
    import pymc as pm

    from hiermodels.engines.mcmc import sample, sample_checked

    with pm.Model() as model:
        pm.Normal("x")
    idata = sample(model, SamplingOptions(draws=7, chains=2, random_seed=1))
    assert (idata["posterior"].sizes["chain"], idata["posterior"].sizes["draw"]) == (2, 7)
    idata = sample(
        model,
        draws=9,
        tune=5,
        chains=1,
        sampler=None,
        random_seed=1,
        progressbar=False,
        sample_kwargs=None,
    )
    assert idata["posterior"].sizes["draw"] == 9
    idata, messages = sample_checked(model, SamplingOptions(draws=6, chains=2))
    assert idata["posterior"].sizes["draw"] == 6 and isinstance(messages, tuple)
    with pytest.raises(hm.SpecError, match="draws"):
        sample(model, draws=0, tune=5, chains=1)
    with pytest.raises(TypeError, match="not both"):
        sample(model, SamplingOptions(), draws=5)


# -- the exact path stays light --------------------------------------------------------------

HEAVY = ("pymc", "pytensor", "arviz", "matplotlib")


def _heavy_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\nprint('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    last = out.stdout.splitlines()[-1]
    assert last.startswith("heavy:"), out.stdout
    return [m for m in last.removeprefix("heavy:").split(",") if m]


def test_an_exact_meta_analysis_imports_no_pymc_arviz_or_matplotlib():
    code = (
        "import hiermodels.meta.api as api\n"
        "import hiermodels as hm\n"
        "schools = hm.datasets.load('eight_schools')\n"
        "meta = api.meta_analysis(schools, estimate='y', se='sigma', study='school')\n"
        "meta.summary(); meta.heterogeneity(); meta.study_effects(); meta.leave_one_out()\n"
        "assert meta.idata['posterior'].sizes['draw'] == 1000\n"
    )
    assert _heavy_after(code) == []


def test_the_meta_command_imports_no_pymc_arviz_or_matplotlib(tmp_path):
    path = tmp_path / "schools.csv"
    RUBIN.to_csv(path, index=False)
    code = (
        "import contextlib, io\n"
        "from hiermodels.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['meta', {str(path)!r}, '--estimate', 'y', '--se', 'sigma'])\n"
        "assert code == 0, code\n"
    )
    assert _heavy_after(code) == []


def test_the_probe_can_fail():
    assert {"pymc", "pytensor"} <= set(_heavy_after("import hiermodels.meta.mcmc"))
