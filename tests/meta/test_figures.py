"""The figures of a meta-analysis through the public API: plot_forest, plot_funnel,
plot_moderator, plot_tau and plot_joint, for a plain meta-analysis, a meta-regression and a
subgroup analysis of the BCG trials.

Each test inspects the artists by their ``gid`` (the hiermodels.plots_* modules tag every
artist that carries meaning). Numbers in the text are metafor's: R 4.2.2, metafor 3.8.1,
``rma(yi, vi, data=dat.bcg)``: QE = 152.2330 (df = 12), I^2 = 92.22%, tau^2 = 0.3132.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import hiermodels as hm
from hiermodels.errors import SpecError

CELLS = {"ai": "tpos", "bi": "tneg", "ci": "cpos", "di": "cneg"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bcg():
    d = hm.effect_sizes(hm.datasets.load("bcg"), "RR", **CELLS)
    d["study"] = d["author"] + " " + d["year"].astype(str)
    return d


@pytest.fixture(scope="module")
def meta(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="study")


@pytest.fixture(scope="module")
def reg(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="study", moderators=["ablat"])


@pytest.fixture(scope="module")
def by_alloc(bcg):
    return hm.meta_analysis(bcg, estimate="yi", vi="vi", study="study", subgroup="alloc")


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def _collection(ax, gid):
    found = [c for c in ax.collections if c.get_gid() == gid]
    return found[0] if found else None


def _patches(ax, prefix):
    return [p for p in ax.patches if (p.get_gid() or "").startswith(prefix)]


def _footer(fig):
    return next(t.get_text() for t in fig.texts if t.get_gid() == "footer")


def test_forest_plain_meta_analysis(meta, bcg, tmp_path):
    path = tmp_path / "forest.png"
    fig = meta.plot_forest(path, transform="exp")
    assert path.stat().st_size > 10_000
    ax = fig.axes[0]
    assert _texts(ax, "label") == [*bcg["study"], "Pooled estimate", "Prediction interval"]
    squares = _collection(ax, "studies")
    assert len(squares.get_offsets()) == 13
    values = _texts(ax, "estimate_text")
    # the text column is on the risk-ratio scale: Aronson 1948, RR 0.41 [0.13, 1.26]
    assert values[0] == "0.41 [0.13, 1.26]"
    mu = meta.summary().loc["mu"]
    expected = f"{np.exp(mu['mean']):.2f} [{np.exp(mu['ci_low']):.2f}, {np.exp(mu['ci_high']):.2f}]"
    assert values[13] == expected
    weights = _texts(ax, "weight_text")
    assert weights[-1] == "100%" and len(weights) == 14
    assert sum(float(w[:-1]) for w in weights[:-1]) == pytest.approx(100, abs=0.1)
    sizes = squares.get_sizes()
    w = meta.study_effects()["weight"].to_numpy()  # REML weights
    np.testing.assert_allclose(sizes / sizes.max(), w / w.max())  # area ~ weight
    assert len(_patches(ax, "pooled")) == 1
    assert [line.get_gid() for line in ax.lines].count("prediction") == 1
    assert any(line.get_gid() == "null" for line in ax.lines)
    footer = _footer(fig)
    tau = meta.summary().loc["tau"]
    assert f"tau = {tau['median']:.2f}" in footer and "Q(12) = 152.23" in footer


def test_forest_frequentist_view_footer_and_sort(meta):
    fig = meta.plot_forest(method="REML", sort="estimate")
    ax = fig.axes[0]
    assert "Q(12) = 152.23, p < 0.001; I² = 92.2%; tau² = 0.313 (REML)" in _footer(fig)
    shown = [float(v.split(" ")[0]) for v in _texts(ax, "estimate_text")[:13]]
    assert shown == sorted(shown)


def test_forest_shrunken_intervals_on_request(meta):
    ax = meta.plot_forest().axes[0]
    assert _collection(ax, "shrunken_ci") is None
    ax = meta.plot_forest(shrunken=True).axes[0]
    assert len(_collection(ax, "shrunken_ci").get_segments()) == 13


def test_forest_meta_regression_has_fitted_values_and_no_diamond(reg):
    fig = reg.plot_forest()
    ax = fig.axes[0]
    assert not _patches(ax, "pooled") and not _patches(ax, "subgroup")
    fitted = _collection(ax, "fitted")
    assert len(fitted.get_offsets()) == 13
    beta = reg.summary()["mean"]
    expected = beta["Intercept"] + beta["ablat"] * reg.frame["ablat"].to_numpy()
    np.testing.assert_allclose(fitted.get_offsets()[:, 0], expected)
    labels = _texts(ax, "label")
    assert len(labels) == 13 and "Pooled estimate" not in labels
    assert "Test of moderators: QM(1)" in _footer(fig)


def test_forest_subgroups_have_their_own_diamonds(by_alloc):
    fig = by_alloc.plot_forest()
    ax = fig.axes[0]
    diamonds = _patches(ax, "subgroup:")
    assert sorted(p.get_gid() for p in diamonds) == [
        "subgroup:alternate",
        "subgroup:random",
        "subgroup:systematic",
    ]
    assert len(_patches(ax, "pooled")) == 1
    labels = _texts(ax, "label")
    assert labels[0] == "alternate" and "Subtotal random" in labels
    assert len(_collection(ax, "studies").get_offsets()) == 13
    # the diamonds are the exact per-level posteriors of subgroup_analysis()
    table = by_alloc.subgroup_analysis().estimates()
    random = next(p for p in diamonds if p.get_gid() == "subgroup:random").get_xy()
    np.testing.assert_allclose(
        [random[:, 0].min(), random[:, 0].max()],
        table.loc["random", ["bayes_ci_low", "bayes_ci_high"]].to_numpy(float),
    )
    assert "Test for subgroup differences: Q(2)" in _footer(fig)


def test_forest_draws_into_a_given_axes(meta):
    fig, ax = plt.subplots()
    assert meta.plot_forest(ax=ax) is fig
    assert len(_collection(ax, "studies").get_offsets()) == 13


def test_funnel_contours_filled_studies_and_egger_line(meta, tmp_path):
    fig = meta.plot_funnel(tmp_path / "funnel.png", trim_and_fill=True, egger=True)
    ax = fig.axes[0]
    contours = sorted(c.get_gid() for c in ax.collections if "contour" in (c.get_gid() or ""))
    assert contours == ["contour:0.01", "contour:0.05", "contour:0.1"]
    assert len(_collection(ax, "observed").get_offsets()) == 13
    filled = _collection(ax, "filled")
    assert len(filled.get_offsets()) == meta.trim_and_fill().k0
    assert len(filled.get_facecolors()) == 0  # hollow
    assert any(line.get_gid() == "egger" for line in ax.lines)
    ax = meta.plot_funnel(contours=False).axes[0]
    assert not [c for c in ax.collections if "contour" in (c.get_gid() or "")]
    assert _collection(ax, "filled") is None


def test_funnel_of_a_meta_regression_shows_residuals(reg):
    ax = reg.plot_funnel().axes[0]
    assert "residual" in ax.get_xlabel()
    center = next(line for line in ax.lines if line.get_gid() == "center")
    assert center.get_xdata()[0] == 0.0
    with pytest.raises(SpecError, match="trim and fill"):
        reg.plot_funnel(trim_and_fill=True)


def test_bubble_plot_has_the_line_and_both_bands(reg, meta):
    fig = reg.plot_moderator("ablat")
    ax = fig.axes[0]
    assert {"ci_band", "pi_band"} <= {c.get_gid() for c in ax.collections}
    assert len(_collection(ax, "studies").get_offsets()) == 13
    line = next(line for line in ax.lines if line.get_gid() == "fit")
    x, y = line.get_data()
    slope = (y[1] - y[0]) / (x[1] - x[0])
    np.testing.assert_allclose(slope, reg.coefficients().loc["ablat", "estimate"])
    with pytest.raises(SpecError, match="moderators=\\['ablat'\\]"):
        meta.plot_moderator("ablat")


def test_tau_and_joint_posterior_plots(meta, reg, tmp_path):
    ax = meta.plot_tau(tmp_path / "tau.png").axes[0]
    assert sorted(line.get_gid() for line in ax.lines) == ["posterior", "prior"]
    assert _collection(ax, "interval") is not None
    x, dens = next(line for line in ax.lines if line.get_gid() == "posterior").get_data()
    assert np.trapezoid(dens, x) == pytest.approx(0.995, abs=2e-3)  # the grid ends at q99.5
    for result in (meta, reg):
        ax = result.plot_joint(tmp_path / "joint.png").axes[0]
        assert ax.get_ylabel() == "tau" and ax.get_xlabel() == result.coefficient_names[0]
        assert any(c.get_gid() == "density" for c in ax.collections)
