"""compare_pooling on study-level data: eight schools (BDA3 §5.5), all exact, no sampling."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import hiermodels as hm
from hiermodels.numerics.pooling import shrinkage_ratio


@pytest.fixture(scope="module")
def schools():
    return hm.datasets.load("eight_schools")


@pytest.fixture(scope="module")
def cmp(schools):
    return hm.compare_pooling(schools, estimate="y", se="sigma", study="school", random_seed=1)


def test_estimates_table(cmp):
    est = cmp.estimates()
    assert len(est) == 8 * 3
    assert list(est.columns) == [
        "group", "term", "pooling", "mean", "sd", "ci_low", "ci_high", "se"
    ]  # fmt: skip
    assert est["pooling"].tolist()[:3] == ["none", "complete", "partial"]
    a = est[est["group"] == "A"].set_index("pooling")
    assert a.loc["none", "mean"] == 28 and a.loc["none", "sd"] == 15
    assert a.loc["none", "ci_high"] == pytest.approx(28 + 1.959964 * 15)


def test_complete_pooling_is_the_precision_weighted_mean(cmp, schools):
    """BDA3 §5.5: the pooled estimate is 7.7 with standard error 4.1."""
    complete = cmp.estimates().query("pooling == 'complete'")
    w = 1 / schools["sigma"] ** 2
    assert complete["mean"].iloc[0] == pytest.approx((w * schools["y"]).sum() / w.sum())
    assert round(complete["mean"].iloc[0], 1) == 7.7
    assert round(complete["sd"].iloc[0], 1) == 4.1
    assert complete["mean"].nunique() == 1


def test_partial_pooling_lies_between_and_least_precise_move_most(cmp):
    s = cmp.shrinkage()
    low = np.minimum(s["no_pooling"], s["complete"])
    high = np.maximum(s["no_pooling"], s["complete"])
    assert ((s["partial"] >= low) & (s["partial"] <= high)).all()
    # the weight on the population mean grows with the standard error (BDA3 eq. 5.17)
    by_se = s.sort_values("se")
    assert by_se["pooling_factor"].is_monotonic_increasing
    # schools far from the pooled mean (where the ratio is stable): the noisier, the more
    far = s[(s["no_pooling"] - s["complete"]).abs() > 5]
    assert stats.spearmanr(far["se"], far["pooling_factor"]).statistic > 0.8
    # one definition of the ratio: toward the population value, where the gap exceeds one se
    np.testing.assert_allclose(
        s["shrinkage_ratio"],
        shrinkage_ratio(s["no_pooling"], s["partial"], s["population"], s["se"]),
    )
    assert s["shrinkage_ratio"].dropna().between(0, 1).all()


def test_partial_pooling_matches_meta_analysis(cmp, schools):
    meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school")
    partial = cmp.estimates().query("pooling == 'partial'")
    np.testing.assert_allclose(partial["mean"], meta.study_effects()["mean"])
    assert cmp.partial.method == "exact"


def test_compare_has_one_row_per_model_and_flags_pareto_k(cmp):
    table = cmp.compare()
    assert sorted(table.index) == ["complete", "none", "partial"]
    assert table["rank"].tolist() == [0, 1, 2]
    assert table["elpd_diff"].iloc[0] == 0 and (table["elpd_diff"] <= 0).all()
    # no pooling: leaving a school out leaves its theta with only the flat prior, so the
    # importance ratios are heavy-tailed; PSIS must say so
    assert table.loc["none", "n_high_k"] >= 4
    assert table.loc["none", "max_k"] > table.loc["none", "k_threshold"]
    assert "unreliable for no pooling" in table.attrs["verdict"]
    assert np.isnan(table.loc["none", "elpd_loso"])
    assert np.isfinite(table.loc[["complete", "partial"], "elpd_loso"]).all()
    assert cmp.verdict() == table.attrs["verdict"]


def test_psis_loo_of_complete_pooling_matches_its_exact_loo(cmp):
    """With theta_j = mu for every school, predicting school j again or a new school is the
    same, so PSIS-LOO (k < 0.5 here) must agree with the exact leave-one-out density."""
    table = cmp.compare()
    assert table.loc["complete", "max_k"] < 0.5
    assert table.loc["complete", "elpd_loo"] == pytest.approx(
        table.loc["complete", "elpd_loso"], abs=0.1
    )


def test_leave_one_study_out_is_exact(cmp, schools):
    """p(y_j | y_-j) = p(y) / p(y_-j) by brute-force double integration over (mu, tau)."""
    y, se = schools["y"].to_numpy(float), schools["sigma"].to_numpy(float)
    tau_prior = cmp.partial.tau_prior

    def evidence(keep):
        def integrand(mu, tau):
            sd = np.sqrt(se[keep] ** 2 + tau**2)
            return np.exp(stats.norm.logpdf(y[keep], mu, sd).sum() + tau_prior.logpdf(tau))

        return integrate.dblquad(integrand, 0, 400, -60, 80, epsabs=1e-16, epsrel=1e-9)[0]

    j = 0
    keep = np.arange(8) != j
    expected = np.log(evidence(np.ones(8, bool)) / evidence(keep))
    assert cmp.fits["partial"].loso[j] == pytest.approx(expected, abs=2e-3)


def test_plot_renders_to_file(cmp, tmp_path):
    path = tmp_path / "shrinkage.png"
    fig = cmp.plot(path)
    assert path.stat().st_size > 10_000
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0].startswith("H")  # least precise (se 18) first
    with pytest.raises(hm.SpecError, match="term 'floor' is not compared"):
        cmp.plot(term="floor")


def test_options_pass_through(schools):
    flat = hm.compare_pooling(
        schools, estimate="y", se="sigma", study="school", hyperprior="uniform"
    )
    assert "Uniform" in repr(flat.partial.tau_prior) or "Flat" in repr(flat.partial.tau_prior)
    cauchy = hm.compare_pooling(
        schools, estimate="y", se="sigma", study="school", hyperprior=hm.priors.HalfCauchy(5)
    )
    assert cauchy.partial.tau_prior == hm.priors.HalfCauchy(5)
    # a tighter prior on tau pools more
    moved = lambda c: c.shrinkage()["moved"].abs().sum()  # noqa: E731
    assert moved(cauchy) > moved(flat)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimate": "y", "se": "sigma", "y": "y", "group": "school"}, "not both or neither"),
        ({}, "not both or neither"),
        ({"estimate": "y"}, "need both estimate= and se="),
        ({"y": "y"}, "need both y= and group="),
        ({"estimate": "effect", "se": "sigma"}, "'effect'"),
    ],
)
def test_bad_calls(schools, kwargs, message):
    with pytest.raises(hm.HierModelsError, match=message):
        hm.compare_pooling(schools, **kwargs)


def test_caller_frame_untouched(schools):
    before = schools.copy()
    hm.compare_pooling(schools, estimate="y", se="sigma", study="school")
    pd.testing.assert_frame_equal(schools, before)
