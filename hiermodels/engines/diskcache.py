"""nutpie's compiled callbacks kept on disk, keyed by the structure of the model's graph.

Most of a fresh process's fit is numba compiling the two C callbacks nutpie samples with
(logp + gradient, and the expansion to every traced variable): about 10 s on 2 cores for the
6-parameter marginal model, nothing of which carries over to the next process, because
``nutpie.compile_pymc_model`` builds them as closures over the data, which numba cannot cache
(docs/performance.md). :func:`compile_pymc_model` builds the same callbacks from generated
source without closures or embedded data (the data are read at run time from the record
nutpie passes, as nutpie does) and lets numba store them in its on-disk cache, in an entry
named by a hash of the graph (:func:`fingerprint`): the operations, types, constants, names
and the versions of everything that compiles it, but not the values of the shared variables
(``pm.Data``). A later process with a graph of the same structure loads the machine code
instead of rewriting the graph and compiling (0.35 s on a
lightly loaded 2-core machine, mostly numba's own start-up; docs/performance.md).

The cache lives in ``$XDG_CACHE_HOME/hiermodels`` (``~/.cache/hiermodels``);
``HIERMODELS_CACHE_DIR`` moves it, ``HIERMODELS_CACHE_DIR=off`` turns it off. An entry is
used only when its metadata file, written last, is complete and names the same key; any
failure while loading (a stale, partial or corrupt entry) removes the entry and compiles
again, and any failure while compiling falls back to ``nutpie.compile_pymc_model``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import sys
import warnings
import weakref
from collections.abc import Callable
from math import prod
from pathlib import Path

import numpy as np
import pymc as pm

from hiermodels.engines.nutpie_support import (
    jittered_start,
    load_nutpie,
    side_functions_without_c,
    support_point,
    without_c,
)

__all__ = [
    "ENV_DIR",
    "cache_dir",
    "clear",
    "compile_pymc_model",
    "fingerprint",
    "last_outcome",
]

ENV_DIR = "HIERMODELS_CACHE_DIR"
FORMAT = 1  # bump when the generated source or the metadata change
MAX_ENTRIES = 64  # least recently used entries beyond this are removed
_VERSIONED = ("numpy", "numba", "llvmlite", "pytensor", "pymc", "nutpie", "hiermodels")
_ORIGIN = "<hiermodels-diskcache>"  # the file name of the generated source

_outcome = "none"
# generated callback -> (cache directory, key): where numba's cache locator sends it
_located: weakref.WeakKeyDictionary[Callable, tuple[Path, str]] = weakref.WeakKeyDictionary()


def last_outcome() -> str:
    """What the last :func:`compile_pymc_model` did: ``"hit"`` (loaded from disk),
    ``"stored"`` (compiled and saved), ``"off"`` (cache turned off), ``"fallback"`` (the graph
    could not be cached; compiled by nutpie)."""
    return _outcome


def cache_dir() -> Path | None:
    """The directory of the entries, or None when ``HIERMODELS_CACHE_DIR=off``."""
    chosen = os.environ.get(ENV_DIR, "").strip()
    if chosen.lower() in {"off", "0", "false", "no", "none"}:
        return None
    if chosen:
        base = Path(chosen).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "hiermodels"
    return base / f"nutpie-v{FORMAT}"


def clear() -> None:
    """Remove every entry of the cache (``cache_dir()``)."""
    directory = cache_dir()
    if directory is not None and directory.is_dir():
        for path in directory.iterdir():
            path.unlink(missing_ok=True)


# -- the key ------------------------------------------------------------------------------------
def _op_text(op) -> str:
    props = op._props_dict() if getattr(op, "__props__", None) is not None else None
    name = f"{type(op).__module__}.{type(op).__qualname__}"
    return f"{name}{props!r}" if props is not None else f"{name}:{op}"


def _constant_text(data) -> str:
    if isinstance(data, np.ndarray | np.generic):
        array = np.ascontiguousarray(data)
        digest = hashlib.sha256(array.tobytes()).hexdigest()
        return f"{array.dtype.str}{array.shape}{digest}"
    return repr(data)


def fingerprint(model: pm.Model) -> tuple[str, dict[str, object]] | None:
    """The key of ``model``'s compiled callbacks and its shared variables by name.

    The key hashes every operation of the log density and of the traced variables, with the
    types, names and constants they hold (constants by value), the free variables and the
    versions of Python, numpy, numba, llvmlite, PyTensor, PyMC, nutpie and hiermodels; not the
    values of shared variables, so new data of the same structure give the same key. None
    when a shared variable has no name or one name is used twice (nutpie's ``with_data``
    needs unique names).
    """
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs, io_toposort
    from pytensor.tensor.random.type import RandomType

    # the traced variables are the deterministics and the free variables' backward transforms,
    # whose graphs the log density (with its Jacobian terms) already holds
    outputs = [model.logp(), *model.deterministics]
    inputs = list(graph_inputs(outputs))
    ids: dict[object, int] = {}
    parts = [f"format {FORMAT}", sys.version, f"check_bounds {model.check_bounds}"]
    parts += [f"{name} {_version(name)}" for name in _VERSIONED]
    parts.append(f"floatX {pytensor.config.floatX}")
    shared: dict[str, object] = {}
    for var in inputs:
        ids[var] = len(ids)
        if isinstance(var, SharedVariable) and not isinstance(var.type, RandomType):
            if var.name is None or shared.setdefault(var.name, var) is not var:
                return None
            parts.append(f"shared {var.name} {var.type}")
        elif isinstance(var, Constant):
            parts.append(f"constant {var.type} {_constant_text(var.data)}")
        else:  # value variables, and random generators (replaced by values when compiled)
            parts.append(f"input {var.name} {var.type}")
    for node in io_toposort(inputs, outputs):
        args = [ids[v] for v in node.inputs]
        for out in node.outputs:
            ids[out] = len(ids)
        outs = [str(out.type) for out in node.outputs]
        text = _op_text(node.op)
        if " at 0x" in text:  # a repr with an address: another key in every process
            return None
        parts.append(f"{text} {args} {outs}")
    parts.append(f"outputs {[ids[v] for v in outputs]}")
    parts.append(f"free {[model.rvs_to_values[v].name for v in model.free_RVs]}")
    parts.append(f"traced {[v.name for v in model.deterministics]}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest(), shared


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


# -- numba's cache, pointed at our directory ----------------------------------------------------
def _register_locator() -> None:
    """Put a locator in front of numba's: it takes the callbacks this module generates and
    names their cache files by our key (PyTensor registers its generated code the same way,
    ``pytensor.link.numba.cache``)."""
    from numba.core.caching import CacheImpl, _CacheLocator

    if any(getattr(c, "_hiermodels", False) for c in CacheImpl._locator_classes):
        return

    class _Locator(_CacheLocator):
        _hiermodels = True

        def __init__(self, directory: Path, key: str):
            self._directory, self._key = directory, key

        def ensure_cache_path(self):
            self._directory.mkdir(parents=True, exist_ok=True)

        def get_cache_path(self):
            return str(self._directory)

        def get_source_stamp(self):
            return self._key

        def get_disambiguator(self):
            return self._key

        @classmethod
        def from_function(cls, py_func, py_file):
            found = _located.get(py_func)
            return None if found is None else cls(*found)

    CacheImpl._locator_classes.insert(0, _Locator)


_LOGP = """
def logp_callback(dim, x_, out_, logp_, user_data_):
    try:
        x = numba.carray(x_, (dim,))
        out = numba.carray(out_, (dim,))
        logp = numba.carray(logp_, ())
{extract}
        logp_val, grad = inner(x{args})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND = """
def expand_callback(dim, expanded, x_, out_, user_data_):
    try:
        x = numba.carray(x_, (dim,))
        out = numba.carray(out_, (expanded,))
{extract}
        (values,) = inner(x{args})
        out[...] = values
    except Exception:
        return -2
    return 0
"""


