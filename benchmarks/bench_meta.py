"""Exact engine vs MCMC: eight schools and a simulated meta-analysis of 1000 studies.

Writes ``benchmarks/results/meta.json``: wall time of each method (exact: median of repeated
calls, the fit alone, with its summary table, and with 4000 draws as a DataTree; MCMC: first
call in the process, compile included, and a second call) and the agreement of mu and tau.
Run: ``.venv/bin/python benchmarks/bench_meta.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import hiermodels as hm

OUT = Path(__file__).parent / "results" / "meta.json"
PRIORS = {"mu_prior": hm.priors.Normal(0, 50), "hyperprior": hm.priors.HalfCauchy(25)}


def simulated(k=1000, mu=0.3, tau=0.2, seed=0):
    rng = np.random.default_rng(seed)
    se = rng.uniform(0.1, 0.6, size=k)
    theta = rng.normal(mu, tau, size=k)
    return pd.DataFrame(
        {"study": [f"s{i}" for i in range(k)], "y": rng.normal(theta, se), "se": se}
    )


def timed(fn, repeat=1):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def compare(label, data, se, study):
    kwargs = {"estimate": "y", "se": se, "study": study, **PRIORS}
    exact, t_exact = timed(
        lambda: hm.meta_analysis(data, method="exact", random_seed=1, **kwargs), repeat=21
    )
    _, t_exact_summary = timed(
        lambda: hm.meta_analysis(data, method="exact", **kwargs).summary(), repeat=21
    )
    _, t_exact_draws = timed(
        lambda: hm.meta_analysis(data, method="exact", random_seed=1, **kwargs).idata, repeat=5
    )
    _, t_mcmc_cold = timed(
        lambda: hm.meta_analysis(
            data, method="mcmc", random_seed=1, sample_kwargs={"target_accept": 0.95}, **kwargs
        )
    )
    mcmc, t_mcmc = timed(
        lambda: hm.meta_analysis(
            data, method="mcmc", random_seed=2, sample_kwargs={"target_accept": 0.95}, **kwargs
        )
    )
    a, b = exact.summary(), mcmc.summary()
    agreement = {
        name: {
            "exact_mean": round(float(a.loc[name, "mean"]), 5),
            "mcmc_mean": round(float(b.loc[name, "mean"]), 5),
            "diff_in_mcse": round(
                float(
                    (b.loc[name, "mean"] - a.loc[name, "mean"])
                    / (b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"]))
                ),
                2,
            ),
            "exact_sd": round(float(a.loc[name, "sd"]), 5),
            "mcmc_sd": round(float(b.loc[name, "sd"]), 5),
        }
        for name in ["mu", "tau"]
    }
    result = {
        "data": label,
        "k": len(data),
        "exact_s": round(t_exact, 5),
        "exact_s_plus_summary": round(t_exact_summary, 5),
        "exact_s_plus_4000_draws_as_datatree": round(t_exact_draws, 5),
        "mcmc_s_cold": round(t_mcmc_cold, 3),
        "mcmc_s_warm": round(t_mcmc, 3),
        "speedup_warm_mcmc_over_exact": round(t_mcmc / t_exact, 1),
        "speedup_cold_mcmc_over_exact": round(t_mcmc_cold / t_exact, 1),
        "mcmc_divergences": int(mcmc.idata["sample_stats"]["diverging"].sum()),
        "agreement": agreement,
    }
    print(json.dumps(result))
    return result


def main():
    runs = [
        compare(
            "eight_schools (Rubin 1981 unrounded)",
            pd.DataFrame(
                {
                    "school": list("ABCDEFGH"),
                    "y": [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16],
                    "sigma": [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6],
                }
            ),
            "sigma",
            "school",
        ),
        compare("simulated k=1000, mu=0.3, tau=0.2", simulated(), "se", "study"),
    ]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "exact vs MCMC meta-analysis, mu ~ N(0, 50), "
                "tau ~ HalfCauchy(25); MCMC: nutpie 4 chains x 1000 draws",
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
