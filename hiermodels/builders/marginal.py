"""The Gaussian hierarchical model with its group effects integrated out (issue 17).

For a gaussian outcome and one grouping factor the group effects enter linearly, so they
integrate out in closed form (BDA3 §15.2; Laird & Ware 1982). Per group j, with
``r_j = y_j - offset_j - X_j beta`` and ``Sigma = L L'`` the covariance of the q varying
terms' deviations::

    y_j | beta, sigma, Sigma ~ MvNormal(X_j beta + offset_j, V_j),  V_j = sigma^2 I + Z_j Sigma Z_j'
    log|V_j|        = n_j log sigma^2 + log|B_j|,          B_j = I_q + L' Z_j'Z_j L / sigma^2
    r_j' V_j^-1 r_j = (r_j'r_j - w_j' B_j^-1 w_j / sigma^2) / sigma^2,   w_j = L' Z_j' r_j

(the matrix determinant lemma and the Woodbury identity with ``U = Z_j L``; Harville 1977).
Written with ``L`` instead of ``Sigma^-1``, ``B_j`` stays well conditioned as a group SD goes
to zero, where the posterior of a half-Cauchy SD often has mass. Everything the likelihood
needs of the data are per-group sums, computed once in numpy (:func:`sufficient_statistics`):
``Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'y_j`` per group and ``X'X``, ``X'y``, ``y'y`` over all rows,
so NUTS runs over the population parameters only, at a cost per gradient that does not grow
with the number of rows. The q x q algebra is unrolled into elementwise operations on
vectors over groups (:mod:`hiermodels.numerics.unrolled`), which PyTensor fuses into one
loop; the same helpers draw the group effects afterwards in numpy. With known standard
errors (``se=``, no residual SD) the sums are weighted by ``1 / se_i^2`` and ``sigma = 1``
(:class:`SufficientStatistics`); with ``se=`` and a residual SD the weights ``1 / (se_i^2 +
sigma^2)`` change with ``sigma``, so the same sums are summed from the rows at every gradient
(:class:`RowStatistics`); two nested factors, with or without ``se=``:
:mod:`hiermodels.builders.marginal_nested`.

Every number that comes from the data (the sums, and the data-scaled prior parameters, the
centring and the standardizing) enters the graph as ``pm.Data``, so a compiled model can be
reused for new data of the same structure (:func:`structure_key`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hiermodels.builders.hierarchical import (
    _baked,
    _FromPrior,
    _prior_numbers,
    _Standardize,
    _standardizing,
)
from hiermodels.builders.marginal_stats import (
    ROW_GROUP,
    ROWS,
    RowStatistics,
    SufficientStatistics,
    marginal_loglik,
    residual_outcome,
    row_statistics,
    row_weights,
    stats_entries,
    sufficient_statistics,
)
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.defaults import ResolvedPrior
from hiermodels.families import get_family
from hiermodels.names import (
    INTERCEPT,
    INTERCEPT_AT_MEANS,
    RESIDUAL_SIGMA,
    corr_name,
    sigma_name,
)
from hiermodels.numerics.unrolled import (
    cholesky_unrolled,
    precision_factor,
    sandwich,
    solve_lower,
    solve_upper,
    transpose_times,
)
from hiermodels.numerics.unrolled import total as _sum
from hiermodels.priors import Prior
from hiermodels.spec import HierarchicalSpec

__all__ = [
    "MarginalInputs",
    "RowStatistics",
    "SufficientStatistics",
    "build_marginal",
    "cholesky_unrolled",
    "marginal_inputs",
    "marginal_loglik",
    "precision_factor",
    "residual_outcome",
    "row_statistics",
    "row_weights",
    "sandwich",
    "solve_lower",
    "solve_upper",
    "stats_entries",
    "sufficient_statistics",
    "transpose_times",
]

LOGLIK_NAME = "marginal_loglik"
SCALARS, VECTORS = "marginal::scalars", "marginal::vectors"


# -- the numbers the graph reads, and the structure a compiled graph depends on --------------
@dataclass(frozen=True, eq=False)
class MarginalInputs:
    """What :func:`build_marginal` puts in the graph.

    ``values`` are its two ``pm.Data``: every data-derived number, the scalars in one vector
    (``marginal::scalars``) and the per-group vectors as the rows of one matrix
    (``marginal::vectors``), at the positions ``layout`` names. Two ``pm.Data`` rather than
    one per number: nutpie's compiled logp unpacks each shared variable with code of its
    own, and 27 of them took 20 s to compile where these two take a fraction of that.
    ``key`` is everything else the graph depends on (names, shapes, prior families, the
    layout): two inputs with equal keys give the same graph up to the values of the data.
    """

    values: dict[str, np.ndarray]
    key: tuple
    stats: SufficientStatistics
    standardize: dict[str, tuple]
    layout: tuple[tuple[str, ...], tuple[str, ...]]
    covariance: str = "separate"


def _data_name(*parts: str) -> str:
    return "marginal::" + "::".join(parts)


def _flat_entries(entries: dict) -> dict[str, object]:
    """``stats_entries`` as ``pm.Data`` name -> value (``ZtX::1::0`` for ``ZtX[1][0]``)."""
    out = {}

    def walk(value, path):
        if isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, str(i)))
        else:
            out[_data_name("stats", *path)] = np.asarray(value, dtype=float)

    for name, value in entries.items():
        walk(value, (name,))
    return out


def _nest(entries: dict, shared: dict) -> dict:
    """``entries`` with every number replaced by its ``pm.Data`` of :func:`_flat_entries`."""

    def walk(value, path):
        if isinstance(value, list):
            return [walk(v, (*path, str(i))) for i, v in enumerate(value)]
        return shared[_data_name("stats", *path)]

    return {name: walk(value, (name,)) for name, value in entries.items()}


def _prior_names(data: GroupedData, spec: HierarchicalSpec) -> list[str]:
    sds = [sigma_name(t, f.name) for f, t in data.effects]
    return [*data.terms, *sds, *(a.name for a in spec.aux)]


COVARIANCES = ("separate", "cholesky")


def marginal_inputs(
    data: GroupedData,
    spec: HierarchicalSpec,
    priors: dict[str, ResolvedPrior],
    *,
    covariance: str = "separate",
    stats=None,
    scales: tuple[float, float, dict[str, float]] | None = None,
) -> MarginalInputs:
    """The sufficient statistics and every data-derived number of the marginal model.

    ``stats`` are the sums the likelihood reads: by default :func:`sufficient_statistics`
    of the one grouping factor (:func:`row_statistics` for ``se=`` with ``sigma=True``,
    whose per-row data go in as two more ``pm.Data``, ``ROWS`` and ``ROW_GROUP``); for
    nested factors
    :func:`hiermodels.builders.marginal_nested.nested_statistics` (any object with
    ``entries()``, ``loglik(...)`` and ``structure``). ``scales`` are the ``(centre, sd_y,
    sd_x)`` the population coefficients are sampled standardized by, by default
    ``data_scales(data, ...)``: other data's (``hm.calibrate`` keeps the user's data's, so
    that every simulated data set has one graph) or the aggregates of rows not at hand
    (:mod:`hiermodels.lazy_fit`). With both given, only the names and factors of ``data``
    are read, not its rows.

    ``covariance`` says how correlated terms' SDs and correlations are sampled (the same
    prior either way): ``"separate"``, each SD on its own and the correlations by
    ``pm.LKJCorr`` (``{group}_corr_chol``); ``"cholesky"``, jointly by
    ``pm.LKJCholeskyCov`` (``{group}_chol_cov``) as the full model samples them. Its
    unconstrained coordinates hold ``sd * rho`` next to ``log(sd sqrt(1 - rho^2))``: a
    funnel when an SD is near zero, where the marginal posterior often has its mode. On
    radon (floor SD near 0) the separate form gave 3-7x the min bulk ESS (567-713 against
    95-221 of 2000 draws, seeds 3 and 170), so it is the default.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
    if stats is None:
        with_sigma = data.se is not None and spec.se_sigma
        stats = row_statistics(data) if with_sigma else sufficient_statistics(data)
    entries = _flat_entries(stats.entries())
    structure, numbers = _prior_numbers(priors, _prior_names(data, spec))
    entries |= {_data_name("prior", name, k): v for (name, k), v in numbers.items()}
    # sampled standardized as the full model samples the coefficients
    standardize = _standardizing(data, get_family(spec.family), priors, scales)
    entries[_data_name("lkj_eta")] = np.asarray(spec.lkj_eta, dtype=float)
    layout = (
        tuple(k for k, v in entries.items() if v.ndim == 0),
        tuple(k for k, v in entries.items() if v.ndim == 1),
    )
    values = {
        SCALARS: np.array([entries[k] for k in layout[0]]),
        VECTORS: np.stack([entries[k] for k in layout[1]]),
    } | (stats.row_values() if hasattr(stats, "row_values") else {})
    key = (
        "marginal-gaussian",
        covariance,
        spec.family,
        data.terms,
        tuple((f.name, f.varying, f.correlated) for f in data.factors),
        stats.structure,
        tuple(a.name for a in spec.aux),
        tuple(structure),
        tuple(standardize.items()),
        layout,
        tuple((k, v.shape) for k, v in values.items()),
    )
    return MarginalInputs(values, key, stats, standardize, layout, covariance)


