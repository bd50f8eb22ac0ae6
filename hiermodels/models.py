"""Public entry points for hierarchical regression: :class:`HierarchicalModel` and
:func:`fit_hierarchical`."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd
import pymc as pm
import xarray as xr

from hiermodels.builders.hierarchical import build, build_model
from hiermodels.data import GroupedData, prepare
from hiermodels.defaults import ResolvedPrior, priors_frame, resolve_priors
from hiermodels.engines.mcmc import nutpie_direct, sample_checked
from hiermodels.errors import HierModelsError, PriorWarning, SpecError
from hiermodels.families import get_family
from hiermodels.frames import to_pandas
from hiermodels.lazy import is_dask_frame
from hiermodels.names import effect_name, sigma_name
from hiermodels.parameterization import Choice, choices_frame, choose
from hiermodels.priors import Prior
from hiermodels.results.hierarchical import HierarchicalResult
from hiermodels.results.idata import add_fit_groups
from hiermodels.sampling import ENGINES, SamplingOptions, check_sampling_args
from hiermodels.spec import HierarchicalSpec, keywords_from_formula

__all__ = ["HierarchicalModel", "engine_for", "fit_hierarchical"]


class HierarchicalModel:
    r"""Varying-intercepts and varying-slopes regression with one grouping factor.

    .. math::

        y_i \sim \mathrm{Normal}(X_i\beta + Z_i b_{g[i]}, \sigma), \quad
        b_j \sim \mathrm{MvNormal}(0, S R S), \quad S = \mathrm{diag}(\tau_1, \dots, \tau_q),
        \quad R \sim \mathrm{LKJ}(\eta), \quad \tau_t \sim \text{hyperprior}(\text{scale}_t)

    ``X`` holds the intercept and every predictor (group-level predictors such as a county's
    uranium included), ``Z`` the columns of the varying terms: the intercept always, plus
    each name in ``varying``. With ``correlated=False`` the deviations of different terms are
    independent, ``b_{j,t} ~ Normal(0, tau_t)``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation. It is never modified.
    formula : str, optional
        lme4/brms style, e.g. ``"log_radon ~ floor + log_uranium + (1 + floor | county)"``;
        ``(1 + x || g)`` for uncorrelated terms, ``y | trials(n) ~ ...`` for the binomial,
        ``offset(log_exposure)``. It sets ``y``, ``group``, ``predictors``, ``varying``,
        ``correlated``, ``trials`` and ``offset``, which must then not be given. Several
        grouping terms: crossed ``(1 | item) + (1 | rater)``, nested ``(1 | school/class)``
        (= ``(1 | school) + (1 | school:class)``, a class within its school). formulae builds
        the design: interactions ``x1 * x2``, ``np.log(z)``, ``scale(x)``, ``center(x)``,
        ``C(k)``; ``(0 + x | g)`` for a varying slope without a varying intercept; no
        grouping term (``y ~ x``) for a plain regression.
    y : str
        Outcome column (numeric).
    group : str or list of str
        Grouping column; its name is also the group dim of the PyMC model. A list gives
        crossed factors, each with a varying intercept and the slopes in ``varying``.
    predictors : sequence of str
        Population-level predictors (numeric, or categorical coded as treatment dummies
        ``col[level]``).
    varying : sequence of str
        Predictors whose slopes also vary by group.
    parameterization : {"auto", "noncentered", "centered"} or dict
        For the whole model or per varying term (``{"floor": "centered"}``, or
        ``{"floor|county": "centered"}`` for one grouping factor only; unnamed terms stay
        non-centered). Correlated terms must share one parameterization. ``"auto"`` (the
        default) decides per term and grouping factor from the data, before sampling:
        centered when each group's own data pin its effect down (median no-pooling standard
        error under half a quick estimate of the between-group SD), else non-centered
        (:mod:`hiermodels.parameterization`); :meth:`parameterization_choice` shows the
        choices and their reasons. It is a choice of the full engine: with ``"auto"`` a
        Gaussian model with one or two nested grouping factors is fitted by the marginal
        engine (see :meth:`fit`), which samples no group effect and chooses nothing; a form
        given here asks for the full engine.
    hyperprior : str or Prior
        A key of :data:`hiermodels.priors.PRESETS`, scaled by ``sd(y) / sd(x)`` per term, or a
        prior object used as is for every group-level SD.
    correlated : bool
        Model the correlation of several varying terms (LKJ prior with ``lkj_eta``).
    priors : dict, optional
        Replace any default prior by name, e.g. ``{"floor": hm.priors.Normal(0, 1)}``.
    family : str
        A key of :data:`hiermodels.families.FAMILIES`: ``"gaussian"``, ``"student_t"``,
        ``"bernoulli"``, ``"binomial"``, ``"poisson"`` or ``"negative_binomial"``, each with
        its usual link (identity, logit or log).
    trials : str, optional
        For ``family="binomial"``: the column with the number of trials of each row.
    offset : str, optional
        A column added to the linear predictor with coefficient 1, e.g. ``log(exposure)`` for
        a Poisson rate model.
    se : str, optional
        A column of known standard errors of ``y`` (gaussian only): a meta-analysis, whose
        lowest-level variance is known, ``y_i ~ Normal(mu_i, se_i)`` with no residual SD
        (metafor's ``rma.mv(yi, vi, ...)`` with ``se = sqrt(vi)``; brms' ``y | se(sei)``).
        Predictors are moderators; grouping terms may be crossed or nested
        (``(1 | study/es_id)``).
    sigma : bool
        With ``se``: also estimate a residual SD, ``y_i ~ Normal(mu_i, sqrt(se_i^2 +
        sigma^2))`` (brms' ``se(sei, sigma = TRUE)``).

    Examples
    --------
    >>> import hiermodels as hm
    >>> radon = hm.datasets.load("radon")
    >>> model = hm.HierarchicalModel(radon, y="log_radon", group="county",
    ...                              predictors=["floor"], varying=["floor"])
    >>> model.default_priors().loc["floor|county_sigma", "prior"]
    HalfCauchy(beta=2.291)
    >>> sorted(model.build().named_vars)[:3]
    ['Intercept', 'Intercept_at_means', 'Intercept|county']

    A three-level meta-analysis (estimates ``yi`` with sampling variances ``vi``, effect
    sizes within studies), with no residual SD:

    >>> import numpy as np, pandas as pd
    >>> dat = pd.DataFrame({"yi": [0.1, 0.3, 0.2, 0.5, 0.4, 0.0],
    ...                     "vi": [0.01, 0.02, 0.01, 0.03, 0.02, 0.01],
    ...                     "study": [1, 1, 2, 2, 3, 3], "es_id": [1, 2, 1, 2, 1, 2]})
    >>> meta = hm.HierarchicalModel(dat.assign(sei=np.sqrt(dat["vi"])),
    ...                             "yi | se(sei) ~ 1 + (1 | study/es_id)")
    >>> "sigma" in meta.build().named_vars
    False
    """

    def __init__(
        self,
        data: pd.DataFrame,
        formula: str | None = None,
        *,
        y: str | None = None,
        group: str | Sequence[str] | None = None,
        predictors: Sequence[str] = (),
        varying: Sequence[str] = (),
        parameterization: str | Mapping[str, str] = "auto",
        hyperprior: str | Prior = "half_cauchy",
        correlated: bool = True,
        lkj_eta: float = 2.0,
        priors: Mapping[str, Prior] | None = None,
        family: str = "gaussian",
        trials: str | None = None,
        offset: str | None = None,
        se: str | None = None,
        sigma: bool = False,
    ):
        self.data = data
        self.formula = formula
        self.y = y
        self.group = group
        self.predictors = predictors
        self.varying = varying
        self.parameterization = parameterization
        self.hyperprior = hyperprior
        self.correlated = correlated
        self.lkj_eta = lkj_eta
        self.priors = priors
        self.family = family
        self.trials = trials
        self.offset = offset
        self.se = se
        self.sigma = sigma

    def _spec(self) -> HierarchicalSpec:
        """What the user asked, as a spec (no data read yet)."""
        terms = keywords_from_formula(
            self.formula,
            y=self.y,
            group=self.group,
            predictors=self.predictors,
            varying=self.varying,
            correlated=self.correlated,
            trials=self.trials,
            offset=self.offset,
            se=self.se,
            sigma=self.sigma,
        )
        spec = HierarchicalSpec.from_user(
            **terms,
            parameterization=self.parameterization,
            hyperprior=self.hyperprior,
            lkj_eta=self.lkj_eta,
            priors=self.priors,
            family=self.family,
        )
        return spec

    def _prepare_with_choice(self):
        data, spec, priors = self.prepared(resolve=False)
        spec, choices = choose(data, spec)
        return data, spec, priors, choices

    def prepared(
        self, *, resolve: bool = True
    ) -> tuple[GroupedData, HierarchicalSpec, dict[str, ResolvedPrior]]:
        """The data as the model reads them, the spec and the priors: what :meth:`build` and
        :meth:`fit` work from.

        Parameters
        ----------
        resolve : bool
            ``True``: every ``"auto"`` parameterization resolved to ``"centered"`` or
            ``"noncentered"`` (see :meth:`parameterization_choice`), as the full model is
            built. ``False``: the spec as given, which :func:`engine_for` needs to tell
            whether ``engine="auto"`` takes the marginal engine (that engine chooses nothing).

        Returns
        -------
        data : hiermodels.data.GroupedData
        spec : hiermodels.spec.HierarchicalSpec
        priors : dict of str to hiermodels.defaults.ResolvedPrior
            Every prior, resolved to numbers (the rows of :meth:`default_priors`).

        Raises
        ------
        HierModelsError
            For data or a spec that do not fit (a dask DataFrame is read by ``fit`` only).

        Examples
        --------
        >>> import hiermodels as hm
        >>> schools = hm.datasets.load("eight_schools")
        >>> model = hm.HierarchicalModel(schools, "y | se(sigma) ~ 1 + (1 | school)")
        >>> data, spec, priors = model.prepared()
        >>> len(data.y), spec.parameterization_of("Intercept", "school")
        (8, 'noncentered')
        """
        if not isinstance(resolve, bool):
            raise SpecError(f"resolve must be True or False, got {resolve!r}")
        if resolve:
            return self._prepare_with_choice()[:3]
        spec = self._spec()
        if is_dask_frame(self.data):
            raise SpecError(
                "a dask DataFrame is read by fit(engine='marginal') only, from aggregates (see "
                "docs/dask.md); for build(), default_priors() and the like, .compute() a sample"
            )
        frame = to_pandas(self.data)  # pandas as is; polars, pyarrow, any Arrow-stream table
        data = prepare(
            frame,
            y=spec.y,
            groups=spec.groups,
            predictors=spec.predictors,
            trials=spec.trials,
            offset=spec.offset,
            formula=spec.formula,
            se=spec.se,
        )
        get_family(spec.family).check(
            data.y, frame.index, spec.y, trials=data.trials, trials_name=spec.trials
        )
        return data, spec, resolve_priors(data, spec)

    def __repr__(self) -> str:
        what = self.formula or (
            f"y={self.y!r}, group={self.group!r}, predictors={list(self.predictors)}, "
            f"varying={list(self.varying)}"
        )
        try:
            data, spec, priors = self.prepared()
        except HierModelsError as error:
            return f"<HierarchicalModel {what}; not valid yet: {error}>"
        groups = ", ".join(f"{f.name} ({f.n_groups})" for f in data.factors) or "none"
        shown = list(priors.items())[:6]
        listed = "; ".join(f"{name} ~ {r.prior}" for name, r in shown)
        more = f"; ... {len(priors) - len(shown)} more" if len(priors) > len(shown) else ""
        return (
            f"<HierarchicalModel {what}\n  family {spec.family}, {len(data.y)} rows, groups: "
            f"{groups}\n  priors: {listed}{more} (all: default_priors())>"
        )

    def default_priors(self) -> pd.DataFrame:
        """Every prior the model will use, resolved to numbers, before fitting.

        One row per parameter: ``prior`` (the :class:`~hiermodels.priors.Prior`, printed
        compactly), ``role`` and ``rule`` (how the default was derived from the data),
        the LKJ prior of each factor's correlations included.
        """
        return priors_frame(self.prepared()[2])

    def parameterization_choice(self) -> pd.DataFrame:
        """How each varying term of each grouping factor is sampled by the full engine, and
        why (``fit``'s default ``engine="auto"`` may take the marginal engine instead, which
        samples no group effect: ``result.parameterization`` says what a fit did).

        One row per (term, factor): ``choice`` (``"centered"`` or ``"noncentered"``),
        ``ratio`` (for an automatic choice, the median over groups of the standard error of
        a group's own estimate over a quick estimate of the between-group SD; NaN when the
        choice was given) and ``reason``. See :mod:`hiermodels.parameterization`.

        Examples
        --------
        >>> import hiermodels as hm
        >>> schools = hm.datasets.load("eight_schools")
        >>> model = hm.HierarchicalModel(schools, "y | se(sigma) ~ 1 + (1 | school)")
        >>> model.parameterization_choice().loc[0, "choice"]
        'noncentered'
        """
        return choices_frame(self._prepare_with_choice()[3])

    def build(self) -> pm.Model:
        """A new ``pm.Model`` each call."""
        data, spec, priors = self.prepared()
        return build_model(data, spec, priors)

    def prior_predictive(self, draws: int = 500, *, random_seed=None) -> xr.DataTree:
        """Draws from the prior and the prior predictive distribution, before fitting.

        A DataTree with groups ``prior`` (every parameter) and ``prior_predictive`` (the
        outcome, dims chain, draw, obs): check that the defaults give plausible outcomes.
        """
        model = self.build()
        with model:
            return pm.sample_prior_predictive(draws=draws, random_seed=random_seed)

    def fit(
        self,
        draws: int = 1000,
        *,
        tune: int | None = 1000,
        chains: int = 4,
        random_seed=None,
        sampler: str | None = None,
        progressbar: bool | None = None,
        sample_kwargs: Mapping | None = None,
        engine: str = "auto",
    ) -> HierarchicalResult:
        """Sample the posterior with NUTS (nutpie by default) and check convergence.

        Parameters
        ----------
        draws, tune, chains : int
            Draws kept per chain, tuning steps per chain, number of chains.
        random_seed : int, optional
            Seed for reproducible draws.
        sampler : {"nutpie", "pymc", "numpyro", "blackjax"}, optional
            NUTS implementation (nutpie when installed).
        sample_kwargs : dict, optional
            Passed on to the sampler (e.g. ``{"target_accept": 0.95}``): nutpie's
            ``sample`` where nutpie is called directly (``max_treedepth`` is its
            ``maxdepth``; a keyword it does not take is a ``SpecError``), else ``pm.sample``.
            With ``engine="auto"``, keywords other than ``target_accept``,
            ``max_treedepth``/``maxdepth`` and ``cores`` go to ``pm.sample`` with the full
            engine.
        engine : {"auto", "full", "marginal"}
            ``"full"`` samples every group effect; ``"marginal"`` (Gaussian outcomes with one
            grouping factor or two nested ones, known standard errors included) integrates
            the group effects out exactly, samples only the population parameters from
            sufficient statistics (time independent of the number of rows; a refit of the
            same structure reuses the compiled model) and draws the group effects exactly
            afterwards: the same posterior, names and results (no parameterization is
            chosen: ``result.parameterization`` says "not applicable", and
            ``result.model``, the full model, is built when first used). ``"auto"`` (the
            default) takes the marginal engine where it applies and nothing asks for the
            full one: a ``parameterization`` other than ``"auto"`` for some effect, or a
            sampler other than nutpie (also ``sample_kwargs`` nutpie does not take, or a
            replaced ``pm.sample``), and the design is not wide and short (more than 12
            population coefficients and fewer than 50,000 rows: the marginal graph's compile
            grows with the square of the coefficients, the full engine's gradient with the
            rows); ``result.idata.posterior.attrs["engine"]`` says which ran. A dask
            DataFrame is fitted by ``"marginal"`` or ``"auto"`` only, always by the marginal
            engine (whatever the sampler, parameterization or width: its rows never reach
            this process), from sums computed by dask where its rows are
            (:mod:`hiermodels.lazy`, docs/dask.md).

        Warns
        -----
        ConvergenceWarning
            After sampling, for divergences, R-hat > 1.01 or bulk ESS < 100 per chain, saying
            what to do.
        PriorWarning
            For hyperpriors known to misbehave (inverse-gamma; flat with < 4 groups).
        """
        check_sampling_args(draws=draws, tune=tune, chains=chains, random_seed=random_seed)
        options = SamplingOptions(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            progressbar=progressbar,
            sample_kwargs=sample_kwargs,
        )
        if is_dask_frame(self.data):  # rows beyond memory: fit from aggregates (issue 17)
            from hiermodels.lazy_fit import fit_lazy

            return fit_lazy(self.data, self._spec(), options, engine=engine)
        data, spec, priors = self.prepared(resolve=False)
        for f, t in data.effects:
            message = priors[sigma_name(t, f.name)].prior.warning(f.n_groups)
            if message:
                warnings.warn(message, PriorWarning, stacklevel=2)
        if _use_marginal(engine, data, spec, options):
            spec = _marginal_spec(data, spec)
            from hiermodels.engines.marginal import fit_marginal

            idata, messages = fit_marginal(data, spec, priors, options)
            idata["posterior"].attrs["engine"] = "marginal"
            idata.attrs["parameterization"] = json.dumps(_marginal_rows(data))
            # the full model (prior_predictive, result.model) is built only when asked for:
            # the marginal engine does not sample it (0.1-0.8 s per fit, docs/performance.md)
            result = HierarchicalResult(
                idata,
                lambda: build_model(data, spec, priors),
                data,
                spec,
                priors,
                messages,
            )
            add_fit_groups(result)
            return result
        spec, choices = choose(data, spec)
        built = build(data, spec, priors)
        idata, messages = sample_checked(
            built.model,
            options,
            centered=built.centered,
            offsets=built.offsets,
            why=_automatic_reasons(choices),
            reuse=built.inputs,  # nutpie: a model compiled for this structure is reused
        )
        idata["posterior"].attrs["engine"] = "full"
        idata.attrs["parameterization"] = json.dumps([c.to_dict() for c in choices])
        result = HierarchicalResult(idata, built.model, data, spec, priors, messages)
        add_fit_groups(result)
        return result


MARGINAL_CHOICE = "not applicable"
MARGINAL_REASON = "the marginal engine integrates the group effects out; nothing is centered"


def _marginal_spec(data, spec: HierarchicalSpec) -> HierarchicalSpec:
    """The spec of a marginal fit: every ``"auto"`` read as ``"noncentered"`` without the
    no-pooling fit that choosing needs (the marginal engine samples no group effect; the
    full model of ``result.model``, saved fits and ``prior_predictive`` is then
    non-centered there)."""
    asked = {effect_name(t, f.name): spec.parameterization_of(t, f.name) for f, t in data.effects}
    if "auto" not in asked.values():
        return spec
    concrete = tuple(sorted((k, "noncentered" if v == "auto" else v) for k, v in asked.items()))
    return replace(spec, parameterization=concrete)


def _marginal_rows(data) -> list[dict]:
    """``result.parameterization`` of a marginal fit: one row per (term, factor), none
    chosen (the no-pooling fit that ``parameterization="auto"`` needs is skipped)."""
    return [
        {
            "term": t,
            "factor": f.name,
            "choice": MARGINAL_CHOICE,
            "ratio": None,
            "reason": MARGINAL_REASON,
            "automatic": False,
        }
        for f, t in data.effects
    ]


def _automatic_reasons(choices: Sequence[Choice]) -> dict[str, str]:
    """For the convergence messages: each automatically chosen effect (and its offset), ->
    "the automatic choice was X because ..."."""
    out = {}
    for c in choices:
        if c.automatic:
            text = f"the automatic choice was {c.choice} because {c.reason}"
            out[effect_name(c.term, c.factor)] = text
            out[f"{effect_name(c.term, c.factor)}_offset"] = text
    return out


def fit_hierarchical(
    data: pd.DataFrame,
    formula: str | None = None,
    *,
    y: str | None = None,
    group: str | Sequence[str] | None = None,
    predictors: Sequence[str] = (),
    varying: Sequence[str] = (),
    parameterization: str | Mapping[str, str] = "auto",
    hyperprior: str | Prior = "half_cauchy",
    correlated: bool = True,
    lkj_eta: float = 2.0,
    priors: Mapping[str, Prior] | None = None,
    family: str = "gaussian",
    trials: str | None = None,
    offset: str | None = None,
    se: str | None = None,
    sigma: bool = False,
    draws: int = 1000,
    tune: int | None = 1000,
    chains: int = 4,
    random_seed=None,
    sampler: str | None = None,
    progressbar: bool | None = None,
    sample_kwargs: Mapping | None = None,
    engine: str = "auto",
) -> HierarchicalResult:
    """Fit a varying-intercepts / varying-slopes regression in one call.

    Same arguments as :class:`HierarchicalModel` and :meth:`HierarchicalModel.fit`.

    Examples
    --------
    >>> import hiermodels as hm
    >>> radon = hm.datasets.load("radon")
    >>> res = hm.fit_hierarchical(radon, y="log_radon", group="county",
    ...                           predictors=["floor"], varying=["floor"],
    ...                           random_seed=1)  # doctest: +SKIP
    >>> res.summary().loc["floor", "mean"]  # doctest: +SKIP
    -0.64
    """
    model = HierarchicalModel(
        data,
        formula,
        y=y,
        group=group,
        predictors=predictors,
        varying=varying,
        parameterization=parameterization,
        hyperprior=hyperprior,
        correlated=correlated,
        lkj_eta=lkj_eta,
        priors=priors,
        family=family,
        trials=trials,
        offset=offset,
        se=se,
        sigma=sigma,
    )
    return model.fit(
        draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        progressbar=progressbar,
        sample_kwargs=sample_kwargs,
        engine=engine,
    )


def engine_for(
    data: GroupedData,
    spec: HierarchicalSpec,
    *,
    engine: str = "auto",
    options: SamplingOptions | None = None,
) -> str:
    """Which engine :meth:`HierarchicalModel.fit` runs for ``engine``: "marginal" or "full".

    Parameters
    ----------
    data, spec
        As :meth:`HierarchicalModel.prepared` returns them; with ``resolve=False`` for
        ``engine="auto"`` (a resolved spec names a parameterization for every effect, which
        only the full engine samples, so "auto" would always answer "full").
    engine : {"auto", "full", "marginal"}
        As asked of :meth:`HierarchicalModel.fit`.
    options : hiermodels.sampling.SamplingOptions, optional
        How ``fit`` would sample: ``"auto"`` takes the full engine for a sampler other than
        nutpie directly (``None``: sampling is not considered).

    Returns
    -------
    str
        ``"marginal"`` or ``"full"``.

    Raises
    ------
    SpecError
        For an unknown ``engine``, or ``engine="marginal"`` where it does not apply (why).

    Examples
    --------
    >>> import hiermodels as hm
    >>> from hiermodels.models import engine_for
    >>> schools = hm.datasets.load("eight_schools")
    >>> model = hm.HierarchicalModel(schools, "y | se(sigma) ~ 1 + (1 | school)")
    >>> data, spec, _ = model.prepared(resolve=False)
    >>> engine_for(data, spec), engine_for(data, spec, engine="full")
    ('marginal', 'full')
    """
    return "marginal" if _use_marginal(engine, data, spec, options) else "full"


def _use_marginal(engine: str, data, spec, options: SamplingOptions | None = None) -> bool:
    """Whether to fit with the marginal engine; ``engine="marginal"`` where it does not apply
    is an error that says why. ``"auto"`` takes it where it applies, unless the user asked
    for what only the full engine does: a centered or non-centered form for some effect, or
    sampling other than by nutpie directly (``options``; see :meth:`HierarchicalModel.fit`)."""
    if engine not in ENGINES:
        raise SpecError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "full":
        return False
    from hiermodels.engines.marginal import marginal_supported

    ok, reason = marginal_supported(data, spec)
    if engine == "marginal" and not ok:
        raise SpecError(f"engine='marginal' does not apply here: {reason}; use engine='full'")
    if engine == "auto" and ok:
        forms = {spec.parameterization_of(t, f.name) for f, t in data.effects}
        ok = forms <= {"auto"} and (options is None or nutpie_direct(options))
        # the marginal graph holds the population sums entry by entry, so its compile grows
        # with the square of the number of coefficients (30: 54 s against the full engine's
        # 25 s), while the full engine's gradients grow with the rows
        ok = ok and (len(data.terms) <= AUTO_MAX_TERMS or len(data.y) >= AUTO_MIN_ROWS)
    return ok


# engine="auto" takes the marginal engine for at most this many population coefficients
# (intercept included), or for any number with at least this many rows
# (benchmarks/results/coldstart.json, docs/performance.md)
AUTO_MAX_TERMS = 12
AUTO_MIN_ROWS = 50_000
