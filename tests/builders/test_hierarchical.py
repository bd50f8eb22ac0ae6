"""Graph tests: names, dims, parameterization, finite logp and gradient; no sampling."""

import numpy as np
import pytest

import hiermodels as hm


def _build(df, **kw):
    args = {"y": "y", "group": "g", "predictors": ["x"], "varying": ["x"]} | kw
    return hm.HierarchicalModel(df, **args).build()


# FAST_COMPILE skips C compilation: these graphs are evaluated once, so compiling costs more
FAST = "FAST_COMPILE"


def _assert_finite_logp(model):
    point = model.initial_point()
    assert np.isfinite(model.compile_logp(mode=FAST)(point))
    assert np.all(np.isfinite(model.compile_dlogp(mode=FAST)(point)))


def _at_point(model, outputs, point):
    """Deterministics evaluated at a point of the value variables."""
    outputs = model.replace_rvs_by_values(outputs)
    return model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=FAST)(
        point
    )


def test_noncentered_correlated_names_and_dims(simulated):
    df, _ = simulated
    model = _build(df)
    named = set(model.named_vars)
    for name in ["Intercept", "x", "sigma", "Intercept|g_sigma", "x|g_sigma", "g_corr"]:
        assert name in named
    for term in ["Intercept", "x"]:
        assert model.named_vars_to_dims[f"{term}|g"] == ("g",)
        assert model.named_vars_to_dims[f"{term}|g_offset"] == ("g",)
        assert model[f"{term}|g"] in model.deterministics
    assert model.named_vars_to_dims["g_corr"] == ("g_term", "g_term_bis")
    # half-Cauchy SDs of correlated terms are sampled jointly with the correlation
    assert model["g_chol_cov"] in model.free_RVs
    assert model["x|g_sigma"] in model.deterministics
    assert model.named_vars_to_dims["y"] == ("obs",)
    assert len(model.coords["g"]) == 30
    _assert_finite_logp(model)


def test_non_vectorizable_hyperprior_uses_lkj_corr(simulated):
    df, _ = simulated
    model = _build(df, hyperprior="inverse_gamma")
    assert model["g_corr_chol"] in model.free_RVs
    assert model["x|g_sigma_variance"] in model.free_RVs
    assert model.named_vars_to_dims["g_corr"] == ("g_term", "g_term_bis")
    _assert_finite_logp(model)


def test_centered_correlated_samples_joint_effects(simulated):
    df, _ = simulated
    model = _build(df, parameterization="centered")
    assert not any(n.endswith("_offset") for n in model.named_vars)
    assert model.named_vars_to_dims["g_effects"] == ("g", "g_term")
    assert model["g_effects"] in model.free_RVs
    _assert_finite_logp(model)
    # the joint group values are centered on the population values: deviations = values - beta
    point = model.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in point.items()}
    devs = _at_point(model, [model["Intercept|g"], model["x|g"]], point)
    intercept, x = _at_point(model, [model["Intercept"], model["x"]], point)
    np.testing.assert_allclose(devs[0], point["g_effects"][:, 0] - intercept)
    np.testing.assert_allclose(devs[1], point["g_effects"][:, 1] - x)


def test_centered_intercept_includes_group_level_predictors(radon):
    """Hierarchical centering: county intercepts are sampled around Intercept + uranium."""
    model = hm.HierarchicalModel(
        radon,
        "log_radon ~ floor + log_uranium + (1 | county)",
        parameterization="centered",
    ).build()
    point = model.initial_point()
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in point.items()}
    dev, intercept, slope = _at_point(
        model, [model["Intercept|county"], model["Intercept"], model["log_uranium"]], point
    )
    uranium = radon.groupby("county", sort=True)["log_uranium"].first().to_numpy()
    expected = point["Intercept|county_coef"] - intercept - slope * uranium
    np.testing.assert_allclose(dev, expected)
    _assert_finite_logp(model)


def test_per_term_parameterization_uncorrelated(simulated):
    df, _ = simulated
    model = _build(df, correlated=False, parameterization={"x": "centered"})
    assert "Intercept|g_offset" in model.named_vars
    assert "x|g_offset" not in model.named_vars
    # hierarchical centering: the group slopes are sampled around the population slope
    assert model["x|g_coef"] in model.free_RVs
    assert model["x|g"] in model.deterministics
    assert model["Intercept|g"] in model.deterministics
    assert "g_corr" not in model.named_vars
    _assert_finite_logp(model)


