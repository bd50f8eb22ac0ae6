"""The groups ArviZ expects in a fit's DataTree (issue 13): ``log_likelihood``,
``observed_data`` and ``constant_data`` after every fit; ``posterior_predictive``, ``prior``
and ``prior_predictive`` once asked for. All in the one tree, so ``az.loo``, ``az.compare``,
``az.plot_ppc`` and ``az.plot_prior_posterior`` work on ``result.idata`` directly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "LOG_LIKELIHOOD_BUDGET",
    "add_fit_groups",
    "add_posterior_predictive",
    "add_prior_groups",
    "set_group",
]

# pointwise log-likelihood values stored after a fit without being asked (8 bytes each): a
# million rows x 4000 draws would be 32 GB, so such fits store none and say how to add it
LOG_LIKELIHOOD_BUDGET = 25_000_000


def set_group(tree: xr.DataTree, name: str, dataset: xr.Dataset) -> None:
    """Put ``dataset`` in ``tree`` as group ``name``, replacing one already there."""
    if name in tree.children:
        del tree[name]
    tree[name] = dataset


def _draw_coords(tree: xr.DataTree) -> dict:
    post = tree["posterior"]
    return {"chain": post["chain"].values, "draw": post["draw"].values}


def add_fit_groups(result, *, log_likelihood: bool | None = None) -> None:
    """Add ``observed_data``, ``constant_data`` and (within the budget, or when
    ``log_likelihood=True``) ``log_likelihood`` to ``result.idata``.

    ``constant_data`` holds the encoded design ``X`` (dims obs, term), each grouping factor's
    level code per row (``{factor}_idx``, with the levels as a coordinate attribute), and the
    offset, trials and known standard errors (under their columns' names) when the model has
    them.
    """
    d, tree = result.data, result.idata
    obs = np.arange(len(d.y))
    set_group(tree, "observed_data", xr.Dataset({d.y_name: ("obs", d.y)}, coords={"obs": obs}))
    constant = {"X": (("obs", "term"), d.X)}
    for f in d.factors:
        constant[f"{f.name}_idx"] = xr.Variable(
            "obs", f.idx, attrs={"levels": ", ".join(map(str, f.levels))}
        )
    if d.offset is not None:
        constant[d.offset_name or "offset"] = ("obs", d.offset)
    if d.trials is not None:
        constant[d.trials_name or "trials"] = ("obs", d.trials)
    if d.se is not None:
        constant[d.se_name or "se"] = ("obs", d.se)
    set_group(
        tree,
        "constant_data",
        xr.Dataset(constant, coords={"obs": obs, "term": list(d.terms)}),
    )
    post = tree["posterior"]
    size = post.sizes["chain"] * post.sizes["draw"] * len(d.y)
    if log_likelihood is None:
        log_likelihood = size <= LOG_LIKELIHOOD_BUDGET
    if not log_likelihood:
        tree.attrs["log_likelihood"] = (
            f"not stored: {size:.3g} values exceed the budget of {LOG_LIKELIHOOD_BUDGET:.3g}; "
            "result.add_log_likelihood() adds it"
        )
        return
    values = result.log_likelihood()
    set_group(
        tree,
        "log_likelihood",
        xr.Dataset(
            {d.y_name: (("chain", "draw", "obs"), values)},
            coords={**_draw_coords(tree), "obs": obs},
        ),
    )
    tree.attrs.pop("log_likelihood", None)


def add_posterior_predictive(result, values: np.ndarray) -> None:
    """Store replicated outcomes (chain, draw, obs) as ``posterior_predictive``."""
    d, tree = result.data, result.idata
    set_group(
        tree,
        "posterior_predictive",
        xr.Dataset(
            {d.y_name: (("chain", "draw", "obs"), np.asarray(values, dtype=float))},
            coords={**_draw_coords(tree), "obs": np.arange(len(d.y))},
        ),
    )


def add_prior_groups(result, prior_tree: xr.DataTree) -> None:
    """Copy the ``prior`` and ``prior_predictive`` groups of ``pm.sample_prior_predictive``."""
    for name in ("prior", "prior_predictive"):
        if name in prior_tree.children:
            set_group(result.idata, name, prior_tree[name].to_dataset())
