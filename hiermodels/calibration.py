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
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hiermodels import calibration_tasks as tasks_
from hiermodels import progress
from hiermodels.calibration_tasks import Transform
from hiermodels.errors import SpecError
from hiermodels.meta.result import MetaAnalysisResult
from hiermodels.numerics import sbc

__all__ = ["Calibration", "calibrate"]

EXACT_DRAWS = 999  # independent posterior draws per refit: ranks on 0..999 (1000 values)
MCMC_DRAWS = 500  # per chain; thinned to calibration_tasks.MCMC_RANK_DRAWS for the ranks


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
    client=None,
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
    client : distributed.Client, optional
        A dask cluster to refit on instead (``n_jobs`` is then not used): one task per
        simulation, mapped over the workers. Each worker process compiles the model for its
        first refit and reuses it for the others, refitting one at a time; the seeds, not
        where a refit runs, decide its draws, so the ranks are those of ``n_jobs=1``. Start
        the workers as processes (``LocalCluster(processes=True)``, or ``dask worker``),
        with one thread each: more threads wait for each other.
    progressbar : bool, optional
        Say how far the refits are (default: when someone is watching).
    chains, tune, sampler, sample_kwargs
        MCMC only: as in :meth:`hiermodels.HierarchicalModel.fit` (``tune`` defaults to
        ``draws``). With nutpie the model is compiled once per process and every refit
        gives it the new outcome (:mod:`hiermodels.engines.compiled`).
    engine : {"full", "marginal", "auto"}, optional
        Hierarchical models only: the engine of the refits, as in
        :meth:`hiermodels.HierarchicalModel.fit`. Default: the engine a result was fitted
        with (also for ``"auto"``), ``"auto"`` for a model (as ``fit``).

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
    if client is not None and not callable(getattr(client, "map", None)):
        raise SpecError(
            f"client must be a distributed.Client (e.g. Client(LocalCluster())), got "
            f"{type(client).__name__}"
        )
    if draws is not None and (not isinstance(draws, int | np.integer) or draws < 1):
        raise SpecError(f"draws must be a whole number >= 1, got {draws!r}")
    seeds = np.random.SeedSequence(random_seed)
    show = progress.resolve(progressbar)
    if isinstance(model_or_meta, Mapping):
        from hiermodels.meta.api import meta_analysis

        model_or_meta = meta_analysis(**model_or_meta)
    if isinstance(model_or_meta, MetaAnalysisResult):
        tasks, truth, names, n_values = tasks_.meta_tasks(
            model_or_meta, n_sims, draws or EXACT_DRAWS, seeds, params, _posterior_transform
        )
        engine, worker = "exact", tasks_.meta_refit
    else:
        tasks, truth, names, n_values = tasks_.hierarchical_tasks(
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
        worker = tasks_.mcmc_refit
    message = f"Calibrating the {engine} engine on {n_sims} simulated data sets"
    with progress.step(message, show=show):
        outputs = tasks_.run(worker, tasks, n_jobs=n_jobs, client=client, show=show)
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
