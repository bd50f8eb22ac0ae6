"""Matplotlib plots: cumulative forest (meta-analysis), shrinkage arrows (pooling), PPC.

The forest, funnel, bubble and posterior plots of a meta-analysis are in
:mod:`hiermodels.plots_meta`, :mod:`hiermodels.plots_scatter` and
:mod:`hiermodels.plots_posterior`."""

from __future__ import annotations

import numpy as np

__all__ = ["cumulative_forest", "ppc_overlay", "shrinkage_arrows"]


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


def shrinkage_arrows(comparison, *, term, path=None, ax=None, max_labels=30):
    """No-pooling estimate -> partial-pooling estimate per group (an arrow each), the
    complete-pooling estimate as a line with its interval, groups from least to most precise.
    """
    table = comparison.shrinkage()
    table = table[table["term"] == term].reset_index(drop=True)
    by_se = "se" in table.columns
    # least precise first: largest se, or fewest rows
    order = np.argsort(
        -table["se"].to_numpy() if by_se else table["n_obs"].to_numpy(), kind="stable"
    )
    table = table.iloc[order].reset_index(drop=True)
    n = len(table)
    fig, ax = _figure(ax, (max(6.0, min(0.45 * n + 2, 16.0)), 4.8))
    x = np.arange(n)
    own, part, comp = (table[c].to_numpy() for c in ("no_pooling", "partial", "complete"))
    complete = comparison.estimates().query("term == @term and pooling == 'complete'")
    low = complete.set_index("group").loc[table["group"], ["ci_low", "ci_high"]].to_numpy()
    if np.ptp(comp) < 1e-9 * (1 + abs(comp[0])):  # one value for all groups: a line
        ax.axhline(comp[0], color="C3", lw=1.2, label="complete pooling")
        ax.axhspan(low[0, 0], low[0, 1], color="C3", alpha=0.12, lw=0)
    else:  # complete pooling differs by group through group-level predictors
        ax.plot(x, comp, "_", color="C3", ms=12, mew=2, label="complete pooling")
    for xi, a, b in zip(x, own, part, strict=True):
        if np.isfinite(a) and abs(b - a) > 0:
            ax.annotate(
                "",
                xy=(xi, b),
                xytext=(xi, a),
                arrowprops={
                    "arrowstyle": "->",
                    "color": "0.45",
                    "lw": 0.9,
                    "shrinkA": 3,
                    "shrinkB": 3,
                },
            )
    ax.plot(x, own, "o", mfc="white", mec="0.2", ms=6, label="no pooling (own estimate)")
    ax.plot(x, part, "o", color="C0", ms=5, label="partial pooling (posterior mean)")
    precision = table["se"] if by_se else table["n_obs"]
    if n <= max_labels:
        label = "se" if by_se else "n"
        ax.set_xticks(x)
        ax.set_xticklabels(
            [f"{g}\n{label}={p:g}" for g, p in zip(table["group"], precision, strict=True)],
            fontsize=8,
            rotation=0 if n <= 12 else 90,
        )
    else:
        ax.set_xticks([])
    what = "standard error" if by_se else "number of rows"
    ax.set_xlabel(f"{comparison.group}, from least to most precise ({what})")
    ax.set_ylabel(term)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Shrinkage: no pooling → partial pooling, toward complete pooling", fontsize=10)
    return _finish(fig, path)


def ppc_overlay(result, *, path=None, n_draws=50, random_seed=None, ax=None):
    """The usual posterior predictive overlay (Gabry et al. 2019, Fig. 6)."""
    y = result.data.y
    reps = np.asarray(result.ppc(random_seed)).reshape(-1, len(y))
    rng = np.random.default_rng(random_seed)
    reps = reps[rng.choice(len(reps), size=min(n_draws, len(reps)), replace=False)]
    fig, ax = _figure(ax, (7, 4.5))
    if result.family.outcome == "real":
        edges = np.histogram_bin_edges(np.concatenate([y, reps.ravel()]), bins=40)
        centres = (edges[:-1] + edges[1:]) / 2
        for k, rep in enumerate(reps):
            dens, _ = np.histogram(rep, edges, density=True)
            ax.plot(
                centres,
                dens,
                color="C0",
                alpha=0.15,
                lw=0.8,
                label="replicated" if k == 0 else None,
            )
        dens, _ = np.histogram(y, edges, density=True)
        ax.plot(centres, dens, color="black", lw=2, label="observed")
        ax.set_ylabel("density")
    else:
        # one bar per value, or ~40 integer-aligned bins when the counts run high
        upper = int(max(y.max(), np.quantile(reps, 0.99))) + 1
        edges = np.unique(np.linspace(0, upper, min(upper, 40) + 1).round()).astype(int)
        counts = np.array([np.histogram(rep, edges)[0] for rep in reps])
        low, mid, high = np.quantile(counts, [0.05, 0.5, 0.95], axis=0)
        width = np.diff(edges)
        ax.bar(
            edges[:-1],
            np.histogram(y, edges)[0],
            width=width,
            align="edge",
            color="0.8",
            label="observed",
        )
        ax.errorbar(
            edges[:-1] + width / 2,
            mid,
            yerr=[mid - low, high - mid],
            fmt="o",
            color="C0",
            ms=4,
            label="replicated (median, 90%)",
        )
        ax.set_ylabel("number of rows")
    ax.set_xlabel(result.data.y_name)
    ax.legend(loc="upper right", fontsize=8)  # "best" is slow (and warns) on big data
    ax.set_title(f"Posterior predictive check ({result.family.name})", fontsize=10)
    return _finish(fig, path)


def cumulative_forest(table, *, path=None, ax=None, xlabel="estimate", null=None, title=None):
    """Cumulative forest plot (Lau et al. 1992): one row per step of a cumulative
    meta-analysis, the pooled estimate and its interval after adding each study.

    ``table`` has columns ``study``, ``mu``, ``ci_low``, ``ci_high`` (e.g.
    :meth:`hiermodels.MetaAnalysisResult.cumulative`); the first study is at the top. ``null``
    draws a reference line (e.g. 0, or 1 on a ratio scale). Saves to ``path`` if given;
    returns the matplotlib Figure.
    """
    k = len(table)
    fig, ax = _figure(ax, (7, 0.4 * k + 1.6))
    rows = np.arange(k)[::-1].astype(float)
    mu = table["mu"].to_numpy(dtype=float)
    low, high = table["ci_low"].to_numpy(dtype=float), table["ci_high"].to_numpy(dtype=float)
    ax.hlines(rows, low, high, color="C0", lw=1.5)
    ax.plot(mu, rows, "D", color="C0", ms=5)
    if null is not None:
        ax.axvline(null, color="0.5", lw=0.8, ls=":")
    ax.axvline(mu[-1], color="C3", lw=0.8, ls="--", label="all studies")
    labels = [f"+ {s}" if i else str(s) for i, s in enumerate(table["study"])]
    ax.set_yticks(rows)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "Cumulative meta-analysis", fontsize=10)
    return _finish(fig, path)
