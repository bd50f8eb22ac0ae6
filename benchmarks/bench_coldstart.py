"""Cold start (issue 17): radon varying intercept + slope, each fit in a fresh process.

Writes ``benchmarks/results/coldstart.json``. Four ways to fit
``log_radon ~ floor + (floor | county)`` with nutpie, 4 chains x (1000 tune + 1000 draws),
seed 1, each run ``REPEATS`` times in fresh interpreters, taking turns (so a burst of load
from the other users of the machine does not fall on one of them only):

- ``hiermodels_full``: ``hm.fit_hierarchical(..., engine="full")`` and
  ``hiermodels_marginal``: ``engine="marginal"``, both with the on-disk cache of compiled
  callbacks (:mod:`hiermodels.engines.diskcache`) in a directory of this run;
- ``hiermodels_full_nocache``, ``hiermodels_marginal_nocache``: ``HIERMODELS_CACHE_DIR=off``;
- ``pymc_nutpie``: the model written by hand in PyMC (``bench_radon.handwritten``);
- ``bambi``: bambi 0.21 (``inference_method="nutpie"``), run with the interpreter named by
  ``BAMBI_PYTHON`` (a separate venv: bambi is no dependency of hiermodels); skipped with a
  note when it is not set.

As on a new machine, every cache starts empty: each library gets its own PyTensor compile
directory of this run (bambi and ``pm.sample`` compile C code for the initial point), and
hiermodels its own compile cache. The first process of each (``..._first``) fills them and
is compared with bambi's first; later processes (the everyday case) with bambi's later ones.

Each child reports its wall time from interpreter start to exit (``process_wall_s`` as the
parent saw it), import time, fit time, which of scipy.stats, matplotlib, arviz_plots and
arviz the fit loaded and its peak RSS (``ru_maxrss``), and saves the draws of the
population parameters (``Intercept, floor, sigma`` and the two group SDs; bambi's
``1|county_sigma`` is our ``Intercept|county_sigma``); the parent computes their minimum bulk
ESS, so that the child's time is the fit's alone. The children run as without hiermodels'
optional dask extra (``HIDDEN``), as bambi's venv is and a plain install would be. Also a
refit of the same structure with new data in one process (the marginal engine's in-process
cache, issue 17's ">= 3x faster than the first fit").

Run: ``BAMBI_PYTHON=/work/bambi-venv/bin/python .venv/bin/python benchmarks/bench_coldstart.py``
(about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "coldstart.json"
RADON = HERE.parent / "hiermodels" / "data" / "radon.csv"
FORMULA = "log_radon ~ floor + (floor | county)"
DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 1
REPEATS = 3
POPULATION = ["Intercept", "floor", "sigma", "Intercept|county_sigma", "floor|county_sigma"]
BAMBI_NAMES = {"Intercept|county_sigma": "1|county_sigma"}
# packages the child runs without: the dev venv has hiermodels' optional dask extra, which
# xarray imports whenever it builds an array (0.37 s) once it is installed; bambi's venv has
# no dask, and ``pip install hiermodels`` does not install it
HIDE = "BENCH_HIDE_PACKAGES"
HIDDEN = "dask,distributed"


# -- one fit, in this (fresh) process ------------------------------------------------------------
def fit_hiermodels(engine: str):
    import hiermodels as hm

    radon = hm.datasets.load("radon")
    imported = time.perf_counter() - T0
    result = hm.fit_hierarchical(
        radon, FORMULA, engine=engine, draws=DRAWS, tune=TUNE, chains=CHAINS,
        random_seed=SEED, progressbar=False,
    )  # fmt: skip
    extra = {}
    from hiermodels.engines import diskcache

    extra["disk_cache"] = diskcache.last_outcome()
    return imported, result.idata["posterior"], {}, extra


def fit_pymc():
    import pandas as pd
    import pymc as pm

    sys.path.insert(0, str(HERE))
    from bench_radon import handwritten

    radon = pd.read_csv(RADON, dtype={"county": str})
    imported = time.perf_counter() - T0
    with handwritten(radon):
        idata = pm.sample(
            draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=SEED, nuts_sampler="nutpie",
            progressbar=False, compute_convergence_checks=False,
        )  # fmt: skip
    return imported, idata["posterior"], {}, {}


def fit_bambi():
    import bambi as bmb
    import pandas as pd

    radon = pd.read_csv(RADON, dtype={"county": str})
    imported = time.perf_counter() - T0
    model = bmb.Model(FORMULA, radon)
    idata = model.fit(
        draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=SEED, inference_method="nutpie",
        progressbar=False,
    )  # fmt: skip
    posterior = idata.posterior if hasattr(idata, "posterior") else idata["posterior"]
    return imported, posterior, BAMBI_NAMES, {"bambi": bmb.__version__}


def run_one(label: str, draws_file: str) -> dict:
    """Fit in this fresh process and save the population parameters' draws to ``draws_file``
    (the parent computes their ESS: importing ArviZ here would charge ~1.2 s to a process
    that does not otherwise load it, and nothing to bambi, which does)."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    fits = {
        "hiermodels_full": lambda: fit_hiermodels("full"),
        "hiermodels_marginal": lambda: fit_hiermodels("marginal"),
        "pymc_nutpie": fit_pymc,
        "bambi": fit_bambi,
    }
    imported, posterior, names, extra = fits[label]()
    fitted = time.perf_counter() - T0
    # heavy modules the fit itself loaded
    loaded = [m for m in ("scipy.stats", "matplotlib", "arviz_plots", "arviz") if m in sys.modules]
    np.savez(draws_file, **{k: np.asarray(posterior[names.get(k, k)]) for k in POPULATION})
    return {
        "import_s": round(imported, 2),
        "fit_s": round(fitted - imported, 2),
        "in_process_s": round(fitted, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "heavy_modules_loaded": loaded,
        **extra,
    }


def min_ess(draws_file: str) -> tuple[float, str]:
    """The smallest bulk ESS over the population parameters of a child's saved draws."""
    import arviz as az
    import numpy as np
    import xarray as xr

    with np.load(draws_file) as saved:
        post = xr.Dataset({k: (("chain", "draw"), saved[k]) for k in POPULATION})
    ess = az.ess(post, method="bulk")
    values = {k: float(ess[k]) for k in POPULATION}
    slowest = min(values, key=values.get)
    return round(values[slowest], 1), slowest


def refit(cache: str) -> dict:
    """First fit, then the same structure with new data (a bootstrap of the rows within each
    county, so the counties stay), in one process: the marginal engine's in-process reuse."""
    import warnings

    import numpy as np

    import hiermodels as hm
    from hiermodels.engines import diskcache

    warnings.simplefilter("ignore")
    radon = hm.datasets.load("radon")
    kwargs = dict(draws=DRAWS, tune=TUNE, chains=CHAINS, progressbar=False, engine="marginal")
    start = time.perf_counter()
    hm.fit_hierarchical(radon, FORMULA, random_seed=SEED, **kwargs)
    first = time.perf_counter() - start
    outcome = diskcache.last_outcome()
    rng = np.random.default_rng(7)
    resampled = radon.groupby("county", group_keys=False).sample(frac=1.0, replace=True)
    resampled = resampled.assign(
        log_radon=resampled["log_radon"] + rng.normal(0, 0.1, len(resampled))
    )
    start = time.perf_counter()
    hm.fit_hierarchical(resampled, FORMULA, random_seed=SEED + 1, **kwargs)
    second = time.perf_counter() - start
    return {
        "disk_cache": cache,
        "first_fit_disk_cache": outcome,
        "first_fit_s": round(first, 2),
        "refit_new_data_s": round(second, 2),
        "ratio_first_over_refit": round(first / second, 2),
    }


# -- the parent: fresh processes, taking turns ---------------------------------------------------
def fresh(label: str, python: str, env: dict) -> dict:
    child = label.removesuffix("_nocache")
    with tempfile.TemporaryDirectory() as tmp:
        draws = str(Path(tmp) / "draws.npz")
        start = time.perf_counter()
        done = subprocess.run(
            [python, __file__, "--run", child, draws], capture_output=True, text=True, env=env,
            check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode:
            return {"label": label, "error": done.stderr.strip().splitlines()[-3:]}
        out = json.loads(done.stdout.strip().splitlines()[-1])
        ess, slowest = min_ess(draws)
    return {
        "label": label, "process_wall_s": round(wall, 2), **out, "min_ess_bulk": ess,
        "slowest": slowest, "load": os.getloadavg(),
    }  # fmt: skip


def summarize(runs: list[dict]) -> dict:
    import numpy as np

    table = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label and "error" not in r]
        if not mine:
            continue
        walls = [r["process_wall_s"] for r in mine]
        table[label] = {
            "runs": len(mine),
            "process_wall_s": {
                "min": min(walls),
                "median": float(np.median(walls)),
                "max": max(walls),
            },
            "import_s_median": float(np.median([r["import_s"] for r in mine])),
            "fit_s_median": float(np.median([r["fit_s"] for r in mine])),
            "min_ess_bulk_min": min(r["min_ess_bulk"] for r in mine),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in mine),
        }
    if "bambi" in table:
        for label, row in table.items():
            # a first process (empty caches) against bambi's first, a later one against later
            first = label.endswith("_first") and "bambi_first" in table
            ref = table["bambi_first" if first else "bambi"]
            row["wall_ratio_bambi_over_this"] = round(
                ref["process_wall_s"]["median"] / row["process_wall_s"]["median"], 2
            )
            row["ess_ratio_this_over_bambi"] = round(
                row["min_ess_bulk_min"] / ref["min_ess_bulk_min"], 2
            )
            row["rss_ratio_this_over_bambi"] = round(
                row["peak_rss_mb_max"] / ref["peak_rss_mb_max"], 2
            )
    return table


