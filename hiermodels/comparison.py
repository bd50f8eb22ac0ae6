"""Compare fitted models by their out-of-sample predictions: ``hm.compare``.

PSIS-LOO from each fit's pointwise log-likelihood (``result.idata["log_likelihood"]``), the
table and verdict of :mod:`hiermodels.results.loo` (the same wording as ``compare_pooling``),
and, for meta-analyses fitted with the exact engine, the exact leave-one-study-out predictive
density of a new study beside it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.pooling.studies import loso_exact
from hiermodels.results.loo import Candidate, loo_table, verdict

__all__ = ["compare"]


def compare(results: Mapping[str, object]) -> pd.DataFrame:
    """Rank fitted models (hierarchical fits or meta-analyses of the same data) by PSIS-LOO.

    Parameters
    ----------
    results : dict
        Name -> fitted result, e.g. ``{"varying slope": res1, "intercepts only": res2}``.
        Every model must be fitted to the same rows (or studies).

    Returns
    -------
    DataFrame
        Best first: ``rank, elpd_loo, se, elpd_diff, dse, p_loo, n_high_k, max_k,
        k_threshold``; meta-analyses from the exact engine add ``elpd_loso`` and ``loso_se``.
        ``table.attrs["verdict"]`` reads it in words.

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> a = hm.meta_analysis(schools, estimate="y", se="sigma", study="school")
    >>> b = hm.meta_analysis(schools, estimate="y", se="sigma", study="school",
    ...                      hyperprior="half_normal")
    >>> table = hm.compare({"half-Cauchy": a, "half-normal": b})
    >>> sorted(table.index)
    ['half-Cauchy', 'half-normal']
    """
    if not isinstance(results, Mapping) or len(results) < 2:
        raise SpecError("compare takes a dict of at least two fitted results, name -> result")
    candidates = {str(name): _candidate(str(name), res) for name, res in results.items()}
    sizes = {name: np.shape(c.log_likelihood)[-1] for name, c in candidates.items()}
    if len(set(sizes.values())) > 1:
        raise SpecError(
            f"models fitted to different data cannot be compared by LOO: observations {sizes}"
        )
    # MCMC fits: ArviZ's own PSIS-LOO on the fit's tree (relative efficiency from its chains),
    # so the numbers are az.loo(result.idata)'s; exact draws are independent (reff = 1)
    loos = {
        name: _arviz_loo(res.idata)
        for name, res in zip(candidates, results.values(), strict=True)
        if candidates[name].reff is None and "log_likelihood" in res.idata.children
    }
    table = loo_table(candidates, loos=loos)
    table.index.name = "model"
    table.attrs["verdict"] = verdict(table)
    return table


def _candidate(name: str, result) -> Candidate:
    tree = getattr(result, "idata", None)
    if tree is None:
        raise SpecError(f"{name!r} is not a fitted result ({type(result).__name__})")
    if "log_likelihood" not in tree.children and hasattr(result, "add_log_likelihood"):
        result.add_log_likelihood()
    if "log_likelihood" in tree.children:
        ds = tree["log_likelihood"].to_dataset()
        (values,) = [np.asarray(v) for v in ds.data_vars.values()][:1] or [None]
        ll = values.reshape(*values.shape[:2], -1)
    else:
        ll = _study_log_likelihood(name, result)
    exact = getattr(result, "exact", None)
    if exact is not None:
        return Candidate(ll, reff=1.0, loso=loso_exact(result))
    return Candidate(ll)


def _arviz_loo(tree):
    import warnings

    import arviz as az

    with warnings.catch_warnings():
        # high Pareto k is reported in the table's n_high_k column and in the verdict
        warnings.filterwarnings("ignore", "Estimated shape parameter", UserWarning)
        return az.loo(tree, pointwise=True)


def _study_log_likelihood(name: str, result) -> np.ndarray:
    """Per-study log-likelihood of a meta-analysis, Normal(y_i | theta_i, se_i), per draw."""
    data = getattr(result, "data", None)
    post = result.idata["posterior"]
    if data is None or "theta" not in post:
        raise SpecError(f"{name!r} has no pointwise log-likelihood to compare")
    theta = np.asarray(post["theta"])
    return stats.norm.logpdf(data.y, theta, data.se)
