"""Known measurement error (issue 16): ``y | se(sei) ~ ...`` and ``se="sei"``, a meta-analysis
as a hierarchical model whose lowest-level variance is known (metafor's ``rma.mv``)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import hiermodels as hm
from hiermodels.formula import parse_formula
from hiermodels.numerics.pooling import no_pooling_fit

KONSTANTOPOULOS = Path(__file__).parent / "data" / "konstantopoulos2011.csv"


def meta_frame(seed=0, n_studies=8, per=3):
    """Effect sizes nested in studies, a moderator x and known standard errors."""
    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(1, n_studies + 1), per)
    n = study.size
    x = rng.normal(size=n)
    sei = rng.uniform(0.1, 0.4, n)
    u = rng.normal(0, 0.3, n_studies)[study - 1]
    yi = 0.2 + 0.1 * x + u + rng.normal(0, 0.1, n) + rng.normal(0, sei)
    return pd.DataFrame(
        {"study": study, "es_id": np.tile(np.arange(1, per + 1), n_studies), "x": x}
    ).assign(yi=yi, sei=sei)


@pytest.fixture(scope="module")
def konstantopoulos():
    return pd.read_csv(KONSTANTOPOULOS).assign(sei=lambda d: np.sqrt(d["vi"]))


# -- formula -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "se_sigma"),
    [
        ("yi | se(sei) ~ x + (1 | study/es_id)", False),
        ("yi | se(sei, sigma = TRUE) ~ x + (1 | study/es_id)", True),
        ("yi | se(sei, sigma = FALSE) ~ x + (1 | study/es_id)", False),
        ("yi | se(sei, sigma=True) ~ x + (1 | study/es_id)", True),
    ],
)
def test_formula_reads_brms_se(formula, se_sigma):
    parsed = parse_formula(formula)
    assert (parsed.response, parsed.se, parsed.se_sigma, parsed.trials) == (
        "yi",
        "sei",
        se_sigma,
        None,
    )
    assert [g.group for g in parsed.groups] == ["study", "study:es_id"]
    assert parsed.predictors == ("x",)


@pytest.mark.parametrize(
    ("formula", "problem"),
    [
        ("yi | se(sei, sigma = 2) ~ 1", "neither TRUE nor FALSE"),
        ("yi | se(sei, tau = TRUE) ~ 1", "unknown argument"),
        ("yi | se(sqrt(vi)) ~ 1", r"one column name inside se\(\)"),
        ("yi | se(sei) + trials(n) ~ 1", "unsupported left-hand side"),
    ],
)
def test_bad_se_term_is_a_spec_error(formula, problem):
    with pytest.raises(hm.SpecError, match=problem):
        parse_formula(formula)


# -- graph ---------------------------------------------------------------------------------


def _random_point(model, seed):
    """A random point of the model's value variables (transformed space)."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0, 0.5, size=np.shape(value))
        for name, value in model.initial_point().items()
    }


def _at(model, point, names):
    """The values of the named variables (deterministics included) at ``point``."""
    outputs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore")
    return dict(zip(names, fn(point), strict=True))


@pytest.mark.parametrize("sigma", [False, True])
def test_likelihood_is_normal_with_known_se(konstantopoulos, sigma, seed):
    df = konstantopoulos
    model = hm.HierarchicalModel(
        df, y="yi", group=["district", "study"], predictors=["year"], se="sei", sigma=sigma
    ).build()
    free = {v.name for v in model.free_RVs}
    assert ("sigma" in free) is sigma
    assert ("sigma" in model.named_vars) is sigma
    point = _random_point(model, seed(11))
    names = ["Intercept", "year", "Intercept|district", "Intercept|study"]
    values = _at(model, point, names + (["sigma"] if sigma else []))
    d_idx = pd.Categorical(df["district"], categories=sorted(df["district"].unique())).codes
    s_idx = pd.Categorical(df["study"], categories=sorted(df["study"].unique())).codes
    eta = (
        values["Intercept"]
        + values["year"] * df["year"].to_numpy()
        + values["Intercept|district"][d_idx]
        + values["Intercept|study"][s_idx]
    )
    sd = df["sei"].to_numpy()
    if sigma:
        sd = np.sqrt(sd**2 + values["sigma"] ** 2)
    expected = stats.norm.logpdf(df["yi"], eta, sd).sum()
    observed = model.compile_logp(vars=[model["yi"]], sum=True)(point)
    assert observed == pytest.approx(expected, rel=1e-9)
    # the whole model is finite there, and so is its gradient
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


