"""``engine="marginal"``: NUTS over the population parameters, group effects drawn exactly.

For a gaussian outcome with one grouping factor the group effects integrate out in closed
form (:mod:`hiermodels.builders.marginal`), so NUTS samples only beta, sigma and the group
SDs and correlations, at a cost per gradient that depends on the number of groups, not of
rows. Given those, each group's deviations are Gaussian (BDA3 §15.4; Lindley & Smith 1972)::

    b_j | y, theta ~ MvNormal(A_j^-1 Z_j'(y_j - X_j beta - offset_j) / sigma^2, A_j^-1),
    A_j = Z_j'Z_j / sigma^2 + Sigma^-1

and are drawn exactly for every posterior draw, vectorized over draws x groups. Writing
``b_j = L c_j`` with ``Sigma = L L'``, ``c_j`` has precision ``B_j = I + L'Z_j'Z_j L/sigma^2``
and mean ``B_j^-1 L'Z_j'r_j / sigma^2``: the same factor as the likelihood, and no inverse of
``Sigma``, which is near singular when a group SD is near zero. The posterior holds every
name, dim and coordinate of the full model's (``{term}|{group}`` with the group dim) but the
non-centered offsets, so results, predictions, LOO and saved fits work unchanged.

Also: known standard errors (sums weighted by ``1 / se_i^2``; with a residual SD by
``1 / (se_i^2 + sigma^2)``, summed from the rows per gradient and per draw), and two
nested factors, whose effects are drawn jointly level by level
(:mod:`hiermodels.builders.marginal_nested`).
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr
from pymc.backends.arviz import patch_nutpie_idata

from hiermodels import progress
from hiermodels.builders.marginal import (
    MarginalInputs,
    RowStatistics,
    SufficientStatistics,
    build_marginal,
    marginal_inputs,
    precision_factor,
    solve_lower,
    solve_upper,
    transpose_times,
)
from hiermodels.builders.marginal_nested import (
    NestedRowStatistics,
    NestedStatistics,
    draw_nested_effects,
    nested_factors,
    nested_row_statistics,
    nested_statistics,
)
from hiermodels.data import GroupedData, GroupFactor
from hiermodels.defaults import ResolvedPrior
from hiermodels.engines.compiled import compiled_model, is_cached
from hiermodels.engines.mcmc import check_convergence, nutpie_sample, resolve_sampler, sample
from hiermodels.errors import SpecError
from hiermodels.names import INTERCEPT, INTERCEPT_AT_MEANS, effect_name, sigma_name
from hiermodels.sampling import SamplingOptions, sampling_options
from hiermodels.spec import HierarchicalSpec

__all__ = ["cholesky_draws", "draw_group_effects", "fit_marginal", "marginal_supported"]

# draws x groups x q^2 values per block of the conditional draws: bounds the temporaries
_BLOCK = 2_000_000


def marginal_supported(data: GroupedData, spec: HierarchicalSpec) -> tuple[bool, str]:
    """Whether ``engine="marginal"`` can fit this model, and if not, why (for ``"auto"``).

    It needs a gaussian outcome (identity link) and one grouping factor, or two nested ones
    (every level of the inner inside one level of the outer, read from the data); offsets
    are fine, and so are known standard errors (``se=``: the sums are weighted by ``1 /
    se_i^2``; with ``sigma=True`` by ``1 / (se_i^2 + sigma^2)``, summed from the rows at every
    gradient, :class:`~hiermodels.builders.marginal.RowStatistics`, or per inner group for
    nested factors, :class:`~hiermodels.builders.marginal_nested.NestedRowStatistics`). Not
    supported, so left to the full engine: crossed or more than two factors.
    """
    if spec.family != "gaussian":
        return False, f"family {spec.family!r}: the group effects integrate out for 'gaussian' only"
    if not data.factors:
        return False, "the model has no grouping factor, so there are no group effects to integrate"
    names = [f.name for f in data.factors]
    if len(data.factors) > 2:
        return False, f"{len(names)} grouping factors {names}; the marginal engine takes 1 or 2"
    if len(data.factors) == 2:
        found = nested_factors(data)
        if found is None:
            return False, (
                f"grouping factors {names} are crossed (a level of each shares rows with "
                "several levels of the other); the marginal engine takes nested factors only"
            )
        outer, inner = found
        return True, f"gaussian outcome with {inner.name!r} nested in {outer.name!r}"
    return True, "gaussian outcome with one grouping factor"


def fit_marginal(
    data: GroupedData,
    spec: HierarchicalSpec,
    priors: dict[str, ResolvedPrior],
    options: SamplingOptions | None = None,
    *,
    inputs: MarginalInputs | None = None,
    scales: tuple[float, float, dict[str, float]] | None = None,
) -> tuple[xr.DataTree, tuple[str, ...]]:
    """Sample the marginal model, then draw the group effects exactly.

    Parameters
    ----------
    data, spec, priors
        As ``HierarchicalModel.prepared()`` returns them.
    options : SamplingOptions, optional
        Draws, chains, seed, sampler. With nutpie (the default when installed) the compiled
        model is kept in the process and reused for data of the same structure
        (:mod:`hiermodels.engines.compiled`); other samplers go through ``pm.sample``.
        ``random_seed`` seeds both the sampler and the group-effect draws.
    inputs : MarginalInputs, optional
        The sums and data-derived numbers, when they come from elsewhere than the rows of
        ``data`` (a dask DataFrame's aggregates, :mod:`hiermodels.lazy_fit`); by default
        :func:`~hiermodels.builders.marginal.marginal_inputs` of ``data``.
    scales : tuple, optional
        The ``(centre, sd_y, sd_x)`` the population coefficients are sampled standardized by
        (``marginal_inputs(scales=)``), by default ``data``'s own. The standardizing changes
        what NUTS sees, not the model; fixed scales keep one graph, and so one compiled
        model, for every data set of a structure (``hm.calibrate`` refits each simulated
        data set with the user's data's). Not with ``inputs``, which hold their own.

    Returns
    -------
    idata : xarray.DataTree
        ``posterior`` with the full model's names, dims and coords (every population
        parameter, ``{term}|{group}_sigma``, ``{group}_corr``, ``{term}|{group}``), and
        ``sample_stats``, as ``pm.sample`` gives them.
    messages : tuple of str
        The convergence warnings given (:func:`hiermodels.engines.mcmc.check_convergence`).

    Raises
    ------
    SpecError
        When :func:`marginal_supported` says no, or both ``inputs`` and ``scales`` are given.
    """
    supported, reason = marginal_supported(data, spec)
    if not supported:
        raise SpecError(f"engine='marginal' cannot fit this model: {reason}; use engine='full'")
    if inputs is not None and scales is not None:
        raise SpecError(
            "give fit_marginal either inputs= or scales=, not both: inputs hold their own "
            "standardizing (pass scales to marginal_inputs instead)"
        )
    options = sampling_options(options)
    sampler_seed, rng = _seeds(options.random_seed)
    clock = time.perf_counter()
    if inputs is None:
        inputs = marginal_inputs(data, spec, priors, stats=_statistics(data, spec), scales=scales)
    timings = {"statistics_s": time.perf_counter() - clock}
    clock = time.perf_counter()
    if resolve_sampler(options.sampler) == "nutpie":
        model, idata = _sample_nutpie(data, spec, priors, inputs, options, sampler_seed)
    else:
        model = build_marginal(data, spec, priors, inputs)
        idata = sample(model, options)
    timings["build_compile_sample_s"] = time.perf_counter() - clock
    messages = check_convergence(idata, [v.name for v in model.free_RVs])
    clock = time.perf_counter()
    with progress.step(
        "Drawing the group effects from their exact conditional posterior", show=options.progressbar
    ):
        _add_group_effects(idata, data, inputs.stats, rng)
    timings["group_effects_s"] = time.perf_counter() - clock
    # where the time went, for benchmarks (seconds; sampling_time is pm.sample's own attr)
    idata["posterior"].attrs.update({f"marginal_{k}": round(v, 3) for k, v in timings.items()})
    return idata, tuple(messages)


def _statistics(data: GroupedData, spec: HierarchicalSpec):
    """The sums the likelihood reads: nested ones for two factors (from the rows per
    evaluation with ``se=`` and ``sigma=True``), else None (one factor's, chosen by
    :func:`~hiermodels.builders.marginal.marginal_inputs`)."""
    if len(data.factors) != 2:
        return None
    by_row = data.se is not None and spec.se_sigma
    return nested_row_statistics(data) if by_row else nested_statistics(data)


def _seeds(random_seed) -> tuple[int, np.random.Generator]:
    """One seed for the sampler and one generator for the group effects, both from
    ``random_seed`` (None, a number, numbers per chain, a Generator or a SeedSequence)."""
    if isinstance(random_seed, np.random.SeedSequence):
        sequence = random_seed
    elif isinstance(random_seed, np.random.Generator):
        sequence = np.random.SeedSequence(int(random_seed.integers(2**63)))
    else:
        sequence = np.random.SeedSequence(random_seed)
    for_sampler, for_effects = sequence.spawn(2)
    return int(for_sampler.generate_state(1)[0]), np.random.default_rng(for_effects)


def _sample_nutpie(data, spec, priors, inputs: MarginalInputs, options, seed):
    show = progress.resolve(options.progressbar)
    # compiling dominates a first fit (numba, 5-10 s; a disk-cache hit ~0.5 s) and shows no
    # bar of its own
    if is_cached(inputs.key):
        message = "Sampling the population parameters with nutpie (the compiled model reused)"
    else:
        message = "Compiling the marginal model and sampling the population parameters"
    with progress.step(message, show=show):
        model, compiled = compiled_model(
            inputs.key, lambda: build_marginal(data, spec, priors, inputs), inputs.values
        )
        extra = dict(options.sample_kwargs or {})
        idata, seconds = nutpie_sample(
            compiled, draws=options.draws, tune=options.tune, chains=options.chains,
            seed=seed, progressbar=show, **extra,
        )  # fmt: skip
    # what pm.sample(nuts_sampler="nutpie") adds: constant and observed data, timing attrs
    patch_nutpie_idata(idata, model, sampling_time=seconds)
    return model, idata


# -- the group effects, drawn from their conditional posterior ---------------------------------
def _centred_coefficients(posterior, data: GroupedData) -> np.ndarray:
    """(chain, draw, p) draws of the coefficients of the centred design."""
    slopes = [t for t in data.terms if t != INTERCEPT]
    first = INTERCEPT_AT_MEANS if slopes else INTERCEPT
    return np.stack([np.asarray(posterior[n]) for n in (first, *slopes)], axis=-1)


def cholesky_draws(posterior, factor: GroupFactor) -> np.ndarray:
    """(chain, draw, q, q) lower Cholesky factors of the deviations' covariance per draw:
    the model's own factor (``{group}_chol_cov``, or the SDs times ``{group}_corr_chol``),
    diagonal for independent terms."""
    group, q = factor.name, len(factor.varying)
    sds = np.stack([np.asarray(posterior[sigma_name(t, group)]) for t in factor.varying], -1)
    if f"{group}_chol_cov" in posterior:
        packed = np.asarray(posterior[f"{group}_chol_cov"])
        L = np.zeros((*packed.shape[:-1], q, q))
        L[..., *np.tril_indices(q)] = packed  # pm.expand_packed_triangular's order
        return L
    if f"{group}_corr_chol" in posterior:
        return sds[..., :, None] * np.asarray(posterior[f"{group}_corr_chol"])
    return sds[..., :, None] * np.eye(q)


def draw_group_effects(
    stats: SufficientStatistics,
    delta: np.ndarray,
    sigma: np.ndarray,
    chol: np.ndarray,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """(S, J, q) draws of every group's deviations given S draws of the population parameters.

    ``delta`` (S, p) are the centred coefficients less ``stats.shift``, ``sigma`` (S,) the
    residual SD, ``chol`` (S, q, q) the Cholesky factors of the deviations' covariance. With
    :class:`~hiermodels.builders.marginal.RowStatistics` the sums are weighted by ``1 /
    (se_i^2 + sigma^2)`` per draw and the algebra runs with sigma 1. With
    ``rng=None`` the conditional means are returned instead of draws.
    """
    by_row = isinstance(stats, RowStatistics)
    S, q = len(sigma), len(chol[0])
    J = stats.n_groups if by_row else stats.Zty.shape[0]
    out = np.empty((S, J, q))
    width = stats.rows.shape[0] * stats.rows.shape[1] if by_row else J * q * q
    step = max(1, _BLOCK // width)
    for lo in range(0, S, step):
        hi = min(S, lo + step)
        if by_row:  # se= with a residual SD: the sums weighted by 1 / (se_i^2 + sigma^2)
            ZtZ, ZtX, Zty = stats.group_sums(sigma[lo:hi])
            s2 = np.ones((hi - lo, 1))
        else:
            ZtZ, ZtX, Zty = stats.ZtZ, stats.ZtX, stats.Zty
            s2 = (sigma[lo:hi] ** 2)[:, None]
        G = [[ZtZ[..., i, j] for j in range(q)] for i in range(q)]
        # per (draw, group): u = Z'r, r the residual from the population part
        u = Zty - (ZtX @ delta[lo:hi, None, :, None])[..., 0]
        L = [[chol[lo:hi, i, j][:, None] if j <= i else None for j in range(q)] for i in range(q)]
        C = precision_factor(L, G, s2, np.sqrt)
        w = transpose_times(L, [u[..., k] / s2 for k in range(q)])
        c = solve_upper(C, solve_lower(C, w))  # B^-1 L'Z'r / sigma^2
        if rng is not None:
            noise = solve_upper(C, list(rng.standard_normal((q, hi - lo, J))))  # cov B^-1
            c = [c[k] + noise[k] for k in range(q)]
        for k in range(q):
            out[lo:hi, :, k] = sum(L[k][m] * c[m] for m in range(k + 1))
    return out


def _add_group_effects(idata: xr.DataTree, data: GroupedData, stats, rng) -> None:
    """Put ``{term}|{group}`` (chain, draw, group) in the posterior of ``idata``."""
    post = idata["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    delta = _centred_coefficients(post, data).reshape(chains * draws, -1) - stats.shift
    # known standard errors and no residual SD: the sums are weighted, sigma is 1
    if "sigma" in post:
        sigma = np.asarray(post["sigma"]).reshape(-1)
    else:
        sigma = np.ones(chains * draws)
    chols = [
        cholesky_draws(post, f).reshape(chains * draws, len(f.varying), len(f.varying))
        for f in data.factors
    ]
    if isinstance(stats, (NestedStatistics, NestedRowStatistics)):
        outer, inner = stats.order
        drawn = dict(
            zip(
                stats.order,
                draw_nested_effects(stats, delta, sigma, chols[outer], chols[inner], rng),
                strict=True,
            )
        )
        effects = [drawn[k] for k in range(2)]
    else:
        effects = [draw_group_effects(stats, delta, sigma, chols[0], rng)]
    for f, b in zip(data.factors, effects, strict=True):
        b = b.reshape(chains, draws, f.n_groups, len(f.varying))
        post = post.assign_coords({f.name: list(f.levels)})
        for k, t in enumerate(f.varying):
            post[effect_name(t, f.name)] = (("chain", "draw", f.name), b[..., k])
    del idata["posterior"]
    idata["posterior"] = post
