"""The exact engine of the three-level meta-analysis, and the draws layout both engines share.

The exact engine integrates over the two heterogeneity SDs on a 2-D grid
(:mod:`hiermodels.numerics.multilevel_exact`, numpy/scipy only); given them, the
coefficients, the cluster effects and the true effects are Gaussian, so every summary here is
a mixture of normals over the grid nodes: exact up to the quadrature, no Monte Carlo error.
Its independent draws go into the same ``xarray.DataTree`` as the MCMC engine's
(:mod:`hiermodels.meta.multilevel_mcmc`): :func:`multilevel_tree` and
:func:`with_theta_new_levels`. Nothing here imports PyMC, ArviZ or matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from hiermodels.errors import SpecError
from hiermodels.meta.data import MultilevelData, coefficient_names
from hiermodels.meta.engines import EngineFit, check_exact_spec
from hiermodels.meta.spec import MetaSpec
from hiermodels.numerics.multilevel_exact import (
    MultilevelLikelihood,
    MultilevelPosterior,
    multilevel_posterior,
)
from hiermodels.numerics.tau_marginal import ImproperPosteriorError
from hiermodels.priors import Prior

__all__ = [
    "ExactMultilevel",
    "fit_multilevel_exact",
    "mixture_quantiles",
    "multilevel_tree",
    "with_theta_new_levels",
]

_CHUNK = 2048  # grid nodes per block of the per-effect mixtures (bounds memory)


def mixture_quantiles(weights, means, sds, qs, *, tol=1e-12) -> np.ndarray:
    """Quantiles ``qs`` of mixtures of normals, one mixture per column.

    ``weights`` (m,) sum to 1; ``means`` and ``sds`` are (m, n). Returns (len(qs), n).
    Safeguarded Newton on the mixture CDF, all columns at once: a step that leaves the
    bracket known to hold the root is replaced by bisection, and the iteration stops when
    every CDF is within ``tol`` of its target. A large mixture is first solved on its
    ``_CHUNK`` heaviest components: from there Newton's quadratic convergence needs a few
    steps on all of them.
    """
    weights = np.asarray(weights)
    start = None
    if weights.size > 2 * _CHUNK:
        heavy = np.argsort(weights)[::-1][:_CHUNK]
        sub = weights[heavy] / weights[heavy].sum()
        start = mixture_quantiles(sub, means[heavy], sds[heavy], qs, tol=1e-9)
    w = weights[:, None]
    mean = (w * means).sum(axis=0)
    sd = np.sqrt((w * (sds**2 + means**2)).sum(axis=0) - mean**2)
    out = []
    for i, q in enumerate(qs):
        a = np.min(means - 40 * sds, axis=0)
        b = np.max(means + 40 * sds, axis=0)
        # start from the heavy components' quantile, or the normal with the mixture's moments
        x = start[i] if start is not None else mean + sd * special.ndtri(q)
        for _ in range(100):
            z = (x - means) / sds
            F = (w * special.ndtr(z)).sum(axis=0) - q
            active = np.abs(F) >= tol  # converged columns stay where they are
            if not active.any():
                break
            f = (w * np.exp(-0.5 * z**2) / sds).sum(axis=0) / np.sqrt(2 * np.pi)
            a, b = np.where(F < 0, x, a), np.where(F > 0, x, b)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = x - F / f
            inside = np.isfinite(step) & (step >= a) & (step <= b)
            x = np.where(active, np.where(inside, step, (a + b) / 2), x)
        out.append(x)
    return np.array(out)


def _summary(weights, means, variances, prob) -> dict[str, np.ndarray]:
    """Mean, sd, median and equal-tailed interval of mixtures of normals (columns)."""
    mean = weights @ means
    var = weights @ (variances + means**2) - mean**2
    tail = (1 - prob) / 2
    lower, median, upper = mixture_quantiles(
        weights, means, np.sqrt(variances), (tail, 0.5, 1 - tail)
    )
    return {
        "mean": mean,
        "sd": np.sqrt(np.maximum(var, 0.0)),
        "median": median,
        "lower": lower,
        "upper": upper,
    }


class ExactMultilevel:
    """The exact posterior of a three-level model, with the tables the result reports.

    ``posterior`` is the grid posterior of (tau_b, tau_w); the likelihood gives, at each grid
    node, the Gaussian conditionals of beta, the cluster effects and the true effects
    (:meth:`MultilevelLikelihood.effects`), which are mixed with the nodes' posterior weights.
    """

    def __init__(self, posterior: MultilevelPosterior, likelihood: MultilevelLikelihood):
        self.posterior, self.likelihood = posterior, likelihood
        # Every other node of the grid: the grid stops refining when the integral and the
        # means on it agree with those on this subgrid to 1e-8 (multilevel_posterior's rtol),
        # and the conditionals are as smooth in log tau; a quarter of the nodes then gives
        # the same summaries at a quarter of the cost.
        tb, tw = posterior.tau_b_grid[::2], posterior.tau_w_grid[::2]
        density = posterior.density[::2, ::2]
        # trapezoid weights in log tau times the density of log tau (density * tau)
        mass = density * np.outer(tb * _trapezoid(tb), tw * _trapezoid(tw))
        # the nodes that hold all but 1e-12 of the mass: a summary moves by less than that
        mass = mass.ravel() / mass.sum()
        order = np.argsort(mass)[::-1]
        n_keep = int(np.searchsorted(np.cumsum(mass[order]), 1 - 1e-12)) + 1
        keep = np.sort(order[:n_keep])
        grid_b, grid_w = np.meshgrid(tb, tw, indexing="ij")
        self.tau_b, self.tau_w = grid_b.ravel()[keep], grid_w.ravel()[keep]
        self.weights = mass[keep] / mass[keep].sum()
        _, self.beta_mean, self.beta_cov = likelihood.conditional(self.tau_b, self.tau_w)
        self._effects: dict[float, tuple[dict, dict]] = {}

    @property
    def converged(self) -> bool:
        return self.posterior.converged

    def beta_summary(self, prob: float) -> dict[str, np.ndarray]:
        return self.posterior.beta_summary(prob)

    def tau_summary(self, prob: float) -> dict[str, dict[str, float]]:
        """``{"between": ..., "within": ...}``, each mean, sd, median, lower, upper."""
        return self.posterior.tau_summary(prob)

    def tau2_means(self) -> tuple[float, float]:
        """E[tau_b^2 | y] and E[tau_w^2 | y]."""
        return float(self.weights @ self.tau_b**2), float(self.weights @ self.tau_w**2)

    def linear_summary(self, x: np.ndarray, prob: float, *, new: bool) -> dict[str, float]:
        """Posterior of x'beta, or (``new``) of theta_new = x'beta + u_new + w_new, the true
        effect of a new effect size in a new cluster."""
        means = (self.beta_mean @ x)[:, None]
        var = np.einsum("i,gij,j->g", x, self.beta_cov, x)[:, None]
        if new:
            var = var + (self.tau_b**2 + self.tau_w**2)[:, None]
        return {
            key: float(value[0]) for key, value in _summary(self.weights, means, var, prob).items()
        }

    def effect_summaries(self, prob: float) -> tuple[dict, dict]:
        """Per cluster (u_c) and per effect size (theta_i): mean, sd, median, lower, upper and
        ``shrinkage`` (cluster: E[1 / (1 + tau_b^2 A_c)]; effect: E[v_i / (v_i + tau_w^2)]).
        Clusters in the data's cluster order, effects in the row order."""
        if prob not in self._effects:
            self._effects[prob] = self._effect_summaries(prob)
        return self._effects[prob]

    def _effect_summaries(self, prob: float) -> tuple[dict, dict]:
        lik = self.likelihood
        parts = [[] for _ in range(6)]
        for s in range(0, self.weights.size, _CHUNK):
            sl = slice(s, s + _CHUNK)
            out = lik.effects(self.tau_b[sl], self.tau_w[sl], self.beta_mean[sl], self.beta_cov[sl])
            for part, value in zip(parts, out, strict=True):
                part.append(value)
        um, uv, tm, tv, shrink_c, shrink_e = (np.concatenate(p) for p in parts)
        w = self.weights
        clusters = _summary(w, um, uv, prob) | {"shrinkage": w @ shrink_c}
        unorder = lik.g.unorder
        effects = _summary(w, tm[:, unorder], tv[:, unorder], prob)
        effects["shrinkage"] = (w @ shrink_e)[unorder]
        return clusters, effects

    def draw(self, n: int, rng) -> dict[str, np.ndarray]:
        return self.posterior.draw(n, rng)


