"""Simulation-based calibration of the engines (``hm.calibrate``, Talts et al. 2018).

* The exact meta-analysis engine on two real designs, 1000 simulated data sets each: eight
  schools (8 studies, se 9-18; mu ~ Normal(0, 20), the default half-Cauchy on tau) and BCG
  (13 trials, log risk ratios; mu ~ Normal(0, 2), ``half_normal_logor``).
* The MCMC engine, non-centered and centered, on a small design (8 groups x 5 rows,
  ``y ~ 1 + (1 | g)``), as many simulated data sets as fit in about ten minutes (2 chains x
  250 draws after 250 tuning steps per refit; each refit compiles its model).

Per parameter: the chi-square and ECDF uniformity p-values of the ranks and the coverage of
the central 50/80/90/95% intervals. Writes ``benchmarks/results/calibration.json``.

Run: ``make calibrate`` or ``.venv/bin/python benchmarks/bench_calibration.py``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hiermodels as hm

EXACT_SIMS = 1000
MCMC_SIMS = int(os.environ.get("CALIBRATION_MCMC_SIMS", "40"))  # per parameterization
OUT = Path(__file__).parent / "results" / "calibration.json"


def small_design(groups=8, per_group=5, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    return pd.DataFrame({"y": rng.normal(size=g.size), "g": [f"g{j}" for j in g]})


def record(cal: hm.calibration.Calibration, seconds: float, **extra) -> dict:
    out = cal.to_dict()
    out["seconds"] = round(seconds, 1)
    out["min_ecdf_p"] = float(cal.uniformity()["ecdf_p"].min())
    out["min_chi2_p"] = float(cal.uniformity()["chi2_p"].min())
    out.update(extra)
    return out


def main():
    results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    schools = hm.datasets.load("eight_schools")
    bcg = hm.effect_sizes_2x2(hm.datasets.load("bcg"), ai="tpos", bi="tneg", ci="cpos", di="cneg")
    metas = {
        "exact_eight_schools": dict(
            data=schools, estimate="y", se="sigma", study="school",
            mu_prior=hm.priors.Normal(0, 20),
        ),
        "exact_bcg": dict(
            data=bcg, estimate="yi", se="sei", study="trial",
            mu_prior=hm.priors.Normal(0, 2), hyperprior="half_normal_logor",
        ),
    }  # fmt: skip
    for name, args in metas.items():
        start = time.perf_counter()
        cal = hm.calibrate(args, EXACT_SIMS, random_seed=2018)
        results[name] = record(cal, time.perf_counter() - start, draws_per_refit=cal.n_values - 1)
        print(name, cal, flush=True)
        OUT.write_text(json.dumps(results, indent=2))
    df = small_design()
    for kind in ("noncentered", "centered"):
        model = hm.HierarchicalModel(df, "y ~ 1 + (1 | g)", parameterization=kind)
        start = time.perf_counter()
        cal = hm.calibrate(
            model, MCMC_SIMS, draws=250, tune=250, chains=2, random_seed=2018, n_jobs=1
        )
        results[f"mcmc_{kind}"] = record(
            cal,
            time.perf_counter() - start,
            design="8 groups x 5 rows, y ~ 1 + (1 | g)",
            draws="2 chains x 250 (+250 tuning), ranks among 199 thinned draws",
            divergent_refits=sum("divergent" in m for m in cal.diagnostics),
        )
        print(kind, cal, flush=True)
        OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
