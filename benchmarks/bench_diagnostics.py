"""R-hat and ESS: the vectorized numpy implementation against ArviZ, side by side.

Issue 12 asks for one implementation: ArviZ's, unless the hand-written one saves a meaningful
share of a typical fit. This measures both on posteriors the size of typical fits (radon with
varying intercept and slope: ~180 sampled elements; 1000 groups x 2 terms; 10 000 groups),
4 chains x 1000 draws, and writes ``benchmarks/results/diagnostics.json``.
Run: ``.venv/bin/python benchmarks/bench_diagnostics.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import xarray as xr
from arviz_stats import ess, rhat

from hiermodels.numerics import diagnostics

OUT = Path(__file__).parent / "results" / "diagnostics.json"


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    rows = []
    for label, n_params in [
        ("radon (i+s)", 180),
        ("1000 groups x 2", 2006),
        ("10000 groups", 10006),
    ]:
        draws = rng.normal(size=(n_params, 4, 1000))
        ds = xr.Dataset({"a": (("chain", "draw", "k"), np.moveaxis(draws, 0, -1))})
        ours = best_of(lambda d=draws: diagnostics.convergence(d))
        theirs = best_of(lambda d=ds: (rhat(d), ess(d, method="bulk")))
        rows.append(
            {
                "case": label,
                "elements": n_params,
                "numpy_s": round(ours, 4),
                "arviz_s": round(theirs, 4),
                "ratio_arviz_over_numpy": round(theirs / ours, 2),
            }
        )
        print(rows[-1])
    OUT.write_text(json.dumps({"chains": 4, "draws": 1000, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
