"""Radon: effective sample size per fit, hiermodels vs hand-written PyMC, over 30 seeds.

The ESS of the slowest parameter (``floor|county_sigma``, a group SD near zero) varies by a
factor of 4 between seeds, so ten seeds (``bench_radon.py``) cannot tell whether the two
samplers differ in efficiency per draw. This fits both models with seeds 11-40 and writes
the mean and its standard error to ``benchmarks/results/radon_ess.json``.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_radon_ess.py`` (about 4 minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import numpy as np
from bench_radon import WATCHED, runners

SEEDS = range(11, 41)
OUT = Path(__file__).parent / "results" / "radon_ess.json"


def main():
    models = runners()
    ess = {label: [] for label in models}
    for seed in SEEDS:
        for label, fit in models.items():
            posterior = fit(seed)["posterior"].to_dataset()[WATCHED]
            values = az.ess(posterior, method="bulk")
            ess[label].append(min(float(values[w]) for w in WATCHED))
    summary = {
        label: {
            "mean_min_ess_bulk": round(float(np.mean(v)), 1),
            "se": round(float(np.std(v, ddof=1) / np.sqrt(len(v))), 1),
            "per_seed": [round(x, 1) for x in v],
        }
        for label, v in ess.items()
    }
    OUT.write_text(json.dumps({"seeds": list(SEEDS), "watched": WATCHED, **summary}, indent=2))
    print(
        json.dumps({k: {"mean": v["mean_min_ess_bulk"], "se": v["se"]} for k, v in summary.items()})
    )


if __name__ == "__main__":
    main()
