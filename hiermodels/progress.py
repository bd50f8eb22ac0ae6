"""Progress for a person who is watching, silence for CI and tests (no PyMC here).

``progressbar=None`` (the default everywhere) means: show the sampler's progress bar and say
what the long steps are doing when someone watches, that is when standard error is a
terminal or the code runs in a Jupyter kernel, and not under CI (``CI`` set) or pytest.
``HIERMODELS_PROGRESS=1`` / ``0`` overrides the guess.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

__all__ = ["resolve", "step", "watching"]


def watching() -> bool:
    """Whether a person is likely watching this process's output."""
    forced = os.environ.get("HIERMODELS_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "no")
    if os.environ.get("CI") or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def resolve(progressbar: bool | None) -> bool:
    """``progressbar`` as given, or :func:`watching` for None."""
    return watching() if progressbar is None else bool(progressbar)


@contextmanager
def step(message: str, *, show: bool | None = None):
    """Say ``message`` (on stderr) before a long step and how long it took after it, when
    someone watches; otherwise do nothing."""
    show = resolve(show)
    start = time.perf_counter()
    if show:
        print(f"{message} ...", file=sys.stderr, flush=True)
    yield
    if show:
        print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