@pytest.mark.parametrize(
    ("formula", "keywords"),
    [
        ("yi | se(sei) ~ x + (1 | study) + (1 | es_id)", {}),
        ("yi | se(sei, sigma = TRUE) ~ x + (1 | study) + (1 | es_id)", {"sigma": True}),
    ],
)
def test_formula_and_keywords_give_the_same_model(formula, keywords, seed):
    df = meta_frame(seed(1))
    by_formula = hm.HierarchicalModel(df, formula).build()
    by_keywords = hm.HierarchicalModel(
        df, y="yi", group=["study", "es_id"], predictors=["x"], se="sei", **keywords
    ).build()
    assert sorted(by_formula.named_vars) == sorted(by_keywords.named_vars)
    point = _random_point(by_formula, seed(2))
    assert by_formula.compile_logp()(point) == pytest.approx(
        by_keywords.compile_logp()(point), rel=1e-12
    )


def test_default_priors_have_sigma_only_when_asked(seed):
    df = meta_frame(seed(3))
    plain = hm.HierarchicalModel(df, "yi | se(sei) ~ x + (1 | study/es_id)").default_priors()
    both = hm.HierarchicalModel(
        df, "yi | se(sei, sigma = TRUE) ~ x + (1 | study/es_id)"
    ).default_priors()
    assert "sigma" not in plain.index
    assert "sigma" in both.index
    # s_y stays sd(y): the sigma prior is Exponential(mean sd(y)), as without se
    assert both.loc["sigma", "prior"].scale == pytest.approx(df["yi"].std(ddof=1))
    assert list(plain.index) == [i for i in both.index if i != "sigma"]


def test_no_pooling_with_known_se_is_weighted_least_squares():
    y = np.array([1.0, 3.0, 5.0, 2.0])
    se = np.array([1.0, 2.0, 0.5, 0.5])
    g = np.array([0, 0, 1, 1])
    est, std = no_pooling_fit(y, np.empty((4, 0)), np.ones((4, 1)), g, 2, se=se)
    w = 1 / se**2
    for j in range(2):
        rows = g == j
        assert est[j, 0] == pytest.approx(np.sum(w[rows] * y[rows]) / w[rows].sum())
        assert std[j, 0] == pytest.approx(1 / np.sqrt(w[rows].sum()))
    # one row per group: its own estimate and standard error, even with no residual dof
    est, std = no_pooling_fit(y, np.empty((4, 0)), np.ones((4, 1)), np.arange(4), 4, se=se)
    np.testing.assert_allclose(est[:, 0], y)
    np.testing.assert_allclose(std[:, 0], se)


# -- plumbing, mocked sampler ----------------------------------------------------------------

# the mocked sampler returns prior draws, which the convergence checks rightly flag
mocked = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


def _fit(df, formula, **kw):
    return hm.fit_hierarchical(df, formula, draws=20, chains=2, **kw)


@mocked
def test_summary_log_likelihood_and_groups(mock_pymc_sample, seed):
    df = meta_frame(seed(4))
    res = _fit(df, "yi | se(sei) ~ x + (1 | study/es_id)")
    table = res.summary()
    assert list(table.index) == [
        "Intercept",
        "x",
        "Intercept|study_sigma",
        "Intercept|study:es_id_sigma",
    ]
    eta = res.linear_predictor()
    expected = stats.norm.logpdf(df["yi"].to_numpy(), eta, df["sei"].to_numpy())
    np.testing.assert_allclose(res.log_likelihood(), expected)
    tree = res.idata
    np.testing.assert_array_equal(tree["constant_data"]["sei"], df["sei"])
    np.testing.assert_allclose(tree["log_likelihood"]["yi"], expected)
    assert res.ppc(random_seed=seed(5)).shape == (2, 20, len(df))
    assert "| se(sei)" in repr(res)


