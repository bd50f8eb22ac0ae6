"""No spurious warnings: importing hiermodels (and PyMC after it) and a default fit on clean
data run under ``-W error`` (issue 13). PyTensor's "could not link to a BLAS" warning is
resolved by linking the OpenBLAS of the ``cmeel-openblas`` wheel (hiermodels._blas)."""

import os
import subprocess
import sys

import pytest


def _run(code, **env):
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg", **env},
        timeout=600,
    )


def test_import_warns_nothing_and_links_a_blas():
    out = _run(
        "import hiermodels as hm, pymc, pytensor; print(pytensor.config.blas__ldflags)",
    )
    assert out.returncode == 0, out.stderr
    assert "-lopenblas" in out.stdout


def test_pymc_imported_before_hiermodels_warns_nothing_either():
    out = _run(
        "import pymc, pytensor, hiermodels, numpy as np, pytensor.tensor as pt; "
        "m = pt.matrix('m'); print(pytensor.function([m], m @ m)(np.eye(2)).sum()); "
        "print(pytensor.config.blas__ldflags)",
    )
    assert out.returncode == 0, out.stderr
    assert "-lopenblas" in out.stdout


def test_the_users_blas_setting_wins():
    out = _run(
        "import hiermodels, pytensor; print(pytensor.config.blas__ldflags)",
        PYTENSOR_FLAGS="blas__ldflags=-lmyblas",
    )
    assert out.stdout.strip() == "-lmyblas", out.stderr


@pytest.mark.slow
def test_default_fit_on_clean_data_warns_nothing(seed):
    code = f"""
import warnings
import numpy as np, pandas as pd, hiermodels as hm
# a divergence now and then is chance, and worth its warning: not what this test is about
warnings.filterwarnings("ignore", category=hm.ConvergenceWarning)
rng = np.random.default_rng({seed(31)})
g = np.repeat(np.arange(12), 15)
df = pd.DataFrame({{"g": [f"g{{j}}" for j in g], "x": rng.normal(size=g.size)}})
df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.7, 12)[g] + rng.normal(size=g.size)
res = hm.fit_hierarchical(df, "y ~ x + (1 | g)", random_seed={seed(32)})
print(res.summary().loc["x", "mean"])
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0.2 < float(out.stdout.strip().splitlines()[-1]) < 0.8