def _trapezoid(tau: np.ndarray) -> np.ndarray:
    """Trapezoid weights of a uniform grid in log tau (1 for a single node)."""
    if tau.size == 1:
        return np.ones(1)
    h = np.log(tau[1]) - np.log(tau[0])
    w = np.full(tau.size, h)
    w[[0, -1]] = h / 2
    return w


def _beta_prior(mu_prior: Prior | None, p: int):
    """(mean, sd) per coefficient: the intercept gets mu_prior (flat if None), the moderator
    coefficients stay flat (sd = inf)."""
    if mu_prior is None:
        return None
    return np.r_[mu_prior.mu, np.zeros(p - 1)], np.r_[mu_prior.sigma, np.full(p - 1, np.inf)]


def exact_levels(
    data: MultilevelData, *, mu_prior: Prior | None, tau_priors: Sequence[Prior]
) -> ExactMultilevel:
    """The exact posterior of the three-level model of ``data`` under these priors."""
    d = data.studies
    beta_prior = _beta_prior(mu_prior, d.X.shape[1])
    X = d.X if d.has_moderators else None
    try:
        posterior = multilevel_posterior(
            d.y,
            d.se**2,
            data.cluster,
            X,
            tau_priors=tuple(prior.logpdf for prior in tau_priors),
            beta_prior=beta_prior,
        )
    except ImproperPosteriorError as error:
        priors = ", ".join(f"{n} ~ {p}" for n, p in zip(data.tau_names, tau_priors, strict=True))
        raise SpecError(
            f"{priors}: {error} For example hyperprior='half_normal' or 'half_cauchy'."
        ) from None
    mean, sd = (None, None) if beta_prior is None else beta_prior
    likelihood = MultilevelLikelihood(d.y, d.se**2, data.cluster, X, beta_mean=mean, beta_sd=sd)
    return ExactMultilevel(posterior, likelihood)


