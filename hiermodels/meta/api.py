"""Random-effects meta-analysis and meta-regression from study estimates: :func:`meta_analysis`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hiermodels.data import numeric_column, require_columns, require_finite
from hiermodels.engines.mcmc import sample_checked
from hiermodels.errors import DataError, PriorWarning, SpecError, format_rows
from hiermodels.meta.builder import build_meta_model, coefficient_names
from hiermodels.meta.data import StudyData, prepare_studies
from hiermodels.meta.engines import exact_fit
from hiermodels.meta.result import MetaAnalysisResult
from hiermodels.numerics import effect_sizes
from hiermodels.priors import Prior, resolve_hyperprior

__all__ = ["METHODS", "effect_sizes_2x2", "meta_analysis"]

METHODS = ("exact", "mcmc")
RESERVED = {"mu", "tau", "theta", "theta_offset", "theta_new"}
MEASURES = {"log_rr": effect_sizes.log_risk_ratio, "log_or": effect_sizes.log_odds_ratio}


def default_tau_scale(se: np.ndarray) -> float:
    """Data scale of tau for the presets: the root mean square of the standard errors.

    A tau of this size is as large as a typical study's sampling error (I^2 near 50%), so a
    half-Cauchy or half-normal with this scale is weakly informative on any outcome scale.
    """
    return float(np.sqrt(np.mean(np.square(se))))


def meta_analysis(
    data: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    study: str | None = None,
    moderators: Sequence[str] = (),
    mu_prior: Prior | None = None,
    hyperprior: str | Prior = "half_cauchy",
    method: str = "exact",
    parameterization: str = "noncentered",
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
    study : str, optional
        Column of unique study labels (default: the row index).
    moderators : sequence of str
        Study-level covariates (meta-regression); categorical ones become dummies.
    mu_prior : Prior, optional
        Prior on mu (the intercept): None is flat; ``hm.priors.Normal(0, 5)`` is normal.
        Moderator coefficients are flat.
    hyperprior : str or Prior
        A key of :data:`hiermodels.priors.PRESETS`, scaled by the root mean square of the
        standard errors (the ``*_logor`` and ``turner_*`` presets have fixed scales for log
        odds ratios), or a prior object such as ``hm.priors.HalfCauchy(25)``.
    method : {"exact", "mcmc"}
        ``"exact"`` integrates over tau numerically (milliseconds, numpy/scipy only) and
        draws independent samples; ``"mcmc"`` samples the same model with NUTS.
    parameterization : {"noncentered", "centered"}
        For ``method="mcmc"``.
    draws, chains : int
        Posterior draws per chain (exact draws are independent, split into ``chains``).
    tune, random_seed, sampler, progressbar, sample_kwargs
        As in :meth:`hiermodels.HierarchicalModel.fit` (``random_seed`` also seeds the
        exact draws).

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> meta = hm.meta_analysis(schools, estimate="y", se="sigma", study="school",
    ...                         hyperprior=hm.priors.HalfCauchy(25), random_seed=1)
    >>> bool(meta.summary().loc["tau", "median"] > 0)
    True
    """
    if method not in METHODS:
        raise SpecError(f"unknown method {method!r}; use 'exact' or 'mcmc'")
    _check_sampling(draws=draws, chains=chains, tune=tune, parameterization=parameterization)
    if mu_prior is not None and not isinstance(mu_prior, Prior):
        raise SpecError(f"mu_prior must be None (flat) or a prior object, got {mu_prior!r}")
    studies = prepare_studies(data, estimate=estimate, se=se, study=study, moderators=moderators)
    clash = RESERVED.intersection({studies.estimate, studies.study, *studies.terms})
    if clash:
        raise SpecError(f"column name(s) {sorted(clash)} clash with model names; rename them")
    tau_prior = resolve_hyperprior(hyperprior, scale=default_tau_scale(studies.se))
    message = tau_prior.warning(studies.k)
    if message:
        warnings.warn(message, PriorWarning, stacklevel=2)
    names = coefficient_names(studies)
    rng = np.random.default_rng(random_seed)
    exact = exact_fit(studies, mu_prior=mu_prior, tau_prior=tau_prior)
    if method == "exact":
        # draws are made when idata is first used: the summaries need none
        idata, model, diagnostics = None, None, ()
    else:
        model = build_meta_model(
            studies, mu_prior=mu_prior, tau_prior=tau_prior, parameterization=parameterization
        )
        idata, diagnostics = sample_checked(
            model,
            centered=["theta"] if parameterization == "centered" else [],
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            sample_kwargs=sample_kwargs,
        )
        _add_theta_new(idata, studies, names, rng)
    return MetaAnalysisResult(
        data=studies,
        method=method,
        mu_prior=mu_prior,
        tau_prior=tau_prior,
        exact=exact,
        model=model,
        diagnostics=diagnostics,
        _idata=idata,
        _draw_spec=(draws, chains, rng),
    )


