"""Rank statistics, coverage and uniformity tests of simulation-based calibration (numpy)."""

import numpy as np
import pytest
from scipy import stats

from hiermodels.numerics import sbc


def test_ranks_count_the_draws_below_the_truth():
    draws = np.array([[0.0, 1.0, 3.0], [5.0, 6.0, 7.0]])
    assert sbc.ranks([0.5, 9.0], draws).tolist() == [1, 3]
    # several parameters at once: (n_sims, L, p)
    both = np.stack([draws, -draws], axis=-1)
    assert sbc.ranks(np.array([[0.5, -0.5], [9.0, 9.0]]), both).tolist() == [[1, 2], [3, 3]]


def test_coverage_is_exact_for_uniform_ranks_on_200_or_1000_values():
    for n_values in (200, 1000):
        every_rank = np.arange(n_values)  # each rank once: exactly uniform
        for level, (seen, expected) in sbc.coverage(every_rank, n_values).items():
            assert expected == pytest.approx(level)
            assert seen == pytest.approx(level)
    # 100 values: the 95% interval of 99 draws holds 96 of the 100 ranks
    assert sbc.coverage(np.arange(100), 100, levels=(0.95,))[0.95] == (0.96, 0.96)


def test_uniform_ranks_pass_both_tests():
    ranks = np.tile(np.arange(100), 2)  # 200 simulations, flat
    assert sbc.chi2_uniformity(ranks, 100)[1] > 0.99
    assert sbc.ecdf_uniformity(ranks, 100)[1] > 0.99


@pytest.mark.parametrize(
    "ranks",
    [
        np.r_[np.zeros(40, int), np.full(40, 99), np.arange(0, 100, 5)],  # too narrow: ends
        np.r_[np.full(60, 50), np.arange(0, 100, 2)],  # too wide: the middle
        np.r_[np.arange(0, 50), np.arange(0, 50), np.arange(0, 100, 2)],  # biased: one side
    ],
    ids=["ends", "middle", "one_side"],
)
def test_misplaced_ranks_fail_both_tests(ranks):
    assert sbc.chi2_uniformity(ranks, 100)[1] < 1e-6
    assert sbc.ecdf_uniformity(ranks, 100)[1] < 1e-6


def test_chi2_bins_unequal_shares_exactly():
    # 7 rank values in 2 bins: values 0-3 in the first (4/7), 4-6 in the second (3/7)
    ranks = np.r_[np.repeat(np.arange(4), 30), np.repeat(np.arange(4, 7), 30)]
    stat, p, bins = sbc.chi2_uniformity(ranks, 7, n_bins=2)
    assert bins == 2 and stat == pytest.approx(0.0) and p == pytest.approx(1.0)


def test_inside_probability_of_one_point_is_a_binomial_probability():
    n, z = 30, np.array([0.3])
    got = sbc._inside_probability(n, z, np.array([5]), np.array([12]))
    assert got == pytest.approx(stats.binom.cdf(12, n, 0.3) - stats.binom.cdf(4, n, 0.3))


def test_inside_probability_of_two_points_matches_a_multinomial_sum():
    n, z = 12, np.array([0.25, 0.6])
    lo, hi = np.array([1, 5]), np.array([5, 9])
    want = sum(
        stats.multinomial.pmf([a, b - a, n - b], n, [0.25, 0.35, 0.4])
        for a in range(1, 6)
        for b in range(5, 10)
        if b >= a
    )
    assert sbc._inside_probability(n, z, lo, hi) == pytest.approx(want, rel=1e-10)


def test_ecdf_p_values_are_uniform_under_uniform_ranks(seed):
    rng = np.random.default_rng(seed(11))
    p = np.array([sbc.ecdf_uniformity(rng.integers(0, 100, 60), 100)[1] for _ in range(400)])
    # a discrete statistic is conservative at most: P(p <= 0.1) <= 0.1, and close to it
    share = np.mean(p <= 0.1)
    sd = np.sqrt(0.1 * 0.9 / 400)
    assert 0.1 - 5 * sd < share < 0.1 + 4 * sd


@pytest.mark.parametrize("n", [50, 200])
def test_band_for_a_known_n_matches_a_simulation(n, seed):
    i, z = sbc.ecdf_points(1000, None, n)
    band = sbc.ecdf_band(n, z, alpha=0.05)
    assert 0.95 <= band.coverage < 0.96
    assert np.all(band.lower <= n * z) and np.all(band.upper >= n * z)
    rng = np.random.default_rng(seed(12))
    m = 4000
    counts = np.stack([(rng.integers(0, 1000, n)[None, :] < i[:, None]).sum(1) for _ in range(m)])
    inside = np.mean(np.all((counts >= band.lower) & (counts <= band.upper), axis=1))
    assert inside == pytest.approx(band.coverage, abs=4 * np.sqrt(0.05 * 0.95 / m))
    # the simultaneous band is wider than the pointwise 95% one
    pointwise = stats.binom.ppf(0.025, n, z)
    assert np.all(band.lower <= pointwise)


def test_band_is_cached():
    z = sbc.ecdf_points(100, None, 40)[1]
    assert sbc.ecdf_band(40, z) is sbc.ecdf_band(40, z.copy())
