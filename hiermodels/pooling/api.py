r"""No, complete and partial pooling, fitted and compared in one call.

The three estimators of Gelman & Hill (2007, §12.2) and BDA3 §5.5:

* **none**: each group on its own (tau -> infinity). Study-level data: ``theta_j = y_j``
  with standard error ``se_j``; row-level data: least squares with one coefficient per group.
* **complete**: one value for all groups (tau = 0). Study-level: the precision-weighted mean
  (BDA3 eq. 5.13: 7.7, se 4.1 for eight schools); row-level: one regression.
* **partial**: the hierarchical model, tau learned from the data.

No and complete pooling get their exact posterior under the reference prior (flat on the
coefficients and on log sigma, BDA3 §14.2), so only the partial-pooling model of row-level
data is compiled and sampled; study-level data use the exact engine for all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hiermodels.errors import SpecError
from hiermodels.frames import to_pandas
from hiermodels.models import HierarchicalModel
from hiermodels.pooling.comparison import (
    PoolingComparison,
)
from hiermodels.pooling.rows import check_no_pooling_identified, compare_rows
from hiermodels.pooling.studies import compare_studies
from hiermodels.priors import Prior

__all__ = ["compare_pooling"]


def compare_pooling(
    data: pd.DataFrame,
    *,
    estimate: str | None = None,
    se: str | None = None,
    study: str | None = None,
    y: str | None = None,
    group: str | None = None,
    predictors: Sequence[str] = (),
    varying: Sequence[str] = (),
    hyperprior: str | Prior = "half_cauchy",
    parameterization: str | Mapping[str, str] | None = None,
    mu_prior: Prior | None = None,
    method: str = "exact",
    draws: int = 1000,
    tune: int | None = 1000,
    chains: int = 4,
    random_seed=None,
    sampler: str | None = None,
    progressbar: bool | None = None,
    sample_kwargs: Mapping | None = None,
) -> PoolingComparison:
    r"""Fit no, complete and partial pooling to the same data and compare them.

    Study-level data (one estimate and standard error per study) take ``estimate``, ``se``
    and optionally ``study``; all three estimators are exact (milliseconds)::

        none:     theta_j | y ~ Normal(y_j, se_j)
        complete: theta_j = mu,  mu | y ~ Normal(sum(w y) / sum(w), 1 / sqrt(sum(w))),
                  w_j = 1 / se_j^2
        partial:  y_j ~ Normal(theta_j, se_j), theta_j ~ Normal(mu, tau), tau ~ hyperprior

    Row-level data take ``y``, ``group``, ``predictors`` and ``varying`` as
    :func:`fit_hierarchical` does. No pooling is the regression with one coefficient per group
    for each varying term (group-level predictors drop out: they are collinear with the
    groups), complete pooling the regression without groups; both are exact under the
    reference prior (BDA3 §14.2). Partial pooling is :class:`HierarchicalModel`, sampled
    with NUTS once.

    Parameters
    ----------
    data : pandas.DataFrame
        Never modified.
    hyperprior, parameterization, mu_prior, method
        For the partial-pooling model, as in :func:`meta_analysis` (study-level; ``method``
        "exact" or "mcmc") or :class:`HierarchicalModel` (row-level). ``parameterization``
        defaults to ``"noncentered"`` for study-level MCMC and to ``"auto"`` for row-level
        data, where a Gaussian outcome is then fitted by the marginal engine
        (:meth:`HierarchicalModel.fit`, ``engine="auto"``); a form given for row-level data
        samples the full model in it.
    draws, tune, chains, random_seed, sampler, progressbar, sample_kwargs
        Sampling options (``random_seed`` also seeds the exact draws).

    Returns
    -------
    PoolingComparison
        ``estimates()``, ``shrinkage()``, ``compare()``, ``verdict()``, ``plot()``.

    Examples
    --------
    >>> import hiermodels as hm
    >>> schools = hm.datasets.load("eight_schools")
    >>> cmp = hm.compare_pooling(schools, estimate="y", se="sigma", study="school",
    ...                          random_seed=1)
    >>> est = cmp.estimates().set_index(["group", "pooling"])
    >>> round(est.loc[("A", "complete"), "mean"], 2), round(est.loc[("A", "complete"), "sd"], 2)
    (7.69, 4.07)
    """
    data = to_pandas(data)
    study_level = estimate is not None or se is not None
    row_level = y is not None or group is not None
    if study_level == row_level:
        raise SpecError(
            "give either estimate= and se= (one row per study) or y= and group= (one row per "
            "observation), not both or neither"
        )
    rng = np.random.default_rng(random_seed)
    if study_level:
        if estimate is None or se is None:
            raise SpecError("study-level data need both estimate= and se=")
        return compare_studies(
            data,
            estimate=estimate,
            se=se,
            study=study,
            mu_prior=mu_prior,
            hyperprior=hyperprior,
            method=method,
            parameterization="noncentered" if parameterization is None else parameterization,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            progressbar=progressbar,
            sample_kwargs=sample_kwargs,
            rng=rng,
        )
    if y is None or group is None:
        raise SpecError("row-level data need both y= and group=")
    if not isinstance(group, str):
        raise SpecError(
            f"compare_pooling takes one grouping column, got group={group!r}: no pooling is "
            "defined per level of a single factor"
        )
    model = HierarchicalModel(
        data,
        y=y,
        group=group,
        predictors=predictors,
        varying=varying,
        parameterization="auto" if parameterization is None else parameterization,
        hyperprior=hyperprior,
    )
    check_no_pooling_identified(model.prepared()[0])  # before sampling, not after
    partial = model.fit(
        draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        sampler=sampler,
        progressbar=progressbar,
        sample_kwargs=sample_kwargs,
    )
    return compare_rows(partial, rng=rng, chains=chains)
