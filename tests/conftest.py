"""Shared fixtures: the mocked sampler and small simulated data sets with known truth."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, never to a screen
# compiled models go to a cache of this test session's own (it starts empty, as on a fresh
# machine, and leaves nothing in the user's ~/.cache); set HIERMODELS_CACHE_DIR to keep one
if "HIERMODELS_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="hiermodels-test-cache-")
    os.environ["HIERMODELS_CACHE_DIR"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import numpy as np
import pandas as pd
import pytest
from pymc.testing import mock_sample_setup_and_teardown

import hiermodels as hm

mock_pymc_sample = pytest.fixture(scope="function")(mock_sample_setup_and_teardown)

# Every seed of a simulation or a sampler in the tests goes through `seed` below, so that
# HIERMODELS_TEST_SEED_OFFSET=k gives every test another draw of chance (STYLE.md: a test
# must pass for any k; `make test-seeds` runs the slow tests for k = 1 and 2).
SEED_OFFSET = int(os.environ.get("HIERMODELS_TEST_SEED_OFFSET", "0"))


def seed_for(base: int) -> int:
    """The seed a test uses for its ``base`` seed under the current offset."""
    return base + 7919 * SEED_OFFSET


@pytest.fixture(scope="session")
def seed():
    """``seed(base)``: a test's seed, shifted by HIERMODELS_TEST_SEED_OFFSET."""
    return seed_for


def pytest_report_header(config):
    return f"hiermodels test seed offset: {SEED_OFFSET} (HIERMODELS_TEST_SEED_OFFSET)"


@pytest.fixture(scope="session")
def bad_input():
    """Check one row of a bad-input table (tests/bad_inputs/).

    ``bad_input(case)`` builds the case's frame, calls it, and asserts that it raises the
    case's error class (a HierModelsError subclass) with every word of ``case.words`` in the
    message (case-insensitive) and that the caller's frame is unchanged.
    """

    def check(case):
        from hiermodels.errors import HierModelsError

        assert issubclass(case.error, HierModelsError), case.error
        frame = case.frame() if case.frame is not None else None
        before = frame.copy(deep=True) if isinstance(frame, pd.DataFrame) else None
        with pytest.raises(case.error) as caught:
            case.call(frame)
        message = str(caught.value).lower()
        missing = [w for w in case.words if w.lower() not in message]
        assert not missing, f"message lacks {missing}: {caught.value}"
        if before is not None:
            pd.testing.assert_frame_equal(frame, before)

    return check


@pytest.fixture(scope="session")
def radon() -> pd.DataFrame:
    return hm.datasets.load("radon")


def simulate_grouped(
    *,
    n_groups=30,
    n_per_group=20,
    intercept=1.0,
    slope=-0.5,
    tau=(0.6, 0.3),
    rho=0.4,
    sigma=0.5,
    seed=0,
):
    """Varying intercepts and slopes with known population values (returns df, truth)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[tau[0] ** 2, rho * tau[0] * tau[1]], [rho * tau[0] * tau[1], tau[1] ** 2]])
    b = rng.multivariate_normal([0, 0], cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), n_per_group)
    x = rng.normal(size=g.size)
    y = intercept + b[g, 0] + (slope + b[g, 1]) * x + rng.normal(0, sigma, size=g.size)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})
    # the group SDs are those of the effects drawn, which the data inform, not the nominal
    # tau (with 30 groups their sample SD is off by ~13% at random)
    truth = {
        "Intercept": intercept,
        "x": slope,
        "sigma": sigma,
        "Intercept|g_sigma": float(np.std(b[:, 0], ddof=1)),
        "x|g_sigma": float(np.std(b[:, 1], ddof=1)),
    }
    return df, truth


@pytest.fixture(scope="session")
def simulated():
    # few rows per group and a noisy outcome: the regime where partial pooling matters
    return simulate_grouped(n_per_group=10, sigma=0.8, tau=(0.5, 0.4), seed=seed_for(0))


def check_sampled_well(res, *, divergence_rate=0.005, rhat=1.02, ess_per_chain=50):
    """Assert what chance does not break in a sound fit: few divergences (a rate, not zero),
    R-hat and bulk ESS of the summarized parameters within loose bounds.

    Real fits in the tests ignore ``ConvergenceWarning`` (one divergence in 4000 draws
    happens on some machines and seeds) and call this instead.
    """
    diverging = np.asarray(res.idata["sample_stats"]["diverging"])
    assert diverging.mean() <= divergence_rate, f"{diverging.sum()} divergences"
    table = res.summary()
    chains = diverging.shape[0]
    assert table["r_hat"].max() < rhat, table["r_hat"].idxmax()
    assert table["ess_bulk"].min() > ess_per_chain * chains, table["ess_bulk"].idxmin()


@pytest.fixture(scope="session")
def sampled_well():
    """``sampled_well(res, ...)``: :func:`check_sampled_well`."""
    return check_sampled_well


def mc_agreement(a, b, k):
    """``|mean(a) - mean(b)|`` per entry and ``k`` Monte Carlo standard errors of that
    difference, for (chain, draw, ...) draws of one quantity from two fits: each mean's
    MCSE is sd / sqrt(bulk ESS)."""
    from hiermodels.numerics.diagnostics import ess_bulk

    def mcse(draws):
        flat = np.moveaxis(draws.reshape(*draws.shape[:2], -1), -1, 0)
        return flat.std(axis=(1, 2), ddof=1) / np.sqrt(ess_bulk(flat))

    diff = np.abs(a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))).ravel()
    return diff, k * np.hypot(mcse(a), mcse(b))


@pytest.fixture(scope="session")
def agreement():
    """``agreement(a, b, k) -> (diff, bound)``: :func:`mc_agreement`."""
    return mc_agreement


@pytest.fixture(scope="module")
def dask_client():
    """A ``distributed.Client`` of a real LocalCluster: two worker processes, one thread
    each; closed after the module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
