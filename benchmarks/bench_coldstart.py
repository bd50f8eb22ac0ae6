"""Cold start (issue 17): radon varying intercept + slope, each fit in a fresh process.

Writes ``benchmarks/results/coldstart.json``. Four ways to fit
``log_radon ~ floor + (floor | county)`` with nutpie, 4 chains x (1000 tune + 1000 draws),
seed 1, each run ``REPEATS`` times in fresh interpreters, taking turns (so a burst of load
from the other users of the machine does not fall on one of them only):

- ``hiermodels_full``: ``hm.fit_hierarchical(..., engine="full")`` and
  ``hiermodels_marginal``: ``engine="marginal"``, both with the on-disk cache of compiled
  callbacks (:mod:`hiermodels.engines.diskcache`) in a directory of this run: the first
  process of each fills it (``..._first``, cache cold), later ones load from it;
- ``hiermodels_full_nocache``, ``hiermodels_marginal_nocache``: ``HIERMODELS_CACHE_DIR=off``;
- ``pymc_nutpie``: the model written by hand in PyMC (``bench_radon.handwritten``);
- ``bambi``: bambi 0.21 (``inference_method="nutpie"``), run with the interpreter named by
  ``BAMBI_PYTHON`` (a separate venv: bambi is no dependency of hiermodels); skipped with a
  note when it is not set.

Each child reports its wall time from interpreter start (``process_wall_s`` as the parent
saw it), import time, fit time, which of scipy.stats, matplotlib and arviz_plots the fit
loaded, the minimum bulk ESS over the population parameters
(``Intercept, floor, sigma`` and the two group SDs; bambi's ``1|county_sigma`` is our
``Intercept|county_sigma``), its peak RSS (``ru_maxrss``) and the load average. Also a
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


def run_one(label: str) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    fits = {
        "hiermodels_full": lambda: fit_hiermodels("full"),
        "hiermodels_marginal": lambda: fit_hiermodels("marginal"),
        "pymc_nutpie": fit_pymc,
        "bambi": fit_bambi,
    }
    imported, posterior, names, extra = fits[label]()
    fitted = time.perf_counter() - T0
    # heavy modules the fit itself loaded (before this function imports ArviZ for the ESS)
    loaded = [m for m in ("scipy.stats", "matplotlib", "arviz_plots") if m in sys.modules]
    import arviz as az

    post = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    watched = [names.get(k, k) for k in POPULATION]
    ess = az.ess(post[watched], method="bulk")
    values = {k: float(ess[names.get(k, k)]) for k in POPULATION}
    slowest = min(values, key=values.get)
    return {
        "import_s": round(imported, 2),
        "fit_s": round(fitted - imported, 2),
        "in_process_s": round(fitted, 2),
        "min_ess_bulk": round(values[slowest], 1),
        "slowest": slowest,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "heavy_modules_loaded": loaded,
        **extra,
    }


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
    child = "bambi" if label == "bambi" else label.removesuffix("_nocache")
    start = time.perf_counter()
    done = subprocess.run(
        [python, __file__, "--run", child], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode:
        return {"label": label, "error": done.stderr.strip().splitlines()[-3:]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"label": label, "process_wall_s": round(wall, 2), **out, "load": os.getloadavg()}


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
        ref = table["bambi"]
        for row in table.values():
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
    base = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        cached = {**base, "HIERMODELS_CACHE_DIR": str(Path(tmp) / "cache")}
        off = {**base, "HIERMODELS_CACHE_DIR": "off"}
        plan = [
            ("hiermodels_full", sys.executable, cached),
            ("hiermodels_marginal", sys.executable, cached),
            ("hiermodels_full_nocache", sys.executable, off),
            ("hiermodels_marginal_nocache", sys.executable, off),
            ("pymc_nutpie", sys.executable, base),
        ]
        if bambi:
            plan.append(("bambi", bambi, base))
        # the first process of each engine fills the (empty) cache of this run
        runs = [
            {**fresh(engine, sys.executable, cached), "label": f"{engine}_first"}
            for engine in ("hiermodels_marginal", "hiermodels_full")
        ]
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
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        print(json.dumps(run_one(sys.argv[2])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--refit":
        print(json.dumps(refit(sys.argv[2])))
    else:
        main()
