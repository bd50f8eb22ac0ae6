"""The on-disk cache of nutpie's compiled callbacks (hiermodels.engines.diskcache, issue 17).

The key must change with anything compiled into the callbacks and must not change with the
values of ``pm.Data``; a later process must load what an earlier one stored and sample the
same draws; a damaged entry must be compiled again, never used.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pymc as pm
import pytest

from hiermodels.engines import diskcache, nutpie_support


def _model(y, prior_sd=10.0, data=True):
    with pm.Model() as model:
        values = pm.Data("y", y) if data else np.asarray(y)
        mu = pm.Normal("mu", 0.0, prior_sd)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("obs", mu, sigma, observed=values)
    return model


def test_key_ignores_data_values_but_not_structure_or_constants():
    key, shared = diskcache.fingerprint(_model([1.0, 2.0, 3.0]))
    assert set(shared) == {"y"}
    assert diskcache.fingerprint(_model([5.0, -1.0, 0.5, 7.0]))[0] == key  # new data
    assert diskcache.fingerprint(_model([1.0, 2.0, 3.0], prior_sd=5.0))[0] != key  # a constant
    # data compiled in as constants are part of the key
    constant = diskcache.fingerprint(_model([1.0, 2.0, 3.0], data=False))[0]
    assert constant != key
    assert diskcache.fingerprint(_model([1.0, 2.0, 4.0], data=False))[0] != constant


def test_unnamed_or_duplicate_shared_variables_are_not_cached():
    import pytensor

    with pm.Model() as model:
        scale = pytensor.shared(np.float64(2.0))  # no name: with_data could not find it
        pm.Normal("mu", 0.0, scale)
    assert diskcache.fingerprint(model) is None


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(diskcache.ENV_DIR, str(tmp_path))
    assert diskcache.cache_dir().parent == tmp_path
    monkeypatch.setenv(diskcache.ENV_DIR, "off")
    assert diskcache.cache_dir() is None
    monkeypatch.delenv(diskcache.ENV_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert diskcache.cache_dir().parent == tmp_path / "xdg" / "hiermodels"


_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, nutpie, pymc as pm
from hiermodels.engines import diskcache
seed, shift = int(sys.argv[1]), float(sys.argv[2])
y = np.random.default_rng(seed).normal(3.0 + shift, 1.5, size=40)
with pm.Model() as model:
    data = pm.Data("y", y)
    mu = pm.Normal("mu", 0.0, 10.0)
    sigma = pm.HalfNormal("sigma", 2.0)
    pm.Normal("obs", mu, sigma, observed=data)
compiled = diskcache.compile_pymc_model(model)
idata = nutpie.sample(compiled, draws=300, tune=300, chains=2, seed=seed, progress_bar=False)
post = idata.posterior
print(json.dumps({"outcome": diskcache.last_outcome(), "ybar": float(y.mean()),
                  "start": compiled.initial_point_func(seed).tolist(),
                  "se": float(y.std() / np.sqrt(len(y))),
                  "mu": np.asarray(post["mu"]).ravel().tolist(),
                  "sigma": float(post["sigma"].mean())}))
"""


def _run(tmp_path, seed, shift=0.0):
    env = {**os.environ, diskcache.ENV_DIR: str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(seed), str(shift)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_posterior(out):
    """mu's posterior mean is ybar to within 5 standard errors of the Monte Carlo (600 draws,
    ESS at least ~100) plus the prior's pull (prior sd 10 against se ~0.24: negligible)."""
    mu = np.asarray(out["mu"])
    assert abs(mu.mean() - out["ybar"]) < 5 * out["se"] / np.sqrt(100) + 0.05
    assert 0.8 < out["sigma"] < 2.6  # generated with sd 1.5 from 40 rows


@pytest.mark.slow
def test_a_second_process_loads_the_callbacks_and_samples_the_same_draws(tmp_path, seed):
    s = seed(11)
    first = _run(tmp_path, s)
    assert first["outcome"] == "stored"
    assert list(diskcache_files(tmp_path, "json"))
    second = _run(tmp_path, s)
    assert second["outcome"] == "hit"
    # the chains start where a fresh compilation starts them; the draws are not compared one
    # by one (a last-bit difference between compiled and loaded code changes the trajectory)
    assert second["start"] == first["start"]
    _check_posterior(first)
    _check_posterior(second)
    # new data of the same structure: still a hit, and the posterior moves with the data
    moved = _run(tmp_path, s, shift=5.0)
    assert moved["outcome"] == "hit"
    _check_posterior(moved)
    assert np.mean(moved["mu"]) > np.mean(first["mu"]) + 3


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["callbacks", "metadata"])
def test_a_damaged_entry_is_compiled_again(tmp_path, seed, damage):
    s = seed(12)
    assert _run(tmp_path, s)["outcome"] == "stored"
    suffixes = ("nbc", "nbi") if damage == "callbacks" else ("json",)
    damaged = [p for suffix in suffixes for p in diskcache_files(tmp_path, suffix)]
    assert damaged
    for path in damaged:
        path.write_bytes(b"not what was stored")
    again = _run(tmp_path, s)
    assert again["outcome"] == "stored"  # compiled and stored anew, not loaded
    _check_posterior(again)
    assert _run(tmp_path, s)["outcome"] == "hit"  # the new entry is sound


