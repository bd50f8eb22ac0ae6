"""Publication-grade meta-analysis plots: the one style they share, and the forest plot.

Every plot takes plain numbers (a tidy per-study DataFrame, arrays, tuples), not a result
object, so the numerics that fill it can be checked on their own; ``MetaAnalysisResult``
methods build the inputs. Each returns the matplotlib Figure and saves it when ``path`` is
given. The funnel and bubble plots are in :mod:`hiermodels.plots_scatter`, the posterior
densities of tau and (mu, tau) in :mod:`hiermodels.plots_posterior`; they draw with the style
and helpers defined here.

One style for all of them is defined once, in :data:`STYLE` (a :class:`PlotStyle`): font
family and sizes, the colour of studies, pooled estimates, prediction intervals, shrunken
estimates, fitted values and the greys of the funnel contours, line width, row height and the
resolution of saved files. The plots draw inside ``matplotlib.rc_context(STYLE.rc())``
(:func:`style_context`), so they look the same whatever the user's rcParams. Artists that
carry meaning have a ``gid`` (e.g. "study_ci", "pooled", "filled"), which the tests inspect
and users can restyle.

Back-transformed axes: numbers are analysed on a scale where intervals are symmetric (log
odds ratio, Fisher's z); ``transform`` ("exp", "tanh" or a callable) prints numbers and tick
labels on the original scale (odds ratio, correlation) while the axis stays linear in the
analysis scale, as metafor's ``forest(..., transf=exp)`` with ``atransf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hiermodels.errors import SpecError

__all__ = ["STYLE", "TRANSFORMS", "PlotStyle", "forest_plot"]


@dataclass(frozen=True)
class PlotStyle:
    """The one style of the meta-analysis plots (colours are ColorBrewer RdBu/PRGn tones,
    readable in grey and by colour-blind readers)."""

    font_family: str = "DejaVu Sans"
    font_size: float = 9.0
    small_font_size: float = 8.0
    study_colour: str = "0.15"
    pooled_colour: str = "#B2182B"
    prediction_colour: str = "#EF8A62"
    shrunken_colour: str = "#2166AC"
    fitted_colour: str = "#1B7837"
    null_colour: str = "0.45"
    contour_greys: tuple = ("0.92", "0.80", "0.66")
    line_width: float = 1.0
    row_height: float = 0.26  # inches per forest-plot row
    dpi: int = 300

    def rc(self):
        """matplotlib rcParams of this style."""
        return {
            "font.family": self.font_family,
            "font.size": self.font_size,
            "axes.labelsize": self.font_size,
            "xtick.labelsize": self.small_font_size,
            "ytick.labelsize": self.small_font_size,
            "legend.fontsize": self.small_font_size,
            "lines.linewidth": self.line_width,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "savefig.dpi": self.dpi,
        }


#: The style every plot of this module uses.
STYLE = PlotStyle()


@dataclass(frozen=True)
class Transform:
    """A back-transformation for printing: ``f`` maps the analysis scale to the original one;
    ``ticks`` are nice original-scale values to label (None: matplotlib's own ticks)."""

    name: str
    f: Callable
    ticks: tuple | None = None


#: Back-transformations by name: "exp" (log ratios -> ratios), "tanh" (Fisher z -> r).
TRANSFORMS = {
    t.name: t
    for t in (
        Transform("identity", lambda x: x),
        Transform("exp", np.exp, (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)),
        Transform("tanh", np.tanh),
    )
}


def plot_transform(transform):
    """The :class:`Transform` a plot's ``transform=`` names (None: the identity)."""
    if transform is None:
        return TRANSFORMS["identity"]
    if callable(transform):
        return Transform(getattr(transform, "__name__", "custom"), transform)
    if transform not in TRANSFORMS:
        raise SpecError(f"transform must be a callable or one of {sorted(TRANSFORMS)}")
    return TRANSFORMS[transform]


def format_axis(ax, tr, axis="x"):
    """Tick labels on the original scale; for "exp", at nice ratios inside the limits."""
    if tr.name == "identity":
        return
    from matplotlib.ticker import FixedLocator, FuncFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    lo, hi = min(lo, hi), max(lo, hi)
    if tr.ticks is not None:
        nice = [math.log(t) for t in tr.ticks if lo <= math.log(t) <= hi]
        if len(nice) >= 2:
            target.set_major_locator(FixedLocator(nice))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{float(tr.f(v)):.3g}"))


def figure_and_axes(ax, size):
    """The figure of ``ax``, or a new figure of ``size`` inches with one Axes."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def finish_figure(fig, path):
    """Save ``fig`` to ``path`` if one is given; return it."""
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig


def style_context():
    """A context in which matplotlib draws in :data:`STYLE`."""
    import matplotlib.pyplot as plt

    return plt.rc_context(STYLE.rc())


def _ci_text(tr, est, lo, hi):
    f = tr.f
    return f"{float(f(est)):.2f} [{float(f(lo)):.2f}, {float(f(hi)):.2f}]"


# -- forest plot ------------------------------------------------------------------------


def _diamond(ax, est, lo, hi, row, colour, gid, height=0.35):
    from matplotlib.patches import Polygon

    poly = Polygon(
        [[lo, row], [est, row + height], [hi, row], [est, row - height]],
        closed=True,
        facecolor=colour,
        edgecolor=colour,
        gid=gid,
    )
    ax.add_patch(poly)
    return poly


_VALUE_X, _WEIGHT_X = 1.04, 1.95  # text columns right of a forest plot, in axes widths


def _text_row(ax, row, label, value, weight, *, bold=False):
    """Label at the left, "estimate [CI]" and the weight at the right of a row."""
    from matplotlib.transforms import blended_transform_factory

    tf = blended_transform_factory(ax.transAxes, ax.transData)
    kw = {"va": "center", "transform": tf, "fontweight": "bold" if bold else "normal"}
    ax.text(-0.03, row, label, ha="right", gid="label", **kw)
    if value is not None:
        ax.text(_VALUE_X, row, value, ha="left", gid="estimate_text", **kw)
    if weight is not None:
        ax.text(_WEIGHT_X, row, weight, ha="right", gid="weight_text", **kw)


def forest_plot(
    table,
    *,
    label="study",
    estimate="estimate",
    ci_low="ci_low",
    ci_high="ci_high",
    weight="weight",
    shrunken=None,
    subgroup=None,
    fitted=None,
    pooled=None,
    prediction=None,
    subgroup_pooled=None,
    footer=None,
    transform=None,
    null=0.0,
    sort=None,
    xlabel="estimate",
    title=None,
    level=0.95,
    path=None,
    ax=None,
):
    """A forest plot fit for a paper, from a tidy per-study table.

    One row per study: its label, its interval (a line) and estimate (a square whose area is
    proportional to its weight), "estimate [CI]" on the transformed scale and the weight in
    percent at the right; then the summary rows: the pooled effect as a diamond spanning its
    interval, the prediction interval as a bar, one diamond per subgroup; a footer line
    (e.g. the heterogeneity statistics) below. A vertical line marks no effect.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per study with the columns named by ``label``, ``estimate``, ``ci_low``,
        ``ci_high`` and ``weight`` (percent, or any positive numbers: they are rescaled to
        100); optional ones named by ``shrunken`` (a tuple of three column names: shrunken
        estimate, lower, upper, drawn as a second, coloured interval), ``subgroup`` and
        ``fitted`` (the meta-regression's fitted value of each study).
    pooled, prediction : tuple, optional
        (estimate, low, high) of the pooled effect and (low, high) of the prediction
        interval. Not with ``fitted``: a meta-regression has no single pooled effect.
    subgroup_pooled : dict, optional
        Subgroup name -> (estimate, low, high), drawn as a diamond under the subgroup's rows.
    footer : str, optional
        Text under the plot, e.g. "Heterogeneity: tau^2 = 0.31, I^2 = 92%, Q(12) = 152.2".
    transform : {"exp", "tanh"} or callable, optional
        Back-transformation of printed numbers and tick labels (module docstring).
    null : float
        Position of the no-effect line on the analysis scale (0 is 1 on the "exp" scale).
    sort : {None, "estimate", "weight"}
        Order of the studies (within subgroups); None keeps the table's order.
    xlabel, title : str
    level : float
        Confidence level of the intervals given, for the column header.
    path : str or path-like, optional
        Where to save the figure.
    ax : matplotlib Axes, optional
        Draw into this Axes (the text columns go to its right, so leave room); default a new
        figure sized to the rows.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": ["A", "B"], "estimate": [0.1, 0.3], "ci_low": [-0.2, 0.0],
    ...                   "ci_high": [0.4, 0.6], "weight": [40, 60]})
    >>> fig = forest_plot(t, pooled=(0.22, 0.0, 0.44))
    >>> len([t for t in fig.axes[0].texts if t.get_gid() == "label"])
    3
    """
    if fitted is not None and pooled is not None:
        raise SpecError(
            "a meta-regression has no single pooled effect: pass fitted= (each study's "
            "fitted value) or pooled=, not both"
        )
    if sort not in (None, "estimate", "weight"):
        raise SpecError(f"sort must be None, 'estimate' or 'weight', got {sort!r}")
    needed = [label, estimate, ci_low, ci_high, weight]
    needed += list(shrunken or ()) + [c for c in (subgroup, fitted) if c is not None]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise SpecError(f"forest_plot: table has no column(s) {missing}; it has {list(table)}")
    tr = plot_transform(transform)
    data = table.reset_index(drop=True).copy()
    data["_w"] = 100 * data[weight] / data[weight].sum()
    groups = [(None, data)] if subgroup is None else list(data.groupby(subgroup, sort=False))
    rows = []  # (kind, payload) from the top
    for name, part in groups:
        if sort == "estimate":
            part = part.sort_values(estimate, kind="stable")
        elif sort == "weight":
            part = part.sort_values("_w", ascending=False, kind="stable")
        if name is not None:
            rows.append(("header", name))
        rows += [("study", r) for _, r in part.iterrows()]
        if subgroup_pooled and name in subgroup_pooled:
            rows.append(("subgroup", (name, subgroup_pooled[name])))
        if name is not None:
            rows.append(("gap", None))
    if pooled is not None:
        rows.append(("pooled", pooled))
    if prediction is not None:
        rows.append(("prediction", prediction))
    n = len(rows)
    with style_context():
        own = ax is None
        footer_lines = footer.count("\n") + 1 if footer else 0
        height = STYLE.row_height * (n + 3) + 0.9 + 0.17 * footer_lines
        fig, ax = figure_and_axes(ax, (8.0, height))
        if own:
            # room below the axis label for the footer's lines (inches -> figure fraction)
            bottom = (0.55 + 0.17 * footer_lines) / height
            fig.subplots_adjust(left=0.28, right=0.58, bottom=bottom, top=1 - 0.3 / height)
        ys = np.arange(n, 0, -1, dtype=float)
        studies = [(y, r) for y, (kind, r) in zip(ys, rows, strict=True) if kind == "study"]
        sy = np.array([y for y, _ in studies])
        est = np.array([r[estimate] for _, r in studies], dtype=float)
        lo = np.array([r[ci_low] for _, r in studies], dtype=float)
        hi = np.array([r[ci_high] for _, r in studies], dtype=float)
        w = np.array([r["_w"] for _, r in studies], dtype=float)
        from matplotlib.collections import LineCollection

        offset = 0.14 if shrunken else 0.0
        ax.add_collection(
            LineCollection(
                [[(a, y + offset), (b, y + offset)] for a, b, y in zip(lo, hi, sy, strict=True)],
                colors=STYLE.study_colour,
                linewidths=STYLE.line_width,
                gid="study_ci",
            )
        )
        # marker area proportional to the weight; the largest study gets 14 points across
        ax.scatter(
            est,
            sy + offset,
            s=196 * w / w.max(),
            marker="s",
            color=STYLE.study_colour,
            zorder=3,
            gid="studies",
        )
        if shrunken:
            s_est, s_lo, s_hi = (
                np.array([r[c] for _, r in studies], dtype=float) for c in shrunken
            )
            ax.add_collection(
                LineCollection(
                    [
                        [(a, y - offset), (b, y - offset)]
                        for a, b, y in zip(s_lo, s_hi, sy, strict=True)
                    ],
                    colors=STYLE.shrunken_colour,
                    linewidths=STYLE.line_width,
                    gid="shrunken_ci",
                )
            )
            ax.scatter(
                s_est, sy - offset, s=14, color=STYLE.shrunken_colour, zorder=3, gid="shrunken"
            )
        if fitted is not None:
            ax.scatter(
                [r[fitted] for _, r in studies],
                sy,
                marker="D",
                s=22,
                facecolors="none",
                edgecolors=STYLE.fitted_colour,
                zorder=4,
                gid="fitted",
            )
        for y, (kind, r) in zip(ys, rows, strict=True):
            if kind == "study":
                text = _ci_text(tr, r[estimate], r[ci_low], r[ci_high])
                _text_row(ax, y, str(r[label]), text, f"{r['_w']:.1f}%")
            elif kind == "header":
                _text_row(ax, y, str(r), None, None, bold=True)
            elif kind == "subgroup":
                name, (e, a, b) = r
                _diamond(ax, e, a, b, y, STYLE.pooled_colour, f"subgroup:{name}", 0.3)
                _text_row(ax, y, f"Subtotal {name}", _ci_text(tr, e, a, b), None)
            elif kind == "pooled":
                e, a, b = r
                _diamond(ax, e, a, b, y, STYLE.pooled_colour, "pooled")
                _text_row(ax, y, "Pooled estimate", _ci_text(tr, e, a, b), "100%", bold=True)
            elif kind == "prediction":
                a, b = r
                ax.plot([a, b], [y, y], color=STYLE.prediction_colour, lw=4, gid="prediction")
                text = f"[{float(tr.f(a)):.2f}, {float(tr.f(b)):.2f}]"
                _text_row(ax, y, "Prediction interval", text, None)
        ax.axvline(null, color=STYLE.null_colour, lw=STYLE.line_width, ls="-", gid="null")
        if pooled is not None:
            ax.axvline(pooled[0], color=STYLE.pooled_colour, lw=0.7, ls=":", gid="pooled_line")
        ax.set_ylim(0.3, n + 0.7)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        everything = [*lo, *hi, null, *(pooled or ()), *(prediction or ())]
        if shrunken:
            everything += [*s_lo, *s_hi]
        if fitted is not None:
            everything += [float(r[fitted]) for _, r in studies]
        for _e, a, b in (subgroup_pooled or {}).values():
            everything += [a, b]
        pad = 0.05 * (max(everything) - min(everything) or 1.0)
        ax.set_xlim(min(everything) - pad, max(everything) + pad)
        format_axis(ax, tr)
        ax.set_xlabel(xlabel)
        from matplotlib.transforms import blended_transform_factory

        head = blended_transform_factory(ax.transAxes, ax.transData)
        ax.text(-0.03, n + 0.6, "Study", ha="right", fontweight="bold", transform=head)
        ax.text(_VALUE_X, n + 0.6, f"Estimate [{level:.0%} CI]", fontweight="bold", transform=head)
        ax.text(_WEIGHT_X, n + 0.6, "Weight", ha="right", fontweight="bold", transform=head)
        if footer:
            fig.text(0.02, 0.01, footer, fontsize=STYLE.small_font_size, gid="footer")
        if title:
            ax.set_title(title)
    return finish_figure(fig, path)
