"""No, complete and partial pooling of study-level data (estimates with standard errors),
all three exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.errors import SpecError
from hiermodels.meta.api import meta_analysis
from hiermodels.meta.data import StudyData
from hiermodels.meta.engines import exact_fit
from hiermodels.pooling.comparison import (
    EXACT_DRAWS,
    PooledFit,
    PoolingComparison,
    Summary,
)

__all__ = ["compare_studies", "loso_exact"]


# -- study-level data -------------------------------------------------------------------------
def _normal_summary(mean, sd, prob) -> dict[str, np.ndarray]:
    z = stats.norm.ppf((1 + prob) / 2)
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    return {"mean": mean, "sd": sd, "lower": mean - z * sd, "upper": mean + z * sd}


def _gaussian_loglik(y, se, theta) -> np.ndarray:
    return stats.norm.logpdf(y, theta, se)


def compare_studies(data, *, rng, chains, draws, **options) -> PoolingComparison:
    meta = meta_analysis(data, draws=draws, chains=chains, **options)
    d: StudyData = meta.data
    if d.has_moderators:  # pragma: no cover - compare_pooling passes no moderators
        raise SpecError("compare_pooling does not take moderators")
    term = "theta"
    w = 1.0 / d.se**2
    mu_hat, mu_se = float(w @ d.y / w.sum()), float(1.0 / np.sqrt(w.sum()))  # BDA3 eq. 5.13
    n = EXACT_DRAWS // chains

    def shaped(theta):  # (S, k) -> (chain, draw, k)
        return theta[: n * chains].reshape(chains, n, -1)

    own = d.y + d.se * rng.standard_normal((n * chains, d.k))
    pooled = mu_hat + mu_se * rng.standard_normal((n * chains, 1))
    partial_theta = np.asarray(meta.idata["posterior"]["theta"])
    partial_ll = _gaussian_loglik(d.y, d.se, partial_theta)
    reff_partial = 1.0 if meta.method == "exact" else None
    fits = {
        "none": PooledFit(
            summarize=lambda prob: {term: _normal_summary(d.y, d.se, prob)},
            log_likelihood=shaped(_gaussian_loglik(d.y, d.se, own)),
            reff=1.0,
        ),
        "complete": PooledFit(
            summarize=lambda prob: {
                term: _normal_summary(np.full(d.k, mu_hat), np.full(d.k, mu_se), prob)
            },
            log_likelihood=shaped(_gaussian_loglik(d.y, d.se, pooled)),
            reff=1.0,
            loso=_loso_complete(d.y, d.se),
        ),
        "partial": PooledFit(
            summarize=lambda prob: _partial_study_summary(meta, term, prob),
            log_likelihood=partial_ll,
            reff=reff_partial,
            loso=loso_exact(meta),
            result=meta,
        ),
    }
    return PoolingComparison(
        kind="study",
        group=d.study,
        labels=tuple(d.labels),
        terms=(term,),
        precision=pd.DataFrame({"se": d.se}),
        fits=fits,
    )


def _partial_study_summary(meta, term, prob) -> Summary:
    effects = meta.study_effects(prob)
    return {
        term: {
            "mean": effects["mean"].to_numpy(),
            "sd": effects["sd"].to_numpy(),
            "lower": effects["ci_low"].to_numpy(),
            "upper": effects["ci_high"].to_numpy(),
        }
    }


def _loso_complete(y, se) -> np.ndarray:
    """log p(y_j | y_-j) under complete pooling: Normal(mu_hat_-j, sqrt(V_-j + se_j^2))."""
    out = np.empty(len(y))
    for j in range(len(y)):
        keep = np.arange(len(y)) != j
        w = 1.0 / se[keep] ** 2
        mean, var = w @ y[keep] / w.sum(), 1.0 / w.sum()
        out[j] = stats.norm.logpdf(y[j], mean, np.sqrt(var + se[j] ** 2))
    return out


def loso_exact(meta) -> np.ndarray:
    """log p(y_j | y_-j) for a new study under the hierarchical model, exactly."""
    d = meta.data
    out = np.empty(d.k)
    for j in range(d.k):
        post = exact_fit(d.without(j), mu_prior=meta.mu_prior, tau_prior=meta.tau_prior)
        out[j] = post.predictive_logpdf(d.y[j], d.se[j], d.X[j])
    return out
