"""The refits of :func:`hiermodels.calibrate`: one task per simulated data set, and where
they run (here, in processes, or on a dask cluster).

A task is a tuple of plain values (it pickles: processes and dask workers get it whole) and
its worker returns ``(ranks, messages)``, or None when the refit failed. The priors are those
resolved on the user's data and the population coefficients are standardized by the user's
data's scales for every simulated data set (``scales=`` of
:func:`~hiermodels.builders.hierarchical.full_inputs` and
:func:`~hiermodels.engines.marginal.fit_marginal`): one graph, compiled once per process and
reused by every later refit there (:mod:`hiermodels.engines.compiled`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pandas as pd

from hiermodels.defaults import data_scales
from hiermodels.errors import ConvergenceWarning, SpecError
from hiermodels.families import get_family
from hiermodels.meta.result import MetaAnalysisResult
from hiermodels.numerics.exact import ImproperPosteriorError, exact_posterior
from hiermodels.priors import Normal

__all__ = ["hierarchical_tasks", "mcmc_refit", "meta_refit", "meta_tasks", "run"]

MCMC_RANK_DRAWS = 199  # 200 rank values: the 50/80/90/95% intervals are exact in ranks
GROUPS_SHOWN = 4  # group effects ranked per varying term (evenly spread over the levels)

Transform = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def run(worker, tasks, *, n_jobs: int = 1, client=None, show: bool = False) -> list:
    """``(worker(task), seconds)`` for every task, in the order of ``tasks``, counting aloud.

    Here (``n_jobs=1``), in ``n_jobs`` processes, or on the workers of ``client`` (a
    ``distributed.Client``; dask is imported only then). A process refits one task at a time
    (:func:`_timed`), so the model it compiles for its first refit serves the later ones.
    """
    outputs = []
    step = max(1, len(tasks) // 20)
    timed = functools.partial(_timed, worker)
    executor = None
    if client is not None:
        # pure=False: equal tasks are still separate refits (dask would otherwise merge them)
        futures = client.map(timed, tasks, pure=False)
        results = (future.result() for future in futures)
    elif n_jobs == 1:
        results = map(timed, tasks)
    else:
        # spawn, not fork: a forked child of a process running numba or BLAS threads can
        # hang. Each process compiles the model once, for its first refit.
        executor = ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn"))
        results = executor.map(timed, tasks, chunksize=max(1, len(tasks) // (4 * n_jobs)))
    try:
        for k, out in enumerate(results, start=1):
            outputs.append(out)
            if show and (k % step == 0 or k == len(tasks)):
                print(f"  {k}/{len(tasks)} refits", file=sys.stderr, flush=True)
    finally:
        if executor is not None:
            executor.shutdown()
    return outputs


# one refit at a time per process: the refits share the process's compiled model, whose data
# each one sets (a dask worker may run several tasks at once in threads)
_ONE_AT_A_TIME = threading.Lock()


def _timed(worker, task):
    """``worker(task)`` and the seconds it took."""
    with _ONE_AT_A_TIME:
        start = time.perf_counter()
        out = worker(task)
        return out, time.perf_counter() - start


def _spread(n_levels: int) -> list[int]:
    """Up to GROUPS_SHOWN level indices spread evenly over ``n_levels``."""
    return sorted(set(np.round(np.linspace(0, n_levels - 1, GROUPS_SHOWN)).astype(int).tolist()))


def _chosen(available: list[str], default: list[str], params) -> list[str]:
    if params is None:
        return default
    params = [params] if isinstance(params, str) else list(params)
    unknown = [p for p in params if p not in available]
    if unknown:
        raise SpecError(f"params {unknown} are not parameters of the model; known: {available}")
    return params


# -- the exact meta-analysis engine -------------------------------------------------------


def meta_tasks(result: MetaAnalysisResult, n_sims, n_draws, seeds, params, transform):
    """Prior draws, simulated estimates and one refit task per simulation."""
    if result.method != "exact":
        raise SpecError(
            f"calibrate refits a meta-analysis with the exact engine; this one used "
            f"method={result.method!r}; fit it with method='exact' (or calibrate a "
            "hm.HierarchicalModel(data, 'y | se(se) ~ 1 + (1 | study)') for MCMC)"
        )
    data = result.data
    if data.has_moderators:
        raise SpecError(
            "calibrate draws every parameter from its prior, and moderator coefficients have "
            "flat (improper) priors; calibrate the model without moderators"
        )
    mu_prior = result.mu_prior
    if not isinstance(mu_prior, Normal):
        raise SpecError(
            "calibrate draws mu from its prior, and mu_prior=None is flat (improper); give a "
            "proper prior, e.g. hm.meta_analysis(..., mu_prior=hm.priors.Normal(0, 10))"
        )
    tau_prior = result.tau_prior
    prior_rng, sim_rng = (np.random.default_rng(s) for s in seeds.spawn(2))
    mu = mu_prior.sample(n_sims, prior_rng)
    tau = tau_prior.sample(n_sims, prior_rng)
    if not np.all(np.isfinite(tau)):
        raise SpecError(
            f"tau ~ {tau_prior} gave draws that are not finite numbers; calibrate with a "
            "prior that can be drawn from, e.g. hyperprior='half_normal'"
        )
    theta = mu[:, None] + tau[:, None] * sim_rng.standard_normal((n_sims, data.k))
    y = theta + data.se * sim_rng.standard_normal((n_sims, data.k))
    labels = [f"theta[{label}]" for label in data.labels]
    available = ["mu", "tau", *labels]
    names = _chosen(available, ["mu", "tau", *(labels[j] for j in _spread(data.k))], params)
    truth = pd.DataFrame(np.column_stack([mu, tau, theta]), columns=available)[names]
    refit_seeds = seeds.spawn(n_sims)
    fixed = (data.se, mu_prior, tau_prior)
    tasks = [
        (y[s], *fixed, truth.iloc[s].to_numpy(), names, labels, n_draws, refit_seeds[s], transform)
        for s in range(n_sims)
    ]
    return tasks, truth, names, n_draws + 1


def meta_refit(task):
    """Refit one simulated meta-analysis exactly and rank the true values."""
    y, se, mu_prior, tau_prior, truth, names, labels, n_draws, seed, transform = task
    try:
        post = exact_posterior(
            y, se, tau_logprior=tau_prior.logpdf, beta_mean=mu_prior.mu, beta_sd=mu_prior.sigma
        )
    except (ImproperPosteriorError, FloatingPointError, ValueError):
        return None
    d = post.draw(n_draws, np.random.default_rng(seed))
    draws = {"mu": d["beta"][:, 0], "tau": d["tau"]}
    draws.update({label: d["theta"][:, j] for j, label in enumerate(labels)})
    return _ranks(draws, names, truth, transform), ()


def _ranks(draws: dict, names, truth, transform: Transform | None) -> list[int]:
    """Rank of each true value among its draws (after the test hook ``transform``, which
    maps the draws dict to another: e.g. a posterior with half its spread)."""
    if transform is not None:
        draws = transform(draws)
    return [int(np.sum(np.asarray(draws[n]) < v)) for n, v in zip(names, truth, strict=True)]


# -- hierarchical models, refitted by MCMC ------------------------------------------------


def hierarchical_tasks(
    obj, n_sims, seeds, params, transform, *, draws, chains, tune, sampler, sample_kwargs, engine
):
    """Prior draws of parameters and outcomes (``pm.sample_prior_predictive`` on the model
    built for the user's data) and one refit task per simulation."""
    import pymc as pm

    from hiermodels.builders.hierarchical import build_model
    from hiermodels.models import HierarchicalModel, engine_for
    from hiermodels.parameterization import choose
    from hiermodels.results.hierarchical import HierarchicalResult
    from hiermodels.sampling import SamplingOptions

    options = {
        "draws": draws,
        "tune": draws if tune is None else tune,
        "chains": chains,
        "sampler": sampler,
        "progressbar": False,
        "sample_kwargs": sample_kwargs,
    }
    asked = SamplingOptions(**options)  # checked once, before any refit
    if isinstance(obj, HierarchicalModel):
        # "auto" reads the parameterizations as the user gave them, as fit() does; the full
        # model of the prior draws has them resolved
        data, given, priors = obj.prepared(resolve=False)
        kind = engine_for(data, given, engine=engine or "auto", options=asked)
        spec, _ = choose(data, given)
    elif isinstance(obj, HierarchicalResult):
        data, spec, priors = obj.data, obj.spec, obj.priors
        if engine in (None, "auto"):  # the engine the result was fitted with
            fitted = obj.idata["posterior"].attrs.get("engine")
            engine = "marginal" if fitted == "marginal" else "full"
        kind = engine_for(data, spec, engine=engine, options=asked)
    else:
        raise SpecError(
            "calibrate takes a meta-analysis (hm.meta_analysis(..., method='exact') or its "
            "arguments as a dict) or a hierarchical model (hm.HierarchicalModel or a fitted "
            f"result of one), not {type(obj).__name__}"
        )
    prior_seed, *refit_seeds = seeds.spawn(n_sims + 1)
    with build_model(data, spec, priors):
        prior = pm.sample_prior_predictive(
            draws=n_sims, random_seed=int(prior_seed.generate_state(1)[0])
        )
    values = prior["prior"]
    outcomes = np.asarray(prior["prior_predictive"][data.y_name]).reshape(n_sims, -1)
    population = [*data.terms, *(a.name for a in spec.aux)]
    population += [f"{t}|{f.name}_sigma" for f, t in data.effects]
    shown, available, where = [], list(population), {n: (n, None) for n in population}
    for f, t in data.effects:
        name = f"{t}|{f.name}"
        for j, level in enumerate(f.levels):
            label = f"{name}[{level}]"
            available.append(label)
            where[label] = (name, j)
            if j in _spread(f.n_groups):
                shown.append(label)
    names = _chosen(available, population + shown, params)
    columns = {}
    for n in names:
        variable, j = where[n]
        v = np.asarray(values[variable]).reshape(n_sims, -1)
        columns[n] = v[:, 0] if j is None else v[:, j]
    truth = pd.DataFrame(columns)[names]
    rank_draws = min(MCMC_RANK_DRAWS, draws * chains)
    # the refits encode no new rows, and formulae's design does not pickle (n_jobs > 1)
    data = dataclasses.replace(data, design=None)
    # the user's data's standardizing for every refit: it changes what NUTS sees, not the
    # model, and one for all keeps one graph, so the compiled model is reused (an outcome's
    # own scales would give each simulation another graph, compiled anew)
    scales = data_scales(data, get_family(spec.family))
    tasks = [
        (
            kind,
            dataclasses.replace(data, y=outcomes[s].astype(float)),
            spec,
            priors,
            scales,
            {**options, "random_seed": int(refit_seeds[s].generate_state(1)[0])},
            truth.iloc[s].to_numpy(),
            names,
            [where[n] for n in names],
            rank_draws,
            transform,
        )
        for s in range(n_sims)
    ]
    return tasks, truth, names, rank_draws + 1


# the model built for each structure in this process, reused while its compiled model is
# cached (a new graph each refit would cost more than sampling a small model)
_BUILT: dict = {}


def mcmc_refit(task):
    """Refit one simulated data set by NUTS, like ``HierarchicalModel.fit``, and rank the
    true values among ``rank_draws`` draws spread evenly over the chains (thinning, Talts
    et al. 2018 §5.1, so that the ranks are nearly those of independent draws)."""
    from hiermodels.sampling import SamplingOptions

    kind, data, spec, priors, scales, options, truth, names, where, rank_draws, transform = task
    options = SamplingOptions(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # kept as the Calibration's
        try:
            fit = _refit_full if kind == "full" else _refit_marginal
            idata, messages = fit(data, spec, priors, scales, options)
        except (ValueError, RuntimeError, FloatingPointError):
            return None
    post = idata["posterior"]
    draws = {}
    for n, (variable, j) in zip(names, where, strict=True):
        v = np.asarray(post[variable])
        flat = v.reshape(v.shape[0] * v.shape[1], -1)
        keep = np.round(np.linspace(0, len(flat) - 1, rank_draws)).astype(int)
        draws[n] = flat[keep, 0 if j is None else j]
    return _ranks(draws, names, truth, transform), tuple(messages)


def _refit_full(data, spec, priors, scales, options):
    """The full model by NUTS, its graph built (and compiled) once per structure."""
    from hiermodels.builders.hierarchical import build, full_inputs
    from hiermodels.engines.compiled import is_cached
    from hiermodels.engines.mcmc import sample_checked

    inputs = full_inputs(data, spec, priors, scales=scales)
    built = _BUILT.get(inputs.key) if is_cached(inputs.key) else None
    if built is None:
        built = build(data, spec, priors, inputs)
        _BUILT.clear()  # one structure at a time: a calibration refits one model
        _BUILT[inputs.key] = built
    return sample_checked(
        built.model,
        options,
        centered=built.centered,
        offsets=built.offsets,
        reuse=inputs,
    )


def _refit_marginal(data, spec, priors, scales, options):
    """The marginal engine (:func:`hiermodels.engines.marginal.fit_marginal`), with the
    standardizing of the user's data, so that every refit reuses one compiled model."""
    from hiermodels.engines.marginal import fit_marginal

    return fit_marginal(data, spec, priors, options, scales=scales)
