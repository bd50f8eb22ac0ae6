"""The marginal Gaussian engine (issue 17) against the full engine, written to
``benchmarks/results/marginal.json``.

(a) radon, ``log_radon ~ floor + (1 + floor | county)``, 2 x (1000 + 1000): wall time of
    each engine in one process after a warm-up fit (so the marginal engine reuses its
    compiled model and the full engine still compiles), and cold in a fresh process; min
    bulk ESS of the population parameters and ESS per second.
(b) simulated 1e5 rows x 1e3 groups, intercept + slope correlated: the marginal engine end
    to end in a fresh process; the full engine in a fresh process, stopped after
    ``FULL_LIMIT`` seconds.
(c) simulated 1e6 rows x 1e4 groups: the marginal engine end to end in a fresh process, min
    ESS and peak memory (``ru_maxrss``).

Run: ``.venv/bin/python benchmarks/bench_marginal.py`` (about 5 minutes on 2 cores).
One case alone in this process: ``... bench_marginal.py --case radon-marginal``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

T0 = time.perf_counter()

OUT = Path(__file__).parent / "results" / "marginal.json"
FULL_LIMIT = 120  # seconds before a fresh-process full-engine fit is stopped
TRUTH = {"Intercept": 1.0, "x": 0.3, "sigma": 1.0, "tau": (0.5, 0.2), "rho": 0.3}


def simulate(n_rows: int, n_groups: int, seed: int = 20261129):
    """Equal-sized groups, varying intercept and slope with correlation TRUTH['rho']."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t0, t1 = TRUTH["tau"]
    cov = [[t0**2, TRUTH["rho"] * t0 * t1], [TRUTH["rho"] * t0 * t1, t1**2]]
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_groups)
    g = np.arange(n_rows) % n_groups
    x = rng.normal(size=n_rows)
    y = TRUTH["Intercept"] + b[g, 0] + (TRUTH["x"] + b[g, 1]) * x
    y = y + rng.normal(0.0, TRUTH["sigma"], size=n_rows)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def min_ess(result) -> tuple[float, str]:
    table = result.summary()
    return float(table["ess_bulk"].min()), str(table["ess_bulk"].idxmin())


def run_case(case: str, draws: int = 1000, chains: int = 2, seed: int = 1) -> dict:
    """Fit one case in this process; times from the start of the process."""
    import hiermodels as hm
    from hiermodels.engines.compiled import compile_count
    from hiermodels.engines.marginal import fit_marginal
    from hiermodels.results.hierarchical import HierarchicalResult
    from hiermodels.sampling import SamplingOptions

    t_import = time.perf_counter() - T0
    name, engine = case.rsplit("-", 1)
    if name == "radon":
        df, formula = hm.datasets.load("radon"), "log_radon ~ floor + (1 + floor | county)"
    else:
        rows, groups = {"sim1e5": (100_000, 1_000), "sim1e6": (1_000_000, 10_000)}[name]
        df, formula = simulate(rows, groups), "y ~ x + (1 + x | g)"
    out = {"case": case, "import_s": round(t_import, 2), "rows": len(df)}
    out["groups"] = int(df.iloc[:, -1].nunique()) if name != "radon" else 85
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    # the simulations fix the parameterization: "auto" builds a dense rows x (groups * 2)
    # no-pooling design to choose it (149 GiB at 1e6 x 1e4), and the marginal engine has no
    # group effects to parameterize
    kw = {} if name == "radon" else {"parameterization": "noncentered"}
    model = hm.HierarchicalModel(df, formula, **kw)
    if engine == "full":
        result = model.fit(draws, chains=chains, random_seed=seed)
        out["fit_s"] = round(time.perf_counter() - t, 2)
    else:
        data, spec, priors = model.prepared()
        out["prepare_s"] = round(time.perf_counter() - t, 2)
        options = SamplingOptions(draws=draws, chains=chains, random_seed=seed)
        idata, messages = fit_marginal(data, spec, priors, options)
        out["fit_s"] = round(time.perf_counter() - t, 2)
        attrs = idata["posterior"].attrs
        out["sampling_s"] = round(float(attrs["sampling_time"]), 2)
        for k in ("statistics_s", "build_compile_sample_s", "group_effects_s"):
            out[k] = round(float(attrs[f"marginal_{k}"]), 2)
        out["compile_s"] = round(out["build_compile_sample_s"] - out["sampling_s"], 2)
        out["compiles"] = compile_count()
        result = HierarchicalResult(idata, None, data, spec, priors, messages)
    out["min_ess_bulk"], out["min_ess_parameter"] = min_ess(result)
    out["ess_per_s"] = round(out["min_ess_bulk"] / out["fit_s"], 1)
    table = result.summary()
    out["estimates"] = {k: round(float(v), 4) for k, v in table["mean"].items()}
    out["total_s"] = round(time.perf_counter() - T0, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def fresh(case: str, timeout: float | None = None) -> dict:
    """``run_case`` in a fresh interpreter (cold: imports and numba compilation included)."""
    cmd = [sys.executable, __file__, "--case", case]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"case": case, "stopped_after_s": timeout, "finished": False}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(time.perf_counter() - start, 2)
    return out


def radon_in_process() -> dict:
    """Both engines in one process, each after a warm-up fit."""
    out = {}
    for engine in ("full", "marginal"):
        run_case(f"radon-{engine}", seed=2)  # warm-up: numba, and the marginal engine's cache
        out[engine] = run_case(f"radon-{engine}", seed=1)
    return out


def main():
    results = {"machine": "2 cores; times in seconds; 2 chains x (1000 tune + 1000 draws)"}
    warm = radon_in_process()
    cold = {e: fresh(f"radon-{e}") for e in ("full", "marginal")}
    results["radon"] = {
        "in_process_after_warmup": warm,
        "cold_fresh_process": cold,
        "ess_per_s_ratio_in_process": round(
            warm["marginal"]["ess_per_s"] / warm["full"]["ess_per_s"], 1
        ),
        "ess_per_s_ratio_cold": round(cold["marginal"]["ess_per_s"] / cold["full"]["ess_per_s"], 1),
    }
    results["sim_1e5_rows_1e3_groups"] = {
        "marginal": fresh("sim1e5-marginal"),
        "full": fresh("sim1e5-full", timeout=FULL_LIMIT),
    }
    results["sim_1e6_rows_1e4_groups"] = {"marginal": fresh("sim1e6-marginal")}
    results["truth"] = TRUTH
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
    else:
        main()