# -- the PyMC graph ---------------------------------------------------------------------------
def _prior_params(prior: Prior, name: str, shared: dict) -> dict:
    return {k: shared[_data_name("prior", name, k)] for k in prior.pymc_params()}


def _create(prior, name, shared, prior_name=None, standardize=None):
    """``prior`` as variable ``name``, its parameters read from ``pm.Data`` (those of the
    prior named ``prior_name``, default ``name``), sampled standardized as the full model
    samples it."""
    if _baked(prior):
        return prior.create(name)
    kwargs = {}
    if standardize is not None and standardize[0] == "prior":
        kwargs["default_transform"] = _FromPrior(*standardize[1:])
    elif standardize is not None:
        kwargs["default_transform"] = _Standardize(*standardize[1:])
    params = _prior_params(prior, prior_name or name, shared)
    return getattr(pm, prior._pymc_name)(name, **params, **kwargs)


def _cholesky(f: GroupFactor, priors, shared: dict, covariance: str) -> list[list]:
    """The Cholesky factor of the covariance of the factor's deviations, as nested lists,
    with the variables named as :func:`builders.hierarchical._correlated_cholesky` names
    them (``covariance``: see :func:`marginal_inputs`)."""
    group, q = f.name, len(f.varying)
    names = [sigma_name(t, group) for t in f.varying]
    sd_priors = [priors[n].prior for n in names]
    if not (f.correlated and q > 1):
        sds = [_create(p, n, shared) for p, n in zip(sd_priors, names, strict=True)]
        return [[sds[i] if i == j else None for j in range(q)] for i in range(q)]
    dims = (f"{group}_term", f"{group}_term_bis")
    eta = shared[_data_name("lkj_eta")]
    kinds = {type(p) for p in sd_priors}
    stackable = len(kinds) == 1 and sd_priors[0].vectorizable and not _baked(sd_priors[0])
    if covariance == "cholesky" and stackable:
        params = [_prior_params(p, n, shared) for p, n in zip(sd_priors, names, strict=True)]
        stacked = {k: pt.stack([ps[k] for ps in params]) for k in params[0]}
        sd_dist = getattr(pm, sd_priors[0]._pymc_name).dist(**stacked)
        chol, corr, sds = pm.LKJCholeskyCov(
            f"{group}_chol_cov",
            n=q,
            eta=eta,
            sd_dist=sd_dist,
            compute_corr=True,
            store_in_trace=False,
        )
        for k, name in enumerate(names):
            pm.Deterministic(name, sds[k])
        pm.Deterministic(corr_name(group), corr, dims=dims)
    else:
        sds = pt.stack([_create(p, n, shared) for p, n in zip(sd_priors, names, strict=True)])
        chol_corr = pm.LKJCorr(f"{group}_corr_chol", n=q, eta=eta)
        pm.Deterministic(corr_name(group), chol_corr @ chol_corr.T, dims=dims)
        chol = sds[:, None] * chol_corr
    return [[chol[i, j] if j <= i else None for j in range(q)] for i in range(q)]


