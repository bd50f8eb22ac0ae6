"""Matplotlib plots for meta-analysis results (forest, funnel)."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["forest", "funnel"]

Z95 = 1.959963984540054


def _figure(ax, size):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def forest(result, *, path=None, prob=0.95, ax=None):
    """One row per study (observed +/- z se, shrunken posterior interval), then the pooled
    effect (diamond) and the prediction interval for a new study."""
    effects = result.study_effects(prob)
    summary = result.summary(prob)
    k = len(effects)
    fig, ax = _figure(ax, (7, 0.45 * k + 2.0))
    rows = np.arange(k)[::-1] + 2.0
    z = float(stats.norm.ppf((1 + prob) / 2))
    est, se = effects["estimate"].to_numpy(), effects["se"].to_numpy()
    ax.errorbar(
        est, rows + 0.15, xerr=z * se, fmt="s", color="0.35", ms=5, capsize=2, label="observed"
    )
    ax.errorbar(
        effects["mean"],
        rows - 0.15,
        xerr=[effects["mean"] - effects["ci_low"], effects["ci_high"] - effects["mean"]],
        fmt="o",
        color="C0",
        ms=5,
        capsize=2,
        label="shrunken (posterior)",
    )
    name = result.coefficient_names[0]
    mu = summary.loc[name]
    ax.fill(
        [mu["ci_low"], mu["mean"], mu["ci_high"], mu["mean"]],
        [1.0, 1.25, 1.0, 0.75],
        color="C3",
        label=f"pooled {name}",
    )
    new = summary.loc["theta_new"]
    ax.plot(
        [new["ci_low"], new["ci_high"]],
        [0.3, 0.3],
        color="C3",
        lw=3,
        alpha=0.5,
        label="prediction (new study)",
    )
    ax.axvline(mu["mean"], color="C3", lw=0.8, ls="--")
    ax.set_yticks([*rows, 1.0, 0.3])
    ax.set_yticklabels([*effects["study"], name, "new study"])
    ax.set_xlabel(f"{result.data.estimate} ({int(100 * prob)}% intervals)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"Forest plot ({result.method}; tau ~ {result.tau_prior})", fontsize=10)
    return _finish(fig, path)


def funnel(result, *, path=None, ax=None):
    """Estimates against standard errors (inverted axis) with the pooled effect and the
    region mu +/- 1.96 se where 95% of studies would fall without heterogeneity or bias."""
    d = result.data
    fig, ax = _figure(ax, (6, 5))
    mu = float(result.summary().iloc[0]["mean"])
    se_max = float(d.se.max()) * 1.1
    grid = np.linspace(0, se_max, 50)
    ax.fill_betweenx(grid, mu - Z95 * grid, mu + Z95 * grid, color="0.9", label="mu ± 1.96 se")
    ax.scatter(d.y, d.se, color="C0", zorder=3, label="studies")
    ax.axvline(mu, color="C3", lw=1, label="pooled mu (posterior mean)")
    ax.set_ylim(se_max, 0)
    ax.set_xlabel(d.estimate)
    ax.set_ylabel(f"standard error ({d.se_name})")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Funnel plot ({d.k} studies)", fontsize=10)
    return _finish(fig, path)
