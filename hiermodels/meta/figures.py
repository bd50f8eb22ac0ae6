"""The figures of a meta-analysis: forest, funnel, bubble (moderator), tau and joint posterior,
cumulative forest.

Each function takes a :class:`~hiermodels.meta.result.MetaAnalysisResult` (``result``),
computes the numbers the figure shows (from :mod:`hiermodels.meta.inference`,
:mod:`~hiermodels.meta.bias`, :mod:`~hiermodels.meta.bayes` and
:mod:`~hiermodels.meta.subgroups`) and hands them to the drawing functions of
:mod:`hiermodels.plots_meta`, :mod:`~hiermodels.plots_scatter` and
:mod:`~hiermodels.plots_posterior` (and :mod:`hiermodels.plots` for the cumulative forest),
which know nothing of results. The result's ``plot_*`` methods are the public entry points.
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.meta import bayes, bias
from hiermodels.meta.inference import BAYES, check_method, check_prob, frequentist_fit
from hiermodels.meta.subgroups import subgroup_analysis
from hiermodels.numerics.inference import predict

__all__ = [
    "plot_cumulative",
    "plot_forest",
    "plot_funnel",
    "plot_joint",
    "plot_moderator",
    "plot_tau",
]

_CONTOURS = (0.10, 0.05, 0.01)


def _plot_transform(transform):
    """A name plots_meta knows (nice ticks for "exp"), or a callable."""
    from hiermodels.meta.inference import resolve_transform
    from hiermodels.plots_meta import TRANSFORMS

    if transform is None or (isinstance(transform, str) and transform in TRANSFORMS):
        return transform
    return resolve_transform(transform)


def _p(p):
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# -- forest plot ----------------------------------------------------------------------------


def _footer(result, fit, method, prob):
    d = result.data
    q = f"Q({fit.QE_df}) = {fit.QE:.2f}, {_p(fit.QE_p)}"
    if method == BAYES:
        tau = result.summary(prob).loc["tau"]
        what = "Residual heterogeneity" if d.has_moderators else "Heterogeneity"
        text = (
            f"{what}: tau = {tau['median']:.2f} [{tau['ci_low']:.2f}, {tau['ci_high']:.2f}] "
            f"(posterior median, {prob:.0%} interval); {q}"
        )
    elif d.has_moderators:
        text = f"Residual heterogeneity: QE{q[1:]}; tau² = {fit.tau2:.3f} ({method})"
    else:
        text = f"Heterogeneity: {q}; I² = {fit.I2:.1f}%; tau² = {fit.tau2:.3f} ({method})"
    if d.has_moderators:
        df = fit.QM_df[0] if len(fit.QM_df) == 1 else ", ".join(map(str, fit.QM_df))
        text += f"\nTest of moderators: QM({df}) = {fit.QM:.2f}, {_p(fit.QM_p)}"
    return text


def _subgroups(result, column, method, prob):
    """(levels of each study, {level: (estimate, low, high)}, footer line) or Nones."""
    if column is None:
        return None, None, None
    if result.data.has_moderators:
        raise SpecError(
            "subgroup blocks are for a plain meta-analysis; this fit has moderators "
            f"{list(result.data.terms[1:])}: refit without them to draw subgroups"
        )
    sub = subgroup_analysis(result, column, method="REML" if method == BAYES else method, prob=prob)
    table = sub.estimates()
    cols = ("mu", "ci_low", "ci_high")
    source = ""
    if method == BAYES:
        if "bayes_mu" in table.columns:
            cols = ("bayes_mu", "bayes_ci_low", "bayes_ci_high")
        else:
            source = " (subgroup diamonds: REML; exact per-level fits need method='exact')"
    pooled = {level: tuple(float(table.loc[level, c]) for c in cols) for level in sub.levels}
    test = sub.test().loc["Q_between"]
    line = (
        f"Test for subgroup differences: Q({int(test['df'])}) = {test['Q']:.2f}, "
        f"{_p(test['pvalue'])}{source}"
    )
    return sub, pooled, line


def plot_forest(
    result,
    path=None,
    *,
    prob=0.95,
    ax=None,
    transform=None,
    sort=None,
    shrunken=False,
    method=BAYES,
    subgroup=None,
    xlabel=None,
):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_forest`."""
    from hiermodels.plots_meta import forest_plot

    prob = check_prob(prob)
    check_method(method)
    d = result.data
    fit = frequentist_fit(d, "REML" if method == BAYES else method, "z", prob)
    z = float(stats.norm.ppf((1 + prob) / 2))
    table = pd.DataFrame(
        {
            "study": list(d.labels),
            "estimate": d.y,
            "ci_low": d.y - z * d.se,
            "ci_high": d.y + z * d.se,
            "weight": fit.weights,
        }
    )
    if shrunken:
        effects = result.study_effects(prob)
        table["shrunk"] = effects["mean"].to_numpy()
        table["shrunk_low"] = effects["ci_low"].to_numpy()
        table["shrunk_high"] = effects["ci_high"].to_numpy()
    pooled = prediction = fitted = None
    if d.has_moderators:
        if method == BAYES:
            beta = np.array([result.summary(prob).loc[n, "mean"] for n in result.coefficient_names])
            table["fitted"] = d.X @ beta
        else:
            table["fitted"] = d.X @ fit.beta
        fitted = "fitted"
    elif method == BAYES:
        s = result.summary(prob)
        mu, new = s.loc["mu"], s.loc["theta_new"]
        pooled = (mu["mean"], mu["ci_low"], mu["ci_high"])
        prediction = (new["ci_low"], new["ci_high"])
    else:
        pr = predict(fit, level=prob)
        pooled = (fit.beta[0], fit.ci_low[0], fit.ci_high[0])
        prediction = (pr.pi_low[0], pr.pi_high[0])
    footer = _footer(result, fit, method, prob)
    column = subgroup if subgroup is not None else result.spec.subgroup
    sub, sub_pooled, line = _subgroups(result, column, method, prob)
    if sub is not None:
        table["subgroup"] = sub.groups
        order = {level: i for i, level in enumerate(sub.levels)}
        table = table.sort_values("subgroup", key=lambda s: s.map(order), kind="stable")
        footer += "\n" + line
    view = "posterior" if method == BAYES else method
    return forest_plot(
        table,
        shrunken=("shrunk", "shrunk_low", "shrunk_high") if shrunken else None,
        subgroup="subgroup" if sub is not None else None,
        fitted=fitted,
        pooled=pooled,
        prediction=prediction,
        subgroup_pooled=sub_pooled,
        footer=footer,
        transform=_plot_transform(transform),
        sort=sort,
        xlabel=xlabel if xlabel is not None else f"{d.estimate} ({view})",
        level=prob,
        path=path,
        ax=ax,
    )


