"""fit(engine=...) from the public API: the marginal engine gives the same results object
(summary, group effects, prediction, LOO, save/load) as the full engine."""

import arviz as az
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
    # a county with a high Pareto k now and then: ArviZ rightly says so; not under test here
    pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning"),
]


def test_engine_choices_are_checked():
    radon = hm.datasets.load("radon")
    with pytest.raises(hm.SpecError, match="engine must be one of"):
        hm.fit_hierarchical(radon, "log_radon ~ floor + (1 | county)", engine="fast")
    crossed = radon.assign(block=radon["floor"].astype(str))
    with pytest.raises(hm.SpecError, match="engine='marginal' does not apply"):
        hm.fit_hierarchical(crossed, "log_radon ~ (1 | county) + (1 | block)", engine="marginal")
    with pytest.raises(hm.SpecError, match="engine='marginal' does not apply"):
        hm.fit_hierarchical(
            radon.assign(k=(radon["log_radon"] > 1).astype(int)),
            "k ~ floor + (1 | county)",
            family="bernoulli",
            engine="marginal",
        )


@pytest.mark.parametrize(
    ("model", "options", "marginal"),
    [
        ({}, {}, True),  # the default: gaussian, one factor, nutpie
        ({"parameterization": "auto"}, {"sample_kwargs": {"target_accept": 0.95}}, True),
        ({}, {"sample_kwargs": {"maxdepth": 8}}, True),  # nutpie's own name
        ({"parameterization": "centered"}, {}, False),  # a form of the full model asked for
        ({"parameterization": {"Intercept|county": "noncentered"}}, {}, False),
        ({}, {"sampler": "pymc"}, False),  # only the full engine samples with pm.sample
        ({}, {"sample_kwargs": {"init": "adapt_diag"}}, False),  # a keyword nutpie lacks
        ({"family": "poisson", "y": "count"}, {}, False),
    ],
)
def test_auto_takes_the_marginal_engine_unless_the_full_one_is_asked_for(model, options, marginal):
    from hiermodels.models import HierarchicalModel, engine_for
    from hiermodels.sampling import SamplingOptions

    radon = hm.datasets.load("radon").assign(count=lambda d: (d["log_radon"] > 1).astype(int))
    spec = {"y": "log_radon", "group": "county", "predictors": ["floor"], **model}
    data, spec, _ = HierarchicalModel(radon, **spec).prepared(resolve=False)
    chosen = engine_for(data, spec, options=SamplingOptions(draws=10, **options))
    assert chosen == ("marginal" if marginal else "full")


@pytest.mark.parametrize(("n_predictors", "n_rows", "marginal"), [
    (11, 200, True),  # 12 coefficients with the intercept
    (12, 200, False),  # wide and short: the marginal graph compiles slowly (docs)
    (12, 50_000, True),  # many rows: the full engine's gradients are slow
])  # fmt: skip
def test_auto_leaves_wide_short_designs_to_the_full_engine(n_predictors, n_rows, marginal):
    from hiermodels.models import HierarchicalModel, engine_for

    rng = np.random.default_rng(3)
    columns = [f"x{i}" for i in range(n_predictors)]
    df = pd.DataFrame(rng.normal(size=(n_rows, n_predictors)), columns=columns)
    df = df.assign(y=rng.normal(size=n_rows), g=np.arange(n_rows) % 20)
    model = HierarchicalModel(df, "y ~ " + " + ".join(columns) + " + (1 | g)")
    data, spec, _ = model.prepared(resolve=False)
    assert engine_for(data, spec) == ("marginal" if marginal else "full")


def test_auto_leaves_a_replaced_pm_sample_to_the_full_engine(mock_pymc_sample):
    from hiermodels.models import HierarchicalModel, engine_for
    from hiermodels.sampling import SamplingOptions

    model = HierarchicalModel(hm.datasets.load("radon"), "log_radon ~ floor + (1 | county)")
    data, spec, _ = model.prepared(resolve=False)
    assert engine_for(data, spec, options=SamplingOptions(draws=10)) == "full"
    # the posterior says which engine ran
    res = model.fit(draws=10, chains=1)
    assert res.idata["posterior"].attrs["engine"] == "full"


@pytest.mark.slow
def test_marginal_engine_through_the_public_api(seed, sampled_well, tmp_path):
    radon = hm.datasets.load("radon")
    res = hm.fit_hierarchical(
        radon,
        "log_radon ~ floor + (1 + floor | county)",  # engine="auto", the default
        chains=4,
        draws=500,
        random_seed=seed(61),
    )
    assert res.idata["posterior"].attrs["engine"] == "marginal"
    sampled_well(res, rhat=1.03, ess_per_chain=25)
    table = res.summary()
    # Gelman & Hill (2007) §13.1 / lme4 on radon: floor about -0.69, county SD about 0.33
    assert table.loc["floor", "mean"] == pytest.approx(-0.68, abs=3 * table.loc["floor", "sd"])
    effects = res.group_effects()
    # NaN where a county has no floor slope of its own (all its houses on one floor)
    assert len(effects) == 2 * 85 and effects["pooling_factor"].dropna().between(0, 1).all()
    assert np.isfinite(az.loo(res.idata).elpd)
    back = hm.load(res.save(tmp_path / "marginal.nc"))
    np.testing.assert_allclose(
        back.predict(radon.head(4), random_seed=1).draws.values,
        res.predict(radon.head(4), random_seed=1).draws.values,
    )


def test_nutpie_keywords_it_does_not_take_are_named(monkeypatch):
    """A sample_kwargs key nutpie rejects (its own AttributeError or TypeError) becomes a
    SpecError naming it and the way out; pm.sample's max_treedepth is nutpie's maxdepth."""
    from hiermodels.engines import mcmc, nutpie_support

    seen = {}

    class Nutpie:
        @staticmethod
        def sample(compiled, **kwargs):
            seen.update(kwargs)
            if "init" in kwargs:
                raise AttributeError("Unknown settings attribute: init")
            return "draws"

    monkeypatch.setattr(nutpie_support, "load_nutpie", lambda: Nutpie)
    common = dict(draws=10, tune=None, chains=2, seed=1, progressbar=False)
    draws, _ = mcmc.nutpie_sample(None, max_treedepth=7, **common)
    assert draws == "draws" and seen["maxdepth"] == 7 and seen["tune"] == 1000
    with pytest.raises(hm.SpecError, match=r"\['init'\].*engine='full'"):
        mcmc.nutpie_sample(None, init="adapt_diag", **common)