def fit_multilevel_exact(
    data: MultilevelData, spec: MetaSpec, *, tau_priors: Sequence[Prior]
) -> EngineFit:
    """The exact engine: the 2-D grid posterior (a fraction of a second); independent draws
    on first use of ``idata`` (``draws * chains``, seeded by ``spec.sampling.random_seed``)."""
    check_exact_spec(spec)
    exact = exact_levels(data, mu_prior=spec.mu_prior, tau_priors=tau_priors)
    options = spec.sampling
    rng = np.random.default_rng(options.random_seed)

    def make_idata():
        draws = exact.draw(options.draws * options.chains, rng)
        tree = multilevel_tree(draws, data, chains=options.chains)
        return with_theta_new_levels(tree, data, rng)

    return EngineFit(make_idata=make_idata, exact=exact)


def multilevel_tree(draws: dict[str, np.ndarray], data: MultilevelData, *, chains: int):
    """DataTree with ``posterior`` (chain, draw): the coefficients, ``tau_{level}`` of both
    levels, the cluster effects ``u_{cluster}`` (dims: the cluster column) and ``theta``
    (dims: the effect-size level), from flat draws as :meth:`MultilevelPosterior.draw` makes
    them."""
    import xarray as xr

    n = len(draws["tau_b"]) // chains

    def shaped(a):
        return a[: n * chains].reshape(chains, n, *a.shape[1:])

    d = data.studies
    cluster, effect = data.levels
    variables = {
        name: (("chain", "draw"), shaped(draws["beta"][:, k]))
        for k, name in enumerate(coefficient_names(d))
    }
    tau_b, tau_w = data.tau_names
    variables[tau_b] = (("chain", "draw"), shaped(draws["tau_b"]))
    variables[tau_w] = (("chain", "draw"), shaped(draws["tau_w"]))
    variables[data.cluster_effect_name] = (("chain", "draw", cluster), shaped(draws["u"]))
    variables["theta"] = (("chain", "draw", effect), shaped(draws["theta"]))
    posterior = xr.Dataset(
        variables,
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(n),
            cluster: list(data.cluster_labels),
            effect: list(d.labels),
        },
        attrs={"inference_library": "hiermodels.exact"},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


def with_theta_new_levels(idata, data: MultilevelData, rng: np.random.Generator):
    """``idata`` with ``theta_new`` = x_bar'beta + u_new + w_new in its posterior (the true
    effect of a new effect size in a new cluster, at the mean of the moderators), and the
    groups ArviZ reads: ``log_likelihood`` (Normal(y_i | theta_i, se_i) per effect size),
    ``observed_data`` and ``constant_data`` (se, design, cluster). For every engine."""
    import xarray as xr

    d = data.studies
    post = idata["posterior"].to_dataset()
    x_bar = d.X.mean(axis=0)
    mean = sum(np.asarray(post[n]) * x_bar[k] for k, n in enumerate(coefficient_names(d)))
    tau_b, tau_w = (np.asarray(post[n]) for n in data.tau_names)
    sd = np.sqrt(tau_b**2 + tau_w**2)
    post = post.assign(theta_new=(("chain", "draw"), mean + sd * rng.standard_normal(sd.shape)))
    effect, coords = d.study, {d.study: list(d.labels)}
    theta = np.asarray(post["theta"])
    groups = {
        "posterior": post,
        "log_likelihood": xr.Dataset(
            {d.estimate: (("chain", "draw", effect), stats.norm.logpdf(d.y, theta, d.se))},
            coords={"chain": post["chain"].values, "draw": post["draw"].values, **coords},
        ),
        "observed_data": xr.Dataset({d.estimate: (effect, d.y)}, coords=coords),
        "constant_data": xr.Dataset(
            {
                "se": (effect, d.se),
                "X": ((effect, "term"), d.X),
                data.levels[0]: (effect, np.asarray(data.cluster_labels)[data.cluster]),
            },
            coords={**coords, "term": list(d.terms)},
        ),
    }
    for name, dataset in groups.items():
        if name in idata.children:
            del idata[name]
        idata[name] = dataset
    return idata
