"""Crossed random intercepts (items x raters): hiermodels vs the same model written in PyMC.

Simulated ratings: 40 items x 12 raters, every rater scores every item once,
``y = 1 + 0.5 x + a_item + b_rater + noise`` with SDs 1.0, 0.5 and 0.3. Both models are
non-centered with the same priors. Each is fitted warm (after one untimed fit) on five seeds;
the summary compares medians of wall time, sampling time and the bulk ESS of the slowest
population parameter. Writes ``benchmarks/results/crossed.json``.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_crossed.py``.
"""

from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
from bench_radon import record  # one timing and ESS report for every benchmark

import hiermodels as hm

DRAWS, TUNE, CHAINS = 1000, 1000, 4
SEEDS = (1, 2, 3, 4, 5)
WATCHED = ["Intercept", "x", "sigma", "Intercept|item_sigma", "Intercept|rater_sigma"]
FORMULA = "y ~ x + (1 | item) + (1 | rater)"
OUT = Path(__file__).parent / "results" / "crossed.json"


def simulate(items=40, raters=12, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ii, rr = (g.ravel() for g in np.meshgrid(np.arange(items), np.arange(raters), indexing="ij"))
    a, b = rng.normal(0, 1.0, items), rng.normal(0, 0.5, raters)
    x = rng.normal(size=ii.size)
    y = 1 + 0.5 * x + a[ii] + b[rr] + rng.normal(0, 0.3, ii.size)
    return pd.DataFrame(
        {"item": [f"i{i:02d}" for i in ii], "rater": [f"r{r:02d}" for r in rr], "x": x, "y": y}
    )


def handwritten(df: pd.DataFrame, priors: pd.DataFrame) -> pm.Model:
    """What a PyMC user would write, with hiermodels' default priors copied in."""
    item, items = df["item"].factorize(sort=True)
    rater, raters = df["rater"].factorize(sort=True)
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    p = priors["object"]
    with pm.Model(coords={"item": items, "rater": raters}) as model:
        intercept = pm.Normal("Intercept", p["Intercept"].mu, p["Intercept"].sigma)
        slope = pm.Normal("x", 0, p["x"].sigma)
        sd_item = pm.HalfCauchy("Intercept|item_sigma", p["Intercept|item_sigma"].beta)
        sd_rater = pm.HalfCauchy("Intercept|rater_sigma", p["Intercept|rater_sigma"].beta)
        z_item = pm.Normal("z_item", 0, 1, dims="item")
        z_rater = pm.Normal("z_rater", 0, 1, dims="rater")
        sigma = pm.Exponential("sigma", scale=p["sigma"].scale)
        mu = intercept + slope * x + sd_item * z_item[item] + sd_rater * z_rater[rater]
        pm.Normal("y", mu, sigma, observed=y)
    return model


def main() -> None:
    df = simulate()
    priors = hm.HierarchicalModel(df, FORMULA).default_priors()

    def ours(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hm.ConvergenceWarning)
            res = hm.fit_hierarchical(
                df, FORMULA, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=seed
            )
        return res.idata

    def theirs(seed):
        with handwritten(df, priors):
            return pm.sample(
                draws=DRAWS,
                tune=TUNE,
                chains=CHAINS,
                random_seed=seed,
                nuts_sampler="nutpie",
                progressbar=False,
            )

    ours(0), theirs(0)  # warm-up: imports, numba, first compile
    runs = []
    for seed in SEEDS:
        pair = [("hiermodels", ours), ("handwritten", theirs)]
        for label, run in pair if seed % 2 else pair[::-1]:
            runs.append(record(label, run, seed, watched=WATCHED))
    summary = {}
    for label in ("hiermodels", "handwritten"):
        mine = [r for r in runs if r["model"] == label]
        summary[label] = {
            "median_wall_s": float(np.median([r["wall_s"] for r in mine])),
            "median_sampling_s": float(np.median([r["sampling_s"] for r in mine])),
            "median_min_ess_bulk": float(np.median([r["min_ess_bulk"] for r in mine])),
            "pooled_ess_per_wall_s": sum(r["min_ess_bulk"] for r in mine)
            / sum(r["wall_s"] for r in mine),
        }
    ratio = {
        key: round(summary["hiermodels"][key] / summary["handwritten"][key], 3)
        for key in summary["hiermodels"]
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "data": "simulated 40 items x 12 raters (480 rows)",
                "formula": FORMULA,
                "draws": DRAWS,
                "tune": TUNE,
                "chains": CHAINS,
                "machine": platform.platform(),
                "runs": runs,
                "summary": summary,
                "ratio_hiermodels_over_handwritten": ratio,
            },
            indent=2,
        )
    )
    print(json.dumps({"summary": summary, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