def build_marginal(
    data: GroupedData,
    spec: HierarchicalSpec,
    priors: dict[str, ResolvedPrior],
    inputs: MarginalInputs | None = None,
    *,
    covariance: str = "separate",
) -> pm.Model:
    """A new ``pm.Model``: the population parameters of the full model, with the exact
    marginal likelihood of ``y`` as a ``pm.Potential`` (``marginal_loglik``).

    Model (one grouping factor, gaussian outcome; nested factors: see
    :mod:`hiermodels.builders.marginal_nested`)::

        y_j   ~ MvNormal(X_j beta + offset_j, sigma^2 I + Z_j Sigma Z_j')
              (known standard errors: diag(se_j^2) for sigma^2 I;
               with sigma=True: diag(se_j^2 + sigma^2))
        Sigma = S R S,  S = diag(tau_1..tau_q),  R ~ LKJ(eta)     (correlated; else R = I)
        beta, sigma, tau ~ the priors of the full model (``resolve_priors``)

    The priors, transforms and names are those of
    :func:`hiermodels.builders.hierarchical.build` without the group effects: the sampled
    ``Intercept_at_means`` (predictors centred, coefficients standardized), the
    Deterministic ``Intercept``, ``{term}|{group}_sigma`` and ``{group}_corr``; with
    ``covariance="cholesky"`` also the full model's ``{group}_chol_cov``, by default the
    SDs and ``{group}_corr_chol`` instead (see :func:`marginal_inputs`). ``inputs`` (from
    :func:`marginal_inputs`) saves recomputing them.
    """
    if inputs is None:
        inputs = marginal_inputs(data, spec, priors, covariance=covariance)
    coords = {}
    for f in data.factors:
        coords[f"{f.name}_term"] = list(f.varying)
        if f.correlated and len(f.varying) > 1:
            coords[f"{f.name}_term_bis"] = list(f.varying)
    with pm.Model(coords=coords) as model:
        scalars = pm.Data(SCALARS, inputs.values[SCALARS])
        vectors = pm.Data(VECTORS, inputs.values[VECTORS])
        shared = {name: scalars[i] for i, name in enumerate(inputs.layout[0])}
        shared |= {name: vectors[i] for i, name in enumerate(inputs.layout[1])}
        stats = _nest(inputs.stats.entries(), shared)
        stats |= {k: pm.Data(k, v) for k, v in inputs.values.items() if k in (ROWS, ROW_GROUP)}
        slopes = [t for t in data.terms if t != INTERCEPT]
        rules = inputs.standardize
        coefs = {t: _create(priors[t].prior, t, shared, t, rules.get(t)) for t in slopes}
        if slopes:
            first = _create(
                priors[INTERCEPT].prior,
                INTERCEPT_AT_MEANS,
                shared,
                INTERCEPT,
                rules.get(INTERCEPT_AT_MEANS),
            )
            means = stats["means"]
            shift = _sum(coefs[t] * means[data.terms.index(t)] for t in slopes)
            pm.Deterministic(INTERCEPT, first - shift)
        else:
            first = _create(
                priors[INTERCEPT].prior, INTERCEPT, shared, INTERCEPT, rules.get(INTERCEPT)
            )
        centred = [first, *(coefs[t] for t in slopes)]
        delta = [c - s for c, s in zip(centred, stats["shift"], strict=True)]
        chols = [_cholesky(f, priors, shared, inputs.covariance) for f in data.factors]
        # with known standard errors and no residual SD the sums are weighted by 1 / se^2
        has_sigma = RESIDUAL_SIGMA in (a.name for a in spec.aux)
        sigma = _create(priors[RESIDUAL_SIGMA].prior, RESIDUAL_SIGMA, shared) if has_sigma else 1.0
        loglik = inputs.stats.loglik(pt, stats=stats, delta=delta, sigma=sigma, chols=chols)
        pm.Potential(LOGLIK_NAME, loglik)
    return model
