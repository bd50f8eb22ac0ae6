"""``parameterization="auto"`` against both fixed parameterizations: ESS per second.

Four designs, each fitted with ``"auto"``, ``"centered"`` and ``"noncentered"`` (2 chains x
1000 draws after 1000 tuning steps, nutpie, seeds 1-3):

* eight schools, row-level with known standard errors (``y | se(sigma) ~ 1 + (1 | school)``),
  groups the data say little about;
* radon, ``log_radon ~ floor + (1 + floor | county)`` (85 counties, many with a few houses);
* simulated, 100 rows per group x 50 groups, ``y ~ x + (1 + x | g)``, tau = (0.5, 0.3),
  sigma = 1: groups well pinned down by their data;
* crossed items x raters (``bench_crossed.simulate``: 40 items x 12 raters, one rating each),
  ``y ~ x + (1 | item) + (1 | rater)``.

The score of a fit is the smallest bulk ESS over the population parameters (summary())
divided by nutpie's sampling time (compilation excluded), and, free of timing noise (the
machine may be busy), per 1000 gradient evaluations. Per design the median over seeds;
``auto / best`` and ``auto / worse`` compare auto with the better and the worse fixed
parameterization. ``"auto"`` builds exactly the model of the fixed form it chose, so with the
same seed its draws are the same (recorded); its ESS/s differs from its twin's only by timing.
Writes ``benchmarks/results/parameterization.json``.

Run: ``.venv/bin/python benchmarks/bench_parameterization.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_crossed import simulate as simulate_crossed

import hiermodels as hm

DRAWS, TUNE, CHAINS = 1000, 1000, 2
SEEDS = (1, 2, 3)
KINDS = ("auto", "centered", "noncentered")
OUT = Path(__file__).parent / "results" / "parameterization.json"


def many_rows(groups=50, per_group=100, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    b = rng.normal(0, [0.5, 0.3], size=(groups, 2))
    y = 1 + b[g, 0] + (0.5 + b[g, 1]) * x + rng.normal(0, 1.0, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{j:02d}" for j in g]})


DESIGNS = {
    "eight_schools_rows": (hm.datasets.load("eight_schools"), "y | se(sigma) ~ 1 + (1 | school)"),
    "radon_slopes": (hm.datasets.load("radon"), "log_radon ~ floor + (1 + floor | county)"),
    "rows100_groups50": (many_rows(), "y ~ x + (1 + x | g)"),
    "crossed_items_raters": (simulate_crossed(), "y ~ x + (1 | item) + (1 | rater)"),
}


def fit(df, formula, kind, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        res = hm.fit_hierarchical(
            df,
            formula,
            parameterization=kind,
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            random_seed=seed,
            progressbar=False,
        )
        wall = time.perf_counter() - start
    table = res.summary()
    seconds = float(res.idata["posterior"].attrs["sampling_time"])
    stats = res.idata["sample_stats"]
    diverging = float(np.asarray(stats["diverging"]).mean())
    gradients = int(np.asarray(stats["n_steps"]).sum())
    return {
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "slowest": str(table["ess_bulk"].idxmin()),
        "sampling_seconds": seconds,
        "wall_seconds": wall,
        "ess_per_second": float(table["ess_bulk"].min()) / seconds,
        "gradient_evaluations": gradients,
        "ess_per_1000_gradients": 1000 * float(table["ess_bulk"].min()) / gradients,
        "divergence_rate": diverging,
        "choice": res.parameterization[["term", "factor", "choice", "ratio"]].to_dict("records"),
    }


def main():
    out = {
        "settings": {"draws": DRAWS, "tune": TUNE, "chains": CHAINS, "seeds": list(SEEDS)},
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "designs": {},
    }
    for name, (df, formula) in DESIGNS.items():
        model = hm.HierarchicalModel(df, formula)
        choice = model.parameterization_choice()
        fits = {kind: [fit(df, formula, kind, seed) for seed in SEEDS] for kind in KINDS}
        median = {k: float(np.median([f["ess_per_second"] for f in v])) for k, v in fits.items()}
        per_grad = {
            k: float(np.median([f["ess_per_1000_gradients"] for f in v])) for k, v in fits.items()
        }
        best = max(median["centered"], median["noncentered"])
        worse = min(median["centered"], median["noncentered"])
        best_g = max(per_grad["centered"], per_grad["noncentered"])
        worse_g = min(per_grad["centered"], per_grad["noncentered"])
        # auto builds the very model of the fixed form it chose: same seeds, same draws
        twin = {c["choice"] for c in choice.to_dict("records")}
        same = (
            [f["min_ess_bulk"] for f in fits["auto"]]
            == [f["min_ess_bulk"] for f in fits[twin.pop()]]
            if len(twin) == 1
            else None
        )
        out["designs"][name] = {
            "formula": formula,
            "auto_choice": choice.to_dict("records"),
            "median_ess_per_second": median,
            "median_divergence_rate": {
                k: float(np.median([f["divergence_rate"] for f in v])) for k, v in fits.items()
            },
            "median_ess_per_1000_gradients": per_grad,
            "auto_over_best": median["auto"] / best,
            "auto_over_worse": median["auto"] / worse,
            "auto_over_best_per_gradient": per_grad["auto"] / best_g,
            "auto_over_worse_per_gradient": per_grad["auto"] / worse_g,
            "auto_draws_identical_to_its_choice": same,
            "fits": fits,
        }
        print(name, json.dumps({k: round(v, 1) for k, v in median.items()}), per_grad, flush=True)
        OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
