"""Real MCMC for non-Gaussian families: simulated truths are recovered.

Two models are compiled here (logistic, Poisson with exposure offset).
"""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.slow,
    # judged by sampled_well (divergence rate, R-hat, ESS), not by warnings
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
]


def inside(summary, name, truth):
    row = summary.loc[name]
    # 99% intervals from 95% ones: widen by 2.576 / 1.96
    half = (row["ci_high"] - row["ci_low"]) / 2 * 2.576 / 1.96
    return abs(row["mean"] - truth) < half


def test_logistic_varying_intercepts_recovers_truth(seed, sampled_well):
    rng = np.random.default_rng(seed(7))
    n_groups, per = 40, 30
    b = rng.normal(0, 0.8, n_groups)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    p = 1 / (1 + np.exp(-(-0.5 + 1.2 * x + b[g])))
    df = pd.DataFrame({"y": rng.binomial(1, p), "x": x, "g": [f"s{j}" for j in g]})
    res = hm.fit_hierarchical(
        df, y="y", group="g", predictors=["x"], family="bernoulli", random_seed=seed(1)
    )
    sampled_well(res)
    s = res.summary()
    # the group SD the data inform is that of the 40 effects drawn, not the nominal 0.8
    sd_drawn = np.std(b, ddof=1)
    for name, truth in {"Intercept": -0.5, "x": 1.2, "Intercept|g_sigma": sd_drawn}.items():
        assert inside(s, name, truth), (name, s.loc[name])
    # probabilities for the fitted rows are close to the true ones on average
    fitted = res.predict(df).summary()["mean"].to_numpy()
    assert np.mean(np.abs(fitted - p)) < 0.08
    # each group's own (no-pooling) log odds is farther from the population value than
    # the partially pooled one: the gap closed (where stable) between 0 and 1
    effects = res.group_effects()
    assert effects["no_pooling"].notna().sum() >= 38  # only separated groups lack one
    moved = effects["shrinkage_ratio"].dropna()
    assert ((moved > 0) & (moved < 1)).mean() > 0.9
    truth = b[effects["group"].str[1:].astype(int)]  # labels sort as text: s0, s1, s10, ...
    assert np.corrcoef(effects["deviation"], truth)[0, 1] > 0.7


def test_poisson_with_exposure_offset_recovers_truth(seed, sampled_well):
    rng = np.random.default_rng(seed(8))
    n_groups, per = 30, 20
    b = rng.normal(0, 0.5, n_groups)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    exposure = rng.uniform(0.2, 3, g.size)
    rate = np.exp(-1.0 + 0.4 * x + b[g])
    df = pd.DataFrame(
        {
            "y": rng.poisson(rate * exposure),
            "x": x,
            "g": [f"h{j}" for j in g],
            "log_exposure": np.log(exposure),
        }
    )
    res = hm.fit_hierarchical(
        df,
        y="y",
        group="g",
        predictors=["x"],
        family="poisson",
        offset="log_exposure",
        random_seed=seed(2),
    )
    sampled_well(res)
    s = res.summary()
    sd_drawn = np.std(b, ddof=1)  # of the 30 effects drawn (nominal 0.5)
    for name, truth in {"Intercept": -1.0, "x": 0.4, "Intercept|g_sigma": sd_drawn}.items():
        assert inside(s, name, truth), (name, s.loc[name])
    # doubling the exposure doubles the expected count
    new = df.head(2).assign(log_exposure=lambda d: d["log_exposure"] + np.log(2))
    ratio = res.predict(new).draws.values / res.predict(df.head(2)).draws.values
    np.testing.assert_allclose(ratio, 2.0)
