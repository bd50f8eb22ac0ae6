"""Shared fixtures: the mocked sampler and small simulated data sets with known truth."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, never to a screen

import numpy as np
import pandas as pd
import pytest
from pymc.testing import mock_sample_setup_and_teardown

import hiermodels as hm

mock_pymc_sample = pytest.fixture(scope="function")(mock_sample_setup_and_teardown)


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
    truth = {
        "Intercept": intercept,
        "x": slope,
        "sigma": sigma,
        "Intercept|g_sigma": tau[0],
        "x|g_sigma": tau[1],
    }
    return df, truth


@pytest.fixture(scope="session")
def simulated():
    # few rows per group and a noisy outcome: the regime where partial pooling matters
    return simulate_grouped(n_per_group=10, sigma=0.8, tau=(0.5, 0.4), seed=0)
