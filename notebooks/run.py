"""Execute the teaching notebooks top to bottom (``make notebooks``).

    python notebooks/run.py                 # all notebooks, full draws, outputs saved in place
    python notebooks/run.py 01 04           # only those whose names start with 01 or 04
    python notebooks/run.py --fast --check  # reduced draws, outputs not saved (what the tests do)

``--fast`` sets the environment variable ``HIERMODELS_FAST_NOTEBOOKS=1``, which every
notebook reads in its first cell to use fewer draws and chains. A cell that raises stops the
run with the notebook's name and the cell's source.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
FAST_SWITCH = "HIERMODELS_FAST_NOTEBOOKS"


def notebooks(prefixes: list[str] | None = None) -> list[Path]:
    """The notebooks in this folder, in order, optionally only those starting with a prefix."""
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        found = [p for p in found if any(p.name.startswith(x) for x in prefixes)]
    return found


def execute(path: Path, *, fast: bool, save: bool, timeout: int = 1200) -> float:
    """Run every cell of ``path`` in a fresh kernel (cwd = this folder); return seconds."""
    nb = nbformat.read(path, as_version=4)
    if fast:
        os.environ[FAST_SWITCH] = "1"
    else:
        os.environ.pop(FAST_SWITCH, None)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    if save:
        nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks starting with these")
    parser.add_argument("--fast", action="store_true", help=f"set {FAST_SWITCH}=1")
    parser.add_argument("--check", action="store_true", help="do not write outputs back")
    args = parser.parse_args(argv)
    paths = notebooks(args.prefixes)
    if not paths:
        print("no notebooks matched", file=sys.stderr)
        return 1
    for path in paths:
        seconds = execute(path, fast=args.fast, save=not args.check)
        print(f"{path.name}: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
