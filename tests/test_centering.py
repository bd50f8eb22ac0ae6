"""Predictors far from zero (a year, a Unix timestamp) fit as well as a centred copy.

The builder centres and standardizes the population design inside the model (brms and
rstanarm centre too) and reports coefficients on the user's scale. Before, a ``year`` column
(2000-2020) gave ESS 9 and R-hat 1.18, and a timestamp R-hat 2.1 and a wrong slope (issue 11).
Three models are compiled here.
"""

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::hiermodels.errors.ConvergenceWarning"),
]

# x on the user's scale = offset + scale * z, with z ~ N(0, 1)
COLUMNS = {"centred": (0.0, 1.0), "year": (2000.0, 10.0), "timestamp": (1.7e9, 3e7)}


@pytest.fixture(scope="module")
def fits(seed):
    rng = np.random.default_rng(seed(21))
    n_groups, per = 20, 15
    g = np.repeat(np.arange(n_groups), per)
    z = rng.normal(size=g.size)
    y = 1.0 + 0.3 * z + rng.normal(0, 0.5, n_groups)[g] + rng.normal(0, 1.0, g.size)
    base = pd.DataFrame({"y": y, "g": [f"g{j:02d}" for j in g]})
    out = {}
    for name, (offset, scale) in COLUMNS.items():
        df = base.assign(x=offset + scale * z)
        res = hm.fit_hierarchical(
            df, y="y", group="g", predictors=["x"], chains=4, random_seed=seed(22)
        )
        out[name] = (df, res)
    return out


@pytest.mark.parametrize("name", ["year", "timestamp"])
def test_far_from_zero_predictor_fits_like_a_centred_one(fits, name, sampled_well):
    offset, scale = COLUMNS[name]
    _, centred = fits["centred"]
    _, res = fits[name]
    a, b = centred.summary(), res.summary()
    sampled_well(res)
    # the slope per unit of x is the centred slope / scale; compare on the centred scale
    slope_a, slope_b = a.loc["x", "mean"], b.loc["x", "mean"] * scale
    mcse = np.hypot(
        a.loc["x", "sd"] / np.sqrt(a.loc["x", "ess_bulk"]),
        b.loc["x", "sd"] * scale / np.sqrt(b.loc["x", "ess_bulk"]),
    )
    assert abs(slope_a - slope_b) < 4 * mcse
    assert b.loc["x", "sd"] * scale == pytest.approx(a.loc["x", "sd"], rel=0.1)
    # the intercept at x = 0 is reported on the user's scale: Intercept_c - slope * offset
    expected = a.loc["Intercept", "mean"] - a.loc["x", "mean"] * offset / scale
    assert b.loc["Intercept", "mean"] == pytest.approx(expected, abs=4 * b.loc["Intercept", "sd"])
    for param in ["Intercept", "x"]:
        assert b.loc[param, "r_hat"] < 1.01, param
    assert b["ess_bulk"].min() >= 0.5 * a["ess_bulk"].min()
    # predictions for new rows are the same on either scale (same seed, same draws order)
    new_z = np.array([-1.0, 0.0, 2.0])
    p_a = centred.predict(pd.DataFrame({"g": "g03", "x": new_z})).summary()
    p_b = res.predict(pd.DataFrame({"g": "g03", "x": offset + scale * new_z})).summary()
    np.testing.assert_allclose(p_b["mean"], p_a["mean"], atol=4 * p_a["sd"].max() / 30)
