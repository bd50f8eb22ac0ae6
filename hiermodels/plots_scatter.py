"""The studies as points against a property of theirs: funnel plot and bubble plot.

The contour-enhanced funnel plot (estimate against standard error, Peters et al. 2008) shows
small-study effects; the bubble plot (estimate against a moderator, metafor's ``regplot``)
shows a meta-regression. Both draw in the style of :mod:`hiermodels.plots_meta` and, like the
forest plot there, take plain numbers and return the matplotlib Figure.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from hiermodels.plots_meta import (
    STYLE,
    figure_and_axes,
    finish_figure,
    format_axis,
    plot_transform,
    style_context,
)

__all__ = ["bubble_plot", "funnel_plot"]


# -- funnel plot ------------------------------------------------------------------------


def funnel_plot(
    y,
    se,
    *,
    center,
    contours=(0.10, 0.05, 0.01),
    filled=None,
    egger_line=None,
    transform=None,
    xlabel="estimate",
    path=None,
    ax=None,
):
    """Contour-enhanced funnel plot (Peters et al. 2008, J. Clin. Epidemiol. 61:991).

    Estimates (x) against standard errors (y, 0 at the top). The shaded regions are where a
    study's estimate would be significant at p < 0.10, < 0.05 and < 0.01 (two-sided z test
    against 0): studies missing from the non-significant white region point to publication
    bias, missing from the shaded ones to other causes of asymmetry. Dashed lines give
    ``center`` +/- 1.96 se, where 95% of studies fall without heterogeneity or bias.

    Parameters
    ----------
    y, se : array_like
    center : float
        The pooled estimate.
    contours : tuple of float
        Significance levels of the contours.
    filled : tuple (y, se), optional
        Studies imputed by trim and fill, drawn hollow.
    egger_line : tuple (intercept, slope), optional
        Egger's regression line y = intercept + slope * se (``EggerTest.intercept/slope``).
    transform : {"exp", "tanh"} or callable, optional
        Back-transformed tick labels.

    Examples
    --------
    >>> fig = funnel_plot([0.1, 0.4, -0.2], [0.1, 0.3, 0.2], center=0.1)
    >>> sorted(c.get_gid() for c in fig.axes[0].collections)[:3]
    ['contour:0.01', 'contour:0.05', 'contour:0.1']
    """
    from matplotlib.collections import PolyCollection

    y, se = np.asarray(y, dtype=float), np.asarray(se, dtype=float)
    tr = plot_transform(transform)
    fy, fse = (np.asarray(a, dtype=float) for a in filled) if filled is not None else ([], [])
    se_max = 1.08 * float(np.max(np.concatenate([se, fse])))
    span = np.concatenate([y, fy, [center]])
    alphas = sorted(contours, reverse=True)  # 0.10, 0.05, 0.01: widening z
    z = [float(stats.norm.isf(a / 2)) for a in alphas]
    z95 = float(stats.norm.isf(0.025))
    widest = max([*z, z95])  # without contours, the pseudo 95% region sets the width
    half = max(
        np.max(np.abs(span)) * 1.1, widest * se_max * 1.15, (abs(center) + z95 * se_max) * 1.05
    )
    with style_context():
        fig, ax = figure_and_axes(ax, (5.5, 4.5))
        grid = np.array([0.0, se_max])
        for i, (a, zi) in enumerate(zip(alphas, z, strict=True)):
            outer = z[i + 1] if i + 1 < len(z) else None
            right = [(zi * s, s) for s in grid] + [
                ((outer * s if outer else half), s) for s in grid[::-1]
            ]
            left = [(-x, s) for x, s in right]
            label = f"p < {a:g}" if outer is None else f"{alphas[i + 1]:g} < p < {a:g}"
            ax.add_collection(
                PolyCollection(
                    [right, left],
                    facecolors=STYLE.contour_greys[min(i, len(STYLE.contour_greys) - 1)],
                    edgecolors="none",
                    gid=f"contour:{a:g}",
                    label=label,
                    zorder=0,
                )
            )
        ax.plot(
            center - z95 * grid, grid, ls="--", color=STYLE.null_colour, lw=0.8, gid="pseudo_ci"
        )
        ax.plot(center + z95 * grid, grid, ls="--", color=STYLE.null_colour, lw=0.8)
        ax.axvline(
            center,
            color=STYLE.pooled_colour,
            lw=STYLE.line_width,
            gid="center",
            label="pooled estimate",
        )
        ax.scatter(y, se, color=STYLE.study_colour, s=22, zorder=3, gid="observed", label="studies")
        if filled is not None:
            ax.scatter(
                fy,
                fse,
                facecolors="none",
                edgecolors=STYLE.study_colour,
                s=22,
                zorder=3,
                gid="filled",
                label="filled (trim and fill)",
            )
        if egger_line is not None:
            b0, b1 = egger_line
            ax.plot(
                b0 + b1 * grid,
                grid,
                color=STYLE.shrunken_colour,
                lw=STYLE.line_width,
                gid="egger",
                label="Egger's regression",
            )
        ax.set_xlim(-half, half)
        ax.set_ylim(se_max, 0)
        format_axis(ax, tr)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("standard error")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    return finish_figure(fig, path)


# -- bubble plot ------------------------------------------------------------------------


def bubble_plot(
    x,
    y,
    se,
    *,
    fit_line=None,
    ci_band=None,
    pi_band=None,
    weights=None,
    xlabel="moderator",
    ylabel="estimate",
    transform=None,
    path=None,
    ax=None,
):
    """Bubble plot of a meta-regression: estimates against a moderator.

    Points have area proportional to their weight (default 1/se^2, the equal-effects
    weights; pass the model's weights 1/(se^2 + tau^2) for a random-effects fit). The fitted
    line y = intercept + slope * x is drawn with its confidence band (``ci_band``) and the
    wider prediction band (``pi_band``), each a tuple (x_grid, low, high), as metafor's
    ``regplot``.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([0.0, 1.0])
    >>> fig = bubble_plot([0, 0.5, 1], [0.1, 0.4, 0.9], [0.1, 0.2, 0.1], fit_line=(0.1, 0.8),
    ...                   ci_band=(g, g * 0.8, g * 0.8 + 0.2))
    >>> [c.get_gid() for c in fig.axes[0].collections if c.get_gid() == "ci_band"]
    ['ci_band']
    """
    x, y, se = (np.asarray(a, dtype=float) for a in (x, y, se))
    w = 1 / se**2 if weights is None else np.asarray(weights, dtype=float)
    tr = plot_transform(transform)
    with style_context():
        fig, ax = figure_and_axes(ax, (5.5, 4.2))
        bands = (  # the wider prediction band first, so the confidence band lies on top
            (pi_band, STYLE.prediction_colour, 0.18, "pi_band", "prediction interval"),
            (ci_band, STYLE.pooled_colour, 0.25, "ci_band", "confidence interval"),
        )
        for band, colour, alpha, gid, label in bands:
            if band is not None:
                g, lo, hi = (np.asarray(a, dtype=float) for a in band)
                ax.fill_between(g, lo, hi, color=colour, alpha=alpha, lw=0, gid=gid, label=label)
        ax.scatter(
            x,
            y,
            s=400 * w / w.max(),
            facecolors="none",
            edgecolors=STYLE.study_colour,
            linewidths=0.8,
            zorder=3,
            gid="studies",
            label="studies",
        )
        if fit_line is not None:
            b0, b1 = fit_line
            pad = 0.05 * (np.ptp(x) or 1.0)
            g = np.array([x.min() - pad, x.max() + pad])
            ax.plot(g, b0 + b1 * g, color=STYLE.pooled_colour, lw=1.4, gid="fit", label="fit")
        format_axis(ax, tr, axis="y")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", frameon=False)
    return finish_figure(fig, path)
