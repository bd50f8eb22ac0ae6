"""Simulation-based calibration on the user's own design: :func:`calibrate`.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration" (arXiv:1804.06788): draw the parameters from
the prior, simulate outcomes given them on the user's design (their predictors, groups and
standard errors), refit each simulated data set with the same engine and settings, and rank
each true value among its posterior draws. If the engine computes the posterior the model
implies, every rank is uniform; a posterior too narrow piles ranks at the ends, a biased one
at one end. The numerics (ranks, coverage, the chi-square and ECDF tests and bands) are in
:mod:`hiermodels.numerics.sbc`.

The priors are those resolved on the user's data, kept fixed for every simulated data set:
re-resolving the data-scaled defaults from each simulated outcome would change the prior
between simulations and break the identity the ranks test. The standardizing of the
population coefficients (what NUTS sees, not the model) is the user's data's too, so every
simulated data set has one graph, which nutpie compiles once per process: a refit costs its
sampling only (:mod:`hiermodels.engines.compiled`).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pandas as pd

from hiermodels import progress
from hiermodels.errors import ConvergenceWarning, SpecError
from hiermodels.meta.result import MetaAnalysisResult
from hiermodels.numerics import sbc
from hiermodels.numerics.exact import ImproperPosteriorError, exact_posterior
from hiermodels.priors import Normal

__all__ = ["Calibration", "calibrate"]

EXACT_DRAWS = 999  # independent posterior draws per refit: ranks on 0..999 (1000 values)
MCMC_DRAWS = 500  # per chain; thinned to MCMC_RANK_DRAWS for the ranks
MCMC_RANK_DRAWS = 199  # 200 rank values: the 50/80/90/95% intervals are exact in ranks
GROUPS_SHOWN = 4  # group effects ranked per varying term (evenly spread over the levels)

Transform = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per simulation that was refitted, one column per parameter: the number of
        posterior draws below the true value, in ``0 .. n_values - 1``.
    truth : pandas.DataFrame
        The parameter values drawn from the prior, same layout.
    n_values : int
        The number of possible ranks (posterior draws ranked against + 1).
    engine : str
        ``"exact"``, ``"mcmc"`` (the full model by NUTS) or ``"marginal"`` (NUTS on the
        marginal model, group effects drawn exactly).
    n_failed : int
        Simulations whose refit failed (excluded from the ranks; a sign of trouble too).
    diagnostics : tuple of str
        Convergence messages of the MCMC refits, ``"sim k: ..."``.
    refit_seconds : tuple of float
        Wall time of each refit, in the order they ran in each process (the first of a
        process compiles the model; the others reuse it).
    """

    ranks: pd.DataFrame
    truth: pd.DataFrame
    n_values: int
    engine: str
    n_failed: int = 0
    diagnostics: tuple[str, ...] = ()
    refit_seconds: tuple[float, ...] = ()

    @property
    def n_sims(self) -> int:
        return len(self.ranks)

    def uniformity(self) -> pd.DataFrame:
        """Per parameter: the chi-square test on binned ranks (``chi2``, ``chi2_p``,
        ``bins``) and the ECDF test of Säilynoja et al. (2022) (``ecdf_stat``, the smallest
        pointwise tail probability; ``ecdf_p``, its exact p-value)."""
        rows = {}
        for name in self.ranks:
            r = self.ranks[name].to_numpy()
            chi2, chi2_p, bins = sbc.chi2_uniformity(r, self.n_values)
            stat, ecdf_p = sbc.ecdf_uniformity(r, self.n_values)
            rows[name] = {
                "chi2": chi2,
                "chi2_p": chi2_p,
                "bins": bins,
                "ecdf_stat": stat,
                "ecdf_p": ecdf_p,
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("parameter")

    def coverage(self, levels=sbc.COVERAGE_LEVELS) -> pd.DataFrame:
        """Per parameter and level: the share of simulations whose central posterior interval
        held the truth (``coverage``), its expected value under calibration (``expected``,
        the level itself when the rank count allows) and the binomial SD of the share,
        ``sqrt(expected (1 - expected) / n_sims)``."""
        rows = []
        for name in self.ranks:
            for level, (seen, expected) in sbc.coverage(
                self.ranks[name].to_numpy(), self.n_values, levels
            ).items():
                sd = np.sqrt(expected * (1 - expected) / max(self.n_sims, 1))
                rows.append(
                    {
                        "parameter": name,
                        "level": level,
                        "coverage": seen,
                        "expected": expected,
                        "binomial_sd": sd,
                    }
                )
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """One row per parameter: both uniformity p-values and the coverage at each level."""
        table = self.uniformity()[["chi2_p", "ecdf_p"]]
        wide = self.coverage().pivot(index="parameter", columns="level", values="coverage")
        wide.columns = [f"coverage_{round(100 * c)}" for c in wide.columns]
        return table.join(wide)

    def to_dict(self) -> dict:
        """The numbers as plain Python (for JSON)."""
        summary = self.summary()
        return {
            "engine": self.engine,
            "n_sims": self.n_sims,
            "n_failed": self.n_failed,
            "n_rank_values": self.n_values,
            "n_refits_with_warnings": len({m.split(":")[0] for m in self.diagnostics}),
            "first_refit_seconds": self.refit_seconds[0] if self.refit_seconds else None,
            "median_later_refit_seconds": (
                float(np.median(self.refit_seconds[1:])) if len(self.refit_seconds) > 1 else None
            ),
            "parameters": {
                name: {k: float(v) for k, v in row.items()} for name, row in summary.iterrows()
            },
        }

    def plot(self, params=None, path=None, *, alpha: float = 0.05):
        """ECDF difference with simultaneous ``1 - alpha`` bands (Säilynoja et al. 2022) and
        rank histograms with the 99% band of a uniform bin count (Talts et al. 2018, Fig. 1),
        one column per parameter. Saves to ``path`` if given; returns the Figure."""
        import matplotlib.pyplot as plt

        names = list(self.ranks) if params is None else list(params)
        fig, axes = plt.subplots(
            2, len(names), figsize=(2.6 * len(names) + 0.6, 4.6), squeeze=False
        )
        n = self.n_sims
        i, z = sbc.ecdf_points(self.n_values, None, n)
        band = sbc.ecdf_band(n, z, alpha)
        for k, name in enumerate(names):
            r = self.ranks[name].to_numpy()
            ecdf = (r[None, :] < i[:, None]).mean(axis=1)
            top, bottom = axes[0, k], axes[1, k]
            top.fill_between(z, band.lower / n - z, band.upper / n - z, color="0.85", step="mid")
            top.plot(z, ecdf - z, color="C0", drawstyle="steps-mid")
            top.axhline(0, color="0.4", lw=0.8)
            top.set_title(name, fontsize=9)
            top.set_xlabel("fractional rank")
            bins = sbc.chi2_uniformity(r, self.n_values)[2]
            counts = np.bincount(r * bins // self.n_values, minlength=bins)
            from scipy import stats

            lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
            bottom.axhspan(lo, hi, color="0.85")
            bottom.bar(np.arange(bins), counts, width=1.0, color="C0", edgecolor="white")
            bottom.set_xlabel(f"rank bin ({bins} bins)")
        axes[0, 0].set_ylabel("ECDF - uniform")
        axes[1, 0].set_ylabel("simulations")
        fig.suptitle(
            f"Simulation-based calibration: {n} simulations, {self.engine} engine "
            f"({100 * (1 - alpha):.0f}% simultaneous bands)",
            fontsize=10,
        )
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def __repr__(self) -> str:
        table = self.uniformity()
        worst = table["ecdf_p"].idxmin() if len(table) else None
        where = f"; smallest ECDF p = {table['ecdf_p'].min():.3g} ({worst})" if worst else ""
        return (
            f"<Calibration {self.engine}: {self.n_sims} simulations "
            f"({self.n_failed} failed), {self.ranks.shape[1]} parameters, "
            f"ranks on 0..{self.n_values - 1}{where}>"
        )


def calibrate(
    model_or_meta,
    n_sims: int = 200,
    *,
    draws: int | None = None,
    random_seed=None,
    params=None,
    n_jobs: int = 1,
    progressbar: bool | None = None,
    chains: int = 2,
    tune: int | None = None,
    sampler: str | None = None,
    sample_kwargs: Mapping | None = None,
    engine: str | None = None,
    _posterior_transform: Transform | None = None,
) -> Calibration:
    """Simulation-based calibration (Talts et al. 2018) on the user's own design.

    Parameters drawn from the prior, outcomes simulated on the model's design (its
    predictors, groups and standard errors), each data set refitted with the same engine,
    and each true value ranked among its posterior draws.

    Parameters
    ----------
    model_or_meta : MetaAnalysisResult, dict, HierarchicalModel or HierarchicalResult
        A meta-analysis fitted with ``method="exact"`` (or the keyword arguments of
        :func:`hiermodels.meta_analysis`, ``data`` included, as a dict): mu ~ its prior
        (which must be proper: a ``Normal``), tau ~ ``result.tau_prior``,
        ``theta_i ~ Normal(mu, tau)``, ``y_i ~ Normal(theta_i, se_i)`` with the studies'
        own ``se_i``; refitted exactly (milliseconds each). A hierarchical model (or a
        result of one): parameters and outcomes from ``pm.sample_prior_predictive`` on the
        model, refitted by NUTS like ``fit`` (seconds each), with the priors and the
        parameterization resolved on the user's data (``"auto"`` is decided once).
    n_sims : int
        Number of simulated data sets.
    draws : int, optional
        Exact engine: independent posterior draws per refit, the ranks' range (default 999).
        MCMC: draws per chain (default 500), thinned to 199 for the ranks.
    random_seed : int, optional
        Seeds the prior draws, the simulated outcomes and every refit.
    params : sequence of str, optional
        The parameters to rank. Default: every population-level parameter (``mu``, ``tau``;
        the coefficients, ``sigma`` and the group SDs) and up to four group effects per
        varying term (``theta[label]``, ``{term}|{factor}[level]``).
    n_jobs : int
        Processes to refit in (``concurrent.futures.ProcessPoolExecutor``); 1 refits here.
    progressbar : bool, optional
        Say how far the refits are (default: when someone is watching).
    chains, tune, sampler, sample_kwargs
        MCMC only: as in :meth:`hiermodels.HierarchicalModel.fit` (``tune`` defaults to
        ``draws``). With nutpie the model is compiled once per process and every refit
        gives it the new outcome (:mod:`hiermodels.engines.compiled`).
    engine : {"full", "marginal", "auto"}, optional
        Hierarchical models only: the engine of the refits, as in
        :meth:`hiermodels.HierarchicalModel.fit`. Default: the engine a result was fitted
        with, ``"full"`` for a model.

    Returns
    -------
    Calibration
        ``ranks``, ``coverage()``, ``uniformity()``, ``summary()`` and ``plot()``.

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school",
    ...                         mu_prior=hm.priors.Normal(0, 20), hyperprior="half_normal")
    >>> cal = hm.calibrate(meta, n_sims=100, random_seed=1)
    >>> bool(cal.uniformity()["ecdf_p"].min() > 1e-4)
    True
    """
    if not isinstance(n_sims, int | np.integer) or isinstance(n_sims, bool) or n_sims < 2:
        raise SpecError(f"n_sims must be a whole number >= 2, got {n_sims!r}")
    if not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise SpecError(f"n_jobs must be a whole number >= 1, got {n_jobs!r}")
    if draws is not None and (not isinstance(draws, int | np.integer) or draws < 1):
        raise SpecError(f"draws must be a whole number >= 1, got {draws!r}")
    seeds = np.random.SeedSequence(random_seed)
    show = progress.resolve(progressbar)
    if isinstance(model_or_meta, Mapping):
        from hiermodels.meta.api import meta_analysis

        model_or_meta = meta_analysis(**model_or_meta)
    if isinstance(model_or_meta, MetaAnalysisResult):
        tasks, truth, names, n_values = _meta_tasks(
            model_or_meta, n_sims, draws or EXACT_DRAWS, seeds, params, _posterior_transform
        )
        engine, worker = "exact", _meta_refit
    else:
        tasks, truth, names, n_values = _hierarchical_tasks(
            model_or_meta,
            n_sims,
            seeds,
            params,
            _posterior_transform,
            draws=draws or MCMC_DRAWS,
            chains=chains,
            tune=tune,
            sampler=sampler,
            sample_kwargs=sample_kwargs,
            engine=engine,
        )
        engine = "marginal" if tasks[0][0] == "marginal" else "mcmc"
        worker = _mcmc_refit
    message = f"Calibrating the {engine} engine on {n_sims} simulated data sets"
    with progress.step(message, show=show):
        outputs = _run(worker, tasks, n_jobs, show)
    kept, rows, diagnostics, seconds = [], [], [], []
    for s, (out, took) in enumerate(outputs):
        seconds.append(took)
        if out is None:
            continue
        rank_row, messages = out
        kept.append(s)
        rows.append(rank_row)
        diagnostics += [f"sim {s}: {m}" for m in messages]
    if not rows:
        raise SpecError(
            f"every one of the {n_sims} refits failed; check that the priors give data the "
            "engine can fit (e.g. draw from the prior predictive and look at it)"
        )
    ranks = pd.DataFrame(np.array(rows, dtype=int), index=kept, columns=names)
    return Calibration(
        ranks.rename_axis("sim"),
        truth.loc[kept].rename_axis("sim"),
        n_values,
        engine,
        n_sims - len(kept),
        tuple(diagnostics),
        tuple(seconds),
    )


def _run(worker, tasks, n_jobs: int, show: bool) -> list:
    """``worker(task)`` for every task, here or in ``n_jobs`` processes, counting aloud."""
    outputs = []
    step = max(1, len(tasks) // 20)
    timed = functools.partial(_timed, worker)
    if n_jobs == 1:
        results = map(timed, tasks)
        executor = None
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


def _timed(worker, task):
    """``worker(task)`` and the seconds it took."""
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


def _meta_tasks(result: MetaAnalysisResult, n_sims, n_draws, seeds, params, transform):
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


def _meta_refit(task):
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


def _hierarchical_tasks(
    obj, n_sims, seeds, params, transform, *, draws, chains, tune, sampler, sample_kwargs, engine
):
    """Prior draws of parameters and outcomes (``pm.sample_prior_predictive`` on the model
    built for the user's data) and one refit task per simulation."""
    import pymc as pm

    from hiermodels.builders.hierarchical import build_model
    from hiermodels.models import HierarchicalModel, _use_marginal
    from hiermodels.results.hierarchical import HierarchicalResult
    from hiermodels.sampling import SamplingOptions

    if isinstance(obj, HierarchicalModel):
        data, spec, priors = obj._prepare()
    elif isinstance(obj, HierarchicalResult):
        data, spec, priors = obj.data, obj.spec, obj.priors
        if engine is None and obj.idata["posterior"].attrs.get("engine") == "marginal":
            engine = "marginal"
    else:
        raise SpecError(
            "calibrate takes a meta-analysis (hm.meta_analysis(..., method='exact') or its "
            "arguments as a dict) or a hierarchical model (hm.HierarchicalModel or a fitted "
            f"result of one), not {type(obj).__name__}"
        )
    kind = "marginal" if _use_marginal(engine or "full", data, spec) else "full"
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
    options = {
        "draws": draws,
        "tune": draws if tune is None else tune,
        "chains": chains,
        "sampler": sampler,
        "progressbar": False,
        "sample_kwargs": sample_kwargs,
    }
    SamplingOptions(**options)  # checked once, before any refit
    rank_draws = min(MCMC_RANK_DRAWS, draws * chains)
    # the refits encode no new rows, and formulae's design does not pickle (n_jobs > 1)
    data = dataclasses.replace(data, design=None)
    tasks = [
        (
            kind,
            dataclasses.replace(data, y=outcomes[s].astype(float)),
            spec,
            priors,
            _fixed_scales(kind, data, spec, priors),
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


def _fixed_scales(kind: str, data, spec, priors):
    """What each refit standardizes the population coefficients by: the user's data's, for
    every simulated data set. The standardizing changes what NUTS sees, not the model, and
    one for all keeps one graph, so the compiled model is reused (an outcome's own scales
    would give each simulation another graph, compiled anew)."""
    if kind == "full":
        from hiermodels.defaults import data_scales
        from hiermodels.families import get_family

        return data_scales(data, get_family(spec.family))
    from hiermodels.builders.marginal import marginal_inputs

    inputs = marginal_inputs(data, spec, priors)
    return inputs.standardize, inputs.key


# the model built for each structure in this process, reused while its compiled model is
# cached (a new graph each refit would cost more than sampling a small model)
_BUILT: dict = {}


def _mcmc_refit(task):
    """Refit one simulated data set by NUTS, like ``HierarchicalModel.fit``, and rank the
    true values among ``rank_draws`` draws spread evenly over the chains (thinning, Talts
    et al. 2018 §5.1, so that the ranks are nearly those of independent draws)."""
    from hiermodels.sampling import SamplingOptions

    kind, data, spec, priors, fixed, options, truth, names, where, rank_draws, transform = task
    options = SamplingOptions(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # kept as the Calibration's
        try:
            fit = _refit_full if kind == "full" else _refit_marginal
            idata, messages = fit(data, spec, priors, fixed, options)
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


def _refit_marginal(data, spec, priors, fixed, options):
    """The marginal engine (:func:`hiermodels.engines.marginal.fit_marginal`), with the
    standardizing of the user's data, so that every refit reuses one compiled model."""
    from hiermodels.builders.marginal import marginal_inputs
    from hiermodels.engines import marginal
    from hiermodels.engines.mcmc import check_convergence, resolve_sampler

    standardize, key = fixed
    if resolve_sampler(options.sampler) != "nutpie":
        return marginal.fit_marginal(data, spec, priors, options)
    inputs = dataclasses.replace(
        marginal_inputs(data, spec, priors), standardize=standardize, key=key
    )
    sampler_seed, rng = marginal._seeds(options.random_seed)
    model, idata = marginal._sample_nutpie(data, spec, priors, inputs, options, sampler_seed)
    messages = check_convergence(idata, [v.name for v in model.free_RVs])
    marginal._add_group_effects(idata, data, inputs.stats, rng)
    return idata, tuple(messages)
