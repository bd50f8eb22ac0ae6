"""Simulation-based calibration numerics: rank statistics, interval coverage and uniformity
tests with simultaneous ECDF bands (numpy and scipy only).

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788: draw parameters from the
prior, data given them, and ``L`` posterior draws given the data; the rank of the prior draw
among the posterior draws, ``r = #{l : draw_l < truth}``, is uniform on ``{0, ..., L}`` for
every parameter exactly when the posterior is right (their Theorem 1; with independent
draws, or draws thinned until nearly so).

Uniformity is checked two ways:

* a chi-square test on binned ranks (Talts et al. §4.1's histogram, as a test);
* the ECDF test of Säilynoja, Bürkner & Vehtari (2022), "Graphical test for discrete
  uniformity and its applications in goodness-of-fit evaluation and multiple sample
  comparison", Statistics and Computing 32:32: at evaluation points ``z_k`` the count of
  ranks below ``z_k (L + 1)`` is Binomial(N, z_k) under uniformity; the statistic is the
  smallest two-sided binomial tail probability over the points, and the probability that
  the whole ECDF stays inside a band is computed exactly by a recursion over the binomial
  increments between points (their §4.1, "optimization" method), not by simulation. The
  same recursion gives the simultaneous band (found by bisection on the pointwise level and
  cached) and the test's p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats
from scipy.special import gammaln

__all__ = [
    "COVERAGE_LEVELS",
    "EcdfBand",
    "chi2_uniformity",
    "coverage",
    "ecdf_band",
    "ecdf_points",
    "ecdf_uniformity",
    "ranks",
]

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)


def ranks(truth, draws) -> np.ndarray:
    """Rank of each true value among its posterior draws: ``#{l : draws[s, l] < truth[s]}``.

    Parameters
    ----------
    truth : array_like, shape (n_sims, ...)
    draws : array_like, shape (n_sims, L, ...)

    Returns
    -------
    ndarray of int, shape (n_sims, ...), values in ``0..L``.

    Examples
    --------
    >>> ranks([0.5, 2.0], [[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]).tolist()
    [1, 2]
    """
    truth = np.asarray(truth, dtype=float)
    draws = np.asarray(draws, dtype=float)
    return (draws < truth[:, None, ...]).sum(axis=1)


def coverage(rank, n_values: int, levels=COVERAGE_LEVELS) -> dict[float, tuple[float, float]]:
    """Coverage of central posterior intervals, read from the ranks.

    The central ``p`` interval of ``L = n_values - 1`` draws, between order statistics
    ``k + 1`` and ``L - k`` with ``k = floor((1 - p) (L + 1) / 2)``, holds the truth exactly
    when ``k <= rank <= L - k``; under calibration that happens with probability
    ``(L + 1 - 2k) / (L + 1)``, which is ``p`` when ``(1 - p) (L + 1) / 2`` is whole (e.g.
    ``L + 1 = 200`` or ``1000`` for the levels 0.5, 0.8, 0.9, 0.95).

    Returns
    -------
    dict
        level -> (observed coverage, its exact expected value under calibration).

    Examples
    --------
    >>> coverage([0, 5, 50, 99], 100, levels=(0.9,))
    {0.9: (0.5, 0.9)}
    """
    rank = np.asarray(rank)
    out = {}
    for p in levels:
        k = int(np.floor((1 - p) * n_values / 2 + 1e-9))
        inside = (rank >= k) & (rank <= n_values - 1 - k)
        out[p] = (float(inside.mean()), (n_values - 2 * k) / n_values)
    return out


def chi2_uniformity(rank, n_values: int, n_bins: int | None = None) -> tuple[float, float, int]:
    """Chi-square test that ranks are uniform on ``{0, ..., n_values - 1}``, on binned ranks.

    ``n_bins`` defaults to ``min(20, n_values, N // 5)`` (at least 2), so that each bin
    expects at least 5 ranks. Bins hold ``floor(r B / n_values)``; their expected shares are
    the exact fractions of rank values in each, so bins need not be equal.

    Returns
    -------
    statistic, p_value, n_bins

    Examples
    --------
    >>> stat, p, bins = chi2_uniformity(np.arange(200) % 100, 100)
    >>> bins, round(p, 3)
    (20, 1.0)
    """
    rank = np.asarray(rank, dtype=int).ravel()
    n = rank.size
    if n_bins is None:
        n_bins = max(2, min(20, n_values, n // 5))
    values = np.arange(n_values)
    share = np.bincount(values * n_bins // n_values, minlength=n_bins) / n_values
    counts = np.bincount(rank * n_bins // n_values, minlength=n_bins)
    result = stats.chisquare(counts, share * n)
    return float(result.statistic), float(result.pvalue), n_bins


def ecdf_points(n_values: int, n_points: int | None = None, n_sims: int | None = None):
    """Evaluation points of the ECDF test: rank thresholds ``i_k`` and ``z_k = i_k / n_values``.

    The count of ranks ``< i_k`` is exactly Binomial(N, z_k) under uniformity. Default
    ``n_points``: ``min(n_values - 1, N, 100)`` (Säilynoja et al. 2022 evaluate at most at
    the N sample points; more points only repeat the same information).
    """
    cap = n_values - 1
    if n_points is None:
        n_points = min(cap, n_sims or cap, 100)
    n_points = max(1, min(int(n_points), cap))
    i = np.unique(np.round(np.linspace(0, n_values, n_points + 2)[1:-1]).astype(int))
    i = i[(i > 0) & (i < n_values)]
    return i, i / n_values


def _tails(n: int, z: np.ndarray) -> np.ndarray:
    """Two-sided tail probability of each count c = 0..n at each point: (K, n + 1),
    ``min(1, 2 min(P(C <= c), P(C >= c)))`` for C ~ Binomial(n, z_k)."""
    c = np.arange(n + 1)
    below = stats.binom.cdf(c[None, :], n, z[:, None])
    above = stats.binom.sf(c[None, :] - 1, n, z[:, None])
    return np.minimum(1.0, 2 * np.minimum(below, above))


def _limits(tails: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the lowest and highest count whose tail probability exceeds ``gamma``
    (the set is an interval: the tail probability rises to the mode, then falls); an empty
    set gives lo > hi."""
    inside = tails > gamma
    n = tails.shape[1] - 1
    any_inside = inside.any(axis=1)
    lo = np.where(any_inside, inside.argmax(axis=1), n + 1)
    hi = np.where(any_inside, n - inside[:, ::-1].argmax(axis=1), -1)
    return lo, hi


def _inside_probability(n: int, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """P(lo_k <= #{u_i < z_k} <= hi_k for every k) for n independent uniforms.

    Given c points below z_{k-1}, the count below z_k is c + Binomial(n - c, p_k) with
    ``p_k = (z_k - z_{k-1}) / (1 - z_{k-1})``; the probabilities of the counts inside the
    band are carried from point to point (Säilynoja et al. 2022, §4.1), so the cost is
    (points x band width^2).
    """
    if np.any(lo > hi):
        return 0.0
    lgf = gammaln(np.arange(n + 2))
    states = np.array([0])
    prob = np.array([1.0])
    z_prev = 0.0
    for zk, a, b in zip(z, lo, hi, strict=True):
        p = (zk - z_prev) / (1 - z_prev)
        new = np.arange(a, b + 1)
        m = n - states[:, None]  # points still above z_prev
        j = new[None, :] - states[:, None]  # points that land in (z_prev, z_k]
        ok = (j >= 0) & (j <= m)
        jj, mm = np.where(ok, j, 0), np.where(ok, m, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            logpmf = (
                lgf[mm + 1]
                - lgf[jj + 1]
                - lgf[mm - jj + 1]
                + jj * np.log(p)
                + np.where(mm - jj > 0, (mm - jj) * np.log1p(-p), 0.0)
            )
        trans = np.where(ok, np.exp(logpmf), 0.0)
        prob = prob @ trans
        states, z_prev = new, zk
        if prob.sum() == 0.0:
            return 0.0
    return float(prob.sum())


def ecdf_uniformity(rank, n_values: int, n_points: int | None = None) -> tuple[float, float]:
    """Säilynoja et al. (2022)'s ECDF test that ranks are uniform on ``{0..n_values - 1}``.

    Returns
    -------
    statistic, p_value
        The statistic is the smallest two-sided pointwise binomial tail probability of the
        ECDF over the evaluation points (:func:`ecdf_points`); the p-value, the exact
        probability under uniformity of a statistic as small or smaller (computed by
        recursion, no simulation): below ``alpha`` exactly when the ECDF leaves the
        simultaneous ``1 - alpha`` band somewhere.

    Examples
    --------
    >>> p_uniform = ecdf_uniformity(np.arange(100), 100)[1]
    >>> p_ends = ecdf_uniformity(np.r_[np.zeros(50, int), np.full(50, 99)], 100)[1]
    >>> bool(p_uniform > 0.5), bool(p_ends < 1e-10)
    (True, True)
    """
    rank = np.asarray(rank, dtype=int).ravel()
    n = rank.size
    i, z = ecdf_points(n_values, n_points, n)
    counts = (rank[None, :] < i[:, None]).sum(axis=1)
    tails = _tails(n, z)
    statistic = float(tails[np.arange(len(z)), counts].min())
    lo, hi = _limits(tails, statistic)
    p_value = 1.0 - _inside_probability(n, z, lo, hi)
    return statistic, float(min(1.0, max(p_value, 0.0)))


@dataclass(frozen=True)
class EcdfBand:
    """A simultaneous band for the ECDF of N uniform ranks at the points ``z``.

    ``lower``/``upper`` are counts (divide by N for the ECDF); ``gamma`` the pointwise level
    that makes the band simultaneous at ``1 - alpha``; ``coverage`` the exact probability
    that a uniform sample's ECDF stays inside (>= 1 - alpha, as close as the discreteness
    of the counts allows).
    """

    n: int
    z: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    gamma: float
    alpha: float
    coverage: float


def ecdf_band(n: int, z, alpha: float = 0.05) -> EcdfBand:
    """The simultaneous ``1 - alpha`` band for the ECDF of ``n`` uniform ranks at ``z``.

    The pointwise band at level ``gamma`` holds the counts whose two-sided binomial tail
    probability exceeds ``gamma``; ``gamma`` is the largest for which the whole ECDF stays
    inside with probability >= 1 - alpha (bisection on log gamma, each step one exact
    recursion; Säilynoja et al. 2022, §4.1). Cached per (n, z, alpha).
    """
    return _ecdf_band(int(n), tuple(np.round(np.asarray(z, dtype=float), 12)), float(alpha))


@lru_cache(maxsize=32)
def _ecdf_band(n: int, z: tuple, alpha: float) -> EcdfBand:
    z_arr = np.asarray(z)
    tails = _tails(n, z_arr)

    def inside(log_gamma):
        lo, hi = _limits(tails, np.exp(log_gamma))
        return _inside_probability(n, z_arr, lo, hi), lo, hi

    a, b = np.log(1e-12), np.log(alpha)  # inside(a) is ~1, inside(b) < 1 - alpha
    best = inside(a)
    for _ in range(40):
        mid = 0.5 * (a + b)
        trial = inside(mid)
        if trial[0] >= 1 - alpha:
            a, best = mid, trial
        else:
            b = mid
    prob, lo, hi = best
    return EcdfBand(n, z_arr, lo.astype(float), hi.astype(float), float(np.exp(a)), alpha, prob)