def diskcache_files(root, suffix):
    return sorted(root.rglob(f"*.{suffix}"))


def test_jittered_start_is_the_support_point_plus_seeded_uniform_jitter():
    # nutpie's compile_pymc_model jitters every coordinate by U(-1, 1), seeded per chain
    point = [0.5, -3.0, 100.0]
    start = nutpie_support.jittered_start(point)
    draws = np.array([start(seed) for seed in range(200)]) - point
    assert np.all(np.abs(draws) <= 1.0)
    assert abs(draws.mean()) < 0.1 and draws.std() == pytest.approx(1 / np.sqrt(3), abs=0.05)
    np.testing.assert_array_equal(start(7), nutpie_support.jittered_start(point)(7))
    assert not np.array_equal(start(7), start(8))


def test_nutpie_loads_without_arviz_and_arviz_stays_real():
    # nutpie's `import arviz` costs ~1 s (matplotlib, scipy.stats) in a fresh process; it is
    # answered by a stand-in with the two functions nutpie uses, which must not leak
    code = textwrap.dedent(
        """
        import sys
        import arviz_base
        from hiermodels.engines.nutpie_support import load_nutpie
        nutpie = load_nutpie()
        assert "arviz" not in sys.modules
        stand_in = sys.modules["nutpie.sample"].arviz
        assert stand_in.from_dict is arviz_base.from_dict
        assert stand_in.dict_to_dataset is arviz_base.dict_to_dataset
        assert callable(stand_in.summary)  # any other name: the real ArviZ, imported then
        import arviz
        assert arviz is not stand_in and hasattr(arviz, "plot_forest")
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


_NO_C_SCRIPT = """
import json, pathlib, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pymc as pm
from hiermodels.engines import diskcache, nutpie_support
rng = np.random.default_rng(int(sys.argv[1]))
with pm.Model() as model:
    data = pm.Data("y", rng.normal(size=(30, 2)))
    chol, _, _ = pm.LKJCholeskyCov("chol", n=2, eta=2.0, sd_dist=pm.Exponential.dist(1.0))
    pm.MvNormal("obs", mu=0.0, chol=chol, observed=data)
compiled = diskcache.compile_pymc_model(model)
names = compiled.shape_info[0][: len(model.free_RVs)]
ours = nutpie_support.support_point(model, names)()
built = sorted(str(p.parent.name) for p in pathlib.Path(sys.argv[2]).rglob("mod.cpp"))
from pymc.initial_point import make_initial_point_fn
point = make_initial_point_fn(model=model, default_strategy="support_point", jitter_rvs=set(),
                              return_transformed=True)(0)
print(json.dumps({"outcome": diskcache.last_outcome(), "built": built, "ours": ours,
    "pymc": np.concatenate([np.ravel(point[n]) for n in names]).tolist()}))
"""


@pytest.mark.slow
def test_a_first_process_compiles_no_c_beside_the_numba_callbacks(tmp_path, seed):
    """The LKJ factor's support point and traced shapes hold a Scan whose inner function
    PyTensor compiles to C (~6 s of a machine's first process, PyTensor's compile directory
    empty): built without C they give PyMC's values, and no C module is compiled."""
    compiledir = tmp_path / "pytensor"
    flags = f"{os.environ.get('PYTENSOR_FLAGS', '')},compiledir={compiledir}".lstrip(",")
    env = {**os.environ, diskcache.ENV_DIR: str(tmp_path / "cache"), "PYTENSOR_FLAGS": flags}
    done = subprocess.run(
        [sys.executable, "-c", _NO_C_SCRIPT, str(seed(13)), str(compiledir)],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["outcome"] == "stored"
    assert out["built"] == []  # before PyMC's own point function below compiles its C
    np.testing.assert_array_equal(out["ours"], out["pymc"])
