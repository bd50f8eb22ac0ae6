"""Random-effects meta-analysis and meta-regression from study estimates: :func:`meta_analysis`.

The flow: the arguments become a :class:`~hiermodels.meta.spec.MetaSpec`, the data a
:class:`~hiermodels.meta.data.StudyData`; the engine the spec names, looked up in
:data:`ENGINES` and imported only then, returns an
:class:`~hiermodels.meta.engines.EngineFit`, which :class:`MetaAnalysisResult` reports on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from hiermodels.errors import PriorWarning, SpecError
from hiermodels.frames import to_pandas
from hiermodels.meta.data import StudyData, prepare_studies
from hiermodels.meta.effect_sizes import effect_sizes
from hiermodels.meta.engines import EngineFit, check_exact_spec
from hiermodels.meta.result import MetaAnalysisResult
from hiermodels.meta.spec import MetaSpec
from hiermodels.priors import Prior
from hiermodels.sampling import SamplingOptions

__all__ = ["ENGINES", "METHODS", "Engine", "effect_sizes", "effect_sizes_2x2", "meta_analysis"]

RESERVED = {"mu", "tau", "theta", "theta_offset", "theta_new"}
#: measure names of :func:`effect_sizes_2x2` -> metafor's codes (:func:`effect_sizes`)
MEASURES = {"log_rr": "RR", "log_or": "OR"}

EngineFunction = Callable[..., EngineFit]  # (data, spec, *, tau_prior) -> EngineFit


@dataclass(frozen=True)
class Engine:
    """One way to compute the posterior of a :class:`MetaSpec`: a registry entry.

    ``load`` imports the engine function only when the engine is used (the MCMC engine
    brings PyMC, which the exact path never imports); ``check`` refuses, before any data
    is read, a spec the engine cannot compute.
    """

    name: str
    description: str
    source: str
    load: Callable[[], EngineFunction]
    check: Callable[[MetaSpec], None] | None = None

    def run(self, data: StudyData, spec: MetaSpec, *, tau_prior: Prior) -> EngineFit:
        return self.load()(data, spec, tau_prior=tau_prior)


def _load_exact() -> EngineFunction:
    from hiermodels.meta.engines import fit_exact

    return fit_exact


def _load_mcmc() -> EngineFunction:
    from hiermodels.meta.mcmc import fit_mcmc

    return fit_mcmc


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine(
            "exact",
            "Numerical integration over tau; beta and theta given tau analytically. "
            "Milliseconds, numpy/scipy only, independent draws; mu flat or normal.",
            "BDA3 §5.4 (the posterior factored as p(tau|y) p(mu|tau,y) p(theta|mu,tau,y)); "
            "Röver (2020), bayesmeta, J. Stat. Softw. 93(6).",
            _load_exact,
            check_exact_spec,
        ),
        Engine(
            "mcmc",
            "NUTS through pm.sample on the PyMC model (centered or non-centered); any prior "
            "with a PyMC form.",
            "Hoffman & Gelman (2014), The No-U-Turn Sampler, JMLR 15:1593-1623.",
            _load_mcmc,
        ),
    )
}
METHODS = tuple(ENGINES)


def get_engine(method: str) -> Engine:
    """The registry entry of ``method``, or :class:`SpecError` listing the methods."""
    if method not in ENGINES:
        raise SpecError(f"unknown method {method!r}; use {' or '.join(repr(m) for m in ENGINES)}")
    return ENGINES[method]


def meta_analysis(
    data: pd.DataFrame,
    *,
    estimate: str,
    se: str | None = None,
    vi: str | None = None,
    study: str | None = None,
    moderators: Sequence[str] = (),
    subgroup: str | None = None,
    levels: Sequence[str] | None = None,
    cluster: str | None = None,
    mu_prior: Prior | None = None,
    hyperprior: str | Prior = "half_cauchy",
    method: str = "exact",
    parameterization: str | Mapping[str, str] | None = None,
    draws: int = 1000,
    chains: int = 4,
    tune: int | None = 1000,
    random_seed=None,
    sampler: str | None = None,
    progressbar: bool = False,
    sample_kwargs: Mapping | None = None,
) -> MetaAnalysisResult:
    r"""Bayesian random-effects meta-analysis (or meta-regression) of study estimates.

    .. math::

        y_i \sim \mathrm{Normal}(\theta_i, se_i), \quad
        \theta_i \sim \mathrm{Normal}(x_i'\beta, \tau), \quad
        \beta \sim \text{flat or Normal}, \quad \tau \sim \text{hyperprior}

    Without moderators ``x_i = 1`` and ``beta = mu``, the pooled effect (BDA3 §5.4-5.6).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study; never modified.
    estimate, se : str
        Columns of the study estimates and their standard errors (known, positive).
    vi : str, optional
        Instead of ``se``: the column of sampling variances (metafor's ``vi``, as
        :func:`effect_sizes` writes it); give exactly one of ``se`` and ``vi``.
    study : str, optional
        Column of unique study labels (default: the row index).
    moderators : sequence of str
        Study-level covariates (meta-regression); categorical ones become dummies.
    levels : sequence of str, optional
        A multilevel (three-level) model of dependent effect sizes, levels outermost
        first: ``levels=["district", "study"]`` nests the effect sizes (rows, labelled by
        ``study``) in districts, ``theta_i = x_i'beta + u_district + w_i`` with one SD per
        level, ``tau_district`` and ``tau_study`` (Konstantopoulos 2011). Returns a
        :class:`~hiermodels.meta.multilevel.MultilevelMetaResult`; ``hyperprior`` may then
        be a dict per level, ``{"district": ..., "study": ...}``.
    cluster : str, optional
        Shorthand for ``levels=[cluster]``: the effect sizes (rows) nested in ``cluster``.
    subgroup : str, optional
        A column that :meth:`~MetaAnalysisResult.subgroup_analysis` uses when called
        without one (the fit itself ignores it).
    mu_prior : Prior, optional
        Prior on mu (the intercept): None is flat; ``hm.priors.Normal(0, 5)`` is normal;
        any other prior (``hm.priors.StudentT(3, 0, 5)``) needs ``method="mcmc"``.
        Moderator coefficients are flat.
    hyperprior : str or Prior
        A key of :data:`hiermodels.priors.PRESETS`, scaled by the root mean square of the
        standard errors (the ``*_logor`` and ``turner_*`` presets have fixed scales for log
        odds ratios), or a prior object such as ``hm.priors.HalfCauchy(25)``.
    method : {"exact", "mcmc"}
        The engine, a key of :data:`ENGINES`; only that engine runs. ``"exact"`` integrates
        over tau numerically (milliseconds, numpy/scipy only, flat or normal mu prior) and
        draws independent samples on first use of ``idata``; ``"mcmc"`` samples the same
        model with NUTS (PyMC is imported only then).
    parameterization : {"noncentered", "centered"}, dict or None
        For ``method="mcmc"``; None is "noncentered", and with ``levels`` non-centered
        clusters with centered effect sizes; a dict gives one per level.
    draws, chains : int
        Posterior draws per chain (exact draws are independent, split into ``chains``).
    tune, random_seed, sampler, progressbar, sample_kwargs
        As in :meth:`hiermodels.HierarchicalModel.fit` (``random_seed`` also seeds the
        exact draws). With ``draws`` and ``chains`` they make one
        :class:`~hiermodels.sampling.SamplingOptions`, checked before the data are read.

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school",
    ...                         hyperprior=hm.priors.HalfCauchy(25), random_seed=1)
    >>> bool(meta.summary().loc["tau", "median"] > 0)
    True
    """
    data = to_pandas(data)  # pandas as is; polars, pyarrow, any Arrow-stream table
    engine = get_engine(method)
    sampling = SamplingOptions(
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        progressbar=progressbar,
        sample_kwargs=sample_kwargs,
    )
    spec = MetaSpec.from_user(
        estimate=estimate,
        se=se,
        vi=vi,
        subgroup=subgroup,
        study=study,
        moderators=moderators,
        mu_prior=mu_prior,
        hyperprior=hyperprior,
        method=method,
        parameterization=parameterization,
        sampling=sampling,
        levels=levels,
        cluster=cluster,
    )
    if engine.check is not None:
        engine.check(spec)
    if spec.levels:
        from hiermodels.meta.multilevel_api import fit_levels

        return fit_levels(data, spec)
    studies = prepare_studies(
        data,
        estimate=spec.estimate,
        se=spec.se,
        vi=spec.vi,
        study=spec.study,
        moderators=spec.moderators,
    )
    if spec.subgroup is not None and spec.subgroup not in data.columns:
        raise SpecError(
            f"subgroup column {spec.subgroup!r} not in the data; available columns: "
            f"{', '.join(map(str, data.columns))}"
        )
    clash = RESERVED.intersection({studies.estimate, studies.study, *studies.terms})
    if clash:
        raise SpecError(f"column name(s) {sorted(clash)} clash with model names; rename them")
    tau_prior = spec.tau_prior(studies.se)
    message = tau_prior.warning(studies.k)
    if message:
        warnings.warn(message, PriorWarning, stacklevel=2)
    fit = engine.run(studies, spec, tau_prior=tau_prior)
    return MetaAnalysisResult(
        data=studies, spec=spec, tau_prior=tau_prior, fit=fit, frame=data.copy()
    )


def effect_sizes_2x2(
    data: pd.DataFrame,
    *,
    ai: str,
    bi: str,
    ci: str,
    di: str,
    measure: str = "log_rr",
    add: float = 0.5,
) -> pd.DataFrame:
    """Log risk ratios or log odds ratios with standard errors from 2x2 tables.

    Each row is one study: ``ai``/``bi`` events / non-events in the treated arm, ``ci``/``di``
    in the control arm; counts must be non-negative whole numbers and each arm must have at
    least one patient (else :class:`~hiermodels.errors.DataError`); ``add`` must be >= 0.
    Studies with a zero cell get ``add`` in all four cells (metafor's
    ``escalc`` default, ``to="only0"``). Returns a copy of ``data`` with columns ``yi`` and
    ``sei`` added. A thin case of :func:`effect_sizes` (``measure="RR"`` or ``"OR"``), which
    also writes ``vi``.

    Examples
    --------
    >>> import hiermodels as hm
    >>> bcg = hm.effect_sizes_2x2(hm.datasets.load("bcg"), ai="tpos", bi="tneg",
    ...                           ci="cpos", di="cneg")
    >>> round(float(bcg.loc[0, "yi"]), 4), round(float(bcg.loc[0, "sei"]) ** 2, 4)  # metafor
    (-0.8893, 0.3256)
    """
    if measure not in MEASURES:
        raise SpecError(
            f"unknown measure {measure!r}; use one of {', '.join(MEASURES)} (or "
            "hm.effect_sizes for metafor's measure codes such as 'RR' and 'OR')"
        )
    out = effect_sizes(data, MEASURES[measure], ai=ai, bi=bi, ci=ci, di=di, add=add)
    return out.drop(columns="vi")