def main():
    bambi = os.environ.get("BAMBI_PYTHON")
    base = {**os.environ, HIDE: HIDDEN}
    with tempfile.TemporaryDirectory() as tmp:
        # as on a new machine: PyTensor's compile directory (bambi and pm.sample use its C
        # code for the initial point) empty at the start of this run, one per library
        def compiledir(name: str) -> dict:
            flags = base.get("PYTENSOR_FLAGS", "")
            flags = f"{flags},compiledir={Path(tmp) / name}".lstrip(",")
            return {**base, "PYTENSOR_FLAGS": flags}

        ours = compiledir("pytensor-hiermodels")
        cached = {**ours, "HIERMODELS_CACHE_DIR": str(Path(tmp) / "cache")}
        off = {**ours, "HIERMODELS_CACHE_DIR": "off"}
        by_hand = compiledir("pytensor-pymc")
        theirs = compiledir("pytensor-bambi")
        plan = [
            ("hiermodels_full", sys.executable, cached),
            ("hiermodels_marginal", sys.executable, cached),
            ("hiermodels_full_nocache", sys.executable, off),
            ("hiermodels_marginal_nocache", sys.executable, off),
            ("pymc_nutpie", sys.executable, by_hand),
        ]
        if bambi:
            plan.append(("bambi", bambi, theirs))
        # the first process of each fills the (empty) caches of this run
        firsts = [(e, sys.executable, cached) for e in ("hiermodels_marginal", "hiermodels_full")]
        firsts.append(("pymc_nutpie", sys.executable, by_hand))
        if bambi:
            firsts.append(("bambi", bambi, theirs))
        runs = []
        for label, python, env in firsts:
            runs.append({**fresh(label, python, env), "label": f"{label}_first"})
            print(json.dumps(runs[-1]), flush=True)
        for i in range(REPEATS):
            for label, python, env in plan if i % 2 == 0 else plan[::-1]:
                runs.append(fresh(label, python, env))
                print(json.dumps(runs[-1]), flush=True)
        refits = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--refit", name], capture_output=True,
                    text=True, env=env, check=True,
                ).stdout.strip().splitlines()[-1]
            )
            for name, env in (("off", off), ("warm", cached))
        ]  # fmt: skip
    payload = {
        "benchmark": f"radon {FORMULA!r}, nutpie, {CHAINS} chains x ({TUNE} tune + {DRAWS} draws), "
        "each fit in a fresh process",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_at_end": os.getloadavg(),
            "note": "2 cores shared with other jobs; see each run's load average",
        },
        "bambi": "skipped: set BAMBI_PYTHON to a venv's python with bambi 0.21 and nutpie"
        if not bambi
        else bambi,
        "summary": summarize(runs),
        "refit_same_structure": refits,
        "runs": runs,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["summary"], indent=2))
    print(json.dumps(refits, indent=2))


if __name__ == "__main__":
    for name in filter(None, os.environ.get(HIDE, "").split(",")):
        sys.modules[name] = None  # as if not installed: import fails, find_spec gives None
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        print(json.dumps(run_one(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--refit":
        print(json.dumps(refit(sys.argv[2])))
    else:
        main()
