"""Posterior densities of a meta-analysis: tau alone, and mu and tau jointly.

The pictures bayesmeta draws (``plot(x, which=4)`` and ``which=2``), from densities on grids
computed elsewhere (the exact posterior, or a kernel density of draws), in the style of
:mod:`hiermodels.plots_meta`.
"""

from __future__ import annotations

import numpy as np

from hiermodels.plots_meta import STYLE, figure_and_axes, finish_figure, style_context

__all__ = ["joint_posterior_plot", "tau_posterior_plot"]


# -- posterior plots --------------------------------------------------------------------


def tau_posterior_plot(
    grid, posterior_density, prior_density=None, *, interval=None, xlabel="tau", path=None, ax=None
):
    """Marginal posterior density of tau (solid), its prior (dashed) and an interval (shaded),
    as bayesmeta's ``plot(x, which=4, prior=TRUE)``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 3, 50)
    >>> fig = tau_posterior_plot(t, np.exp(-t), 0.5 * np.exp(-t / 2))
    >>> sorted(l.get_gid() for l in fig.axes[0].lines)
    ['posterior', 'prior']
    """
    grid, post = np.asarray(grid, dtype=float), np.asarray(posterior_density, dtype=float)
    with style_context():
        fig, ax = figure_and_axes(ax, (5.0, 3.6))
        if interval is not None:
            inside = (grid >= interval[0]) & (grid <= interval[1])
            ax.fill_between(
                grid[inside],
                0,
                post[inside],
                color=STYLE.shrunken_colour,
                alpha=0.25,
                lw=0,
                gid="interval",
            )
        ax.plot(grid, post, color=STYLE.shrunken_colour, lw=1.4, gid="posterior", label="posterior")
        if prior_density is not None:
            ax.plot(
                grid,
                np.asarray(prior_density, dtype=float),
                color=STYLE.null_colour,
                ls="--",
                gid="prior",
                label="prior",
            )
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(bottom=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.legend(frameon=False)
    return finish_figure(fig, path)


def joint_posterior_plot(
    mu_grid, tau_grid, density2d, *, levels=(0.5, 0.9, 0.95, 0.99), xlabel="mu", path=None, ax=None
):
    """Joint posterior density of (mu, tau): shading and the highest-density regions holding
    ``levels`` of the mass (as bayesmeta's ``plot(x, which=2)``).

    ``density2d`` has shape (len(tau_grid), len(mu_grid)) (as
    :func:`hiermodels.numerics.bayes_extras.joint_posterior_density` returns it). The region
    for level q is {density >= c_q} with c_q chosen so that it holds q of the grid's mass.

    Examples
    --------
    >>> import numpy as np
    >>> m, t = np.linspace(-3, 3, 40), np.linspace(0, 3, 30)
    >>> d = np.exp(-0.5 * m[None, :] ** 2 - t[:, None])
    >>> fig = joint_posterior_plot(m, t, d)
    >>> fig.axes[0].get_ylabel()
    'tau'
    """
    mu, tau = np.asarray(mu_grid, dtype=float), np.asarray(tau_grid, dtype=float)
    dens = np.asarray(density2d, dtype=float)
    if dens.shape != (tau.size, mu.size):
        raise ValueError(f"density2d must have shape {(tau.size, mu.size)}, got {dens.shape}")
    # the region {density >= c} holding q of the mass: cells by decreasing density, their
    # masses (density x cell area, the grid may be uneven) cumulated until q
    flat = dens.ravel()
    order = np.argsort(flat)[::-1]
    mass = (np.outer(np.gradient(tau), np.gradient(mu)).ravel() * flat)[order]
    cum = np.cumsum(mass) / mass.sum()
    cuts = sorted({float(flat[order][min(np.searchsorted(cum, q), cum.size - 1)]) for q in levels})
    with style_context():
        fig, ax = figure_and_axes(ax, (5.0, 4.2))
        mesh = ax.pcolormesh(mu, tau, dens, cmap="Greys", shading="auto")
        mesh.set_gid("density")
        if cuts:
            cs = ax.contour(mu, tau, dens, levels=cuts, colors=STYLE.pooled_colour, linewidths=0.9)
            cs.set_gid("hpd_regions")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("tau")
    return finish_figure(fig, path)
