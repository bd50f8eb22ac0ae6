"""Point PyTensor's C backend at the OpenBLAS that the ``cmeel-openblas`` wheel installs.

A pip-installed PyTensor finds no BLAS to link against, warns on every import ("could not
link to a BLAS installation") and falls back to slower code; looking for one also compiles
test programs at import. The wheel ships a standard ``libopenblas.so``; before PyTensor is
first imported we give its path as ``blas__ldflags``, unless the user configured BLAS
themselves (``PYTENSOR_FLAGS`` or a ``.pytensorrc``), which always wins.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["configure_pytensor_blas"]


def _user_configured() -> bool:
    if "blas__ldflags" in os.environ.get("PYTENSOR_FLAGS", ""):
        return True
    rc_files = os.environ.get("PYTENSORRC", str(Path.home() / ".pytensorrc"))
    for rc in rc_files.split(os.pathsep):
        try:
            if "ldflags" in Path(rc).read_text():
                return True
        except OSError:
            continue
    return False


def configure_pytensor_blas() -> str | None:
    """Give PyTensor the wheel's OpenBLAS when it is safe to; return the flags set.

    Before PyTensor is imported this goes through ``PYTENSOR_FLAGS``; when it was imported
    first (``import pymc`` before ``import hiermodels``) the setting is still open until
    PyTensor first looks for a BLAS, so it is set on ``pytensor.config`` directly.
    """
    if _user_configured():
        return None
    lib = Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix" / "lib"
    if not (lib / "libopenblas.so").exists():
        return None
    # PYTENSOR_FLAGS is split on commas, so the rpath goes as -Xlinker words, not -Wl,a,b
    flags = f"-L{lib} -lopenblas -Xlinker -rpath -Xlinker {lib}"
    if "pytensor" in sys.modules:
        config = sys.modules["pytensor"].config
        param = getattr(config, "_config_var_dict", {}).get("blas__ldflags")
        if param is None or hasattr(param, "val"):
            return None  # PyTensor already chose (and may have found a system BLAS)
        config.blas__ldflags = flags
        return flags
    existing = os.environ.get("PYTENSOR_FLAGS", "")
    os.environ["PYTENSOR_FLAGS"] = ",".join(p for p in (existing, f"blas__ldflags={flags}") if p)
    return flags
