"""The meta-analysis plots (hiermodels.plots_meta, plots_scatter and plots_posterior) render and
draw what they should.

Each test inspects the figure's artists by their ``gid`` (the modules tag every artist that
carries meaning): rows and labels, the text column, diamonds, hollow markers, contour regions
and bands.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Polygon

from hiermodels.errors import SpecError
from hiermodels.plots_meta import STYLE, forest_plot
from hiermodels.plots_posterior import joint_posterior_plot, tau_posterior_plot
from hiermodels.plots_scatter import bubble_plot, funnel_plot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "study": ["Aronson", "Ferguson", "Rosenthal", "Hart", "Frimodt"],
            "estimate": [-0.889, -1.585, -1.348, -1.442, -0.218],
            "ci_low": [-2.008, -2.450, -2.611, -1.719, -0.666],
            "ci_high": [0.229, -0.720, -0.085, -1.164, 0.230],
            "weight": [5.0, 7.0, 4.0, 40.0, 44.0],
            "shrunk": [-0.9, -1.3, -1.1, -1.4, -0.3],
            "shrunk_lo": [-1.6, -2.0, -1.9, -1.7, -0.7],
            "shrunk_hi": [-0.2, -0.7, -0.3, -1.1, 0.1],
            "region": ["north", "north", "south", "south", "south"],
            "fit": [-1.0, -1.4, -1.2, -1.3, -0.4],
        }
    )


def _gids(ax, kind):
    return [a for a in getattr(ax, kind) if a.get_gid()]


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def test_forest_plot_rows_text_column_and_diamond(table, tmp_path):
    path = tmp_path / "forest.png"
    fig = forest_plot(
        table,
        pooled=(-0.71, -1.07, -0.36),
        prediction=(-1.86, 0.45),
        footer="Heterogeneity: tau^2 = 0.31, I^2 = 92%",
        transform="exp",
        path=path,
    )
    ax = fig.axes[0]
    assert path.stat().st_size > 0
    labels = _texts(ax, "label")
    assert labels == [*table["study"], "Pooled estimate", "Prediction interval"]
    values = _texts(ax, "estimate_text")
    # back-transformed: exp(-0.889) = 0.41, exp(-2.008) = 0.13, exp(0.229) = 1.26
    assert values[0] == "0.41 [0.13, 1.26]"
    assert values[5] == "0.49 [0.34, 0.70]"  # the pooled row
    assert values[6] == "[0.16, 1.57]"  # prediction interval
    assert _texts(ax, "weight_text") == ["5.0%", "7.0%", "4.0%", "40.0%", "44.0%", "100%"]
    squares = next(c for c in ax.collections if c.get_gid() == "studies")
    assert len(squares.get_offsets()) == 5
    sizes = squares.get_sizes()
    np.testing.assert_allclose(sizes / sizes.max(), table["weight"] / 44.0)  # area ~ weight
    diamonds = [p for p in ax.patches if isinstance(p, Polygon) and p.get_gid() == "pooled"]
    assert len(diamonds) == 1
    np.testing.assert_allclose(sorted(diamonds[0].get_xy()[:4, 0]), [-1.07, -0.71, -0.71, -0.36])
    assert any(line.get_gid() == "prediction" for line in ax.lines)
    null = next(line for line in ax.lines if line.get_gid() == "null")
    assert null.get_xdata()[0] == 0.0  # log scale 0 = ratio 1
    # tick labels are ratios
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "1" in ticks and "0.5" in ticks
    assert [t.get_text() for t in fig.texts if t.get_gid() == "footer"] == [
        "Heterogeneity: tau^2 = 0.31, I^2 = 92%"
    ]


def test_forest_plot_meta_regression_has_fitted_values_and_no_diamond(table):
    fig = forest_plot(table, fitted="fit")
    ax = fig.axes[0]
    assert not [p for p in ax.patches if p.get_gid() == "pooled"]
    fitted = next(c for c in ax.collections if c.get_gid() == "fitted")
    np.testing.assert_allclose(fitted.get_offsets()[:, 0], table["fit"])
    assert "Pooled estimate" not in _texts(ax, "label")
    with pytest.raises(SpecError, match="no single pooled effect"):
        forest_plot(table, fitted="fit", pooled=(0, -1, 1))


def test_forest_plot_shrunken_subgroups_and_sorting(table):
    fig = forest_plot(
        table,
        shrunken=("shrunk", "shrunk_lo", "shrunk_hi"),
        subgroup="region",
        subgroup_pooled={"north": (-1.2, -2.0, -0.4), "south": (-0.8, -1.5, -0.1)},
        pooled=(-0.71, -1.07, -0.36),
        sort="estimate",
    )
    ax = fig.axes[0]
    labels = _texts(ax, "label")
    # headers, studies sorted by estimate within each subgroup, subtotals, pooled
    assert labels == [
        "north", "Ferguson", "Aronson", "Subtotal north",
        "south", "Hart", "Rosenthal", "Frimodt", "Subtotal south",
        "Pooled estimate",
    ]  # fmt: skip
    subgroup_diamonds = sorted(p.get_gid() for p in ax.patches if "subgroup" in str(p.get_gid()))
    assert subgroup_diamonds == ["subgroup:north", "subgroup:south"]
    shrunk = next(c for c in ax.collections if c.get_gid() == "shrunken")
    observed = next(c for c in ax.collections if c.get_gid() == "studies")
    assert len(shrunk.get_offsets()) == 5
    # observed and shrunken intervals of a study sit on either side of its row
    assert (observed.get_offsets()[:, 1] > shrunk.get_offsets()[:, 1]).all()
    assert any(c.get_gid() == "shrunken_ci" for c in ax.collections)
    with pytest.raises(SpecError, match="no column"):
        forest_plot(table, weight="w")


def test_funnel_plot_contours_filled_and_egger_line(tmp_path):
    y = np.array([-0.9, -1.6, -1.3, -1.4, -0.2, -0.5, 0.1])
    se = np.array([0.57, 0.44, 0.64, 0.14, 0.23, 0.3, 0.1])
    fig = funnel_plot(
        y,
        se,
        center=-0.7,
        filled=([0.8, 0.9], [0.27, 0.14]),
        egger_line=(-0.3, -2.0),
        transform="exp",
        path=tmp_path / "funnel.png",
    )
    ax = fig.axes[0]
    contours = [c for c in ax.collections if str(c.get_gid()).startswith("contour:")]
    assert sorted(c.get_gid() for c in contours) == ["contour:0.01", "contour:0.05", "contour:0.1"]
    assert all(len(c.get_paths()) == 2 for c in contours)  # both sides of the funnel
    # the p < .10 band starts at z = 1.645 se
    band = next(c for c in contours if c.get_gid() == "contour:0.1").get_paths()[0].vertices
    np.testing.assert_allclose(band[1, 0] / band[1, 1], 1.6448536, rtol=1e-6)
    filled = next(c for c in ax.collections if c.get_gid() == "filled")
    assert len(filled.get_offsets()) == 2
    assert filled.get_facecolors().size == 0 or filled.get_facecolors()[:, 3].max() == 0  # hollow
    observed = next(c for c in ax.collections if c.get_gid() == "observed")
    assert observed.get_facecolors()[:, 3].min() > 0  # solid
    egger = next(line for line in ax.lines if line.get_gid() == "egger")
    np.testing.assert_allclose(egger.get_xdata(), -0.3 - 2.0 * egger.get_ydata())
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # se = 0 at the top


def test_funnel_plot_custom_contours():
    fig = funnel_plot([0.1, 0.3], [0.1, 0.2], center=0.2, contours=(0.05, 0.01))
    gids = [c.get_gid() for c in fig.axes[0].collections if "contour" in str(c.get_gid())]
    assert sorted(gids) == ["contour:0.01", "contour:0.05"]
    assert not [c for c in fig.axes[0].collections if c.get_gid() == "filled"]


def test_bubble_plot_bands_and_weights():
    x = np.array([44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33], float)
    y = np.linspace(-1.6, 0.4, 13)
    se = np.linspace(0.1, 0.6, 13)
    g = np.linspace(10, 60, 30)
    fig = bubble_plot(
        x,
        y,
        se,
        fit_line=(0.3, -0.03),
        ci_band=(g, 0.1 - 0.03 * g, 0.5 - 0.03 * g),
        pi_band=(g, -0.5 - 0.03 * g, 1.1 - 0.03 * g),
        xlabel="absolute latitude",
    )
    ax = fig.axes[0]
    bands = {c.get_gid() for c in ax.collections if str(c.get_gid()).endswith("_band")}
    assert bands == {"ci_band", "pi_band"}
    points = next(c for c in ax.collections if c.get_gid() == "studies")
    sizes = points.get_sizes()
    np.testing.assert_allclose(sizes / sizes.max(), (1 / se**2) / (1 / se[0] ** 2))
    fit = next(line for line in ax.lines if line.get_gid() == "fit")
    np.testing.assert_allclose(fit.get_ydata(), 0.3 - 0.03 * fit.get_xdata())
    assert ax.get_xlabel() == "absolute latitude"


def test_posterior_plots():
    t = np.linspace(0, 3, 200)
    fig = tau_posterior_plot(t, 2 * np.exp(-2 * t), np.exp(-t), interval=(0.0, 1.5))
    ax = fig.axes[0]
    assert sorted(line.get_gid() for line in ax.lines) == ["posterior", "prior"]
    assert any(c.get_gid() == "interval" for c in ax.collections)
    m = np.linspace(-3, 3, 61)
    d = np.exp(-0.5 * m[None, :] ** 2 - 2 * t[:, None])
    fig = joint_posterior_plot(m, t, d, levels=(0.5, 0.95))
    ax = fig.axes[0]
    assert any(c.get_gid() == "density" for c in ax.collections)
    cs = next(c for c in ax.collections if c.get_gid() == "hpd_regions")
    assert len(cs.levels) == 2
    with pytest.raises(ValueError, match="shape"):
        joint_posterior_plot(m, t, d.T)


def test_one_style():
    assert STYLE.rc()["font.size"] == STYLE.font_size
    fig = funnel_plot([0.1, 0.3], [0.1, 0.2], center=0.2)
    label = fig.axes[0].xaxis.get_label()
    assert label.get_fontsize() == STYLE.font_size