# -- funnel plot ----------------------------------------------------------------------------


def plot_funnel(
    result, path=None, *, contours=True, trim_and_fill=False, egger=False, transform=None, ax=None
):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_funnel`."""
    from hiermodels.plots_scatter import funnel_plot

    d = result.data
    if contours is True:
        levels = _CONTOURS
    elif contours is False or contours is None:
        levels = ()
    else:
        levels = tuple(float(c) for c in contours)
        if not all(0 < c < 1 for c in levels):
            raise SpecError(f"contours must be True, False or levels in (0, 1), got {contours!r}")
    fit = frequentist_fit(d, "REML", "z", 0.95)
    if d.has_moderators:
        if trim_and_fill or egger:
            raise SpecError(
                "with moderators the funnel shows residuals (as metafor's funnel does), for "
                "which trim and fill and the Egger line are not defined; refit without "
                "moderators, or see egger_test() for the test"
            )
        y, center, xlabel = d.y - d.X @ fit.beta, 0.0, f"residual of {d.estimate} (REML)"
    else:
        y, center, xlabel = d.y, float(fit.beta[0]), d.estimate
    filled = egger_line = None
    if trim_and_fill:
        tf = bias.trim_and_fill(result)
        filled = (tf.filled["estimate"].to_numpy(), tf.filled["se"].to_numpy())
    if egger:
        from hiermodels.numerics.bias import egger_test

        line = egger_test(d.y, d.se, model="lm")
        egger_line = (line.intercept, line.slope)
    return funnel_plot(
        y,
        d.se,
        center=center,
        contours=levels,
        filled=filled,
        egger_line=egger_line,
        transform=None if d.has_moderators else _plot_transform(transform),
        xlabel=xlabel,
        path=path,
        ax=ax,
    )


# -- bubble plot ----------------------------------------------------------------------------


def plot_moderator(
    result, moderator, path=None, *, prob=0.95, method="REML", points=200, transform=None, ax=None
):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_moderator`."""
    from hiermodels.plots_scatter import bubble_plot

    check_method(method, bayes=False)
    prob = check_prob(prob)
    d = result.data
    if not d.has_moderators or moderator not in d.terms[1:]:
        have = list(d.terms[1:])
        raise SpecError(
            f"plot_moderator needs a meta-regression on the numeric moderator {moderator!r}; "
            f"this fit's moderator columns are {have or 'none'}: refit with "
            f"moderators=[{moderator!r}]"
        )
    j = d.terms.index(moderator)
    x = d.X[:, j]
    fit = frequentist_fit(d, method, "z", prob)
    # the other moderators at their means, as metafor's regplot
    grid = np.linspace(x.min(), x.max(), points)
    new = np.tile(d.X[:, 1:].mean(axis=0), (points, 1))
    new[:, j - 1] = grid
    pr = predict(fit, new, level=prob)
    slope = float(fit.beta[j])
    intercept = float(pr.pred[0] - slope * grid[0])
    return bubble_plot(
        x,
        d.y,
        d.se,
        fit_line=(intercept, slope),
        ci_band=(grid, pr.ci_low, pr.ci_high),
        pi_band=(grid, pr.pi_low, pr.pi_high),
        weights=fit.weights,  # percent, 100 w / sum w: relative areas as 1 / (se^2 + tau^2)
        xlabel=moderator,
        ylabel=d.estimate,
        transform=_plot_transform(transform),
        path=path,
        ax=ax,
    )


# -- posterior plots ------------------------------------------------------------------------


def _kde(draws, grid, *, lower=None):
    """Gaussian kernel density of ``draws`` on ``grid``, reflected at ``lower`` if given."""
    kde = stats.gaussian_kde(draws)
    dens = kde(grid)
    if lower is not None:
        dens = dens + kde(2 * lower - grid)
    return dens


def plot_tau(result, path=None, *, prob=0.95, ax=None):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_tau`."""
    from hiermodels.plots_posterior import tau_posterior_plot

    prob = check_prob(prob)
    row = result.summary(prob).loc["tau"]
    if result.exact is not None:
        upper = result.exact.quantile_tau(0.995)
        grid, dens = bayes.tau_density(result, np.linspace(0.0, upper, 801))
    else:
        draws = result.draws("tau").ravel()
        grid = np.linspace(0.0, float(np.quantile(draws, 0.995)), 801)
        dens = _kde(draws, grid, lower=0.0)
    with np.errstate(divide="ignore"):
        prior = np.exp(result.tau_prior.logpdf(grid))
    return tau_posterior_plot(
        grid,
        dens,
        prior,
        interval=(row["ci_low"], row["ci_high"]),
        xlabel=f"tau (posterior, {prob:.0%} interval shaded; prior {result.tau_prior})",
        path=path,
        ax=ax,
    )


