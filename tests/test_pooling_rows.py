"""compare_pooling on row-level data: plumbing with a mocked sampler, then real radon MCMC."""

import numpy as np
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.numerics.pooling import shrinkage_ratio

mock_draws = pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning")


@pytest.fixture
def mocked(mock_pymc_sample, simulated):
    df, _ = simulated
    return hm.compare_pooling(df, y="y", group="g", predictors=["x"], varying=["x"], draws=50)


@mock_draws
def test_rows_plumbing_with_varying_slopes(mocked, simulated):
    df, _ = simulated
    est = mocked.estimates()
    assert len(est) == 30 * 2 * 3
    assert est["term"].unique().tolist() == ["Intercept", "x"]
    assert "n_obs" in est.columns and (est["n_obs"] == 10).all()
    # no pooling is least squares with a separate intercept and slope per group
    one = df[df["g"] == "g00"]
    slope, intercept = np.polyfit(one["x"], one["y"], 1)
    own = est.query("group == 'g00' and pooling == 'none'").set_index("term")["mean"]
    assert own["Intercept"] == pytest.approx(intercept) and own["x"] == pytest.approx(slope)
    # complete pooling is one regression: the same value for every group
    complete = est.query("pooling == 'complete' and term == 'x'")["mean"]
    assert complete.nunique() == 1
    assert complete.iloc[0] == pytest.approx(np.polyfit(df["x"], df["y"], 1)[0])


@mock_draws
def test_shrinkage_is_shared_with_group_effects(mocked):
    """One definition of shrinkage (numerics.pooling: pooling_factor and shrinkage_ratio) and
    of the no-pooling estimate for HierarchicalResult.group_effects and
    PoolingComparison.shrinkage."""
    effects = mocked.partial.group_effects()
    table = mocked.shrinkage()
    np.testing.assert_allclose(table["no_pooling"], effects["no_pooling"])
    np.testing.assert_allclose(table["partial"], effects["mean"])
    _, own_se = mocked.partial.no_pooling()
    np.testing.assert_allclose(
        effects["shrinkage_ratio"],
        shrinkage_ratio(
            effects["no_pooling"], effects["mean"], effects["population"], own_se.T.ravel()
        ),
    )
    for column in ("pooling_factor", "shrinkage_ratio"):
        np.testing.assert_allclose(table[column], effects[column])
    assert effects["pooling_factor"].dropna().between(0, 1).all()


@mock_draws
def test_log_likelihood_of_partial_fit(mocked, simulated):
    df, _ = simulated
    res = mocked.partial
    ll = res.log_likelihood()
    post = res.idata["posterior"]
    assert ll.shape == (post.sizes["chain"], post.sizes["draw"], len(df))
    # row 0 by hand: population coefficients plus its group's deviations
    c, d = 0, 3
    g = res.data.group_idx[0]
    x0 = df["x"].iloc[0]
    mean = (
        float(post["Intercept"][c, d] + post["Intercept|g"][c, d, g])
        + float(post["x"][c, d] + post["x|g"][c, d, g]) * x0
    )
    expected = stats.norm.logpdf(df["y"].iloc[0], mean, float(post["sigma"][c, d]))
    assert ll[c, d, 0] == pytest.approx(expected)


@mock_draws
def test_group_level_predictor_enters_complete_not_none(mock_pymc_sample, radon):
    cmp = hm.compare_pooling(
        radon, y="log_radon", group="county", predictors=["floor", "log_uranium"], draws=20
    )
    est = cmp.estimates()
    complete = est.query("pooling == 'complete'")["mean"]
    assert complete.nunique() > 1  # Intercept + gamma * log_uranium_j differs by county
    none = est.query("pooling == 'none'")["mean"]
    assert np.isfinite(none).all()


def within(x, a, b, tol=0.02):
    return (x > np.minimum(a, b) - tol) & (x < np.maximum(a, b) + tol)


@pytest.mark.slow
@mock_draws  # not mocked: judged by the assertions below, which hold for any sound fit
def test_radon_partial_pooling_between_and_loo(radon, tmp_path, seed):
    cmp = hm.compare_pooling(
        radon,
        y="log_radon",
        group="county",
        predictors=["floor"],
        random_seed=seed(3),
    )
    s = cmp.shrinkage()
    population = cmp.partial.group_effects()["population"].to_numpy()
    own, partial, complete = (s[c].to_numpy() for c in ("no_pooling", "partial", "complete"))
    # Partial pooling is a precision-weighted average of a county's own estimate and the
    # hierarchical model's population value (BDA3 eq. 5.17), so it lies between the two.
    # MC error of a posterior mean here is < 0.02.
    assert within(partial, own, population).all()
    # Complete pooling (1.33) weights houses equally, the population value (1.46) weights
    # counties more equally. Where the population value lies between a county's own estimate
    # and complete pooling, partial pooling lies between no and complete pooling; a county
    # whose own estimate is near or inside that 0.13 gap can be pulled past complete pooling,
    # toward 1.46, and no further (the first assertion).
    far_side = within(population, own, complete, tol=0.0)
    assert within(partial, own, complete)[far_side].all()
    assert far_side.sum() >= 40
    # the counties with the fewest houses move most
    assert stats.spearmanr(s["n_obs"], np.abs(s["moved"])).statistic < -0.3
    few, many = s["n_obs"] <= 3, s["n_obs"] >= 20
    assert np.abs(s["moved"][few]).mean() > 5 * np.abs(s["moved"][many]).mean()

    table = cmp.compare()
    assert table.index[0] == "partial" and len(table) == 3
    assert table.loc["complete", "elpd_diff"] < -2 * table.loc["complete", "dse"]
    assert table.loc["none", "n_high_k"] > 0  # one-house counties: k > 0.7
    assert "unreliable for no pooling" in table.attrs["verdict"]
    path = tmp_path / "radon.png"
    cmp.plot(path)
    assert path.stat().st_size > 10_000
