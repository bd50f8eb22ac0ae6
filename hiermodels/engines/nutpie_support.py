"""What starting nutpie takes besides its compiled callbacks, for
:mod:`hiermodels.engines.diskcache` and :mod:`hiermodels.engines.compiled`: importing it
without all of ArviZ, the support point its chains start from (plus seeded jitter), and
building PyMC's small side functions (initial point, traced shapes) without C.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable

import numpy as np
import pymc as pm

__all__ = [
    "jittered_start",
    "load_nutpie",
    "side_functions_without_c",
    "support_point",
    "without_c",
]


def without_c():
    """A context in which PyTensor compiles no C: the small functions built beside the numba
    callbacks (the support point and the traced shapes, whose graphs hold a Scan for the LKJ
    factor) run their Python implementations instead, with the same values, rather than
    spending ~6 s of a machine's first process in the C compiler (PyTensor's compile
    directory starts empty there; docs/performance.md).

    Not for the numba callbacks themselves: without a C compiler PyTensor fuses larger
    loops, which numba compiles twice as slowly."""
    import pytensor

    return pytensor.config.change_flags(cxx="")


# held while the two functions are replaced: a second thread waits (numba compiles one
# thing at a time anyway), so the replacements never outlive the context
_REPLACING = threading.RLock()


@contextlib.contextmanager
def side_functions_without_c():
    """While nutpie compiles: its initial-point and traced-shape functions (PyMC's
    ``make_initial_point_fn`` and nutpie's ``_compute_shapes``, looked up when called) built
    :func:`without_c`, the numba callbacks as usual.

    The two module attributes are replaced for the duration and put back after, also on an
    error; one thread at a time (a lock; others wait). PyTensor's ``cxx`` flag is
    process-wide, so while one of those small functions is built another thread's PyTensor
    compile would use Python implementations too (slower code, the same values)."""
    import nutpie.compile_pymc as compile_pymc
    import pymc.initial_point as initial_point

    def light(function):
        def call(*args, **kwargs):
            with without_c():
                return function(*args, **kwargs)

        return call

    with _REPLACING:
        originals = initial_point.make_initial_point_fn, compile_pymc._compute_shapes
        initial_point.make_initial_point_fn = light(originals[0])
        compile_pymc._compute_shapes = light(originals[1])
        try:
            yield
        finally:
            initial_point.make_initial_point_fn, compile_pymc._compute_shapes = originals


def load_nutpie():
    """``import nutpie`` without importing all of ArviZ (~1 s with matplotlib and scipy.stats
    in a fresh process, docs/performance.md).

    nutpie's ``sample`` module runs ``import arviz`` and uses only ``from_dict`` and
    ``dict_to_dataset``, which ArviZ re-exports from ``arviz_base`` (already loaded by PyMC).
    While nutpie is imported, a stand-in module with those two (the same objects) answers for
    ``arviz``; any other name asked of it imports the real ArviZ then. The stand-in is taken
    out of ``sys.modules`` afterwards, so ``import arviz`` elsewhere gets the real package.
    """
    if "nutpie" in sys.modules or "arviz" in sys.modules:
        import nutpie

        return nutpie
    import importlib
    import types

    import arviz_base

    stand_in = types.ModuleType("arviz", "stand-in for ArviZ while nutpie is imported")
    stand_in.from_dict = arviz_base.from_dict
    stand_in.dict_to_dataset = arviz_base.dict_to_dataset

    def real(name):
        if sys.modules.get("arviz") is stand_in:
            del sys.modules["arviz"]
        return getattr(importlib.import_module("arviz"), name)

    stand_in.__getattr__ = real
    sys.modules["arviz"] = stand_in
    try:
        import nutpie
    finally:
        if sys.modules.get("arviz") is stand_in:
            del sys.modules["arviz"]
    return nutpie


def support_point(model: pm.Model, names) -> Callable[[], list[float]]:
    """A function giving the free variables' support point on the unconstrained space,
    flattened in ``names`` order (PyMC's initial point without jitter, as nutpie starts from),
    for the ``pm.Data`` values ``model`` holds when it is called. PyMC's point function is
    compiled at the first call and reused after."""
    point = []

    def at() -> list[float]:
        if not point:
            from pymc.initial_point import make_initial_point_fn

            with without_c():
                made = make_initial_point_fn(
                    model=model,
                    default_strategy="support_point",
                    jitter_rvs=set(),
                    return_transformed=True,
                )
            point.append(made)
        values = point[0](0)
        return np.concatenate([np.ravel(values[n]) for n in names]).astype(float).tolist()

    return at


def jittered_start(support_point: list[float]) -> Callable:
    """nutpie's ``initial_point_func`` for a model whose support point is ``support_point``.

    The support point plus U(-1, 1) jitter on every coordinate (what nutpie's
    ``compile_pymc_model`` asks of PyMC), from a generator seeded per chain, so that a stored
    and a fresh entry start a seed's chains at the same points. Also for a compiled model
    given new data (:mod:`hiermodels.engines.compiled`): its support point moves with them.

    Parameters
    ----------
    support_point : list of float
        The free variables' support point on the unconstrained space, flattened in nutpie's
        order.

    Returns
    -------
    callable
        ``initial_point(seed=None) -> numpy.ndarray``.

    Examples
    --------
    >>> start = jittered_start([0.0, 10.0])
    >>> bool(((start(1) - [0.0, 10.0]) ** 2 <= 1).all()), bool((start(1) == start(1)).all())
    (True, True)
    """
    point = np.asarray(support_point, dtype=float)

    def initial_point(seed=None) -> np.ndarray:
        jitter = np.random.default_rng(seed).uniform(-1.0, 1.0, size=point.shape)
        return np.ascontiguousarray(point + jitter)

    return initial_point
