"""Sampling through ``pm.sample`` and the convergence checks that follow it."""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pymc as pm
import pymc.sampling.mcmc as pymc_sampling
import xarray as xr
from pymc.backends.arviz import patch_nutpie_idata

from hiermodels import progress
from hiermodels.engines.compiled import compiled_model, is_cached
from hiermodels.errors import ConvergenceWarning, SpecError
from hiermodels.numerics import diagnostics
from hiermodels.sampling import SamplingOptions, sampling_options

__all__ = ["SAMPLERS", "check_convergence", "nutpie_direct", "sample", "sample_checked"]

# sampler name -> the module it needs (pm.sample's nuts_sampler takes the same names)
SAMPLERS: dict[str, str | None] = {
    "nutpie": "nutpie",
    "pymc": None,
    "numpyro": "numpyro",
    "blackjax": "blackjax",
}
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # Vehtari et al. (2021), Rank-normalization ..., §4


def resolve_sampler(sampler: str | None) -> str:
    """The NUTS implementation to use: nutpie when installed, else PyMC's own."""
    if sampler is None:
        return "nutpie" if importlib.util.find_spec("nutpie") else "pymc"
    if sampler not in SAMPLERS:
        raise SpecError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    needed = SAMPLERS[sampler]
    if needed and importlib.util.find_spec(needed) is None:
        raise SpecError(
            f"sampler {sampler!r} needs the package {needed!r}, which is not installed; "
            f"pip install {needed} (or use sampler='pymc')"
        )
    return sampler


def nutpie_direct(options: SamplingOptions) -> bool:
    """Whether these options sample with nutpie called directly rather than ``pm.sample``:
    the sampler is nutpie, nutpie takes every keyword of ``sample_kwargs``, and ``pm.sample``
    has not been replaced (``pymc.testing.mock_sample``, a test's or a user's monkeypatch is
    honoured: such fits go through ``pm.sample``)."""
    return (
        resolve_sampler(options.sampler) == "nutpie"
        and set(options.pymc_kwargs()) <= _NUTPIE_KEYWORDS
        and pm.sample is pymc_sampling.sample
    )


def sample(
    model: pm.Model,
    options: SamplingOptions | None = None,
    *,
    reuse=None,
    **keywords,
) -> xr.DataTree:
    """Run NUTS on ``model`` and return the ArviZ DataTree.

    The sampling arguments come as one :class:`~hiermodels.sampling.SamplingOptions`, or in
    the keyword form ``draws=, tune=, chains=, sampler=, random_seed=, progressbar=,
    sample_kwargs=`` (checked the same way; not both).

    ``reuse`` (an object with ``key``, ``values`` and ``coords``, as
    :class:`~hiermodels.builders.hierarchical.FullInputs`) lets nutpie reuse a model compiled
    for data of the same structure (:mod:`hiermodels.engines.compiled`): ``model``'s
    ``pm.Data`` hold ``values`` and its graph depends on nothing else than ``key``. Other
    samplers, and ``sample_kwargs`` nutpie's own call does not take, go through ``pm.sample``.
    """
    options = sampling_options(options, **keywords)
    kwargs = options.pymc_kwargs()
    sampler = resolve_sampler(options.sampler)
    direct = reuse is not None and nutpie_direct(options)
    if direct and is_cached(reuse.key):
        message = f"Sampling with {sampler} (the model compiled for this structure is reused)"
    else:
        # compiling dominates a first fit (nutpie: numba, 5-10 s) and shows no bar of its own
        names = ", ".join(v.name for v in model.free_RVs[:6])
        names += ", ..." * (len(model.free_RVs) > 6)
        message = f"Compiling the model ({names}) and sampling with {sampler}"
    with progress.step(message, show=kwargs["progressbar"]):
        if direct:
            return _sample_compiled(model, reuse, kwargs)
        with model:
            return pm.sample(nuts_sampler=sampler, compute_convergence_checks=False, **kwargs)