def test_intercept_only_and_group_level_predictor(radon):
    model = hm.HierarchicalModel(
        radon, y="log_radon", group="county", predictors=["floor", "log_uranium"]
    ).build()
    free = {v.name for v in model.free_RVs}
    # predictors are centred inside the model: the intercept at their means is sampled
    assert model["Intercept"] in model.deterministics
    assert free == {
        "Intercept_at_means",
        "floor",
        "log_uranium",
        "sigma",
        "Intercept|county_sigma",
        "Intercept|county_offset",
    }
    assert len(model.coords["county"]) == 85
    _assert_finite_logp(model)


@pytest.mark.parametrize("preset", sorted(hm.priors.PRESETS))
def test_every_preset_has_finite_logp(simulated, preset):
    df, _ = simulated
    _assert_finite_logp(_build(df, hyperprior=preset))


def test_predictors_are_centred_and_standardized_inside_the_model(simulated):
    """The sampler sees the intercept at the predictors' means and unit-scale coefficients;
    the reported Intercept and slope are the user's (x = 0, per unit of x)."""
    df, _ = simulated
    far = df.assign(x=2000 + 10 * df["x"])
    model = _build(far, varying=[])
    assert {"x_standardized__", "Intercept_at_means_standardized__"} <= {
        v.name for v in model.value_vars
    }
    point = model.initial_point()
    point = {k: v + 0.3 for k, v in point.items()}
    at_means, x, intercept = _at_point(
        model, [model["Intercept_at_means"], model["x"], model["Intercept"]], point
    )
    np.testing.assert_allclose(intercept, at_means - x * far["x"].mean())
    # standardized coefficient: value = u * sd(y) / sd(x), so 0.3 maps to 0.3 sd(y)/sd(x)
    np.testing.assert_allclose(x, 0.3 * df["y"].std(ddof=1) / far["x"].std(ddof=0), rtol=1e-10)
    _assert_finite_logp(model)


def test_build_returns_new_model_each_call(simulated):
    df, _ = simulated
    model = hm.HierarchicalModel(df, y="y", group="g", predictors=["x"])
    first, second = model.build(), model.build()
    assert first is not second
    assert sorted(first.named_vars) == sorted(second.named_vars)


def test_linear_predictor_matches_hand_computation(simulated):
    """At a fixed point, the model's logp equals a hand-written normal likelihood + priors."""
    df, _ = simulated
    model = _build(df, correlated=False, parameterization="centered")
    point = model.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.1, size=np.shape(v)) for k, v in point.items()}
    from scipy import stats

    # centered: the group coefficients are sampled, the deviations are their difference
    intercept, x = _at_point(model, [model["Intercept"], model["x"]], point)
    a = point["Intercept|g_coef"] - intercept
    b = point["x|g_coef"] - x
    codes = df["g"].astype("category").cat.codes.to_numpy()
    mu = intercept + a[codes] + (x + b[codes]) * df["x"].to_numpy()
    sigma = np.exp(point["sigma_log__"])
    loglik = stats.norm.logpdf(df["y"], mu, sigma).sum()
    obs_logp = model.compile_logp(vars=[model["y"]], mode=FAST)
    assert obs_logp(point) == pytest.approx(loglik, rel=1e-10)


@pytest.mark.parametrize("correlated", [True, False])
def test_build_reports_what_each_group_effect_samples(simulated, correlated):
    """group_effect says what it sampled; nothing else derives it from names."""
    from hiermodels.builders.hierarchical import build
    from hiermodels.data import prepare
    from hiermodels.defaults import resolve_priors
    from hiermodels.spec import Grouping, HierarchicalSpec

    df, _ = simulated
    groups = (Grouping("g", ("g",), ("x",), correlated),)
    data = prepare(df, y="y", groups=groups, predictors=["x"])
    for kind, centered, offsets in [
        ("centered", ("Intercept|g", "x|g"), ()),
        ("noncentered", (), ("Intercept|g_offset", "x|g_offset")),
    ]:
        spec = HierarchicalSpec(y="y", groups=groups, predictors=("x",), parameterization=kind)
        built = build(data, spec, resolve_priors(data, spec))
        assert (built.centered, built.offsets) == (centered, offsets)
        for name in offsets:
            assert built.model[name] in built.model.free_RVs