@mocked
def test_sigma_true_adds_the_residual_sd(mock_pymc_sample, seed):
    df = meta_frame(seed(6))
    res = _fit(df, "yi | se(sei, sigma = TRUE) ~ x + (1 | study)")
    assert "sigma" in res.summary().index
    sigma = np.asarray(res.idata["posterior"]["sigma"])[..., None]
    sd = np.sqrt(df["sei"].to_numpy() ** 2 + sigma**2)
    expected = stats.norm.logpdf(df["yi"].to_numpy(), res.linear_predictor(), sd)
    np.testing.assert_allclose(res.log_likelihood(), expected)


@mocked
def test_group_effects_no_pooling_is_weighted(mock_pymc_sample, seed):
    df = meta_frame(seed(7))
    res = _fit(df, "yi | se(sei) ~ 1 + (1 | study)")
    table = res.group_effects()
    w = 1 / df["sei"] ** 2
    expected = (w * df["yi"]).groupby(df["study"]).sum() / w.groupby(df["study"]).sum()
    np.testing.assert_allclose(table["no_pooling"], expected.to_numpy())


@mocked
def test_predict_mean_needs_no_se_response_uses_it(mock_pymc_sample, seed):
    df = meta_frame(seed(8))
    new = pd.DataFrame({"study": [1, 99], "es_id": [1, 1], "x": [0.0, 1.0]})
    for formula in (
        "yi | se(sei) ~ x + (1 | study)",
        "yi | se(sei, sigma = TRUE) ~ x + (1 | study)",
    ):
        res = _fit(df, formula)
        mean = res.predict(new, kind="mean", random_seed=seed(9))
        assert mean.draws.shape == (2, 20, 2)
        # with a tiny known se the responses sit on the mean, with a huge one they spread
        tight = res.predict(new.assign(sei=1e-8), kind="response", random_seed=seed(9))
        wide = res.predict(new.assign(sei=100.0), kind="response", random_seed=seed(9))
        spread = np.asarray(wide.draws - mean.draws).std()
        assert 50 < spread < 200
        gap = np.abs(np.asarray(tight.draws - mean.draws))
        if res.spec.se_sigma:
            sigma = np.asarray(res.idata["posterior"]["sigma"])
            assert gap.mean() > 0.1 * sigma.mean()
        else:
            assert gap.max() < 1e-6


@mocked
def test_save_load_round_trip(mock_pymc_sample, seed, tmp_path):
    df = meta_frame(seed(10))
    for k, formula in enumerate(
        ["yi | se(sei) ~ x + (1 | study/es_id)", "yi | se(sei, sigma = TRUE) ~ x + (1 | study)"]
    ):
        res = _fit(df, formula)
        loaded = hm.load(res.save(tmp_path / f"fit{k}.nc"))
        assert (loaded.spec.se, loaded.spec.se_sigma) == (res.spec.se, res.spec.se_sigma)
        assert loaded.data.se_name == "sei"
        np.testing.assert_array_equal(loaded.data.se, df["sei"])
        pd.testing.assert_frame_equal(loaded.summary(), res.summary())
        np.testing.assert_allclose(loaded.log_likelihood(), res.log_likelihood())
        assert ("sigma" in loaded.model.named_vars) is res.spec.se_sigma
        new = df.head(3)
        np.testing.assert_allclose(
            loaded.predict(new, kind="response", random_seed=1).draws,
            res.predict(new, kind="response", random_seed=1).draws,
        )


