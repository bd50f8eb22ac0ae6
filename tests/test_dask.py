"""A dask DataFrame fitted from its aggregates (hiermodels.lazy, hiermodels.lazy_fit; issue 17).

The sums are compared with the pandas path's (``builders.marginal.sufficient_statistics``,
the same numbers summed in another order), on a real ``distributed.LocalCluster`` of two
worker processes, so the partition functions travel to other processes as they would on a
cluster. Only the last test samples for real.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import hiermodels as hm  # noqa: E402
from hiermodels.builders.marginal import marginal_inputs, sufficient_statistics  # noqa: E402
from hiermodels.builders.marginal_nested import nested_statistics  # noqa: E402
from hiermodels.errors import ConvergenceWarning, DataError, SpecError  # noqa: E402
from hiermodels.families import get_family  # noqa: E402
from hiermodels.lazy import RowsNotCollectedError, collect, is_dask_frame  # noqa: E402
from hiermodels.lazy_fit import aggregated_inputs, nested_aggregates  # noqa: E402
from hiermodels.models import HierarchicalModel  # noqa: E402

KEYWORDS = dict(y="y", group="g", predictors=["x", "u", "z"], varying=["x"])
# a text predictor between numeric ones, its dummies varying by group (data.py's coding)
TEXT = dict(y="y", group="g", predictors=["x", "k", "u"], varying=["k"])
# an offset (sums of y - offset), known standard errors (sums weighted by 1 / se^2), both
OFFSET = dict(TEXT, offset="off")
SE = dict(KEYWORDS, se="s")
BOTH = dict(KEYWORDS, offset="off", se="s")


@pytest.fixture(scope="module")
def frames(seed):
    """Uneven groups (2 to ~120 rows) in random row order, so most groups are split over
    several of the 7 partitions; ``u`` is constant within groups (a group-level predictor),
    ``y`` has a large mean (the centring must not lose digits), ids are 2, 5, 8, ...
    (numeric order differs from text order); ``k`` is text with 3 levels, sorted "hi" (the
    reference), "lo", "mid"; ``off`` an offset and ``s`` standard errors (0.5 to 2)."""
    rng = np.random.default_rng(seed(17))
    J = 40
    sizes = rng.integers(2, 120, J)
    g = np.repeat(np.arange(J), sizes)
    rng.shuffle(g)
    n = len(g)
    u_group = rng.normal(size=J)
    x = rng.normal(3.0, 2.0, n)
    z = rng.normal(size=n)
    b = rng.multivariate_normal([0, 0], [[0.5, 0.1], [0.1, 0.2]], J)
    y = 1e4 + 0.5 * x - 0.3 * z + u_group[g] + b[g, 0] + b[g, 1] * x + rng.normal(size=n)
    k = rng.choice(["lo", "mid", "hi"], n)  # drawn last: the other columns keep their values
    off, s = rng.normal(size=n), rng.uniform(0.5, 2.0, n)
    y = y + 0.7 * (k == "mid")
    df = pd.DataFrame({"y": y, "g": 3 * g + 2, "x": x, "u": u_group[g], "z": z, "k": k})
    df = df.assign(off=off, s=s)
    df.index = pd.RangeIndex(100, 100 + n)
    return df, dd.from_pandas(df, npartitions=7, sort=False)


def _spec_and_data(df, **keywords):
    model = HierarchicalModel(df, **keywords)
    return model._spec(), model.prepared()


def test_is_dask_frame(frames):
    df, ddf = frames
    assert is_dask_frame(ddf) and not is_dask_frame(df)


def _text_frames(frames, dtype):
    df, ddf = frames
    return df.assign(k=df["k"].astype(dtype)), ddf.assign(k=ddf["k"].astype(dtype))


CASES = [
    (KEYWORDS, "str"),
    (TEXT, "str"),
    (TEXT, "category"),
    (OFFSET, "str"),
    (SE, "str"),
    (BOTH, "str"),
]
IDS = ["numeric", "text", "category", "offset", "se", "offset-se"]


@pytest.mark.parametrize(("keywords", "dtype"), CASES, ids=IDS)
def test_sums_equal_pandas(dask_client, frames, keywords, dtype):
    df, ddf = _text_frames(frames, dtype)
    spec, (data, _, _) = _spec_and_data(df, **keywords)
    lazy = collect(ddf, spec)
    stats = sufficient_statistics(data)
    for name in ("XtX", "yty", "ZtZ", "ZtX", "Zty", "shift", "means", "sum_log_var"):
        want, got = np.asarray(getattr(stats, name)), np.asarray(lazy.sums[name])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())
    # X'y0 is zero but for rounding (y0 is a least squares residual): compare on its scale
    scale = np.sqrt(np.diag(stats.XtX) * stats.yty)
    np.testing.assert_allclose(lazy.sums["Xty"], stats.Xty, atol=1e-10 * scale.max())
    f, g = data.factor, lazy.factor
    assert g.levels == f.levels and g.levels[:3] == ("2", "5", "8")
    np.testing.assert_array_equal(g.n_obs, f.n_obs)
    assert g.varying == f.varying and g.group_level == f.group_level == ("u",)
    np.testing.assert_allclose(g.group_values[:, 0], data.column("u")[f.first_rows])
    assert lazy.terms == data.terms and len(lazy.y) == len(df)
    assert lazy.categories == data.categories
    if "k" in keywords["predictors"]:  # data.py's names, order and reference level
        assert lazy.terms == ("Intercept", "x", "k[lo]", "k[mid]", "u")
        assert g.varying == ("Intercept", "k[lo]", "k[mid]")


@pytest.mark.parametrize(("keywords", "dtype"), CASES, ids=IDS)
def test_priors_and_marginal_inputs_equal_pandas(dask_client, frames, keywords, dtype):
    df, ddf = _text_frames(frames, dtype)
    spec, (data, pandas_spec, priors) = _spec_and_data(df, **keywords)
    lazy = collect(ddf, spec)
    # the scales the data-scaled priors and the standardizing read, from the sums alone
    centre, sd_y, sd_x = hm.defaults.data_scales(data, get_family("gaussian"))
    got_centre, got_sd_y, got_sd_x = lazy.scales()
    np.testing.assert_allclose([got_centre, got_sd_y], [centre, sd_y], rtol=1e-12)
    assert list(got_sd_x) == list(sd_x)
    np.testing.assert_allclose(list(got_sd_x.values()), list(sd_x.values()), rtol=1e-12)
    lazy_priors = hm.defaults.resolve_priors(lazy, spec, scales=lazy.scales())
    assert list(lazy_priors) == list(priors)
    for name, resolved in priors.items():
        want, got = resolved.prior.pymc_params(), lazy_priors[name].prior.pymc_params()
        assert type(resolved.prior) is type(lazy_priors[name].prior), name
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=name)
    want = marginal_inputs(data, pandas_spec, priors)
    got = aggregated_inputs(lazy, spec, lazy_priors)
    assert got.layout == want.layout
    for name in want.values:
        scale = np.abs(want.values[name]).max()
        np.testing.assert_allclose(got.values[name], want.values[name], atol=1e-10 * scale)


def test_bad_input_gives_the_pandas_errors(dask_client, frames):
    df, _ = frames
    cases = [
        (df.drop(columns="g"), DataError, ["'g'", "not in the data"]),
        (df.assign(y=df["y"].where(df.index != 105)), DataError, ["'y'", "missing", "105"]),
        (df.assign(x=np.inf), DataError, ["'x'", "infinite"]),
        (df.assign(u=1.0), DataError, ["'u'", "constant"]),
        (df.assign(y=2.0), DataError, ["'y'", "constant"]),
        (df.assign(g=7), DataError, ["single group"]),
    ]
    for bad, error, words in cases:
        for frame in (bad, dd.from_pandas(bad, npartitions=3)):
            with pytest.raises(error) as raised:
                hm.fit_hierarchical(frame, **KEYWORDS, engine="marginal", draws=10, chains=1)
            message = str(raised.value)
            assert all(w in message for w in words), (type(frame), message)
    text_cases = [
        (df.assign(k="lo"), ["'k'", "single category"]),
        (df.assign(k=df["k"].where(df.index != 107)), ["'k'", "missing", "107"]),
        (df.assign(k=df["x"].round(1).astype(str)), ["'k'", "looks numeric"]),
    ]
    for bad, words in text_cases:
        for frame in (bad, dd.from_pandas(bad, npartitions=3)):
            with pytest.raises(DataError) as raised:
                hm.fit_hierarchical(frame, **TEXT, engine="marginal", draws=10, chains=1)
            message = str(raised.value)
            assert all(w in message for w in words), (type(frame), message)
    extra_cases = [
        (df.assign(s=df["s"].where(df.index != 103, -1.0)), ["'s'", "<= 0", "103"]),
        (df.assign(off=df["off"].where(df.index != 104)), ["'off'", "missing", "104"]),
        (df.drop(columns="s"), ["'s'", "not in the data"]),
    ]
    for bad, words in extra_cases:
        for frame in (bad, dd.from_pandas(bad, npartitions=3)):
            with pytest.raises(DataError) as raised:
                hm.fit_hierarchical(frame, **BOTH, engine="marginal", draws=10, chains=1)
            message = str(raised.value)
            assert all(w in message for w in words), (type(frame), message)
    constant_slope = df.assign(x=df["u"])
    with pytest.raises(SpecError, match="constant within every 'g' group"):
        frame = dd.from_pandas(constant_slope, npartitions=3)
        hm.fit_hierarchical(frame, **KEYWORDS, engine="auto")


def test_what_a_dask_frame_cannot_do_is_refused_by_name(dask_client, frames):
    _, ddf = frames
    with pytest.raises(SpecError, match="engine='marginal'"):
        hm.fit_hierarchical(ddf, **KEYWORDS, engine="full")
    with pytest.raises(SpecError, match="gaussian"):
        hm.fit_hierarchical(ddf, **KEYWORDS, family="poisson", engine="auto")
    with pytest.raises(SpecError, match="columns by name"):
        hm.fit_hierarchical(ddf, "y ~ x + np.exp(z) + (1 | g)", engine="marginal")
    with pytest.raises(SpecError, match="columns by name"):
        hm.fit_hierarchical(ddf, "y ~ x + x:k + (1 | g)", engine="marginal")
    with pytest.raises(SpecError, match="dask"):
        HierarchicalModel(ddf, **KEYWORDS).default_priors()
    with pytest.raises(SpecError, match="sigma=True"):
        hm.fit_hierarchical(ddf, **SE, sigma=True, engine="marginal")


@pytest.fixture
def mocked_fits(dask_client, frames, mock_pymc_sample):
    """A dask and a pandas fit with the mocked sampler (prior draws), no shared terms."""
    df, ddf = frames
    keywords = dict(y="y", group="g", predictors=["x"], varying=["x"], engine="marginal")
    sampling = dict(draws=20, chains=2, random_seed=1, sampler="pymc", progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 prior draws
        # the mock draws from the prior, which ignores the marginal likelihood's Potential
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        return (
            hm.fit_hierarchical(ddf, **keywords, **sampling),
            hm.fit_hierarchical(df, **keywords, **sampling),
        )


def test_results_from_aggregates(mocked_fits, frames):
    lazy, full = mocked_fits
    df, _ = frames
    assert list(lazy.summary().index) == list(full.summary().index)
    table = lazy.group_effects()
    assert len(table) == 2 * 40 and table["n_obs"].sum() == 2 * len(df)
    want = full.group_effects()
    # no shared terms: each level's own least squares fit, from sums or from rows
    for column in ("no_pooling", "n_obs"):
        np.testing.assert_allclose(table[column], want[column], rtol=1e-8, atol=1e-10)
    new = df.head(4).assign(g=[2, 5, 10_000, 2])
    prediction = lazy.predict(new, random_seed=1).summary()
    assert prediction["new_group"].tolist() == [False, False, True, False]
    assert np.isfinite(prediction["mean"]).all()
    assert "rows" in repr(lazy) and "not stored" in lazy.idata.attrs["log_likelihood"]
    for needs_rows in (lazy.log_likelihood, lazy.ppc, lazy.add_log_likelihood):
        with pytest.raises(RowsNotCollectedError, match="only per-group sums"):
            needs_rows()
    with pytest.raises(RowsNotCollectedError):
        lazy.save("never-written.nc")


def _mocked_pair(df, ddf, keywords):
    sampling = dict(draws=20, chains=2, random_seed=1, sampler="pymc", progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 prior draws
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        lazy = hm.fit_hierarchical(ddf, **keywords, engine="marginal", **sampling)
        full = hm.fit_hierarchical(df, **keywords, engine="marginal", **sampling)
    return lazy, full


def test_text_predictor_fit_from_aggregates(dask_client, frames, mock_pymc_sample):
    """A text predictor varying by group, fitted with the mocked sampler (prior draws):
    the same parameters as the pandas fit, and new rows are coded with its levels."""
    df, ddf = frames
    lazy, full = _mocked_pair(df, ddf, TEXT)
    assert list(lazy.summary().index) == list(full.summary().index)
    assert "k[mid]" in lazy.summary().index and len(lazy.group_effects()) == 3 * 40
    new = df.head(3).assign(k=["hi", "lo", "mid"])
    assert np.isfinite(lazy.predict(new, random_seed=1).summary()["mean"]).all()
    with pytest.raises(DataError, match="not seen in fitting"):
        lazy.predict(df.head(1).assign(k="other"))


def test_offset_and_se_fit_from_aggregates(dask_client, frames, mock_pymc_sample):
    """Known standard errors: no sigma, as in the pandas fit; the no-pooling estimates and
    SEs of known variances from the weighted sums equal the pandas path's, with and without
    an offset (both fit each group's y - offset)."""
    df, ddf = frames
    keywords = dict(y="y", group="g", predictors=["x"], varying=["x"], se="s")
    lazy, full = _mocked_pair(df, ddf, keywords)
    assert list(lazy.summary().index) == list(full.summary().index)
    assert "sigma" not in lazy.summary().index
    for got, want in zip(lazy.no_pooling(), full.no_pooling(), strict=True):  # (est, SE)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    lazy, full = _mocked_pair(df, ddf, {**keywords, "offset": "off"})
    assert list(lazy.summary().index) == list(full.summary().index)
    for got, want in zip(lazy.no_pooling(), full.no_pooling(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    lazy, full = _mocked_pair(df, ddf, BOTH)
    assert list(lazy.summary().index) == list(full.summary().index)
    with pytest.raises(RowsNotCollectedError):
        lazy.log_likelihood()


@pytest.mark.slow
def test_dask_fit_matches_pandas_fit(dask_client, frames, seed, sampled_well):
    """Same seed, same compiled model, sums equal to rounding: the draws are not bitwise
    equal (NUTS amplifies a last-bit difference in the sums), so the posteriors are compared
    within Monte Carlo error."""
    df, ddf = frames
    keywords = dict(y="y", group="g", predictors=["x", "z"], varying=["x"], engine="marginal")
    sampling = dict(draws=500, chains=2, random_seed=seed(3), progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lazy = hm.fit_hierarchical(ddf, **keywords, **sampling)
        full = hm.fit_hierarchical(df, **keywords, **sampling)
    sampled_well(lazy)
    a, b = lazy.summary(), full.summary()
    mcse = np.sqrt(a["sd"] ** 2 / a["ess_bulk"] + b["sd"] ** 2 / b["ess_bulk"])
    assert (np.abs(a["mean"] - b["mean"]) < 5 * mcse).all(), (a["mean"] - b["mean"]) / mcse
    ga, gb = lazy.group_effects(), full.group_effects()
    assert np.abs(ga["mean"] - gb["mean"]).max() < 5 * ga["sd"].max() / np.sqrt(100)


# -- two nested factors: sums per (school, class) cell, added up per class ---------------------
NESTED = [
    "y ~ x + z + (1 + x | school/cls)",  # q1 = q2 = 2, classes labelled c0.. in every school
    "y ~ x + k + (1 | school) + (1 + x | room)",  # room labels unique: nested, read from data
    "y ~ x + u + (1 | room) + (0 + x | school)",  # the inner factor first; u per school
    "y ~ x + offset(off) + (1 | school/cls)",
    "y | se(s) ~ x + (1 + x | school) + (1 | school:cls)",
]


@pytest.fixture(scope="module")
def nested_frames(seed):
    """12 schools (ids 3, 7, 11, ...: numeric order is not text order) of 2 to 6 classes
    ("c0", "c1", ...: the same labels in every school, so a class is (school, cls)), 5 to 60
    rows a class, shuffled over 6 partitions so a class spans several; ``room`` labels each
    class uniquely; intercepts and x slopes vary by school and by class (Gelman & Hill 2007,
    §13, a varying-intercept, varying-slope model at two levels)."""
    rng = np.random.default_rng(seed(29))
    n_classes = rng.integers(2, 7, 12)
    school_of = np.repeat(np.arange(12), n_classes)
    label = np.concatenate([np.arange(k) for k in n_classes])
    rows = np.repeat(np.arange(len(school_of)), rng.integers(5, 60, len(school_of)))
    rng.shuffle(rows)
    n = len(rows)
    b1 = rng.multivariate_normal([0, 0], [[1.0, 0.2], [0.2, 0.3]], 12)
    b2 = rng.multivariate_normal([0, 0], [[0.5, 0.0], [0.0, 0.1]], len(school_of))
    s, x = school_of[rows], rng.normal(1.0, 2.0, n)
    u = rng.normal(size=12)[s]
    y = 50 + 0.8 * x + 0.5 * u + b1[s, 0] + b1[s, 1] * x + b2[rows, 0] + b2[rows, 1] * x
    y = y + rng.normal(size=n)
    df = pd.DataFrame(
        {
            "y": y,
            "x": x,
            "z": rng.normal(size=n),
            "u": u,
            "k": rng.choice(["a", "b"], n),
            "school": 4 * s + 3,
            "cls": np.char.add("c", label[rows].astype(str)),
            "room": np.char.add(np.char.add("r", (4 * s + 3).astype(str)), label[rows].astype(str)),
            "off": rng.normal(size=n),
            "s": rng.uniform(0.5, 2.0, n),
        }
    )
    df.index = pd.RangeIndex(1000, 1000 + n)
    return df, dd.from_pandas(df, npartitions=6, sort=False)


def test_nested_classes_span_partitions(nested_frames):
    _, ddf = nested_frames
    per_partition = ddf.map_partitions(lambda p: p[["school", "cls"]].drop_duplicates()).compute()
    assert per_partition.duplicated().sum() > 20  # most classes have rows in several


@pytest.mark.parametrize("formula", NESTED)
def test_nested_sums_equal_pandas(dask_client, nested_frames, formula):
    df, ddf = nested_frames
    model = HierarchicalModel(df, formula)
    spec, (data, _, _) = model._spec(), model.prepared()
    lazy = collect(ddf, spec)
    want, got = nested_statistics(data), nested_aggregates(lazy)
    assert got.order == want.order and got.n_outer == want.n_outer
    np.testing.assert_array_equal(got.parent, want.parent)
    for name in ("XtX", "yty", "shift", "means", "sum_log_var", "n_obs"):
        w, g = np.asarray(getattr(want, name)), np.asarray(getattr(got, name))
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * np.abs(w).max(), err_msg=name)
    for name in ("Z1Z1", "Z1Z2", "Z2Z2", "Z1X", "Z2X", "Z1y", "Z2y", "Xty"):
        # sums of residuals (y0) are near zero: compare on the scale of their products
        w, g = getattr(want, name), getattr(got, name)
        scale = np.sqrt(np.abs(want.XtX).max() * want.yty) if name.endswith("y") else 1.0
        np.testing.assert_allclose(
            g, w, rtol=1e-10, atol=1e-10 * max(np.abs(w).max(), scale), err_msg=name
        )
    assert lazy.terms == data.terms
    for f, g in zip(data.factors, lazy.factors, strict=True):
        assert (g.name, g.levels, g.varying, g.group_level) == (
            f.name,
            f.levels,
            f.varying,
            f.group_level,
        )
        np.testing.assert_array_equal(g.n_obs, f.n_obs)
        for k, term in enumerate(f.group_level):
            np.testing.assert_allclose(g.group_values[:, k], data.column(term)[f.first_rows])
    assert lazy.factors[0].levels[:3] == data.factors[0].levels[:3]


def test_one_factor_of_two_columns_sums_equal_pandas(dask_client, nested_frames):
    """``(1 + x | school:cls)``: one factor labelled by two columns, summed per cell."""
    df, ddf = nested_frames
    model = HierarchicalModel(df, "y ~ x + (1 + x | school:cls)")
    spec, (data, _, _) = model._spec(), model.prepared()
    lazy, stats = collect(ddf, spec), sufficient_statistics(data)
    assert lazy.factor.levels == data.factor.levels
    np.testing.assert_array_equal(lazy.factor.n_obs, data.factor.n_obs)
    for name in ("XtX", "yty", "ZtZ", "ZtX", "Zty", "shift"):
        want, got = np.asarray(getattr(stats, name)), np.asarray(lazy.sums[name])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_crossed_factors_are_refused_by_name(dask_client, nested_frames):
    _, ddf = nested_frames
    # "c0" is a class of every school: cls alone is crossed with school
    with pytest.raises(DataError) as raised:
        hm.fit_hierarchical(ddf, "y ~ x + (1 | school) + (1 | cls)", engine="marginal")
    message = str(raised.value)
    for words in ("crossed", "'cls'", "'school'", "'c0'", "engine='full'", "compute"):
        assert words in message, message
    with pytest.raises(SpecError, match="two nested"):
        hm.fit_hierarchical(ddf, "y ~ x + (1 | school/cls) + (1 | k)", engine="marginal")


def test_nested_bad_input_gives_named_errors(dask_client, nested_frames):
    df, _ = nested_frames
    formula = "y ~ x + (1 + x | school/cls)"
    cases = [
        (df.drop(columns="cls"), DataError, ["'cls'", "not in the data"]),
        (df.assign(cls=df["cls"].where(df.index != 1004)), DataError, ["'cls'", "missing", "1004"]),
        (df.assign(school=3), DataError, ["'school'", "single group"]),
        (df.assign(x=df["u"]), SpecError, ["constant within every 'school' group"]),
    ]
    for bad, error, words in cases:
        with pytest.raises(error) as raised:
            hm.fit_hierarchical(dd.from_pandas(bad, npartitions=3), formula, engine="marginal")
        assert all(w in str(raised.value) for w in words), str(raised.value)


def test_nested_results_from_aggregates(dask_client, nested_frames, mock_pymc_sample):
    """The mocked sampler (prior draws): the same parameters and group tables as pandas."""
    df, ddf = nested_frames
    formula = "y ~ x + u + (1 + x | school/cls)"
    lazy, full = _mocked_pair(df, ddf, {"formula": formula})
    assert list(lazy.summary().index) == list(full.summary().index)
    a, b = lazy.group_effects(), full.group_effects()
    assert list(a["group"]) == list(b["group"]) and list(a["term"]) == list(b["term"])
    np.testing.assert_array_equal(a["n_obs"], b["n_obs"])
    assert a["no_pooling"].isna().all() and b["no_pooling"].isna().all()
    prediction = lazy.predict(df.head(3), random_seed=1).summary()
    assert np.isfinite(prediction["mean"]).all()


@pytest.mark.slow
def test_dask_nested_fit_matches_pandas_fit(dask_client, nested_frames, seed, sampled_well):
    """A nested model with slopes at both levels: the dask and pandas marginal fits agree
    on every population parameter within 4 Monte Carlo SEs."""
    df, ddf = nested_frames
    formula = "y ~ x + z + (1 + x | school/cls)"
    sampling = dict(draws=500, chains=2, random_seed=seed(31), progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lazy = hm.fit_hierarchical(ddf, formula, engine="marginal", **sampling)
        full = hm.fit_hierarchical(df, formula, engine="marginal", **sampling)
    sampled_well(lazy)
    a, b = lazy.summary(), full.summary()
    assert list(a.index) == list(b.index)
    mcse = np.sqrt(a["sd"] ** 2 / a["ess_bulk"] + b["sd"] ** 2 / b["ess_bulk"])
    assert (np.abs(a["mean"] - b["mean"]) < 4 * mcse).all(), (a["mean"] - b["mean"]) / mcse