def _extract_lines(keys: list[str], meta: dict) -> tuple[str, str]:
    """Source that reads each shared array from nutpie's record of pointers and shapes (as
    ``nutpie.compile_pymc.make_extraction_fn`` does, with the names written out)."""
    lines = ["        shared = numba.carray(user_data_, (), RECORD)['shared']"] if keys else []
    for i, key in enumerate(keys):
        ndim, dtype = meta["ndim"][key], meta["dtype"][key]
        lines.append(f"        p{i} = address_as_void_pointer(shared['data']['{key}'][()])")
        lines.append(
            f"        a{i} = numba.carray(p{i}, int(shared['size']['{key}'][()]), np.{dtype})"
        )
        dims = ", ".join(f"int(shared['shape']['{key}'][{d}])" for d in range(ndim))
        lines.append(f"        a{i} = a{i}.reshape(({dims}{',' if ndim == 1 else ''}))")
    return "\n".join(lines), "".join(f", a{i}" for i in range(len(keys)))


def _callbacks(directory: Path, key: str, meta: dict, record, inner_logp, inner_expand):
    """The two numba cfuncs, loaded from the cache or compiled into it."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer

    _register_locator()
    logp_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    expand_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    made = []
    for template, name, keys, inner, sig in (
        (_LOGP, "logp_callback", meta["logp_keys"], inner_logp, logp_sig),
        (_EXPAND, "expand_callback", meta["expand_keys"], inner_expand, expand_sig),
    ):
        extract, args = _extract_lines(keys, meta)
        scope = {
            # numba rebuilds a cached function's environment from the module of this name
            "__name__": __name__,
            "numba": numba,
            "np": np,
            "inner": inner,
            "RECORD": record,
            "address_as_void_pointer": address_as_void_pointer,
        }
        exec(compile(template.format(extract=extract, args=args), _ORIGIN, "exec"), scope)
        function = scope[name]
        _located[function] = (directory, f"{key}-{name}")
        with warnings.catch_warnings():
            # a callback numba cannot save is noticed below (no index file): no entry is made
            warnings.filterwarnings("ignore", "Cannot cache", numba.NumbaWarning)
            made.append(numba.cfunc(sig, cache=True)(function))
    return made


# -- compile or load ----------------------------------------------------------------------------
def compile_pymc_model(model: pm.Model):
    """``nutpie.compile_pymc_model(model)``, with the numba callbacks cached on disk.

    Returns nutpie's ``CompiledPyMCModel`` (``with_data`` works as usual). Uses the entry of
    :func:`fingerprint` when it is there and sound, otherwise compiles and stores it; when
    the cache is off or the graph cannot be cached, it is nutpie's own compilation.
    """
    global _outcome
    nutpie = load_nutpie()
    directory = cache_dir()
    found = fingerprint(model) if directory is not None else None
    if found is None:
        _outcome = "off" if directory is None else "fallback"
        with side_functions_without_c():
            return nutpie.compile_pymc_model(model)
    key, shared = found
    meta_path = directory / f"{key}.json"
    if meta_path.is_file():
        try:
            compiled = _load(model, directory, key, shared, json.loads(meta_path.read_text()))
            os.utime(meta_path)  # recently used
            _outcome = "hit"
            return compiled
        except Exception:  # a stale or corrupt entry: remove it and compile again
            _remove(directory, key)
    try:
        compiled = _compile_and_store(model, directory, key, shared)
        _outcome = "stored"
        return compiled
    except Exception:  # never worse than nutpie's own compilation, exactly as nutpie does it
        _remove(directory, key)
        _outcome = "fallback"
        return nutpie.compile_pymc_model(model)


def _data_hash(shared: dict[str, object]) -> str:
    """A hash of the values of every shared variable (the data the support point uses)."""
    hasher = hashlib.sha256()
    for name in sorted(shared):
        hasher.update(name.encode())
        hasher.update(_constant_text(np.asarray(shared[name].get_value(borrow=True))).encode())
    return hasher.hexdigest()


def _shape_signature(shared: dict[str, object], names) -> list:
    """What the traced shapes may depend on: each shared array's shape, and the values of
    small integer ones (dimension lengths)."""
    out = []
    for name in names:
        value = np.asarray(shared[name].get_value(borrow=True))
        small_int = value.dtype.kind in "iub" and value.size <= 16
        out.append([name, list(value.shape), value.tolist() if small_int else None])
    return out


def _assemble(model, meta, shared, logp_cb, expand_cb, logp_fn=None, expand_fn=None):
    """nutpie's ``CompiledPyMCModel`` around the two callbacks and the shared variables."""
    from nutpie.compile_pymc import CompiledPyMCModel, _prepare_dims_and_coords, make_user_data

    names, shapes = meta["names"], [tuple(s) for s in meta["shapes"]]
    n_free = meta["n_free"]
    sizes = [prod(s) for s in shapes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(starts)]
    shape_info = (names, slices, shapes)
    n_dim = int(sum(sizes[:n_free]))
    shared_var_keys, shared_data = {}, {}
    for name, key in meta["keys"].items():
        value = np.array(shared[name].get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_var_keys[shared[name]] = key
        shared_data[key] = value
    user_data = make_user_data(shared_var_keys, shared_data)
    reparameterized = meta["reparameterized"]
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, shape in zip(names, shapes, strict=True)},
        compiled_logp_func=logp_cb,
        compiled_expand_func=expand_cb,
        initial_point_func=jittered_start(meta["support_point"]),
        shared_data=shared_data,
        shared_var_keys=shared_var_keys,
        user_data=user_data,
        n_expanded=int(sum(sizes)),
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=reparameterized,
    )