# pm.sample's keywords that _sample_compiled maps onto nutpie.sample's
_NUTPIE_KEYWORDS = {
    "draws",
    "tune",
    "chains",
    "random_seed",
    "progressbar",
    "target_accept",
    "max_treedepth",
    "maxdepth",  # nutpie's own name for max_treedepth
    "cores",
}


def nutpie_sample(
    compiled, *, draws: int, tune, chains: int, seed: int, progressbar: bool, **kwargs
) -> tuple[xr.DataTree, float]:
    """``nutpie.sample`` of a compiled model with ``pm.sample``'s names and defaults (tune
    1000 when None, at least 1 as nuts-rs needs; ``max_treedepth`` is nutpie's
    ``maxdepth``; at most 4 cores), no warm-up kept; the draws and the seconds it took.

    Raises
    ------
    SpecError
        For a keyword nutpie does not take, naming it and ``engine="full"`` (whose
        ``pm.sample`` takes PyMC's own sampler's keywords).
    """
    from hiermodels.engines.nutpie_support import load_nutpie

    nutpie = load_nutpie()
    kwargs = dict(kwargs)
    if "max_treedepth" in kwargs:
        kwargs["maxdepth"] = kwargs.pop("max_treedepth")
    kwargs.setdefault("cores", min(4, os.cpu_count() or 1))
    start = time.time()
    try:
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=1000 if tune is None else max(tune, 1),
            chains=chains,
            seed=seed,
            save_warmup=False,
            progress_bar=bool(progressbar),
            **kwargs,
        )
    except (AttributeError, TypeError) as error:  # "Unknown settings attribute: init", ...
        unknown = [k for k in kwargs if k in str(error)]
        if not unknown:
            raise
        raise SpecError(
            f"sample_kwargs {unknown} are not options of nutpie's sampler, which this fit "
            f"uses ({error}); remove them, or fit with engine='full' and a sampler that takes "
            "them (e.g. sampler='pymc')"
        ) from error
    return idata, time.time() - start


def _sample_compiled(model: pm.Model, reuse, kwargs: dict) -> xr.DataTree:
    """What ``pm.sample(nuts_sampler="nutpie", **kwargs)`` does, through a compiled model
    kept in the process: the same seed (the first of ``pm.sample``'s per-chain seeds), the
    same tuning default and floor (nuts-rs needs ``tune >= 1``), the same groups after
    (``patch_nutpie_idata``: constant and observed data, timing attributes)."""
    from pymc.util import _get_seeds_per_chain

    model, compiled = compiled_model(reuse.key, lambda: model, reuse.values, reuse.coords)
    kwargs = dict(kwargs)
    chains = kwargs.pop("chains") or 4
    seed = int(_get_seeds_per_chain(kwargs.pop("random_seed"), chains)[0])
    idata, seconds = nutpie_sample(compiled, chains=chains, seed=seed, **kwargs)
    patch_nutpie_idata(idata, model, sampling_time=seconds)
    return idata


def sample_checked(
    model: pm.Model,
    options: SamplingOptions | None = None,
    *,
    centered: Sequence[str] = (),
    offsets: Sequence[str] = (),
    why: Mapping[str, str] | None = None,
    reuse=None,
    **keywords,
) -> tuple[xr.DataTree, tuple[str, ...]]:
    """:func:`sample`, then :func:`check_convergence` on every free variable of ``model``.

    ``options`` (or the keyword form) and ``reuse`` as in :func:`sample`. ``centered`` and
    ``offsets`` are what the builder says its group-level effects sample
    (``GroupEffect.centered`` / ``.offsets``), for the advice in the messages; ``why`` maps
    those names to the reason of an automatic parameterization, quoted when the advice is
    to switch it.
    """
    idata = sample(model, options, reuse=reuse, **keywords)
    watched = [v.name for v in model.free_RVs]
    return idata, tuple(
        check_convergence(idata, watched, centered=centered, offsets=offsets, why=why)
    )


