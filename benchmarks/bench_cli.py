"""Start-up of the exact meta-analysis command: ``hiermodels meta`` on eight schools.

Writes ``benchmarks/results/cli_meta.json``: the wall time (median, min, max) and the CPU time
(user + system) of ``hiermodels meta eight_schools.csv --estimate y --se sigma --study
school``, run ``N`` times, each in a fresh process (imports included, which is most of it).
For scale, the same for ``python -c "import pandas, scipy.stats"``: the imports the exact
path cannot avoid. The target of issue 12 is a median under 1.5 s; the load average is
recorded because other processes on the machine slow every run.

Run: ``.venv/bin/python benchmarks/bench_cli.py [N]`` (default N = 15).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "cli_meta.json"
DATA = ROOT / "hiermodels" / "data" / "eight_schools.csv"
COMMAND = [
    str(Path(sys.executable).with_name("hiermodels")),
    "meta",
    str(DATA),
    "--estimate",
    "y",
    "--se",
    "sigma",
    "--study",
    "school",
]
FLOOR = [sys.executable, "-c", "import pandas, scipy.stats"]
TARGET_S = 1.5


def run(command: list[str], n: int) -> dict:
    """Wall and CPU seconds of ``command`` run ``n`` times, each in a fresh process."""
    walls, cpus = [], []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        "n": n,
        "wall_median_s": round(float(np.median(walls)), 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "cpu_median_s": round(float(np.median(cpus)), 3),
    }


def main(n: int = 15) -> dict:
    if not DATA.exists():
        raise SystemExit(f"no data file {DATA}")
    subprocess.run(COMMAND, check=True, stdout=subprocess.DEVNULL)  # warm the file cache
    load_before = os.getloadavg()[0]
    meta = run(COMMAND, n)
    floor = run(FLOOR, n)
    result = {
        "benchmark": "hiermodels meta eight_schools.csv --estimate y --se sigma --study school "
        "(exact engine), each run a fresh process",
        "target_wall_median_s": TARGET_S,
        "meets_target": meta["wall_median_s"] < TARGET_S,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "meta_command": meta,
        "import_pandas_scipy_stats": floor,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