def _record(shared, meta):
    from nutpie.compile_pymc import make_user_data

    values = {key: np.asarray(shared[name].get_value()) for name, key in meta["keys"].items()}
    by_var = {shared[name]: key for name, key in meta["keys"].items()}
    return make_user_data(by_var, values).dtype


def _compile_and_store(model: pm.Model, directory: Path, key: str, model_shared: dict):
    """Compile as nutpie does (``_make_functions``), with cacheable callbacks; write the
    metadata file last, once numba has saved both callbacks."""
    from nutpie.compile_pymc import _make_functions

    with side_functions_without_c():
        _, _, logp_pt, expand_pt, _, shape_info, reparameterized = _make_functions(
            model,
            mode="NUMBA",
            compute_grad=True,
            join_expanded=True,
            pymc_initial_point_fn=lambda seed: {},  # not called: _assemble makes the real one
        )
    names = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        names.setdefault(var.name, f"s{len(names)}")
    shared = {var.name: var for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]}
    meta = {
        "key": key,
        "keys": names,
        "logp_keys": [names[v.name] for v in logp_pt.get_shared()],
        "expand_keys": [names[v.name] for v in expand_pt.get_shared()],
        "ndim": {names[n]: v.ndim for n, v in shared.items()},
        "dtype": {names[n]: np.dtype(v.dtype).name for n, v in shared.items()},
        "names": list(shape_info[0]),
        "shapes": [[int(d) for d in s] for s in shape_info[2]],
        "n_free": len(model.free_RVs),
        "reparameterized": list(reparameterized),
        "shape_signature": _shape_signature(shared, names),
        "data": _data_hash(model_shared),
        "support_point": support_point(model, shape_info[0][: len(model.free_RVs)])(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    logp_cb, expand_cb = _callbacks(
        directory, key, meta, _record(shared, meta), logp_pt.vm.jit_fn, expand_pt.vm.jit_fn
    )
    compiled = _assemble(model, meta, shared, logp_cb, expand_cb, logp_pt, expand_pt)
    if all(any(directory.glob(f"*{key}-{n}*.nbi")) for n in ("logp_callback", "expand_callback")):
        temporary = directory / f"{key}.json.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(meta))
        os.replace(temporary, directory / f"{key}.json")  # atomic: readers see all or nothing
        _prune(directory)
    return compiled


def _load(model: pm.Model, directory: Path, key: str, shared: dict, meta: dict):
    """The compiled model from a stored entry; raises when anything does not fit."""
    if meta.get("key") != key or not set(meta["keys"]) <= set(shared):
        raise ValueError("entry does not match the model")

    def never_compile(*args):  # the callbacks must load; compiling them here is an error
        raise RuntimeError("not in the cache")

    logp_cb, expand_cb = _callbacks(
        directory, key, meta, _record(shared, meta), never_compile, never_compile
    )
    if logp_cb.cache_hits != 1 or expand_cb.cache_hits != 1:
        raise RuntimeError("callbacks were not loaded from the cache")
    if _shape_signature(shared, meta["keys"]) != meta["shape_signature"]:
        from nutpie.compile_pymc import _compute_shapes

        with without_c():
            computed = _compute_shapes(model)  # new shapes of data: the traced shapes again
        meta = {**meta, "shapes": [[int(d) for d in computed[n]] for n in meta["names"]]}
    if _data_hash(shared) != meta["data"]:  # new data: their support point
        meta = {**meta, "support_point": support_point(model, meta["names"][: meta["n_free"]])()}
    return _assemble(model, meta, shared, logp_cb, expand_cb)


def _remove(directory: Path, key: str) -> None:
    for path in directory.glob(f"{key}*"):
        path.unlink(missing_ok=True)
    for path in directory.glob(f"*-{key}-*"):
        path.unlink(missing_ok=True)


def _prune(directory: Path) -> None:
    """Keep the MAX_ENTRIES most recently used entries."""
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        _remove(directory, old.stem)
