"""Radon, varying intercept + slope: hiermodels vs the same model written directly in PyMC.

Writes ``benchmarks/results/radon.json``: wall time with and without compilation, ESS per
second of the slowest population parameter, divergences. Each model is fitted cold three times, each
in a fresh process of its own (so neither pays for the other's imports and numba warm-up), then
warm in this process with ten seeds, alternating which goes first. The ESS of the slowest
parameter (a group SD near zero) is noisy from seed to seed, so the summary compares medians
and the ESS pooled over all seeds (total ESS / total time).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_radon.py``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

import hiermodels as hm

DRAWS, TUNE, CHAINS = 1000, 1000, 4
SEEDS = tuple(range(1, 11))
COLD_REPEATS = 3
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


def record(label, run, seed, watched=WATCHED):
    """Time ``run(seed)`` and report the bulk ESS of the slowest of ``watched``."""
    start = time.perf_counter()
    idata = run(seed)
    wall = time.perf_counter() - start
    posterior = idata["posterior"]
    sampling = float(posterior.attrs.get("sampling_time", np.nan))
    ess = az.ess(posterior.to_dataset()[watched], method="bulk")
    slowest = min(watched, key=lambda k: float(ess[k]))
    result = {
        "model": label,
        "seed": seed,
        "wall_s": round(wall, 3),
        "sampling_s": round(sampling, 3),
        "compile_and_overhead_s": round(wall - sampling, 3),
        "slowest_parameter": slowest,
        "min_ess_bulk": round(float(ess[slowest]), 1),
        "ess_per_s_sampling": round(float(ess[slowest]) / sampling, 1),
        "ess_per_s_wall": round(float(ess[slowest]) / wall, 1),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "means": {k: round(float(posterior[k].mean()), 4) for k in watched},
    }
    print(json.dumps(result))
    return result


def runners():
    """label -> function(seed) returning the DataTree of one fit."""
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

    return {"hiermodels": via_hiermodels, "pymc_handwritten": via_pymc}


def cold(label):
    """One fit in a fresh interpreter: imports, graph compilation and sampling."""
    out = subprocess.run(
        [sys.executable, __file__, "--cold", label],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    models = runners()
    runs = []
    for i in range(COLD_REPEATS):  # a single cold run varies by a second or more
        order = list(models) if i % 2 == 0 else list(models)[::-1]
        runs += [{"phase": "cold", "seed": SEEDS[0], **cold(label)} for label in order]
    for i, seed in enumerate(SEEDS):
        order = list(models) if i % 2 == 0 else list(models)[::-1]
        for label in order:
            runs.append({"phase": "warm", "seed": seed, **record(label, models[label], seed)})

    def median(label, key, phase="warm"):
        values = [r[key] for r in runs if r["model"] == label and r["phase"] == phase]
        return float(np.median(values))

    def pooled(label, time_key):
        warm = [r for r in runs if r["model"] == label and r["phase"] == "warm"]
        return sum(r["min_ess_bulk"] for r in warm) / sum(r[time_key] for r in warm)

    summary = {}
    for key in ("wall_s", "sampling_s", "ess_per_s_sampling", "ess_per_s_wall"):
        ours, theirs = median("hiermodels", key), median("pymc_handwritten", key)
        summary[f"median_warm_{key}"] = {"hiermodels": ours, "pymc_handwritten": theirs}
        summary[f"ratio_hiermodels_over_pymc_{key}"] = round(ours / theirs, 3)
    for key in ("sampling_s", "wall_s"):
        ours, theirs = pooled("hiermodels", key), pooled("pymc_handwritten", key)
        summary[f"pooled_ess_per_{key}"] = {
            "hiermodels": round(ours, 1),
            "pymc_handwritten": round(theirs, 1),
        }
        summary[f"ratio_hiermodels_over_pymc_pooled_ess_per_{key}"] = round(ours / theirs, 3)
    summary["cold_wall_s"] = {label: median(label, "wall_s", "cold") for label in models}
    summary["ratio_hiermodels_over_pymc_cold_wall_s"] = round(
        summary["cold_wall_s"]["hiermodels"] / summary["cold_wall_s"]["pymc_handwritten"], 3
    )
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
    if len(sys.argv) == 3 and sys.argv[1] == "--cold":
        record(sys.argv[2], runners()[sys.argv[2]], SEEDS[0])
    else:
        main()