def plot_joint(result, path=None, *, ax=None):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_joint`."""
    from hiermodels.numerics.bayes_extras import joint_posterior_density
    from hiermodels.plots_posterior import joint_posterior_plot

    d = result.data
    name = result.coefficient_names[0]
    exact = result.exact is not None and not d.has_moderators
    if exact:
        lo, hi = result.exact.quantile_beta([0.001, 0.999])
        tau_hi = result.exact.quantile_tau(0.995)
    else:
        # the exact joint density is for the intercept-only model; otherwise a kernel
        # density of the draws, reflected at tau = 0
        mu_draws, tau_draws = result.draws(name).ravel(), result.draws("tau").ravel()
        lo, hi = np.quantile(mu_draws, [0.001, 0.999])
        tau_hi = float(np.quantile(tau_draws, 0.995))
    pad = 0.1 * (hi - lo)
    mu_grid = np.linspace(lo - pad, hi + pad, 161)
    tau_grid = np.linspace(0.0, tau_hi, 121)
    if exact:
        # in the posterior's unit (se of 1e-300 work); the density per unit^2 is drawn as is,
        # since the regions depend only on its shape
        y, se, post, priors, unit = bayes._in_units(d, result.exact, bayes._priors(result))
        # at tau = 0 a study with se 1e-150 of the others' makes mu | tau a spike: its normal
        # density overflows to exp(-inf) = 0 away from the spike, which is its value
        with np.errstate(over="ignore", under="ignore"):
            dens = joint_posterior_density(
                y, se, mu_grid / unit, tau_grid / unit, posterior=post, **priors
            )
    else:
        kde = stats.gaussian_kde(np.vstack([mu_draws, tau_draws]))
        M, T = np.meshgrid(mu_grid, tau_grid)
        dens = kde(np.vstack([M.ravel(), T.ravel()])) + kde(np.vstack([M.ravel(), -T.ravel()]))
        dens = dens.reshape(T.shape)
    if not np.isfinite(dens).all() or math.isclose(float(dens.max()), 0.0):
        raise SpecError("the joint posterior density is not finite on the plotting grid")
    # drawn on grids of about unit width (the cell areas of data in units 1e300 overflow), the
    # ticks labelled with the values in the data's units
    s = math.ldexp(1.0, math.frexp(float(max(np.max(np.abs(mu_grid)), tau_hi)))[1])
    if s == 1.0 or 2.0**-64 < s < 2.0**64:
        return joint_posterior_plot(mu_grid, tau_grid, dens, xlabel=name, path=path, ax=ax)
    from matplotlib.ticker import FuncFormatter

    fig = joint_posterior_plot(mu_grid / s, tau_grid / s, dens, xlabel=name, path=None, ax=ax)
    for axis in (fig.axes[0].xaxis, fig.axes[0].yaxis):
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x * s:.3g}"))
    if path is not None:
        fig.savefig(path)
    return fig


def plot_cumulative(result, path=None, *, order=None, method="REML", prob=0.95, ax=None):
    """See :meth:`~hiermodels.meta.result.MetaAnalysisResult.plot_cumulative`."""
    from hiermodels.plots import cumulative_forest

    table = result.cumulative(order, method=method, prob=prob)
    return cumulative_forest(
        table,
        path=path,
        ax=ax,
        xlabel=f"{result.data.estimate} ({method}, {round(100 * prob)}% CI)",
    )
