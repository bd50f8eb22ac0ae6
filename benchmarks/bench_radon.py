"""Radon, varying intercept + slope: hiermodels vs the same model written directly in PyMC.

Writes ``benchmarks/results/radon.json``: wall time with and without compilation, ESS per
second of the slowest population parameter, divergences. Each model is fitted once cold,
then warm with three seeds (ESS of one run is noisy); the summary compares medians.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_radon.py``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

import hiermodels as hm

DRAWS, TUNE, CHAINS = 1000, 1000, 4
SEEDS = (1, 2, 3)
WATCHED = ["Intercept", "floor", "sigma", "Intercept|county_sigma", "floor|county_sigma"]
OUT = Path(__file__).parent / "results" / "radon.json"


def handwritten(radon):
    """The model a PyMC user would write: LKJCholeskyCov, non-centered, same priors."""
    county, levels = radon["county"].factorize(sort=True)
    floor = radon["floor"].to_numpy(float)
    y = radon["log_radon"].to_numpy(float)
    sd_y, sd_x = y.std(ddof=1), floor.std()
    spread = np.hypot(2.5 * sd_y, 2.5 * sd_y * floor.mean() / sd_x)
    with pm.Model(coords={"county": levels, "term": ["Intercept", "floor"]}) as model:
        a = pm.Normal("Intercept", y.mean(), spread)
        b = pm.Normal("floor", 0, 2.5 * sd_y / sd_x)
        chol, _, sds = pm.LKJCholeskyCov(
            "chol", n=2, eta=2.0, sd_dist=pm.HalfCauchy.dist(beta=np.array([sd_y, sd_y / sd_x]))
        )
        pm.Deterministic("Intercept|county_sigma", sds[0])
        pm.Deterministic("floor|county_sigma", sds[1])
        z = pm.Normal("z", 0, 1, dims=("county", "term"))
        dev = z @ chol.T
        sigma = pm.Exponential("sigma", lam=1 / sd_y)
        mu = a + dev[county, 0] + (b + dev[county, 1]) * floor
        pm.Normal("log_radon", mu, sigma, observed=y)
    return model


def record(label, run, seed):
    start = time.perf_counter()
    idata = run(seed)
    wall = time.perf_counter() - start
    posterior = idata["posterior"]
    sampling = float(posterior.attrs.get("sampling_time", np.nan))
    ess = az.ess(posterior.to_dataset()[WATCHED], method="bulk")
    slowest = min(WATCHED, key=lambda k: float(ess[k]))
    result = {
        "model": label,
        "wall_s": round(wall, 3),
        "sampling_s": round(sampling, 3),
        "compile_and_overhead_s": round(wall - sampling, 3),
        "slowest_parameter": slowest,
        "min_ess_bulk": round(float(ess[slowest]), 1),
        "ess_per_s_sampling": round(float(ess[slowest]) / sampling, 1),
        "ess_per_s_wall": round(float(ess[slowest]) / wall, 1),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "means": {k: round(float(posterior[k].mean()), 4) for k in WATCHED},
    }
    print(json.dumps(result))
    return result


def main():
    radon = hm.datasets.load("radon")
    kwargs = {"draws": DRAWS, "tune": TUNE, "chains": CHAINS}

    def via_hiermodels(seed):
        return hm.fit_hierarchical(
            radon,
            y="log_radon",
            group="county",
            predictors=["floor"],
            varying=["floor"],
            random_seed=seed,
            **kwargs,
        ).idata

    def via_pymc(seed):
        with handwritten(radon):
            return pm.sample(
                nuts_sampler="nutpie",
                progressbar=False,
                compute_convergence_checks=False,
                random_seed=seed,
                **kwargs,
            )

    models = (("hiermodels", via_hiermodels), ("pymc_handwritten", via_pymc))
    runs = []
    for label, fn in models:
        runs.append({"phase": "cold", "seed": SEEDS[0], **record(label, fn, SEEDS[0])})
    for seed in SEEDS:
        for label, fn in models:
            runs.append({"phase": "warm", "seed": seed, **record(label, fn, seed)})

    def median(label, key, phase="warm"):
        values = [r[key] for r in runs if r["model"] == label and r["phase"] == phase]
        return float(np.median(values))

    summary = {}
    for key in ("wall_s", "sampling_s", "ess_per_s_sampling", "ess_per_s_wall"):
        ours, theirs = median("hiermodels", key), median("pymc_handwritten", key)
        summary[f"median_warm_{key}"] = {"hiermodels": ours, "pymc_handwritten": theirs}
        summary[f"ratio_hiermodels_over_pymc_{key}"] = round(ours / theirs, 3)
    summary["cold_wall_s"] = {label: median(label, "wall_s", "cold") for label, _ in models}
    OUT.parent.mkdir(exist_ok=True)
    payload = {
        "benchmark": "radon varying intercept + slope (correlated), nutpie, "
        f"{CHAINS} chains x {DRAWS} draws + {TUNE} tune",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "versions": {"hiermodels": hm.__version__, "pymc": pm.__version__},
        "runs": runs,
        "summary": summary,
    }
    OUT.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
