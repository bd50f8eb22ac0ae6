"""A dask DataFrame fitted from its aggregates (issue 17) against the pandas marginal path,
written to ``benchmarks/results/dask.json``.

1e6 rows x 1e4 groups, ``y ~ x + (1 + x | g)`` (correlated), Gaussian, simulated as in
``bench_marginal.py``. The rows are written as parquet partitions in a temporary directory,
and a ``distributed.LocalCluster`` of 2 worker processes (1 thread each) reads them itself:
only the sums reach this process. Then the same rows are fitted from pandas (read into this
process) with ``engine="marginal"``. Each in a fresh process: end-to-end wall time (read +
fit, compile included), min bulk ESS of the population parameters, peak memory (the fitting
process's ``ru_maxrss``; for the workers the largest resident size they reported).

Run: ``.venv/bin/python benchmarks/bench_dask.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_marginal import min_ess, simulate

OUT = Path(__file__).parent / "results" / "dask.json"
N_ROWS, N_GROUPS, PARTITIONS = 1_000_000, 10_000, 8
FIT = dict(y="y", group="g", predictors=["x"], varying=["x"], engine="marginal")
SAMPLING = dict(draws=1000, chains=2, random_seed=1, progressbar=False)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _watch_workers(client, peaks: dict, stop: threading.Event) -> None:
    """Poll each worker's resident memory (bytes) until ``stop``; keep the peak."""
    while not stop.is_set():
        for address, info in client.scheduler_info()["workers"].items():
            rss = info.get("metrics", {}).get("memory", 0)
            peaks[address] = max(peaks.get(address, 0), rss)
        stop.wait(0.2)


def run_dask(path: str) -> dict:
    """The dask fit, in this (fresh) process: workers read the parquet files themselves."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import hiermodels as hm

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        peaks, stop = {}, threading.Event()
        watcher = threading.Thread(target=_watch_workers, args=(client, peaks, stop))
        watcher.start()
        clock = time.perf_counter()
        result = hm.fit_hierarchical(dd.read_parquet(path), **FIT, **SAMPLING)
        total = time.perf_counter() - clock
        stop.set()
        watcher.join()
    return _report(result, total, worker_peak_rss_mb=[round(v / 2**20, 1) for v in peaks.values()])


def run_pandas(path: str) -> dict:
    """The pandas marginal fit, in this (fresh) process: the rows are read in here."""
    import pandas as pd

    import hiermodels as hm

    clock = time.perf_counter()
    result = hm.fit_hierarchical(pd.read_parquet(path), **FIT, **SAMPLING)
    return _report(result, time.perf_counter() - clock)


def _report(result, total: float, **extra) -> dict:
    ess, at = min_ess(result)
    attrs = result.idata["posterior"].attrs
    return {
        "end_to_end_s": round(total, 1),
        "parts_s": {k: attrs[k] for k in attrs if str(k).startswith("marginal_")},
        "min_ess_bulk": round(ess, 1),
        "min_ess_at": at,
        "driver_peak_rss_mb": round(_rss_mb(), 1),
        **extra,
        "summary_mean": result.summary()["mean"].round(4).to_dict(),
    }


def _in_fresh_process(case: str, path: Path) -> dict:
    code = [sys.executable, __file__, "--case", case, str(path)]
    out = subprocess.run(code, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import dask.dataframe as dd

    out = {"rows": N_ROWS, "groups": N_GROUPS, "partitions": PARTITIONS}
    out["load_before"] = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows"
        dd.from_pandas(simulate(N_ROWS, N_GROUPS), npartitions=PARTITIONS).to_parquet(
            path, write_index=False
        )
        for case in ("dask", "pandas"):
            out[case] = _in_fresh_process(case, path)
    out["load_after"] = [round(v, 2) for v in os.getloadavg()]
    out["note"] = (
        "each fit in a fresh process (so each compiles the marginal model once) on a machine "
        "shared with other jobs (2 cores; load average before/after). driver_peak_rss_mb is "
        "the fitting process's ru_maxrss; worker_peak_rss_mb the largest resident size each "
        "dask worker reported while the fit ran (polled every 0.2 s)"
    )
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:
        warnings.simplefilter("ignore")  # convergence is reported as numbers here
        run = {"dask": run_dask, "pandas": run_pandas}[sys.argv[2]]
        print(json.dumps(run(sys.argv[3])))
    else:
        main()