@mocked
def test_damaged_se_in_a_file_names_file_and_field(mock_pymc_sample, seed, tmp_path):
    res = _fit(meta_frame(seed(12)), "yi | se(sei) ~ 1 + (1 | study)")
    path = res.save(tmp_path / "fit.nc")
    with xr.open_datatree(path) as tree:
        edited = tree.load()
    data = edited["hiermodels_data"].to_dataset()
    edited["hiermodels_data"] = xr.DataTree(data.assign(se=-data["se"]))
    edited.to_netcdf(tmp_path / "negative.nc")
    with pytest.raises(hm.DataError, match=r"negative\.nc.*hiermodels_data/se"):
        hm.load(tmp_path / "negative.nc")
    edited["hiermodels_data"] = xr.DataTree(data.drop_vars("se"))
    edited.to_netcdf(tmp_path / "missing.nc")
    with pytest.raises(hm.DataError, match=r"missing\.nc.*hiermodels_data/se.*is missing"):
        hm.load(tmp_path / "missing.nc")


# -- a real fit: metafor's three-level meta-analysis -------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")
def test_konstantopoulos_three_level_matches_metafor(konstantopoulos, seed, sampled_well):
    # metafor 3.8.1 tests: rma.mv(yi, vi, random = ~ 1 | district/study), REML:
    # estimate 0.1847 (se 0.0846), sigma2 = 0.0651 (district), 0.0327 (study within district)
    res = hm.fit_hierarchical(
        konstantopoulos,
        "yi | se(sei) ~ 1 + (1 | district/study)",
        # each district's ~5 studies pin its effect down (its mean's se ~0.16 < SD 0.26):
        # centered, as BDA3 advises for informative groups. Non-centered it gives 0.2-0.7%
        # divergences at the default target_accept and R-hat ~1.02 even at 0.95; each study's
        # single estimate says little, so that level stays non-centered.
        parameterization={"Intercept|district": "centered"},
        # 2 x 1000: the study-level SD mixes slowly (bulk ESS ~250 per 1000 draws), and with
        # 2 x 500 its R-hat crossed the 1.02 bound by chance (1.0201 at seed offset 1)
        draws=1000,
        chains=2,
        random_seed=seed(2011),
    )
    sampled_well(res)
    table = res.summary()
    assert "sigma" not in table.index
    intercept = table.loc["Intercept"]
    assert abs(intercept["mean"] - 0.1847) < 2 * intercept["sd"]
    for name, reml in [
        ("Intercept|district_sigma", np.sqrt(0.0651)),
        ("Intercept|district:study_sigma", np.sqrt(0.0327)),
    ]:
        row = table.loc[name]
        assert row["ci_low"] < reml < row["ci_high"], (name, row["median"])
        assert abs(np.log(row["median"] / reml)) < np.log(2), (name, row["median"])


@mocked
def test_format_3_files_still_load(mock_pymc_sample, seed, tmp_path):
    # format 4 added the known standard errors; a format-3 file is one without them
    df = meta_frame(seed(13))
    res = hm.fit_hierarchical(df, y="yi", group="study", predictors=["x"], draws=20, chains=2)
    path = res.save(tmp_path / "fit.nc")
    with xr.open_datatree(path) as tree:
        old = tree.load()
    spec = json.loads(old.attrs["hiermodels_spec"])
    encoding = json.loads(old.attrs["hiermodels_encoding"])
    assert (spec.pop("se"), spec.pop("se_sigma"), encoding.pop("se_name")) == (None, False, None)
    old.attrs |= {
        "hiermodels_format_version": 3,
        "hiermodels_spec": json.dumps(spec),
        "hiermodels_encoding": json.dumps(encoding),
    }
    old.to_netcdf(tmp_path / "v3.nc")
    loaded = hm.load(tmp_path / "v3.nc")
    assert loaded.spec.se is None and loaded.data.se is None
    pd.testing.assert_frame_equal(loaded.summary(), res.summary())
    # the same edit left at format 4 is a damaged file, named with its field
    old.attrs["hiermodels_format_version"] = 4
    old.to_netcdf(tmp_path / "v4.nc")
    with pytest.raises(hm.DataError, match=r"v4\.nc.*hiermodels_spec\.se"):
        hm.load(tmp_path / "v4.nc")