PARAMETERIZATIONS = ("noncentered", "centered")


def _check_sampling(*, draws, chains, tune, parameterization) -> None:
    """Refuse sampling arguments that pm.sample or the exact draws would choke on later."""
    for name, value, least in (("draws", draws, 1), ("chains", chains, 1), ("tune", tune, 0)):
        if name == "tune" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise SpecError(
                f"{name} must be an integer >= {least}, got {value!r}; e.g. {name}="
                f"{ {'draws': 1000, 'chains': 4, 'tune': 1000}[name] }"
            )
    if parameterization not in PARAMETERIZATIONS:
        raise SpecError(
            f"unknown parameterization {parameterization!r}; use 'noncentered' or 'centered'"
        )


def _add_theta_new(idata, studies: StudyData, names: list[str], rng) -> None:
    """theta_new ~ Normal(x_bar' beta, tau): the effect in a new study, per posterior draw."""
    post = idata["posterior"]
    x_bar = studies.X.mean(axis=0)
    mean = sum(np.asarray(post[name]) * x_bar[k] for k, name in enumerate(names))
    tau = np.asarray(post["tau"])
    new = mean + tau * rng.standard_normal(tau.shape)
    idata["posterior"] = post.to_dataset().assign(theta_new=(("chain", "draw"), new))


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
    ``sei`` added.

    Examples
    --------
    >>> import hiermodels as hm
    >>> bcg = hm.effect_sizes_2x2(hm.datasets.load("bcg"), ai="tpos", bi="tneg",
    ...                           ci="cpos", di="cneg")
    >>> round(float(bcg.loc[0, "yi"]), 4), round(float(bcg.loc[0, "sei"]) ** 2, 4)  # metafor
    (-0.8893, 0.3256)
    """
    if measure not in MEASURES:
        raise SpecError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
    if isinstance(add, bool) or not isinstance(add, (int, float, np.number)) or not add >= 0:
        raise SpecError(
            f"add must be a number >= 0 (added to the cells of tables with a zero), got {add!r}; "
            "use add=0.5 (metafor's default) or add=0"
        )
    if not np.isfinite(add):
        raise SpecError(f"add must be finite, got {add!r}; use add=0.5 (metafor's default)")
    cells = [ai, bi, ci, di]
    require_columns(data, cells)
    require_finite(data, cells)
    values = [numeric_column(data, c, "count") for c in cells]
    for col, v in zip(cells, values, strict=True):
        bad = data.index[v < 0]
        if len(bad):
            raise DataError(
                f"count column {col!r} has negative values ({format_rows(bad)}); counts must "
                "be >= 0 (metafor: 'One or more counts are negative')"
            )
        bad = data.index[v != np.round(v)]
        if len(bad):
            # metafor's escalc takes any non-negative number silently; here a fraction is
            # taken for a data error (a rate or a proportion in a count column)
            raise DataError(
                f"count column {col!r} has non-integer values ({format_rows(bad)}, e.g. "
                f"{v[v != np.round(v)][0]:g}); counts must be whole numbers of patients: check "
                f"those rows, or round them with df[{col!r}].round() if they are reconstructed "
                "counts"
            )
    for arm, (events, rest) in (("treated", (ai, bi)), ("control", (ci, di))):
        total = values[cells.index(events)] + values[cells.index(rest)]
        bad = data.index[total == 0]
        if len(bad):
            raise DataError(
                f"the {arm} arm has no patients ({events!r} + {rest!r} = 0 in "
                f"{format_rows(bad)}), so its risk is undefined; drop those rows"
            )
    yi, sei = MEASURES[measure](*values, add=add)
    out = data.copy()
    out["yi"], out["sei"] = yi, sei
    return out