def check_convergence(
    idata: xr.DataTree,
    var_names: Sequence[str],
    *,
    centered: Sequence[str] = (),
    offsets: Sequence[str] = (),
    why: Mapping[str, str] | None = None,
) -> list[str]:
    """Warn (:class:`ConvergenceWarning`) about divergences, R-hat and ESS; return the messages.

    ``centered`` names the centered group-level terms, which a divergence message points to;
    ``offsets`` the offsets of non-centered ones, which a slow-mixing message points to;
    ``why``, for those chosen by ``parameterization="auto"``, the reason of that choice,
    which the advice to switch quotes.
    """
    why = dict(why or {})
    messages = []
    posterior = idata["posterior"]
    n_chains = posterior.sizes["chain"]
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    if stats is not None and "diverging" in stats:
        n_div = int(np.asarray(stats["diverging"]).sum())
        if n_div:
            fix = (
                f"switch the centered term(s) {list(centered)} to parameterization='noncentered'"
                + _reasons(centered, why)
                if centered
                else "raise target_accept, e.g. sample_kwargs={'target_accept': 0.95}"
            )
            messages.append(
                f"{n_div} divergent transition(s) after tuning: the posterior was not fully "
                f"explored, so estimates may be biased; {fix}"
            )
    rhat, ess = _worst_per_variable(posterior, var_names)
    high = sorted(((v, k) for k, v in rhat.items() if v > RHAT_MAX), reverse=True)
    if high:
        worst = ", ".join(f"{k} ({v:.3f})" for v, k in high[:5])
        messages.append(
            f"R-hat above {RHAT_MAX} for {worst}: chains disagree; run more draws "
            "(draws=, tune=) or reparameterize"
            + _offset_hint([k for _, k in high[:5]], offsets, why)
        )
    floor = ESS_PER_CHAIN_MIN * n_chains
    low = sorted((v, k) for k, v in ess.items() if v < floor)
    if low:
        worst = ", ".join(f"{k} ({v:.0f})" for v, k in low[:5])
        messages.append(
            f"bulk ESS below {floor} ({ESS_PER_CHAIN_MIN} per chain) for {worst}: too few "
            "effective draws for reliable intervals; increase draws"
            + _offset_hint([k for _, k in low[:5]], offsets, why)
        )
    for message in messages:
        # point at the caller of fit(): check_convergence <- sample_checked <- fit <- user
        warnings.warn(message, ConvergenceWarning, stacklevel=4)
    return messages


def _reasons(names: Sequence[str], why: Mapping[str, str]) -> str:
    """ " (the automatic choice was X because ...)" for the names chosen automatically."""
    texts = list(dict.fromkeys(why[n] for n in names if n in why))
    return f" ({'; '.join(texts)})" if texts else ""


def _offset_hint(
    names: Sequence[str], offsets: Sequence[str], why: Mapping[str, str] | None = None
) -> str:
    """Advice when offsets of non-centered terms mix slowly: the data pin the groups down,
    which is where the centered form samples better (Betancourt & Girolami 2015, §4)."""
    offsets = [k for k in names if k in set(offsets)]
    if not offsets:
        return ""
    return (
        f"; {', '.join(offsets)} belong to non-centered terms: when each group's own data "
        "pin its effect down (many rows per group, small standard errors), "
        "parameterization='centered' mixes better" + _reasons(offsets, why or {})
    )


def _worst_per_variable(
    posterior: xr.DataTree, var_names: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Largest R-hat and smallest bulk ESS of each variable, all elements in one array pass."""
    blocks, owners = [], []
    for name in var_names:
        values = np.asarray(posterior[name].values, dtype=float)
        chains, draws = values.shape[:2]
        blocks.append(np.moveaxis(values.reshape(chains, draws, -1), -1, 0))
        owners += [name] * blocks[-1].shape[0]
    if not blocks:
        return {}, {}
    rhat, ess = diagnostics.convergence(np.concatenate(blocks))
    owners = np.asarray(owners)
    worst_rhat, worst_ess = {}, {}
    for name in var_names:
        mine = owners == name
        if rhat is not None and np.isfinite(rhat[mine]).any():
            worst_rhat[name] = float(np.nanmax(rhat[mine]))
        if np.isfinite(ess[mine]).any():
            worst_ess[name] = float(np.nanmin(ess[mine]))
    return worst_rhat, worst_ess
