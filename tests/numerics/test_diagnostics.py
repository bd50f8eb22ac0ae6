"""Vectorized R-hat / bulk ESS against ArviZ's one-parameter-at-a-time reference."""

import numpy as np
import pytest
from arviz_stats.base import array_stats
from scipy import stats

from hiermodels.numerics.diagnostics import (
    _average_ranks,
    convergence,
    ess_bulk,
    ess_tail,
    rhat_rank,
)


def ar1(phi, shape, seed):
    """AR(1) chains: phi < 0 anticorrelated (like NUTS often is), phi near 1 sticky."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=shape)
    x = np.zeros(shape)
    for t in range(1, shape[-1]):
        x[..., t] = phi * x[..., t - 1] + noise[..., t]
    return x


@pytest.mark.parametrize("phi", [-0.7, 0.0, 0.5, 0.95, 0.999])
@pytest.mark.parametrize("shape", [(12, 4, 500), (12, 2, 7), (12, 3, 51)])
def test_matches_arviz(phi, shape):
    draws = ar1(phi, shape, seed=int(10 * abs(phi)) + shape[-1])
    draws[:3] += np.arange(shape[1])[:, None]  # chains that disagree: R-hat well above 1
    rhat, ess = convergence(draws)
    expected_rhat = [array_stats.rhat(d) for d in draws]
    expected_ess = [array_stats.ess(d, method="bulk") for d in draws]
    np.testing.assert_allclose(rhat, expected_rhat, rtol=1e-10)
    np.testing.assert_allclose(ess, expected_ess, rtol=1e-10)
    np.testing.assert_allclose(rhat_rank(draws), rhat)
    np.testing.assert_allclose(ess_bulk(draws), ess)


def test_single_chain_has_ess_but_no_rhat():
    rhat, ess = convergence(ar1(0.5, (2, 1, 200), seed=0))
    assert rhat is None
    assert ess.shape == (2,)


def test_ties_and_constants_as_arviz():
    draws = np.round(ar1(0.3, (4, 4, 100), seed=3), 0)  # many tied draws
    draws[0] = 1.0  # a constant element, like the fixed entries of a Cholesky factor
    with np.errstate(invalid="ignore"):
        expected_rhat = [array_stats.rhat(d) for d in draws]
    rhat, ess = convergence(draws)
    np.testing.assert_allclose(rhat, expected_rhat, rtol=1e-10)
    assert np.isnan(rhat[0]) and ess[0] == 400
    np.testing.assert_allclose(ess, [array_stats.ess(d, method="bulk") for d in draws])


def test_average_ranks_as_scipy():
    rng = np.random.default_rng(0)
    for arr in (np.round(rng.normal(size=(5, 50))), rng.normal(size=(3, 7)), np.ones((2, 4))):
        np.testing.assert_array_equal(_average_ranks(arr), stats.rankdata(arr, axis=-1))


@pytest.mark.parametrize("phi", [-0.5, 0.0, 0.9, 0.999])
def test_tail_ess_matches_arviz_at_the_5_and_95_percent_quantiles(phi):
    """Vehtari et al. (2021) §4.3: the smaller ESS of I(x <= q05) and I(x <= q95)."""
    draws = ar1(phi, (6, 4, 300), seed=int(100 * abs(phi)))
    draws[0] = np.round(draws[0])  # ties
    expected = [array_stats.ess(d, method="tail", prob=(0.05, 0.95)) for d in draws]
    np.testing.assert_allclose(ess_tail(draws), expected, rtol=1e-10)


def test_summaries_use_the_same_numbers_as_arviz():
    from hiermodels.results.draws import summarize_draws

    draws = {f"p{k}": ar1(0.6, (4, 400), seed=k) for k in range(3)}
    table = summarize_draws(draws)
    for name, d in draws.items():
        assert table.loc[name, "r_hat"] == pytest.approx(array_stats.rhat(d), rel=1e-10)
        assert table.loc[name, "ess_bulk"] == pytest.approx(array_stats.ess(d), rel=1e-10)
        tail = array_stats.ess(d, method="tail", prob=(0.05, 0.95))
        assert table.loc[name, "ess_tail"] == pytest.approx(tail, rel=1e-10)
